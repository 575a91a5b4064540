"""Bulk history import (upstream.ingest.history) against real PostgreSQL and real GX.

* the warehouse it leaves equals loading the same files night by night, as the nightly DAG's
  tasks do (verify, then validate and load), with generated data: corrections across days,
  quarantined rows, refused files, a same-day re-extract and an older one;
* SIGKILLed mid-import (a real `upstream import-history` subprocess), a rerun ends equal to an
  uninterrupted import;
* it cannot run while a nightly load of the agency holds its lock, and the reverse;
* the summary names what was loaded, refused (with reasons) and quarantined (by rule).
"""

from __future__ import annotations

import csv
import logging
import os
import re
import signal
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg.rows import dict_row
from support.history import dump, nightly, truncate

from upstream import ingest
from upstream.dev import generate
from upstream.ingest import history
from upstream.settings import Settings

pytestmark = pytest.mark.integration

TZ = ZoneInfo("America/Toronto")
AGENCIES = ("WPS", "LPS")
D0 = date(2019, 3, 1)
PHASE1 = [D0 + timedelta(days=i) for i in range(4)]
PHASE2_NEW = [D0 + timedelta(days=i) for i in range(4, 6)]


@pytest.fixture
def env(upstream_env: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    # generated days have ~8 rows: one bad row must not refuse the whole file
    monkeypatch.setenv("UPSTREAM_QUARANTINE_MAX_SHARE", "0.3")
    monkeypatch.setenv("UPSTREAM_AGENCIES", ",".join(AGENCIES))
    from upstream.settings import load_settings

    return load_settings()


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def _re_extract(settings: Settings, agency: str, d: date, *, hours: int) -> None:
    """Rewrite day d's file as a re-extract generated `hours` after the original: one call
    dropped, one corrected to a later record_version with consent given."""
    csv_path, _ = ingest.delivery_paths(settings.landing.dir, agency, d)
    rows = [r for r in _read(csv_path) if r["incident_id"]]
    rows = rows[1:]
    fix = next(r for r in rows if r["clearance_status"] != "cleared_by_charge")
    fix.update(record_version=str(int(fix["record_version"]) + 1), consent_status="given",
               consent_recorded_at=fix["call_received_at"], consent_officer_id="W2044",
               victim_given_name="Ana", victim_family_name="Re", victim_phone="+15195550111",
               victim_preferred_contact="phone")
    gen = datetime.combine(d + timedelta(days=1), dtime(1, 0), TZ) + timedelta(hours=hours)
    generate.write_extract(settings.landing.dir, agency, d, rows, generated_at=gen)


def _phase1(settings: Settings) -> None:
    generate.generate(settings.landing.dir, PHASE1[0], PHASE1[-1], list(AGENCIES), seed=5,
                      bad_rows_share=0.08)
    # a broken delivery: the manifest's checksum no longer matches
    path, _ = ingest.delivery_paths(settings.landing.dir, "LPS", PHASE1[1])
    path.write_bytes(path.read_bytes()[:-40])


def _phase2(settings: Settings) -> None:
    generate.generate(settings.landing.dir, PHASE2_NEW[0], PHASE2_NEW[-1], list(AGENCIES),
                      seed=5, bad_rows_share=0.08)
    # a late file repeating day 1's version of a call: an equal version is stale, not current
    late, _ = ingest.delivery_paths(settings.landing.dir, "WPS", PHASE2_NEW[0])
    first, _ = ingest.delivery_paths(settings.landing.dir, "WPS", PHASE1[0])
    generate.write_extract(settings.landing.dir, "WPS", PHASE2_NEW[0],
                           _read(late) + _read(first)[:1],
                           generated_at=generate._default_generated_at(PHASE2_NEW[0]))
    _re_extract(settings, "WPS", PHASE1[1], hours=30)   # newer: replaces the day
    _re_extract(settings, "LPS", PHASE1[2], hours=-2)   # older than the loaded one: ignored


def test_bulk_import_equals_night_by_night(env: Settings, warehouse_url: str) -> None:
    _phase1(env)
    for d in PHASE1:
        for agency in AGENCIES:
            nightly(env, agency, d)
    _phase2(env)
    for d in [PHASE1[1], PHASE1[2], *PHASE2_NEW]:  # the nightly reprocess, then new nights
        for agency in AGENCIES:
            nightly(env, agency, d)
    by_night = dump(warehouse_url)

    truncate(warehouse_url)
    for p in env.landing.dir.rglob("*"):
        if p.is_file():
            p.unlink()
    _phase1(env)
    # two agencies at once (UPSTREAM_IMPORT_WORKERS), then one at a time: both equal nightly
    first = history.import_history(PHASE1[0], PHASE1[-1], AGENCIES, batch_files=3, workers=2)
    assert first.files_loaded == 7 and len(first.refused) == 1, first.render()
    _phase2(env)
    second = history.import_history(PHASE1[0], PHASE2_NEW[-1], AGENCIES, workers=1)
    assert (second.files_loaded, second.files_ignored_older) == (5, 1), second.render()
    assert second.files_already_loaded == 5  # the first import's files are recognised
    bulk = dump(warehouse_url)

    assert bulk.keys() == by_night.keys()
    for table in bulk:
        assert bulk[table] == by_night[table], table
    # the data exercised what it should: corrections, quarantine, supersession, contacts
    with psycopg.connect(warehouse_url) as conn:
        (corrected,), = conn.execute("SELECT count(*) FROM core.call WHERE record_version > 1")
        statuses = dict(conn.execute("SELECT status, count(*) FROM ops.extract_file GROUP BY 1"))
        (quarantined,), = conn.execute("SELECT count(*) FROM ops.quarantine_row")
        (contacts,), = conn.execute("SELECT count(*) FROM contact.victim_contact")
        (stale,), = conn.execute("SELECT sum(rows_stale) FROM ops.extract_file")
        (staging,), = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'staging'")
    assert corrected > 0 and quarantined > 0 and contacts > 0 and stale > 0
    assert statuses == {"loaded": 11, "superseded": 1, "ignored_older": 1, "refused": 1}
    assert staging == 0


def test_summary_names_loaded_refused_and_quarantined(env: Settings, warehouse_url: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    days = [date(2018, 5, 1), date(2018, 5, 2), date(2018, 5, 3)]
    generate.generate(env.landing.dir, days[0], days[-1], ["WPS"], seed=9, bad_rows_share=0.1)
    path, _ = ingest.delivery_paths(env.landing.dir, "WPS", days[2])
    path.write_bytes(path.read_bytes()[:-10])
    summary = history.import_history(days[0], days[-1] + timedelta(days=1), ["WPS"])
    text = summary.render()
    with psycopg.connect(warehouse_url) as conn:
        by_rule = dict(conn.execute("SELECT rule, count(*) FROM ops.quarantine_row GROUP BY 1"))
    assert summary.files_loaded == 2 and summary.days_without_file == 1
    assert "files loaded: 2" in text
    assert "files refused: 1" in text
    assert f"WPS {days[2].isoformat()}: sha256 of the data file does not match" in text
    assert by_rule and summary.quarantined_by_rule == by_rule
    for rule, n in by_rule.items():
        assert f"    {rule}: {n}" in text
    assert "days without a file: 1" in text
    # nothing in range: said so, not a silent success
    empty = history.import_history(date(2010, 1, 1), date(2010, 1, 3), ["WPS"])
    assert empty.nothing_found and "nothing imported" in empty.render()


def test_lock_excludes_nightly_load_and_import(env: Settings, warehouse_url: str) -> None:
    d = date(2018, 7, 1)
    generate.generate(env.landing.dir, d, d, ["WPS"], seed=2)
    with psycopg.connect(warehouse_url, row_factory=dict_row) as other:
        ingest.lock_agency(other, "WPS", shared=True)  # a nightly load of WPS is running
        with pytest.raises(ingest.AgencyBusy, match="^WPS: a nightly load of this agency is running"):
            history.import_history(d, d, ["WPS"])
        ingest.unlock_agency(other, "WPS", shared=True)
        ingest.lock_agency(other, "WPS", shared=False)  # a history import of WPS is running
        with pytest.raises(ingest.AgencyBusy, match="^WPS: a history import of this agency"):
            ingest.load_extract("WPS", d, env)
        # another agency is not held up
        ingest.lock_agency(other, "LPS", shared=True)
    assert history.import_history(d, d, ["WPS"]).files_loaded == 1


def _cli(env: Settings, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "upstream.dev.cli", "import-history", *args],
                            env=os.environ.copy(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _loaded(url: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM ops.extract_file WHERE status = 'loaded'"
                            ).fetchone()[0]


def test_sigkill_mid_import_then_rerun_equals_uninterrupted(env: Settings, warehouse_url: str) -> None:
    start, end = date(2017, 2, 1), date(2017, 2, 9)
    landing = env.home / "history"
    generate.generate(landing, start, end, ["WPS"], seed=4, bad_rows_share=0.05)
    args = ("--from", start.isoformat(), "--to", end.isoformat(), "--agencies", "WPS",
            "--landing", str(landing))
    # README: `.venv/bin/upstream import-history --from ... --to ... --agencies ... --landing ...`
    done = subprocess.Popen([str(Path(sys.executable).parent / "upstream"), "import-history", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = done.communicate(timeout=300)
    assert done.returncode == 0, err
    assert "files loaded: 9" in out
    assert "files/s" not in out and "files" in err  # the progress bar goes to stderr
    uninterrupted = dump(warehouse_url)

    truncate(warehouse_url)
    proc = _cli(env, *args, "--batch-files", "2")
    deadline = time.monotonic() + 120
    while _loaded(warehouse_url) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the import ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 3 <= _loaded(warehouse_url) < 9
    rerun = _cli(env, *args, "--batch-files", "2")
    out, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    assert "files already loaded (skipped): " in out and "files already loaded (skipped): 0" not in out
    assert dump(warehouse_url) == uninterrupted
    with psycopg.connect(warehouse_url) as conn:
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'staging'"
                            ).fetchone()[0] == 0


def test_cli_refuses_bad_arguments_clearly(env: Settings) -> None:
    proc = _cli(env, "--from", "2020-01-05", "--to", "2020-01-01")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "error: --to 2020-01-01 is before --from 2020-01-05" in err



def test_dag_imports_and_logs_progress_and_summary(env: Settings, airflow_db, warehouse_url: str,
                                                    capfd: pytest.CaptureFixture,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    from upstream.airflow.run import load_dag

    days = [date(2016, 9, 1), date(2016, 9, 2)]
    generate.generate(env.landing.dir, days[0], days[-1], ["WPS"], seed=8)
    dag = load_dag("upstream_history_import")
    with caplog.at_level(logging.INFO):
        run = dag.test(run_conf={"from": days[0].isoformat(), "to": days[-1].isoformat(),
                                 "agencies": "WPS"})
    assert str(getattr(run.state, "value", run.state)) == "success"
    assert _loaded(warehouse_url) == 2
    # The task log: dag.test prints it, or (after another dag.test in this process has set up
    # Airflow's logging) it reaches the log records only.
    logged = caplog.text + "".join(capfd.readouterr())
    assert "history import: 2/2 files" in logged and "ETA" in logged
    assert "files loaded: 2" in logged and "files refused: 0" in logged
    # a range with no file fails loudly instead of succeeding
    run = dag.test(run_conf={"from": "2001-01-01", "to": "2001-01-02", "agencies": "WPS"})
    assert str(getattr(run.state, "value", run.state)) == "failed"


def test_data_docs_offline_bounded_and_purged_by_retention(env: Settings, warehouse_url: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from upstream import retention
    from upstream.validate import datadocs

    monkeypatch.setattr(datadocs, "INDEX_LIMIT", 2)
    days = [date(2015, 4, 1) + timedelta(days=i) for i in range(3)]
    generate.generate(env.landing.dir, days[0], days[-1], ["WPS"], seed=6, bad_rows_share=0.1)
    history.import_history(days[0], days[-1], ["WPS"], batch_files=1)  # three checkpoints
    folder = datadocs.docs_dir(env.validate.gx_dir, "WPS")
    pages = sorted(p for p in folder.glob("*.html") if p.name != "index.html")
    assert len(pages) == 3
    index = datadocs.index_path(env.validate.gx_dir, "WPS").read_text()
    assert index.count("<tr><td><a href=") == 2  # bounded: the last two only
    assert pages[-1].name in index and pages[0].name not in index
    for page in [*pages, folder / "index.html"]:
        text = page.read_text()
        assert not re.search(r"<script|<link|https?://|//cdn", text), page.name
    assert "incident_id.unique_in_file" in pages[0].read_text()
    results = env.validate.gx_dir / "WPS" / "gx" / "uncommitted" / "validations"
    assert any(p.is_file() for p in results.rglob("*"))
    with psycopg.connect(warehouse_url) as conn:
        docs = {r[0] for r in conn.execute("SELECT data_docs_path FROM ops.extract_file")}
    assert {Path(p).name for p in docs} <= {p.name for p in pages}

    # retention: nothing is old yet; then everything but the newest page is
    now = datetime.now(TZ)
    assert retention.purge_data_docs(now) == {"pages": 0, "results": 0}
    old = (now - timedelta(days=200)).timestamp()
    for p in [*pages[:-1], *(p for p in results.rglob("*") if p.is_file())]:
        os.utime(p, (old, old))
    purged = retention.purge_data_docs(now)
    assert purged["pages"] == 2 and purged["results"] >= 3
    assert sorted(p.name for p in folder.glob("*.html")) == sorted(["index.html", pages[-1].name])
    index = datadocs.index_path(env.validate.gx_dir, "WPS").read_text()
    assert index.count("<tr><td><a href=") == 1 and pages[1].name not in index
    assert not any(p.is_file() for p in results.rglob("*"))
    with psycopg.connect(warehouse_url) as conn:
        logged = conn.execute("SELECT kind, items FROM ops.retention_log").fetchall()
    assert logged == [("data_docs", purged["pages"] + purged["results"])]


def test_make_run_imports_a_pre_launch_year_through_the_bulk_path(env: Settings,
                                                                  warehouse_url: str) -> None:
    from upstream.dev import server as devserver
    from upstream.dev.cli import DEMO_START

    first = devserver.import_demo_history(env, days=3)  # make run: DEMO_HISTORY_DAYS (365)
    assert first.files_loaded == 3 * len(AGENCIES) and not first.refused
    again = devserver.import_demo_history(env, days=3)  # the next start skips them
    assert again.files_loaded == 0 and again.files_already_loaded == 3 * len(AGENCIES)
    with psycopg.connect(warehouse_url) as conn:
        first_day, last_day, calls = conn.execute(
            "SELECT min(extract_date), max(extract_date), count(*) FROM core.call").fetchone()
    assert (first_day, last_day) == (DEMO_START - timedelta(days=3), DEMO_START - timedelta(days=1))
    assert calls > 0
