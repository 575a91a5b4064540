"""Run the nightly DAG for one extract day in-process with `dag.test()` (CLI `run-day`, tests).

Needs the Airflow environment from upstream.devenv (bootstrap) to be applied first.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from upstream.config import REPO_ROOT, load_settings

NIGHTLY_DAG_ID = "upstream_nightly"


def load_dag(dag_id: str = NIGHTLY_DAG_ID):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO_ROOT / "dags"))
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {sorted(bag.import_errors)}")
    return bag.get_dag(dag_id)


def nightly_logical_date(extract_date: date) -> datetime:
    """The scheduled run that processes `extract_date` (03:00 local the next morning)."""
    return datetime.combine(extract_date + timedelta(days=1), time(3),
                            tzinfo=load_settings().timezone)


def run_nightly_for(extract_date: date, dag=None) -> str:
    dag = dag or load_dag()
    dag_run = dag.test(logical_date=nightly_logical_date(extract_date))
    return str(getattr(dag_run.state, "value", dag_run.state))
