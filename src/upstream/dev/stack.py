"""docker-compose.yml's Celery topology as local processes, for the Celery test and the scale
benchmark: api-server (free port), scheduler, dag-processor and N Celery workers on Redis, with
Airflow's metadata through upstream_airflow (as make run). Each process is its own process
group, so stop_all() (or kill(name)) also ends the task processes it started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from upstream.dev import env as devenv
from upstream.warehouse import db


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _airflow_bin() -> str:
    return str(Path(sys.executable).parent / "airflow")


class CeleryStack:
    """Start with start(); always stop_all() (use it as a context manager)."""

    def __init__(self, home: Path, metadata_superuser_url: str, broker_url: str,
                 settings: Mapping[str, str], *, workers: Sequence[str] = ("worker-a", "worker-b"),
                 concurrency: int = 2, key_prefix: str | None = None,
                 executor: str = "celery") -> None:
        import psycopg

        self.home = home
        self.logs = home / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.meta_url = metadata_superuser_url  # for reading task instances
        meta = db.sqlalchemy_url(devenv.least_privilege_metadata(metadata_superuser_url))
        self.queue = f"upstream-{home.name}"  # its own queue: other stacks on this Redis
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.workers = tuple(workers)
        self.concurrency = concurrency
        self.procs: dict[str, subprocess.Popen] = {}
        self.env = {
            **os.environ, **settings,
            "AIRFLOW_HOME": str(home / "airflow"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": meta,
            **devenv.celery_env(broker_url, meta, queue=self.queue),
            "AIRFLOW__API__BASE_URL": self.base_url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            # only the runs the caller creates (backfills, triggers): unpausing the nightly DAG
            # would otherwise start today's scheduled run, whose 3 x N sensors poke for an
            # extract that is not there and take worker slots from the measured run
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        }
        if executor == "local":  # the same components with the LocalExecutor, for comparison
            self.workers = ()
            self.env["AIRFLOW__CORE__EXECUTOR"] = "LocalExecutor"
            self.env["AIRFLOW__CORE__PARALLELISM"] = str(concurrency * len(workers))
        if key_prefix:  # every Redis key of this stack under one prefix (deleted at the end)
            self.env["AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX"] = key_prefix
        self._psycopg = psycopg
        self.api = None

    # ---------------------------------------------------------------- processes
    def _start(self, name: str, command: list[str], extra_env: Mapping | None = None) -> None:
        log = (self.logs / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            command, env={**self.env, **(extra_env or {})}, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True)

    def start(self, username: str, password: str, dag_ids: Sequence[str],
              timeout: float = 240) -> CeleryStack:
        import httpx

        subprocess.run([_airflow_bin(), "db", "migrate"], env=self.env, check=True,
                       stdout=subprocess.DEVNULL)
        self._start("api-server", [_airflow_bin(), "api-server", "--port", str(self.port),
                                   "--host", "127.0.0.1", "--workers", "1"])
        self._start("scheduler", [_airflow_bin(), "scheduler"])
        self._start("dag-processor", [_airflow_bin(), "dag-processor"])
        for name in self.workers:
            command, extra = devenv.celery_worker_command(
                name, concurrency=self.concurrency, queue=self.queue)
            self._start(name, command, extra)
        self.api = httpx.Client(base_url=self.base_url, timeout=30)

        def healthy():
            with contextlib.suppress(httpx.HTTPError):
                return self.api.get("/api/v2/monitor/health").status_code == 200
            return False

        self.wait(healthy, timeout, "the api-server")
        token = self.api.post("/auth/token", json={"username": username, "password": password})
        token.raise_for_status()
        self.api.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        for dag_id in dag_ids:
            self.wait(lambda d=dag_id: self.api.get(f"/api/v2/dags/{d}").status_code == 200,
                      timeout, f"{dag_id} to be parsed")
        return self

    def kill(self, name: str) -> None:
        """SIGKILL a component and every process it started (its process group)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.procs[name].pid, signal.SIGKILL)
        self.procs[name].wait(timeout=30)

    def stop_all(self) -> None:
        if self.api is not None:
            self.api.close()
        alive = [p for p in self.procs.values() if p.poll() is None]
        for proc in alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in alive:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        for proc in self.procs.values():  # whatever is left in the groups (task processes)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)

    def __enter__(self) -> CeleryStack:
        return self

    def __exit__(self, *exc) -> None:
        self.stop_all()

    def log_tails(self, chars: int = 3000) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-chars:]}"
                         for p in sorted(self.logs.glob("*.log")))

    # ---------------------------------------------------------------- Airflow
    def wait(self, predicate: Callable[[], object], timeout: float, what: str,
             interval: float = 1.0):
        """Poll until predicate() is truthy; fail early when a non-worker component died."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None and name not in self.workers:
                    raise RuntimeError(f"{name} exited ({proc.returncode})\n{self.log_tails()}")
            value = predicate()
            if value:
                return value
            time.sleep(interval)
        raise TimeoutError(f"timed out waiting for {what}\n{self.log_tails()}")

    def unpause(self, dag_id: str) -> None:
        self.api.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": False}).raise_for_status()

    def backfill(self, dag_id: str, from_date: str, to_date: str) -> None:
        self.api.post("/api/v2/backfills", json={
            "dag_id": dag_id, "from_date": from_date, "to_date": to_date,
            "max_active_runs": 1, "reprocess_behavior": "none"}).raise_for_status()

    def trigger(self, dag_id: str, conf: dict | None = None) -> str:
        response = self.api.post(f"/api/v2/dags/{dag_id}/dagRuns",
                                 json={"logical_date": None, "conf": conf or {}})
        response.raise_for_status()
        return response.json()["dag_run_id"]

    def runs(self, dag_id: str) -> list[tuple[str, str]]:
        with self._psycopg.connect(self.meta_url) as conn:
            return conn.execute("SELECT run_id, state FROM dag_run WHERE dag_id = %s ORDER BY 1",
                                (dag_id,)).fetchall()

    def task_instances(self) -> list[dict]:
        """Every try of every task (current and history): state, hostname, times."""
        from psycopg.rows import dict_row

        with self._psycopg.connect(self.meta_url, row_factory=dict_row) as conn:
            return conn.execute(
                "SELECT dag_id, run_id, task_id, try_number, state, hostname, start_date,"
                " end_date FROM task_instance UNION ALL"
                " SELECT dag_id, run_id, task_id, try_number, state, hostname, start_date,"
                " end_date FROM task_instance_history").fetchall()
