"""Run the reference Outreach server: ``python -m outreach_ref --host 127.0.0.1 --port 8765``.

The configuration comes from ``OUTREACH_*`` environment variables (``OUTREACH_TOKEN`` is
required); see :class:`outreach_ref.config.ServiceConfig`. ``--fd N`` serves on an already
listening socket inherited from the parent (used by :mod:`outreach_ref.testing`).

Logging: one line per request with method, path, status and duration (never the query
string, a body or a header value); uvicorn's own access log is off.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import threading
import time

import uvicorn

from .app import create_app
from .config import ServiceConfig
from .server import configure_logging, uvicorn_config


def _watch_parent(parent_pid: int) -> None:
    """Exit gracefully once the parent (e.g. a killed pytest) is gone, so no orphan stays."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m outreach_ref", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--fd", type=int, default=None, help="serve on this inherited listening socket"
    )
    parser.add_argument(
        "--parent-pid", type=int, default=None, help="shut down when this process goes away"
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    args = parser.parse_args(argv)

    configure_logging(args.log_level)
    try:
        config = ServiceConfig.from_env()
    except ValueError as exc:
        print(f"outreach_ref: bad configuration: {exc}", file=sys.stderr)
        return 2
    if args.parent_pid is not None:
        _watch_parent(args.parent_pid)
    app = create_app(config)
    server = uvicorn.Server(
        uvicorn_config(app, host=args.host, port=args.port, log_level=args.log_level)
    )
    if args.fd is not None:
        sock = socket.socket(fileno=args.fd)
        server.run(sockets=[sock])
    else:
        server.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
