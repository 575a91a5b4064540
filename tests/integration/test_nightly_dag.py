"""The real nightly DAG (dag.test) against real PostgreSQL: several days, a rerun, corrections,
a refused file, and a manifest that never arrives."""

from __future__ import annotations

import csv
import json
import logging
import random
import re
import threading
from datetime import date, datetime, time, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import quote

import psycopg
import pytest

from upstream.airflow.run import load_dag, run_day, run_nightly_for
from upstream.dev import generate

pytestmark = pytest.mark.integration

DAYS = [date(2024, 6, 1) + timedelta(days=i) for i in range(5)]


def _dump(url: str) -> dict[str, list]:
    """Every warehouse table's content, run bookkeeping timestamps aside."""
    queries = {
        "call": "SELECT agency_code, incident_id, file_id, record_version, clearance_status,"
                " consent_status, victim_key, address_key FROM core.call ORDER BY 1, 2",
        "call_version": "SELECT agency_code, incident_id, file_id, record_version"
                        " FROM core.call_version ORDER BY 1, 2, 3",
        "contact": "SELECT agency_code, incident_id, record_version, file_id, given_name, phone"
                   " FROM contact.victim_contact ORDER BY 1, 2",
        "files": "SELECT file_id, agency_code, extract_date, sha256, status, rows_in_file,"
                 " rows_loaded, rows_quarantined, rows_stale FROM ops.extract_file ORDER BY 1",
        "quarantine": "SELECT file_id, row_number, rule FROM ops.quarantine_row ORDER BY 1, 2, 3",
    }
    with psycopg.connect(url) as conn:
        return {k: conn.execute(q).fetchall() for k, q in queries.items()}


def _expected_current(landing, agency="WPS"):
    """What core.call must say, computed from the files alone (contract semantics)."""
    best: dict[str, tuple] = {}
    for path in sorted((landing / agency).glob("*.csv")):
        day = path.name.split("_")[-1][:-4]
        with path.open(newline="", encoding="utf-8-sig") as fh:
            for row in csv.DictReader(fh):
                key = row["incident_id"]
                version = int(row["record_version"])
                if key not in best or version > best[key][0]:
                    best[key] = (version, day, row["clearance_status"], row["consent_status"])
    return best


@pytest.fixture
def nightly(upstream_env, airflow_db):
    return load_dag()


def test_five_nights_rerun_and_corrections(upstream_env, nightly, warehouse_url):
    generated = generate.generate(upstream_env.landing.dir, DAYS[0], DAYS[-1], ["WPS"], seed=11)
    # An explicit correction on the last day: the first day's first non-charge case is charged.
    first = next(csv.DictReader((upstream_env.landing.dir / "WPS" / generated[0].csv_path.name)
                                .open(encoding="utf-8")))
    correction_day = DAYS[-1] + timedelta(days=1)
    corrected = dict(first, record_version="9", clearance_status="cleared_by_charge",
                     charges_laid="2", consent_status="not_applicable")
    generate.write_extract(upstream_env.landing.dir, "WPS", correction_day, [corrected])

    for day in [*DAYS, correction_day]:
        assert run_nightly_for(day, nightly) == "success", day

    expected = _expected_current(upstream_env.landing.dir)
    with psycopg.connect(warehouse_url) as conn:
        actual = {r[0]: r[1:] for r in conn.execute(
            "SELECT incident_id, record_version, extract_date::text, clearance_status,"
            " consent_status FROM core.call")}
        contacts = {r[0] for r in conn.execute("SELECT incident_id FROM contact.victim_contact")}
    assert actual == expected
    assert actual[first["incident_id"]][0] == 9
    assert contacts == {k for k, v in expected.items() if v[3] == "given"}
    assert first["incident_id"] not in contacts

    before = _dump(warehouse_url)
    announced = _loaded_calls_events()
    assert announced >= len(DAYS) + 1  # every first load announced new calls
    assert run_nightly_for(DAYS[2], nightly) == "success"  # reprocess a day
    assert run_nightly_for(correction_day, nightly) == "success"
    assert _dump(warehouse_url) == before
    # a reprocess that changed nothing triggers nothing downstream (no routing, no outcomes)
    assert _loaded_calls_events() == announced


def _loaded_calls_events() -> int:
    """Asset events of upstream_loaded_calls in Airflow's metadata database."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import func, select

    with create_session() as session:
        return session.scalar(
            select(func.count()).select_from(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.name == "upstream_loaded_calls"))


def test_refused_file_fails_the_run_and_loads_nothing(upstream_env, nightly, warehouse_url):
    day = DAYS[0]
    generate.generate(upstream_env.landing.dir, day, day, ["WPS"], seed=3)
    csv_path = upstream_env.landing.dir / "WPS" / f"WPS_ipv_calls_{day}.csv"
    csv_path.write_bytes(csv_path.read_bytes()[:-40])  # truncated transfer
    result = run_day(day, nightly)
    assert result.state == "failed"
    # the CLI's line for the day: the recorded reason, never a value from the file
    assert result.line() == (f"{day} WPS: refused: sha256 of the data file does not match the "
                             "manifest (truncated or corrupted transfer)")
    dump = _dump(warehouse_url)
    assert dump["call"] == [] and dump["contact"] == []
    assert [f[4] for f in dump["files"]] == ["refused"]


class _Receiver(BaseHTTPRequestHandler):
    bodies: list = []

    def do_POST(self):  # noqa: N802
        self.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_past_day_without_manifest_fails_at_once_naming_the_folder_and_alerts(
        upstream_env, airflow_db, monkeypatch):
    """The day's deadline (03:00 the next morning + 6 h) passed long ago: no waiting at all,
    although the sensor would poke for hours (the defaults)."""
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    _Receiver.bodies = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("UPSTREAM_ALERT_WEBHOOK_URL", f"http://127.0.0.1:{server.server_port}/hook")
    try:
        result = run_day(DAYS[0], load_dag())
    finally:
        server.shutdown()
    assert result.state == "failed"
    folder = upstream_env.landing.dir / "WPS"
    assert result.line() == f"{DAYS[0]} WPS: no file: no manifest in {folder}"
    alerts = [b for b in _Receiver.bodies if b.get("step") == "wait_for_manifest"]
    assert alerts, _Receiver.bodies
    assert alerts[0]["agency"] == "WPS"
    assert alerts[0]["extract_date"] == DAYS[0].isoformat()
    assert "did not arrive by the deadline" in alerts[0]["reason"]
    assert str(folder) in alerts[0]["reason"]
    assert alerts[0]["dag_id"] == "upstream_nightly" and alerts[0]["run_id"]  # every alert


def _real_volume_day(landing, d: date, bad: int) -> None:
    """The program's daily volume: 8 calls, the first `bad` of them with an unknown call_source."""
    rng = random.Random(d.toordinal())
    rows = []
    for k in range(8):
        at = datetime.combine(d, time(6), generate.TZ) + timedelta(minutes=40 * k)
        incident = f"WPS-{d:%Y%m%d}-V{k:03d}"
        rows.append(generate.make_bad_row("bad_enum", rng, "WPS", incident, at) if k < bad
                    else generate.make_row(rng, "WPS", incident, at))
    generate.write_extract(landing, "WPS", d, rows)


def test_real_volume_day_logs_outcome_first_and_alerts_with_its_run(upstream_env, nightly,
                                                                     monkeypatch, caplog):
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    _Receiver.bodies = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("UPSTREAM_ALERT_WEBHOOK_URL", f"http://127.0.0.1:{server.server_port}/hook")
    day = DAYS[0]
    _real_volume_day(upstream_env.landing.dir, day, bad=1)
    try:
        assert run_nightly_for(day, nightly) == "success"  # one bad row of 8 is quarantined
    finally:
        server.shutdown()
    records = [(r.name, r.levelno, r.getMessage()) for r in caplog.records]
    messages = [m for _, _, m in records]

    # The load task's log: the first line of ours is the outcome; no library INFO noise.
    begin = next(i for i, m in enumerate(messages)
                 if "starting task_id=WPS.validate_and_load" in m)
    end = next(i for i, m in enumerate(messages) if "end task task_id=WPS.validate_and_load" in m)
    task_log = [r for r in records[begin:end] if not r[0].startswith("airflow")]
    assert task_log, messages[begin:end]
    assert task_log[0][0] == "upstream.airflow.tasks.nightly"
    assert re.fullmatch(r"WPS 2024-06-01: LOADED: 8 rows in file, 7 loaded, 1 quarantined, "
                        r"0 stale; Data Docs: file:///\S+\.html", task_log[0][2]), task_log[0]
    noise = [r for r in task_log if r[1] < logging.WARNING and not r[0].startswith("upstream")]
    assert noise == []
    assert not [m for _, _, m in task_log if "DeprecationWarning" in m]
    # Nowhere in the run a warning raised by our own code.
    assert not [m for n, _, m in records
                if n == "py.warnings" and re.search(r"/src/upstream/|/dags/", m)]

    [warning] = [b for b in _Receiver.bodies if b.get("severity") == "warning"]
    assert warning["dag_id"] == "upstream_nightly"
    assert warning["run_id"] and any(warning["run_id"] in m for m in messages)
    assert warning["run_url"].endswith(
        f"/dags/upstream_nightly/runs/{quote(warning['run_id'])}")
    assert (warning["agency"], warning["extract_date"], warning["step"]) == (
        "WPS", day.isoformat(), "validate_and_load")
    assert "12.5% of rows quarantined (1 of 8)" in warning["reason"]


def test_a_day_years_before_start_date_loads_through_dag_test_run_conf(upstream_env, nightly,
                                                                      warehouse_url):
    """Issue 14: an extract day from 2019 (the DAG's start_date used to be 2024-05-01, and
    Airflow then made a run without task instances that ended "success")."""
    old = date(2019, 3, 15)
    (generated,) = generate.generate(upstream_env.landing.dir, old, old, ["WPS"], seed=8)
    result = run_day(old, nightly)
    assert result.state == "success"
    assert result.line() == f"{old} WPS: loaded {generated.rows} rows, quarantined 0"
    files = _dump(warehouse_url)["files"]
    assert [(f[2], f[4], f[6]) for f in files] == [(old, "loaded", generated.rows)]


def test_one_load_per_agency_at_a_time(upstream_env, warehouse_url):
    """The lock that replaced max_active_runs=1: one agency's loads wait for each other,
    another agency's do not."""
    from upstream.warehouse.locks import AgencyBusy, agency_load_lock

    order: list[str] = []
    with agency_load_lock("WPS", warehouse_url):
        with pytest.raises(AgencyBusy, match="another load of this agency"):
            with agency_load_lock("WPS", warehouse_url, wait=False):
                pass
        with agency_load_lock("LPS", warehouse_url, wait=False):
            order.append("LPS while WPS is held")

        def second_wps_load():
            with agency_load_lock("WPS", warehouse_url):
                order.append("second WPS")

        waiter = threading.Thread(target=second_wps_load)
        waiter.start()
        waiter.join(timeout=1)
        assert waiter.is_alive()  # still waiting for the first WPS load
        order.append("first WPS done")
    waiter.join(timeout=10)
    assert order == ["LPS while WPS is held", "first WPS done", "second WPS"]
