"""Airflow connections resolved inside a running task (the task SDK), never at import: the
warehouse's `upstream_warehouse` as libpq conninfo. Outside a task nothing here imports
Airflow, so `upstream` CLI commands stay free of it."""

from __future__ import annotations

import sys

_LIBPQ_EXTRAS = ("sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout",
                 "application_name", "options", "target_session_attrs")


def current_task() -> tuple | None:
    """The task instance running in this process (its key), or None. airflow.sdk not imported
    yet means no task (and keeps `upstream` CLI commands from importing Airflow)."""
    if "airflow.sdk" not in sys.modules:
        return None
    from airflow.sdk import get_current_context

    try:
        ti = get_current_context()["ti"]
    except (RuntimeError, KeyError):
        return None
    return (ti.dag_id, ti.run_id, ti.task_id, ti.map_index, ti.try_number)


def connection_conninfo(conn_id: str) -> str | None:
    """A Postgres-type Airflow connection as libpq conninfo, or None when Airflow has none."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException
    from psycopg.conninfo import make_conninfo

    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None
    extra = conn.extra_dejson or {}
    params = {"host": conn.host, "port": conn.port, "user": conn.login,
              "password": conn.password, "dbname": conn.schema,
              **{k: str(extra[k]) for k in _LIBPQ_EXTRAS if k in extra}}
    return make_conninfo(**{k: v for k, v in params.items() if v not in (None, "")})
