"""A province of agencies: 50 task groups that cannot hold each other up, and every agency's
latest night at a glance on the monitoring page (published.agency_quality_latest).
The wall time for 1, 10 and 50 agencies is measured in benchmarks/bench_scale.py."""

from __future__ import annotations

import re
import string
from datetime import date

import psycopg
import pytest

pytestmark = pytest.mark.integration

PROVINCE = [f"P{string.ascii_uppercase[i // 26]}{string.ascii_uppercase[i % 26]}"
            for i in range(50)]


def test_fifty_agencies_are_fifty_independent_task_groups(upstream_env, airflow_db, monkeypatch):
    monkeypatch.setenv("UPSTREAM_AGENCIES", ",".join(PROVINCE))
    from upstream.airflow.run import load_dag

    dag = load_dag()
    groups = {t.task_id.split(".")[0] for t in dag.tasks}
    assert groups == set(PROVINCE) and len(dag.tasks) == 4 * len(PROVINCE)  # incl. publish
    for task in dag.tasks:
        group = task.task_id.split(".")[0]
        # nothing outside its own agency comes before it: a refused or missing file fails or
        # waits in its own group only, and the sensor reschedules (it holds no worker slot)
        assert {u.split(".")[0] for u in task.upstream_task_ids} <= {group}, task.task_id
    sensors = [t for t in dag.tasks if t.task_id.endswith("wait_for_manifest")]
    assert {t.mode for t in sensors} == {"reschedule"}


def _file(conn, agency: str, day: date, status: str, rows: int, quarantined: int = 0) -> None:
    conn.execute(
        "INSERT INTO ops.extract_file (agency_code, extract_date, file_name, sha256, status,"
        " rows_in_file, rows_loaded, rows_quarantined, finished_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now())",
        (agency, day, f"{agency}_ipv_calls_{day}.csv", f"{agency}{day}{status}", status, rows,
         rows - quarantined if status == "loaded" else 0,
         quarantined if status == "loaded" else 0))


def test_every_agency_at_a_glance(upstream_env, warehouse_url):
    from upstream import outcomes
    from upstream.monitoring import data
    from upstream.monitoring.render import render_page
    from upstream.monitoring.views import Filters

    d1, d2 = date(2024, 6, 1), date(2024, 6, 2)
    with psycopg.connect(warehouse_url) as conn:
        _file(conn, "PAA", d1, "loaded", 10)
        _file(conn, "PAA", d2, "loaded", 12, quarantined=2)
        _file(conn, "PAB", d1, "loaded", 9)
        _file(conn, "PAB", d2, "refused", 11)     # refused last night
        _file(conn, "PAC", d1, "loaded", 8)       # nothing last night: one day behind
        conn.commit()
    outcomes.rebuild_outcomes(warehouse_url)

    with psycopg.connect(warehouse_url) as conn:
        rows = conn.execute(
            "SELECT agency_code, last_extract_date, last_outcome, days_behind, days_received,"
            " files_refused, rows_loaded, rows_quarantined"
            " FROM published.agency_quality_latest ORDER BY 1").fetchall()
    assert rows == [("PAA", d2, "loaded", 0, 2, 0, 20, 2),
                    ("PAB", d2, "refused", 0, 2, 1, 9, 0),
                    ("PAC", d1, "loaded", 1, 1, 0, 8, 0)]

    # the page shows one agency's figures, and every agency in this table
    snapshot = data.load(Filters(agency="PAA"), url=warehouse_url)
    assert snapshot.filters.agency == "PAA"
    assert {r["agency_code"] for r in snapshot.tables["data_quality_daily"]} == {"PAA"}
    assert [r["agency_code"] for r in snapshot.tables["agency_quality_latest"]] == [
        "PAA", "PAB", "PAC"]
    html = render_page(snapshot, generated_at="now")
    outcome_cells = re.findall(
        r'data-table="agency_quality_latest"[^>]*data-agency="(\w+)"[^>]*'
        r'data-col="last_outcome"[^>]*>([^<]*)<', html)
    assert outcome_cells == [("PAA", "loaded"), ("PAB", "refused"), ("PAC", "loaded")]
    assert "Every agency at a glance" in html
