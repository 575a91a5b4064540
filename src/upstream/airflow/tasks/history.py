"""The history import DAG's task body (upstream_history_import); the work is
`upstream.ingest.history.run_from_context` (params in, summary out)."""

from __future__ import annotations

from collections.abc import Mapping

from upstream.airflow.body import task_body


@task_body
def import_history(context: Mapping) -> dict:
    from upstream.ingest import history

    return history.run_from_context(context)
