"""Start the reference Outreach server from tests, over real HTTP on loopback.

    from outreach_ref import ServiceConfig
    from outreach_ref.testing import run_server

    with run_server(ServiceConfig(token="test-token", error_rate=0.2, seed=7)) as server:
        # `server` IS the base URL (a str subclass), e.g. "http://127.0.0.1:43121"
        httpx.post(f"{server}/v1/referrals", ...)
        server.set_faults(error_rate=0.0)     # change faults at runtime (POST /_admin/faults)
        server.restart()                     # new process, same port, same SQLite file
        server.referrals()                   # what the server holds (GET /_admin/referrals)

Modes: ``mode="subprocess"`` (default) runs ``python -m outreach_ref`` in a child process, so
it can really be killed (``kill()`` = SIGKILL) and restarted; ``mode="thread"`` runs uvicorn
in a daemon thread of the current process (no process boundary; ``kill()`` = immediate stop).

The listening socket is created here and inherited by the child, so the port is known at once
and is the same after ``restart()``; connections made while it restarts wait in the backlog
and are served by the new process. After ``stop()``/``kill()`` the listener is closed
(connection refused) until ``start()`` binds the same port again.

Fault settings changed at runtime through ``/_admin/faults`` live in the server process only:
a restart goes back to the config (pass ``restart(config=...)`` to change it). When
``config.db_path`` is ``None`` a temporary SQLite file is used (kept across restarts, deleted
by ``close()``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from .config import ServiceConfig
from .runner import Runner

__all__ = ["OutreachServer", "run_server", "start_server"]


class OutreachServer(str):
    """A running reference server. The object itself is the base URL (``str``)."""

    _runner: Runner
    _tmpdir: str | None
    _admin_client: httpx.Client | None

    def __new__(cls, runner: Runner, tmpdir: str | None) -> OutreachServer:
        self = super().__new__(cls, runner.base_url)
        self._runner = runner
        self._tmpdir = tmpdir
        self._admin_client = None
        self._admin_lock = threading.Lock()
        return self

    # ------------------------------------------------------------------ facts
    @property
    def base_url(self) -> str:
        return str(self)

    @property
    def config(self) -> ServiceConfig:
        return self._runner.config

    @property
    def token(self) -> str:
        return self._runner.config.token

    @property
    def port(self) -> int:
        return self._runner.port

    @property
    def db_path(self) -> str:
        assert self._runner.config.db_path is not None
        return self._runner.config.db_path

    @property
    def pid(self) -> int | None:
        """Server process id (the current process in thread mode)."""
        return self._runner.pid

    @property
    def is_running(self) -> bool:
        return self._runner.running

    @property
    def log_path(self) -> Path:
        return self._runner.log_path

    def log_text(self) -> str:
        """Everything the server process wrote (subprocess mode)."""
        try:
            return self._runner.log_path.read_text(errors="replace")
        except OSError:
            return ""

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start again after ``stop()``/``kill()`` (same port, same database)."""
        self._runner.start()

    def stop(self) -> None:
        """Graceful shutdown (SIGTERM); the port refuses connections until ``start()``."""
        self._runner.stop()

    def kill(self) -> None:
        """Crash it (SIGKILL in subprocess mode); the port refuses connections until ``start()``."""
        self._runner.stop(hard=True)

    def restart(self, *, hard: bool = False, config: ServiceConfig | None = None) -> None:
        """Stop (SIGTERM, or SIGKILL with ``hard=True``) and start a new server on the same
        port. Keeps the listening socket open meanwhile, so clients queue instead of failing.
        ``config`` replaces the config (keep ``db_path`` to keep the data)."""
        self._runner.stop(hard=hard, close_listener=False)
        if config is not None:
            if config.db_path is None:
                config = config.replace(db_path=self._runner.config.db_path)
            self._runner.config = config
        self._runner.start()

    def close(self) -> None:
        """Stop for good and delete the temporary directory (if one was created)."""
        if self._admin_client is not None:
            self._admin_client.close()
            self._admin_client = None
        try:
            self._runner.stop()
        finally:
            if self._tmpdir is not None:
                shutil.rmtree(self._tmpdir, ignore_errors=True)
                self._tmpdir = None

    # ------------------------------------------------------------------ clients
    def client(
        self, *, token: str | None = None, timeout: float = 10.0, **kwargs: Any
    ) -> httpx.Client:
        """An ``httpx.Client`` with the base URL and bearer token set."""
        headers = {"Authorization": f"Bearer {token if token is not None else self.token}"}
        headers.update(kwargs.pop("headers", {}))
        kwargs.setdefault("verify", False)  # plain HTTP on loopback; skips loading CA certs
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout, **kwargs)

    def _admin_request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        # One cached client (creating an httpx.Client per call costs an SSL context).
        # A connection left over from before a restart is retried once on a fresh one.
        with self._admin_lock:
            for attempt in (1, 2):
                if self._admin_client is None:
                    self._admin_client = httpx.Client(
                        base_url=self.base_url,
                        headers={"Authorization": f"Bearer {self.config.effective_admin_token}"},
                        timeout=30.0,
                        verify=False,  # plain HTTP on loopback
                    )
                try:
                    return self._admin_client.request(method, path, **kwargs)
                except httpx.TransportError:
                    self._admin_client.close()
                    self._admin_client = None
                    if attempt == 2:
                        raise
        raise AssertionError("unreachable")

    def _admin(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._admin_request(method, path, **kwargs)
        response.raise_for_status()
        return response.json()

    # ------------------------------------------------------------------ admin helpers
    def referrals(self) -> list[dict[str, Any]]:
        """``GET /_admin/referrals``: every referral held, with ``contact_present``/``contact``."""
        return self._admin("GET", "/_admin/referrals")["referrals"]

    def referral(self, referral_id: str) -> dict[str, Any] | None:
        """``GET /_admin/referrals/{id}``, or ``None`` when the server does not know it."""
        response = self._admin_request("GET", f"/_admin/referrals/{referral_id}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()

    def requests_log(self) -> list[dict[str, Any]]:
        """``GET /_admin/requests``: every POST received (needs ``record_requests``)."""
        return self._admin("GET", "/_admin/requests")["requests"]

    def faults(self) -> dict[str, Any]:
        return self._admin("GET", "/_admin/faults")

    def set_faults(self, **settings: Any) -> dict[str, Any]:
        """``POST /_admin/faults`` (e.g. ``error_rate=0.3``, ``rate_limit_per_second=None``,
        ``seed=1``); returns the new settings. Lost on restart."""
        return self._admin("POST", "/_admin/faults", json=settings)

    def simulate(self, until: datetime | None = None) -> int:
        """Emit simulated outreach events up to ``until`` (default: the server's now)."""
        params = {"until": until.isoformat()} if until is not None else {}
        return self._admin("POST", "/_admin/simulate", params=params)["emitted"]

    def set_clock(
        self, now: datetime | None = None, offset_seconds: float | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "now": now.isoformat() if now is not None else None,
            "offset_seconds": offset_seconds,
        }
        return self._admin("POST", "/_admin/clock", json=body)

    def clock(self) -> dict[str, Any]:
        """The server clock (GET /_admin/clock): ``now``, ``frozen``, ``offset_seconds``."""
        return self._admin("GET", "/_admin/clock")

    def stats(self) -> dict[str, Any]:
        return self._admin("GET", "/_admin/stats")

    def reset(self) -> None:
        """Delete all data and go back to the config's faults, counters and clock."""
        self._admin("POST", "/_admin/reset")


def start_server(
    config: ServiceConfig,
    port: int = 0,
    *,
    host: str = "127.0.0.1",
    mode: str = "subprocess",
    startup_timeout: float = 20.0,
    log_level: str = "info",
) -> OutreachServer:
    """Start a server and return it; call ``.close()`` when done (or use :func:`run_server`)."""
    tmpdir = tempfile.mkdtemp(prefix="outreach-ref-")
    try:
        if config.db_path is None:
            config = config.replace(db_path=os.path.join(tmpdir, "outreach.sqlite3"))
        runner = Runner(
            config, host, port, mode, Path(tmpdir) / "server.log", startup_timeout, log_level
        )
        runner.ensure_listener()
        server = OutreachServer(runner, tmpdir)
        try:
            runner.start()
        except BaseException:
            runner.stop()
            raise
    except BaseException:
        shutil.rmtree(tmpdir, ignore_errors=True)
        raise
    return server


@contextlib.contextmanager
def run_server(
    config: ServiceConfig,
    port: int = 0,
    *,
    host: str = "127.0.0.1",
    mode: str = "subprocess",
    startup_timeout: float = 20.0,
    log_level: str = "info",
) -> Iterator[OutreachServer]:
    """Context manager: start the real app under uvicorn, yield the base URL (an
    :class:`OutreachServer`, which is a ``str``), stop it and clean up afterwards."""
    server = start_server(
        config, port, host=host, mode=mode, startup_timeout=startup_timeout, log_level=log_level
    )
    try:
        yield server
    finally:
        server.close()
