"""
### Upstream history import: an agency's past extracts, in batches, resumable

Manual only (*Trigger DAG* with the params below). Imports every extract in the landing area
from `from` to `to` (inclusive) for `agencies` (comma separated; empty: `UPSTREAM_AGENCIES`)
through the nightly load's manifest checks, rules, GX suite, quarantine and merge, in batches
(one GX checkpoint per batch; no Airflow run per day). See `upstream.ingest.history`.

* **Progress**: a line in the task log at least every 30 s (files, rows, rate, ETA), then a
  summary: files loaded, already loaded, ignored, refused (with reasons), rows quarantined by
  rule.
* **Resumable**: each batch commits; a retry or a new run skips what is loaded.
* **Locked per agency**: it does not run while a nightly load of the same agency does (the task
  fails with the agency's name and is retried).
* **No false success**: the task fails when no file was found, or when any file was refused
  (the others stay loaded).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, task

from upstream.airflow.dag_args import default_args
from upstream.airflow.tags import Tag, dag_tags
from upstream.settings import load_settings

SETTINGS = load_settings()


@task
def import_history(**context) -> dict:
    from upstream.airflow.tasks import history

    return history.import_history(context)


@dag(
    dag_id="upstream_history_import",
    schedule=None,
    start_date=datetime(2024, 5, 1, tzinfo=SETTINGS.timezone),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=dag_tags(Tag.INGEST, Tag.HISTORY),
    params={
        "from": Param("2015-01-01", type="string", format="date",
                      description="First extract day to import (YYYY-MM-DD)."),
        "to": Param("2024-05-05", type="string", format="date",
                    description="Last extract day to import (YYYY-MM-DD), inclusive."),
        "agencies": Param("", type="string",
                          description="Comma-separated agency codes; empty: UPSTREAM_AGENCIES."),
        "workers": Param(None, type=["null", "integer"], minimum=1,
                         description="Agencies loaded at the same time; empty: "
                                     "UPSTREAM_IMPORT_WORKERS."),
    },
    default_args=default_args(retry_delay=timedelta(minutes=5)),
)
def upstream_history_import():
    import_history()


upstream_history_import()
