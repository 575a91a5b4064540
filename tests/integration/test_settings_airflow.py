"""Inside an Airflow task the warehouse resolves through the Airflow connection
`upstream_warehouse` first (any secrets backend; here AIRFLOW_CONN_*), before
UPSTREAM_DATABASE_URL; outside tasks the same environment gives UPSTREAM_DATABASE_URL."""

from __future__ import annotations

import json

import pytest
from psycopg.conninfo import conninfo_to_dict

pytestmark = pytest.mark.integration


def test_inside_a_task_the_warehouse_comes_from_the_airflow_connection(
        upstream_env, airflow_db, warehouse_url, monkeypatch):
    import psycopg

    from upstream.airflow.run import load_dag
    from upstream.settings import load_settings

    info = conninfo_to_dict(warehouse_url)
    monkeypatch.setenv("AIRFLOW_CONN_UPSTREAM_WAREHOUSE", json.dumps({
        "conn_type": "postgres", "host": info.get("host"), "login": info.get("user"),
        "password": info.get("password"), "schema": info.get("dbname"),
        "port": int(info["port"]) if info.get("port") else None}))
    # the environment points nowhere: only the Airflow connection can make the tasks work
    monkeypatch.setenv("UPSTREAM_DATABASE_URL", "postgresql://nobody@127.0.0.1:9/nowhere")
    run = load_dag("upstream_retention").test()
    states = {ti.task_id: str(getattr(ti.state, "value", ti.state))
              for ti in run.get_task_instances()}
    assert str(getattr(run.state, "value", run.state)) == "success", states
    assert states["purge_contacts"] == "success"
    # the control: outside a task the same purge uses UPSTREAM_DATABASE_URL, which fails
    from upstream import retention

    with pytest.raises(psycopg.OperationalError):
        retention.purge_contacts()
    outside = load_settings().warehouse
    assert (outside.source, outside.url) == ("UPSTREAM_DATABASE_URL",
                                             "postgresql://nobody@127.0.0.1:9/nowhere")
