"""Retention with the clock moved forward: real loads, real routing against the reference
outreach service, real files on disk, and the retention DAG end to end."""

from __future__ import annotations

import os
import random
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest
from support.rows import CHARGED, load, route_strict, row

from upstream import ingest, retention, routing
from upstream.dev import generate

pytestmark = pytest.mark.integration

TZ = ZoneInfo("America/Toronto")
DAYS = [date(2024, 6, 1) + timedelta(days=i) for i in range(5)]
DAY = timedelta(days=1)


def _touch(path: Path, mtime: datetime, text: str = "log line\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, (mtime.timestamp(), mtime.timestamp()))
    return path


class Warehouse:
    """What the assertions read, with the retention log seen from a baseline on."""

    def __init__(self, url: str):
        self.url = url
        with psycopg.connect(url) as conn:
            self.log_baseline = conn.execute(
                "SELECT coalesce(max(purge_id), 0) FROM ops.retention_log").fetchone()[0]

    def q(self, query: str, *params):
        with psycopg.connect(self.url) as conn:
            return conn.execute(query, params).fetchall()

    def contacts(self) -> set[str]:
        return {r[0] for r in self.q("SELECT incident_id FROM contact.victim_contact")}

    def referral_ids(self) -> dict[str, str]:
        return dict(self.q("SELECT incident_id, referral_id FROM routing.referral"))

    def purge_audit(self) -> list[tuple]:
        return self.q("SELECT referral_id, outcome, recipient, legal_basis, fields_disclosed"
                      " FROM routing.disclosure_audit WHERE action = 'contact_purged'"
                      " ORDER BY audit_id")

    def audit_count(self) -> int:
        return self.q("SELECT count(*) FROM routing.disclosure_audit")[0][0]

    def new_log(self) -> list[tuple]:
        """(kind, items, retention_days, older_than, detail) logged since the last call."""
        rows = self.q("SELECT purge_id, kind, items, retention_days, older_than, detail"
                      " FROM ops.retention_log WHERE purge_id > %s ORDER BY purge_id",
                      self.log_baseline)
        if rows:
            self.log_baseline = rows[-1][0]
        return [r[1:] for r in rows]

    def quarantine_count(self) -> int:
        return self.q("SELECT count(*) FROM ops.quarantine_row")[0][0]

    def files(self) -> dict[str, tuple]:
        return {r[0].isoformat(): r[1:] for r in self.q(
            "SELECT extract_date, status, data_file_deleted_at IS NOT NULL, sha256"
            " FROM ops.extract_file ORDER BY file_id")}


def _kinds(log_rows: list[tuple]) -> dict[str, int]:
    return {kind: items for kind, items, *_ in log_rows}


def _bad_phone_row() -> dict:
    return generate.make_bad_row("bad_phone", random.Random(4), "WPS", "WPS-2024-000004",
                                 datetime(2024, 6, 1, 10, 0, tzinfo=TZ))


def _setup(monkeypatch, tmp_path: Path, warehouse_url: str):
    """(Airflow log folder, settings, Warehouse) for a run that quarantines one row in four."""
    from upstream.settings import load_settings

    # one quarantined row out of four must not refuse the file
    monkeypatch.setenv("UPSTREAM_QUARANTINE_MAX_SHARE", "0.5")
    logs = tmp_path / "airflow-logs"
    monkeypatch.setenv("AIRFLOW__LOGGING__BASE_LOG_FOLDER", str(logs))
    return logs, load_settings(), Warehouse(warehouse_url)


def test_retention_with_the_clock_moved_forward(upstream_env, outreach, warehouse_url,
                                                tmp_path, monkeypatch):
    logs, settings, wh = _setup(monkeypatch, tmp_path, warehouse_url)
    t0 = datetime.now(UTC)

    # --- the data: real extracts through the real loader and the real outreach service
    closed_a = row(1, DAYS[0])
    withdrawn_b = row(2, DAYS[0])
    charged = row(3, DAYS[0], **CHARGED)
    bad = _bad_phone_row()
    load(settings, DAYS[0], [closed_a, withdrawn_b, charged, bad])
    route_strict(settings)
    # B withdraws consent: the loader drops B's details at once, the outreach side is told
    load(settings, DAYS[1], [{**withdrawn_b, "consent_status": "withdrawn", "record_version": 2,
                               "consent_recorded_at": datetime(2024, 6, 2, 12, 0, tzinfo=TZ)}])
    route_strict(settings)
    ids = wh.referral_ids()
    rid_a, rid_b = ids["WPS-2024-000001"], ids["WPS-2024-000002"]
    assert wh.q("SELECT status FROM routing.referral WHERE referral_id = %s", rid_b) == [
        ("withdrawn",)]
    assert wh.contacts() == {"WPS-2024-000001"}
    # a later correction records consent again: details stored again, but the withdrawn
    # referral is final, so nothing can ever use them
    load(settings, DAYS[2], [{**withdrawn_b, "record_version": 3,
                               "consent_recorded_at": datetime(2024, 6, 3, 9, 0, tzinfo=TZ)}])
    route_strict(settings)
    assert wh.contacts() == {"WPS-2024-000001", "WPS-2024-000002"}
    assert wh.quarantine_count() == 1
    # outreach works on A for a day: contact attempts, nothing closed yet (closing comes a day
    # or more after the outcome)
    outreach.simulate(t0 + DAY)
    routing.sync_events(settings)
    assert not wh.q("SELECT 1 FROM routing.referral_event WHERE event_type = 'closed'")

    # fake Airflow task logs, one old, one fresh, and symlinks that lead out of the folder
    old_log = _touch(logs / "dag_id=upstream_nightly" / "run_id=scheduled__2024-05-01"
                     / "task_id=WPS.validate_and_load" / "attempt=1.log", t0 - 25 * DAY)
    fresh_log = _touch(logs / "dag_id=upstream_nightly" / "run_id=manual__today"
                       / "task_id=WPS.validate_and_load" / "attempt=1.log", t0)
    outside = tmp_path / "outside"
    outside_file = _touch(outside / "precious.log", t0 - 400 * DAY)
    (logs / "escape").symlink_to(outside, target_is_directory=True)
    (logs / "dag_id=upstream_nightly" / "link.log").symlink_to(outside_file)

    csvs = {d: ingest.delivery_paths(settings.landing.dir, "WPS", d) for d in DAYS}

    # --- clock + 10 days: the withdrawn referral's details go at once; nothing else yet
    now = t0 + 10 * DAY
    assert retention.purge_contacts(now)["withdrawn"] == 1
    assert retention.purge_quarantine(now) == {"purged": 0}
    assert retention.delete_extract_files(now)["deleted"] == 0
    assert retention.purge_task_logs(now)["files"] == 1
    assert wh.contacts() == {"WPS-2024-000001"}
    assert [(r[0], r[1]) for r in wh.purge_audit()] == [(rid_b, "withdrawn")]
    assert all(path.is_file() for d in DAYS[:3] for path in csvs[d])
    assert not old_log.exists() and not old_log.parent.exists()  # empty folders go too
    assert fresh_log.is_file()
    assert outside_file.is_file() and (logs / "escape").is_symlink()
    assert (logs / "dag_id=upstream_nightly" / "link.log").is_symlink()
    assert _kinds(wh.new_log()) == {"victim_contact": 1, "task_log": 1}

    # outreach closes A's case (all of a referral's life is over within about three weeks)
    outreach.simulate(t0 + 25 * DAY)
    routing.sync_events(settings)
    assert (rid_a, "closed") in wh.q("SELECT referral_id, event_type FROM routing.referral_event")
    # C: a consented, delivered, open referral; D: parked (the outreach side refused a
    # field); E: consented but not referred yet
    open_c = row(5, DAYS[3])
    parked_d = row(6, DAYS[3], victim_language="zz")
    load(settings, DAYS[3], [open_c, parked_d])
    route_strict(settings)
    load(settings, DAYS[4], [row(7, DAYS[4])])
    ids = wh.referral_ids()
    rid_c, rid_d = ids["WPS-2024-000005"], ids["WPS-2024-000006"]
    assert wh.q("SELECT incident_id, status FROM routing.referral WHERE incident_id IN"
                " ('WPS-2024-000005', 'WPS-2024-000006') ORDER BY 1") == [
        ("WPS-2024-000005", "delivered"), ("WPS-2024-000006", "parked")]
    # a corrected re-extract of the first day arrives (same file name, other bytes, not loaded)
    corrected = generate.write_extract(settings.landing.dir, "WPS", DAYS[0],
                                       [closed_a, charged],
                                       generated_at=datetime.now(TZ) - timedelta(minutes=1))
    corrected_sha = ingest.file_sha256(corrected.csv_path)

    # --- clock + 31 days: A (closed) goes; the extract files go, their manifests stay
    now = t0 + 31 * DAY
    assert retention.purge_contacts(now) == {"purged": 1, "withdrawn": 0, "closed": 1,
                                             "older": 0, "without_referral": 0, "audited": 1}
    assert wh.contacts() == {"WPS-2024-000005", "WPS-2024-000006", "WPS-2024-000007"}
    deleted = retention.delete_extract_files(now)
    assert deleted["deleted"] == 4 and deleted["other_bytes"] == 1
    for d in DAYS[1:]:
        assert not csvs[d][0].exists(), d
        assert csvs[d][1].is_file(), d  # the manifest stays
    assert csvs[DAYS[0]][0].is_file()  # the newer delivery is not ours to delete
    assert ingest.file_sha256(csvs[DAYS[0]][0]) == corrected_sha
    files = wh.files()
    assert {d: v[:2] for d, v in files.items()} == {
        DAYS[0].isoformat(): ("loaded", False),
        **{d.isoformat(): ("loaded", True) for d in DAYS[1:]}}
    assert retention.purge_quarantine(now) == {"purged": 0}
    assert retention.purge_task_logs(now)["files"] == 1  # the "fresh" one is 31 days old now
    assert not fresh_log.exists() and outside_file.is_file()
    assert _kinds(wh.new_log()) == {"victim_contact": 1, "extract_file": 4, "task_log": 1}
    assert [(r[0], r[1]) for r in wh.purge_audit()] == [(rid_b, "withdrawn"), (rid_a, "closed")]

    # --- clock + 91 days: every remaining contact is past 90 days, whatever its state
    now = t0 + 91 * DAY
    assert retention.purge_contacts(now) == {"purged": 3, "withdrawn": 0, "closed": 0,
                                             "older": 3, "without_referral": 1, "audited": 2}
    assert wh.contacts() == set()
    assert wh.quarantine_count() == 1
    assert retention.purge_quarantine(now) == {"purged": 0}
    audit = wh.purge_audit()
    assert sorted((r[0], r[1]) for r in audit[2:]) == sorted(
        [(rid_c, "older than 90 days"), (rid_d, "older than 90 days")])
    assert {(r[2], r[3], tuple(r[4])) for r in audit} == {
        (retention.PURGE_RECIPIENT, "retention policy", ())}
    log_rows = wh.new_log()
    assert _kinds(log_rows) == {"victim_contact": 3}
    assert log_rows[0][2] == 90 and log_rows[0][3] == now - 90 * DAY
    assert "1 without a referral" in log_rows[0][4]
    # a parked referral retried after the purge sends nothing: the details are gone
    assert routing.retry_parked([rid_d]) == 1
    assert routing.deliver_referrals(settings).skipped_no_contact == 1
    assert outreach.referral(rid_d) is None

    # --- clock + 400 days: the quarantine record goes
    now = t0 + 400 * DAY
    assert retention.purge_quarantine(now) == {"purged": 1}
    assert wh.quarantine_count() == 0
    assert _kinds(wh.new_log()) == {"quarantine_row": 1}
    # the load records stay, with their quarantine totals
    assert wh.q("SELECT sum(rows_quarantined) FROM ops.extract_file")[0][0] == 1

    # --- a second run at the same clock purges and logs nothing
    audit_rows = wh.audit_count()
    assert retention.purge_contacts(now)["purged"] == 0
    assert retention.purge_quarantine(now) == {"purged": 0}
    assert retention.delete_extract_files(now)["deleted"] == 0
    assert retention.purge_task_logs(now)["files"] == 0
    assert wh.new_log() == [] and wh.audit_count() == audit_rows
    assert outside_file.is_file() and logs.is_dir()

    # the retention log is append-only, like the disclosure audit
    with psycopg.connect(warehouse_url) as conn:
        for statement in ("UPDATE ops.retention_log SET items = 0",
                          "DELETE FROM ops.retention_log",
                          "TRUNCATE ops.retention_log"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(statement)
            conn.rollback()


def test_retention_settings_and_guards(upstream_env, monkeypatch, tmp_path):
    monkeypatch.setenv("UPSTREAM_CONTACT_RETENTION_DAYS", "0")
    with pytest.raises(ValueError, match="at least 1 day"):
        retention.purge_contacts()
    monkeypatch.setenv("UPSTREAM_QUARANTINE_RETENTION_DAYS", "a year")
    with pytest.raises(ValueError, match="whole number"):
        retention.purge_quarantine()
    monkeypatch.delenv("UPSTREAM_CONTACT_RETENTION_DAYS")
    monkeypatch.delenv("UPSTREAM_QUARANTINE_RETENTION_DAYS")
    assert (retention.contact_retention_days(), retention.quarantine_retention_days(),
            retention.task_log_retention_days()) == (90, 365, 30)
    with pytest.raises(ValueError, match="timezone-aware"):
        retention.purge_contacts(datetime(2030, 1, 1))
    with pytest.raises(ValueError, match="filesystem root"):
        retention.purge_task_logs(folder=Path("/"))
    # the configured folder may itself be a symlink (e.g. to a log volume)
    real = tmp_path / "volume" / "logs"
    _touch(real / "dag_id=x" / "attempt=1.log", datetime.now(UTC) - 40 * DAY)
    (tmp_path / "logs").symlink_to(real, target_is_directory=True)
    monkeypatch.setenv("AIRFLOW__LOGGING__BASE_LOG_FOLDER", str(tmp_path / "logs"))
    assert retention.task_log_folder() == tmp_path / "logs"
    assert retention.purge_task_logs() == {"files": 1, "dirs": 1, "symlinks_skipped": 0}
    assert real.is_dir() and list(real.iterdir()) == []


def test_retention_dag_runs_end_to_end(upstream_env, airflow_db, warehouse_url, tmp_path,
                                       monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    from upstream.settings import REPO_ROOT

    logs, settings, wh = _setup(monkeypatch, tmp_path, warehouse_url)
    now = datetime.now(UTC)
    bad = _bad_phone_row()
    charged = row(2, DAYS[0], **CHARGED)
    load(settings, DAYS[0], [row(1, DAYS[0]), charged, bad])
    load(settings, DAYS[1], [row(3, DAYS[1])])
    assert wh.contacts() == {"WPS-2024-000001", "WPS-2024-000003"}
    # the first day's data was stored long ago (the clock cannot be moved inside a DAG run)
    with psycopg.connect(warehouse_url) as conn:
        conn.execute("UPDATE contact.victim_contact SET stored_at = %s"
                     " WHERE incident_id = 'WPS-2024-000001'", (now - 100 * DAY,))
        conn.execute("UPDATE ops.quarantine_row SET recorded_at = %s", (now - 400 * DAY,))
        conn.execute("UPDATE ops.extract_file SET finished_at = %s WHERE extract_date = %s",
                     (now - 40 * DAY, DAYS[0]))
    old_log = _touch(logs / "dag_id=upstream_nightly" / "run_id=old" / "attempt=1.log",
                     now - 45 * DAY)
    fresh_log = _touch(logs / "dag_id=upstream_nightly" / "run_id=new" / "attempt=1.log", now)
    old_page = _touch(settings.validate.gx_dir / "WPS" / "docs" / "WPS_old_run.html", now - 100 * DAY)
    csv1, manifest1 = ingest.delivery_paths(settings.landing.dir, "WPS", DAYS[0])
    csv2, _ = ingest.delivery_paths(settings.landing.dir, "WPS", DAYS[1])

    bag = DagBag(dag_folder=str(REPO_ROOT / "dags"))
    assert bag.import_errors == {}
    dag = bag.get_dag("upstream_retention")
    assert {t.task_id for t in dag.tasks} == {
        "purge_contacts", "purge_quarantine", "delete_extract_files", "purge_task_logs",
        "purge_data_docs"}
    dag_run = dag.test()
    assert str(getattr(dag_run.state, "value", dag_run.state)) == "success"

    assert wh.contacts() == {"WPS-2024-000003"}
    assert wh.quarantine_count() == 0
    assert not csv1.exists() and manifest1.is_file() and csv2.is_file()
    assert {d: v[1] for d, v in wh.files().items()} == {
        DAYS[0].isoformat(): True, DAYS[1].isoformat(): False}
    assert not old_log.exists() and fresh_log.is_file() and not old_page.exists()
    assert _kinds(wh.new_log()) == {"victim_contact": 1, "quarantine_row": 1,
                                    "extract_file": 1, "task_log": 1, "data_docs": 1}

    # run it again: nothing left to purge, nothing logged
    dag_run = bag.get_dag("upstream_retention").test()
    assert str(getattr(dag_run.state, "value", dag_run.state)) == "success"
    assert wh.new_log() == []
