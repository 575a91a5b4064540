"""The nightly DAG under the REAL scheduler: api-server, scheduler and dag-processor as
subprocesses (LocalExecutor) with a metadata database, warehouse and landing area of their own.

A reprocess starts at once: while the night's scheduled run waits for its manifest (its
deadline is ahead), the README's REST request and backfill command (run verbatim, parsed out of
README.md), a trigger for a day years before the DAG's former start date and a backfill of a
2019 night all complete.

The stack is module-scoped (about 20 s to start); every process is stopped at the end, also
on failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg import sql
from support.processes import free_port, stop

from upstream.dev import generate
from upstream.settings import REPO_ROOT
from upstream.warehouse import db

pytestmark = pytest.mark.integration

AIRFLOW = str(Path(sys.executable).parent / "airflow")
README = REPO_ROOT / "README.md"
OLD_DAY = date(2019, 3, 15)  # years before the DAG's former start_date (2024-05-01)
OLD_BACKFILL_DAY = date(2019, 3, 14)
README_DAY = date(2024, 5, 10)
README_BACKFILL_DAYS = (date(2024, 5, 6),)
FINISHED = {"success", "failed"}


def _free_port() -> int:
    return free_port()


def _stop(proc: subprocess.Popen) -> None:
    stop(proc, grace=5)


class Stack:
    def __init__(self, base: str, env: dict, password: str, warehouse: str, logs: Path):
        self.base, self.env, self.password, self.warehouse, self.logs = (
            base, env, password, warehouse, logs)
        self.client = httpx.Client(base_url=base, timeout=30, trust_env=False)
        self._token = None

    @property
    def headers(self) -> dict:
        if self._token is None:
            got = self.client.post("/auth/token", json={"username": "datateam",
                                                        "password": self.password})
            assert got.status_code == 201, got.text
            self._token = got.json()["access_token"]
        return {"Authorization": f"Bearer {self._token}"}

    def runs(self) -> list[dict]:
        got = self.client.get("/api/v2/dags/upstream_nightly/dagRuns", headers=self.headers,
                              params={"limit": 100})
        assert got.status_code == 200, got.text
        return got.json()["dag_runs"]

    def task_states(self, run_id: str) -> dict[str, str]:
        got = self.client.get(f"/api/v2/dags/upstream_nightly/dagRuns/{run_id}/taskInstances",
                              headers=self.headers)
        assert got.status_code == 200, got.text
        return {t["task_id"]: t["state"] for t in got.json()["task_instances"]}

    def trigger(self, conf: dict) -> str:
        got = self.client.post("/api/v2/dags/upstream_nightly/dagRuns", headers=self.headers,
                               json={"logical_date": None, "conf": conf})
        assert got.status_code == 200, got.text
        return got.json()["dag_run_id"]

    def wait_finished(self, run_ids: set[str], timeout: float = 180) -> dict[str, dict]:
        deadline = time.monotonic() + timeout
        while True:
            runs = {r["dag_run_id"]: r for r in self.runs() if r["dag_run_id"] in run_ids}
            if len(runs) == len(run_ids) and all(r["state"] in FINISHED for r in runs.values()):
                return runs
            if time.monotonic() > deadline:
                pytest.fail(f"runs not finished after {timeout} s: "
                            f"{ {k: v['state'] for k, v in runs.items()} }\n{self.log_tail()}")
            time.sleep(1)

    def loaded_days(self) -> dict[date, str]:
        with psycopg.connect(self.warehouse) as conn:
            return dict(conn.execute(
                "SELECT extract_date, status FROM ops.extract_file ORDER BY file_id").fetchall())

    def log_tail(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                         for p in sorted(self.logs.glob("*.log")))


@pytest.fixture(scope="module")
def stack(server_url, tmp_path_factory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("scheduler")
    names = {k: f"upstream_sched_{k}_{uuid.uuid4().hex[:8]}" for k in ("airflow", "warehouse")}
    db.create_database(server_url, names["airflow"], warehouse=False)
    warehouse = db.create_database(server_url, names["warehouse"], warehouse=True)
    db.migrate(warehouse)
    landing = root / "landing"
    for day in (OLD_DAY, OLD_BACKFILL_DAY, README_DAY, *README_BACKFILL_DAYS):
        generate.generate(landing, day, day, ["WPS"], seed=day.toordinal() % 97)
    dags = root / "dags"  # only the nightly DAG: its Asset triggers no routing run here
    dags.mkdir()
    (dags / "upstream_nightly.py").symlink_to(REPO_ROOT / "dags" / "upstream_nightly.py")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ)
    env.update({
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db.sqlalchemy_url(
            db.with_database(server_url, names["airflow"])),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__API__BASE_URL": base,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base}/execution/",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(root / "task-logs"),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "UPSTREAM_HOME": str(root / "home"),
        "UPSTREAM_DATABASE_URL": warehouse,
        "UPSTREAM_LANDING_DIR": str(landing),
        "UPSTREAM_GX_DIR": str(root / "gx"),
        "UPSTREAM_AGENCIES": "WPS",
        "UPSTREAM_PSEUDONYM_KEY": "scheduler-test-key-" + uuid.uuid4().hex,
        # The scheduled night's file never comes and its deadline stays ahead: it waits.
        "UPSTREAM_MANIFEST_DEADLINE_SECONDS": str(30 * 86400),
        # Not a few seconds: under load the executor's "finished" event of one poke can arrive
        # after the next poke started (same try number), and the scheduler then fails the
        # sensor as "changed externally" (seen here at 5 s on 2 busy cores).
        "UPSTREAM_MANIFEST_POKE_SECONDS": "120",
        "PYTHONWARNINGS": "ignore",
    })
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True)
    password = json.loads(Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])
                          .read_text())["datateam"]
    logs = root / "logs"
    logs.mkdir()
    procs: list[subprocess.Popen] = []
    stack = Stack(base, env, password, warehouse, logs)

    def start(name: str, *args: str) -> None:
        with (logs / f"{name}.log").open("wb") as out:
            procs.append(subprocess.Popen([AIRFLOW, name, *args], env=env, stdout=out,
                                          stderr=subprocess.STDOUT, start_new_session=True))

    def wait_for(what: str, ready) -> None:
        deadline = time.monotonic() + 120
        while True:
            dead = [p for p in procs if p.poll() is not None]
            if dead:
                pytest.fail(f"an Airflow process exited {dead[0].returncode}\n{stack.log_tail()}")
            try:
                if ready():
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"{what} not ready after 120 s\n{stack.log_tail()}")
            time.sleep(1)

    try:
        # The api-server first: task processes report to its execution API, and one started
        # before it answers fails.
        start("api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1")
        wait_for("api-server",
                 lambda: stack.client.get("/api/v2/monitor/health").status_code == 200)
        start("scheduler")
        start("dag-processor")
        wait_for("the nightly DAG", lambda: stack.client.get(
            "/api/v2/dags/upstream_nightly", headers=stack.headers).status_code == 200)
        yield stack
        stack.client.close()
    finally:
        for proc in procs:  # all at once: each may take seconds to shut down
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            _stop(proc)
        with psycopg.connect(server_url, autocommit=True) as conn:
            for name in names.values():
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                             .format(sql.Identifier(name)))


def _readme_block(heading: str) -> str:
    """The ```sh block that follows `heading` in README.md."""
    text = README.read_text(encoding="utf-8")
    start = text.index(heading)
    match = re.search(r"```sh\n(.*?)```", text[start:], re.S)
    assert match, f"no sh block after {heading!r} in README.md"
    return match.group(1)


def _readme_inline_command(prefix: str) -> str:
    """The first `inline code` in README.md that starts with `prefix`."""
    found = re.findall(r"`(" + re.escape(prefix) + r"[^`]*)`", README.read_text(encoding="utf-8"))
    assert found, f"README.md shows no `{prefix}...` command"
    return found[0]


def _on_stack(command: str, stack: Stack) -> str:
    """A README command as a user would type it, pointed at this stack's port and login."""
    return (command.replace("localhost:8080", stack.base.removeprefix("http://"))
            .replace("<printed by make run>", stack.password))


def _waiting_scheduled_run(stack: Stack) -> dict:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        for run in stack.runs():
            if run["run_type"] == "scheduled" and run["state"] == "running":
                states = stack.task_states(run["dag_run_id"])
                if states.get("WPS.wait_for_manifest") in ("up_for_reschedule", "running"):
                    return run
        time.sleep(1)
    pytest.fail(f"no scheduled run waiting for its manifest: {stack.runs()}\n{stack.log_tail()}")


def _backfill(stack: Stack, command: str) -> None:
    """An `airflow backfill create` command in the README's environment recipe."""
    recipe = _readme_inline_command('eval "$(.venv/bin/python')
    out = subprocess.run(["bash", "-euo", "pipefail", "-c", f"{recipe}\n{command}"],
                         cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
                         env={**stack.env, "PATH": f"{Path(sys.executable).parent}:"
                                                   + os.environ["PATH"]})
    assert out.returncode == 0, out.stdout + out.stderr


def _backfill_runs(stack: Stack, count: int, seen: set[str]) -> set[str]:
    deadline = time.monotonic() + 60
    while len(new := {r["dag_run_id"] for r in stack.runs()
                      if r["run_type"] == "backfill"} - seen) < count:
        assert time.monotonic() < deadline, stack.runs()
        time.sleep(1)
    return new


def _backfills_completed(stack: Stack) -> None:
    """The scheduler marks a backfill completed every 30 s; only then may the next start."""
    deadline = time.monotonic() + 90
    while any(b["completed_at"] is None for b in stack.client.get(
            "/api/v2/backfills", params={"dag_id": "upstream_nightly"},
            headers=stack.headers).json()["backfills"]):
        assert time.monotonic() < deadline, "backfill not marked completed"
        time.sleep(1)


def test_reprocess_and_backfills_run_while_the_night_waits_readme_verbatim(stack):
    """One flow, to keep the slowest test short: the night's scheduled run waits for its
    manifest while a backfill of a 2019 night, the README's REST request (verbatim), a REST
    trigger for a 2019 day, and then the README's backfill command (verbatim) all complete."""
    waiting = _waiting_scheduled_run(stack)

    _backfill(stack, "airflow backfill create --dag-id upstream_nightly "
                     f"--from-date {OLD_DAY} --to-date {OLD_DAY + timedelta(days=1)}")
    # The README's REST example, verbatim but for host/port and the password.
    script = _on_stack(_readme_block("- **REST API**"), stack)
    out = subprocess.run(["bash", "-euo", "pipefail", "-c", script], capture_output=True,
                         text=True, timeout=60, env=stack.env)
    assert out.returncode == 0, out.stderr
    created = json.loads(out.stdout)
    assert created["conf"] == {"extract_date": README_DAY.isoformat()}, created
    assert created["note"] == f"extract {README_DAY}"
    old = stack.trigger({"extract_date": OLD_DAY.isoformat()})
    old_backfill = _backfill_runs(stack, 1, set())

    runs = {created["dag_run_id"], old, *old_backfill}
    finished = stack.wait_finished(runs)
    assert {k: v["state"] for k, v in finished.items()} == dict.fromkeys(runs, "success"), \
        stack.log_tail()
    still = {r["dag_run_id"]: r for r in stack.runs()}[waiting["dag_run_id"]]
    assert still["state"] == "running", still  # the night still waits for its file
    for run_id in runs:  # every run ran its tasks (no empty "success" for an old day)
        states = stack.task_states(run_id)
        assert {k: v for k, v in states.items() if k != "WPS.publish_loaded_calls"} == \
            dict.fromkeys(("WPS.wait_for_manifest", "WPS.verify_manifest",
                           "WPS.validate_and_load"), "success"), run_id
        # a day loaded again (the same file) announces nothing new
        assert states["WPS.publish_loaded_calls"] in ("success", "skipped"), run_id

    _backfills_completed(stack)
    _backfill(stack, _readme_inline_command("airflow backfill create"))
    readme_backfill = _backfill_runs(stack, len(README_BACKFILL_DAYS), old_backfill)
    assert {r["state"] for r in stack.wait_finished(readme_backfill).values()} == {"success"}
    # exactly the README's days: `--to-date`'s own 03:00 run is not part of the backfill
    assert len([r for r in stack.runs() if r["run_type"] == "backfill"]) == 1 + len(
        README_BACKFILL_DAYS)
    loaded = stack.loaded_days()
    for day in (README_DAY, OLD_DAY, OLD_BACKFILL_DAY, *README_BACKFILL_DAYS):
        assert loaded.get(day) == "loaded", (day, loaded)
