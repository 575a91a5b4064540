"""Runs one reference server for tests: the inherited listening socket, and the server as a
child process (``python -m outreach_ref``) or as a uvicorn thread. Used by
:mod:`outreach_ref.testing`, which wraps it in :class:`~outreach_ref.testing.OutreachServer`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from .config import ENV_PREFIX, ServiceConfig
from .server import listening_socket

_SRC_DIR = str(Path(__file__).resolve().parent.parent)


class Runner:
    """Owns the listening socket and the running server (process or thread)."""

    def __init__(
        self,
        config: ServiceConfig,
        host: str,
        port: int,
        mode: str,
        log_path: Path,
        startup_timeout: float,
        log_level: str,
    ) -> None:
        if mode not in ("subprocess", "thread"):
            raise ValueError("mode must be 'subprocess' or 'thread'")
        self.config = config
        self.host = host
        self.port = port
        self.mode = mode
        self.log_path = log_path
        self.startup_timeout = startup_timeout
        self.log_level = log_level
        self.sock: socket.socket | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.thread: threading.Thread | None = None
        self.uvicorn_server: Any = None
        self.pid: int | None = None

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    # ------------------------------------------------------------------ lifecycle
    def ensure_listener(self) -> None:
        if self.sock is None:
            self.sock = listening_socket(self.host, self.port)
            self.port = self.sock.getsockname()[1]

    def close_listener(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    @property
    def running(self) -> bool:
        if self.mode == "subprocess":
            return self.proc is not None and self.proc.poll() is None
        return self.thread is not None and self.thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self.ensure_listener()
        assert self.sock is not None
        if self.mode == "subprocess":
            self._start_process()
        else:
            self._start_thread()
        self._wait_ready()

    def _start_process(self) -> None:
        assert self.sock is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
        env.update(self.config.to_env())
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_SRC_DIR, env.get("PYTHONPATH")) if p)
        env.setdefault("PYTHONUNBUFFERED", "1")
        fd = self.sock.fileno()
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "outreach_ref",
                    "--fd",
                    str(fd),
                    "--log-level",
                    self.log_level,
                    "--parent-pid",
                    str(os.getpid()),
                ],
                env=env,
                pass_fds=(fd,),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                close_fds=True,
            )
        self.pid = self.proc.pid

    def _start_thread(self) -> None:
        import uvicorn

        from .app import create_app
        from .server import uvicorn_config

        assert self.sock is not None
        app = create_app(self.config)
        server = uvicorn.Server(uvicorn_config(app, log_level=self.log_level))
        sock = self.sock.dup()  # uvicorn closes the sockets it serves on at shutdown
        self.uvicorn_server = server
        self.thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="outreach-ref-server", daemon=True
        )
        self.thread.start()
        self.pid = os.getpid()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        headers = {"Authorization": f"Bearer {self.config.effective_admin_token}"}
        url = f"{self.base_url}/_admin/health" if self.config.admin_enabled else f"{self.base_url}/"
        with httpx.Client(timeout=0.25, headers=headers, verify=False) as client:
            while True:
                if not self.running:
                    raise RuntimeError(
                        f"outreach reference server exited during startup; log:\n{self.log_tail()}"
                    )
                try:
                    client.get(url)
                    return
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    self.stop(close_listener=False)
                    raise RuntimeError(
                        f"outreach reference server did not answer within {self.startup_timeout}s;"
                        f" log:\n{self.log_tail()}"
                    )
                time.sleep(0.02)

    def stop(
        self, *, hard: bool = False, close_listener: bool = True, timeout: float = 5.0
    ) -> None:
        if self.mode == "subprocess":
            proc = self.proc
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGKILL if hard else signal.SIGTERM)
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=timeout)
            self.proc = None
        else:
            server, thread = self.uvicorn_server, self.thread
            if server is not None and thread is not None:
                server.should_exit = True
                if hard:
                    server.force_exit = True
                thread.join(timeout)
            self.uvicorn_server = None
            self.thread = None
        if close_listener:
            self.close_listener()

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "<no log>"
