"""uvicorn glue: an HTTP protocol that lets the app abort its TCP connection.

uvicorn answers ``500`` when an ASGI app raises before responding, so an exception cannot
simulate a dropped connection. :class:`AbortableHttpProtocol` subclasses uvicorn's HTTP
protocol (httptools when installed, else h11) and puts a callable into every request scope at
``scope["extensions"]["outreach.abort"]``; calling it does ``transport.abort()`` (RST, no
bytes written). uvicorn then notices the disconnect and ignores the app's later sends.

If the app runs under a plain uvicorn (no such extension), :mod:`outreach_ref.app` falls back
to sending response headers that promise a body it never sends and returning, which makes
uvicorn close the connection: the client still sees a transport error (incomplete response).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any

import uvicorn

try:  # pragma: no cover - depends on the installed extras
    import httptools  # noqa: F401
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _BaseProtocol
except ImportError:  # pragma: no cover
    from uvicorn.protocols.http.h11_impl import H11Protocol as _BaseProtocol

ABORT_EXTENSION = "outreach.abort"


class AbortableHttpProtocol(_BaseProtocol):  # type: ignore[misc, valid-type]
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        inner = self.app

        async def app(scope, receive, send):  # noqa: ANN001
            if scope.get("type") == "http":
                extensions = dict(scope.get("extensions") or {})
                extensions[ABORT_EXTENSION] = self._outreach_abort
                scope["extensions"] = extensions
            await inner(scope, receive, send)

        self.app = app

    def _outreach_abort(self) -> None:
        transport: asyncio.Transport | None = getattr(self, "transport", None)
        if transport is not None and not transport.is_closing():
            transport.abort()


def uvicorn_config(
    app: Any, *, host: str = "127.0.0.1", port: int = 0, **kwargs: Any
) -> uvicorn.Config:
    """A uvicorn config with the abortable protocol, no access log and no logging setup."""
    kwargs.setdefault("log_level", "warning")
    kwargs.setdefault("timeout_graceful_shutdown", 2)
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=AbortableHttpProtocol,
        access_log=False,  # the app logs method, path and status itself
        log_config=None,
        lifespan="on",
        server_header=False,
        **kwargs,
    )


def listening_socket(host: str = "127.0.0.1", port: int = 0, backlog: int = 512) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    return sock


def configure_logging(level: str = "info") -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
