"""The retention DAG's task bodies (upstream_retention): five independent purges."""

from __future__ import annotations

from collections.abc import Mapping

from upstream.airflow.body import task_body


@task_body
def purge_contacts(context: Mapping) -> dict:
    from upstream import retention

    return retention.purge_contacts()


@task_body
def purge_quarantine(context: Mapping) -> dict:
    from upstream import retention

    return retention.purge_quarantine()


@task_body
def delete_extract_files(context: Mapping) -> dict:
    from upstream import retention

    return retention.delete_extract_files()


@task_body
def purge_task_logs(context: Mapping) -> dict:
    from upstream import retention

    return retention.purge_task_logs()


@task_body
def purge_data_docs(context: Mapping) -> dict:
    from upstream import retention

    return retention.purge_data_docs()
