"""One parse of dags/ shared by the DAG tests (integrity, structure)."""

from __future__ import annotations

from pathlib import Path

import pytest

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="session")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    # the structure test's expected tasks are for one agency; parse with exactly that
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("UPSTREAM_AGENCIES", "WPS")
        return DagBag(dag_folder=str(DAGS_DIR))
