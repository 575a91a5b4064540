"""`upstream run-day` / `run-range` as real subprocesses against the real metadata database:
run history only grows, one line per day, old days load, SIGTERM ends a waiting run `failed`."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from datetime import date, datetime
from pathlib import Path

import psycopg
import pytest

from upstream.dev import generate

pytestmark = pytest.mark.integration

UPSTREAM = str(Path(sys.executable).parent / "upstream")
OLD = date(2019, 3, 15)  # years before the nightly DAG's former start_date (2024-05-01)
DAY_LINE = re.compile(r"^\d{4}-\d{2}-\d{2} WPS: (loaded \d+ rows, quarantined \d+|already loaded: "
                      r"\d+ rows, quarantined \d+; nothing changed|no file: no manifest in \S+"
                      r"|refused: .+)$")


def _runs() -> dict[str, tuple]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        return {r.run_id: (str(r.state), r.start_date, r.end_date, r.note, dict(r.conf or {}))
                for r in session.query(DagRun).filter(DagRun.dag_id == "upstream_nightly")}


def _task_states(run_id: str) -> dict[str, str]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        return {t.task_id: str(t.state) for t in session.query(TaskInstance).filter(
            TaskInstance.dag_id == "upstream_nightly", TaskInstance.run_id == run_id)}


def _cli(args, env) -> subprocess.CompletedProcess:
    return subprocess.run([UPSTREAM, *args], env=env, capture_output=True, text=True, timeout=300)


def test_run_day_and_range_add_runs_and_load_days_years_before_start_date(
        upstream_env, airflow_db, warehouse_url):
    env = dict(os.environ)
    days = generate.generate(upstream_env.landing.dir, date(2019, 3, 14), OLD, ["WPS"], seed=4)
    rows = {d.extract_date: d.rows for d in days}
    before = _runs()

    first = _cli(["run-day", OLD.isoformat()], env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout.splitlines() == [
        f"{OLD} WPS: loaded {rows[OLD]} rows, quarantined 0", "1 day(s): 1 succeeded, 0 failed"]
    after_first = _runs()
    (first_id,) = set(after_first) - set(before)
    state, started, ended, note, conf = after_first[first_id]
    assert (state, note, conf) == ("success", f"extract {OLD}", {"extract_date": str(OLD)})
    assert started < ended  # true start and end, not a 2019 logical date

    again = _cli(["run-range", "2019-03-14", "2019-03-16"], env)
    assert again.returncode == 1, again.stdout + again.stderr
    lines = again.stdout.splitlines()
    assert lines == [
        f"2019-03-14 WPS: loaded {rows[date(2019, 3, 14)]} rows, quarantined 0",
        f"{OLD} WPS: already loaded: {rows[OLD]} rows, quarantined 0; nothing changed",
        f"2019-03-16 WPS: no file: no manifest in {upstream_env.landing.dir / 'WPS'}",
        "3 day(s): 2 succeeded, 1 failed (2019-03-16)"]
    assert all(DAY_LINE.match(line) for line in lines[:-1])  # no Airflow chatter between

    after = _runs()
    assert after[first_id] == after_first[first_id]  # the first run is untouched
    added = {k: v for k, v in after.items() if k not in after_first}
    assert sorted((v[3], v[0]) for v in added.values()) == [
        ("extract 2019-03-14", "success"), ("extract 2019-03-15", "success"),
        ("extract 2019-03-16", "failed")]
    assert sum(v[3] == f"extract {OLD}" for v in after.values() if v not in before.values()) == 2
    with psycopg.connect(warehouse_url) as conn:
        loaded = conn.execute("SELECT extract_date, status, rows_loaded FROM ops.extract_file"
                              " ORDER BY extract_date").fetchall()
    assert loaded == [(d, "loaded", rows[d]) for d in sorted(rows)]


def test_sigterm_stops_a_waiting_run_day_and_the_run_ends_failed(upstream_env, airflow_db,
                                                                   monkeypatch):
    # Today's extract: its deadline (03:00 tomorrow + 6 h) is ahead, so the run waits.
    today = datetime.now(upstream_env.timezone).date()
    monkeypatch.setenv("UPSTREAM_MANIFEST_POKE_SECONDS", "1")
    proc = subprocess.Popen([UPSTREAM, "run-day", today.isoformat()], env=dict(os.environ),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        waiting = None
        while waiting is None:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "run-day never started waiting"
            for run_id, (state, *_, note, _conf) in _runs().items():
                if note == f"extract {today}" and state == "running" and _task_states(run_id).get(
                        "WPS.wait_for_manifest") in ("up_for_reschedule", "running"):
                    waiting = run_id
            time.sleep(0.5)
        time.sleep(1)
        proc.send_signal(signal.SIGTERM)
        stopped_at = time.monotonic()
        out, err = proc.communicate(timeout=10)  # stops within 10 s
        assert time.monotonic() - stopped_at < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, out + err
    assert "stopped; the run in progress is marked failed" in out
    assert _runs()[waiting][0] == "failed"
    assert not {"running", "up_for_reschedule", "queued", "scheduled"} & set(
        _task_states(waiting).values()), _task_states(waiting)
