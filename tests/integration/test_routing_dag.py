"""The routing DAG (dag.test) resolves the outreach service through the Airflow connection
`upstream_outreach` first, and a 401 stops the task at once and alerts the data team."""

from __future__ import annotations

import json
from datetime import date

import pytest
from support.receivers import webhook_receiver
from support.rows import load, row

from upstream.airflow.run import load_dag

pytestmark = pytest.mark.integration

DAY = date(2024, 6, 3)


def _connection(outreach, token: str) -> str:
    return json.dumps({"conn_type": "http", "host": "127.0.0.1", "port": outreach.port,
                       "schema": "http", "password": token})


def _task_states(dag_run) -> dict[str, str]:
    return {ti.task_id: str(getattr(ti.state, "value", ti.state))
            for ti in dag_run.get_task_instances()}


def test_connection_first_then_401_stops_and_alerts(upstream_env, airflow_db, outreach,
                                                    monkeypatch):
    from upstream.settings import load_settings

    load(load_settings(), DAY, [row(1, DAY)])
    # the environment points nowhere: only the Airflow connection can make this work
    monkeypatch.setenv("UPSTREAM_OUTREACH_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("UPSTREAM_OUTREACH_TOKEN", "not-the-token")
    monkeypatch.setenv("AIRFLOW_CONN_UPSTREAM_OUTREACH", _connection(outreach, outreach.token))
    dag = load_dag("upstream_routing")
    run = dag.test()
    assert str(getattr(run.state, "value", run.state)) == "success", _task_states(run)
    assert len(outreach.referrals()) == 1

    load(load_settings(), date(2024, 6, 4), [row(2, date(2024, 6, 4))])
    monkeypatch.setenv("AIRFLOW_CONN_UPSTREAM_OUTREACH", _connection(outreach, "a-wrong-token"))
    with webhook_receiver() as hook:
        monkeypatch.setenv("UPSTREAM_ALERT_WEBHOOK_URL", hook.url)
        run = dag.test()
    states = _task_states(run)
    assert states["deliver_referrals"] == "failed", states  # failed, not up_for_retry
    assert len(outreach.referrals()) == 1 and outreach.requests_log()[-1]["route"] == "create"
    alerts = [r["body"] for r in hook.requests if r["body"].get("step") == "deliver_referrals"]
    assert alerts, hook.requests
    assert "401" in alerts[0]["reason"] and "upstream_outreach" in alerts[0]["reason"]
    assert alerts[0]["dag_id"] == "upstream_routing" and alerts[0]["run_id"]
    assert "a-wrong-token" not in json.dumps(hook.requests)
