"""The outermost ASGI layer: access log, bearer auth, rate limit, latency, fault injection.

Privacy: request bodies are never logged; the access log line is method, path, status and
duration. The request log (``record_requests``) is kept in the store for the admin routes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from .faults import Fault, FaultDecision
from .server import ABORT_EXTENSION
from .service import OutreachService

logger = logging.getLogger("outreach_ref")
access_logger = logging.getLogger("outreach_ref.access")


async def _send_simple(
    send: Any,
    status: int,
    body: bytes,
    content_type: bytes,
    headers: list[tuple[bytes, bytes]] = (),
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _send_json(
    send: Any, status: int, payload: Any, headers: list[tuple[bytes, bytes]] = ()
) -> None:
    await _send_simple(send, status, json.dumps(payload).encode(), b"application/json", headers)


_PRE_ERROR_BODIES: dict[int, tuple[bytes, bytes, list[tuple[bytes, bytes]]]] = {
    500: (b'{"detail":"internal server error"}', b"application/json", []),
    502: (b"<html><body><h1>502 Bad Gateway</h1></body></html>", b"text/html", []),
    503: (b'{"detail":"service unavailable"}', b"application/json", [(b"retry-after", b"1")]),
    504: (b"<html><body><h1>504 Gateway Time-out</h1></body></html>", b"text/html", []),
}


def classify(method: str, path: str) -> str | None:
    """Which contract route a request is, for faults and counters."""
    if path == "/v1/referrals" and method == "POST":
        return "create"
    if method == "POST" and path.startswith("/v1/referrals/") and path.endswith("/withdrawal"):
        return "withdraw"
    if path == "/v1/referral-events" and method == "GET":
        return "events"
    return None


async def _wait_for_disconnect(receive: Any, timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        try:
            message = await asyncio.wait_for(receive(), remaining)
        except (TimeoutError, RuntimeError):
            return
        if message.get("type") == "http.disconnect":
            return


async def _drop(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Close the connection without a response (see :mod:`outreach_ref.server`)."""
    abort = (scope.get("extensions") or {}).get(ABORT_EXTENSION)
    if abort is not None:
        abort()
        await _wait_for_disconnect(receive)
        return
    # Fallback under a plain uvicorn: promise a body and never send it; uvicorn then closes
    # the connection ("returned without completing response").
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"1000")],
        }
    )


async def _logged_receive(service: OutreachService, scope: dict[str, Any], receive: Any,
                          route: str) -> Any:
    """Read the whole body, put it on the request log, and hand it on unchanged."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = b"".join(chunks)
    key = next((v.decode("latin-1") for k, v in scope.get("headers", ())
                if k == b"idempotency-key"), None)
    await run_in_threadpool(service.store.log_request, route, scope["path"], key,
                            body.decode("utf-8", "replace"))
    replayed = False

    async def replay() -> dict[str, Any]:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class OutreachMiddleware:
    """Access log, auth, rate limit, latency and fault injection (pure ASGI, outermost)."""

    def __init__(self, app: Any, service: OutreachService) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method, path = scope["method"], scope["path"]
        outcome: dict[str, Any] = {"status": None, "dropped": False}

        async def recording_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                outcome["status"] = message["status"]
            await send(message)

        try:
            await self._handle(scope, receive, recording_send, outcome)
        except ClientDisconnect:  # the client went away before its body was read
            outcome["client_gone"] = True
        except Exception as exc:  # never let a traceback (or a value in it) reach the logs
            logger.error("unhandled %s in %s %s", type(exc).__name__, method, path)
            if outcome["status"] is None and not outcome["dropped"]:
                await _send_json(recording_send, 500, {"detail": "internal server error"})
        finally:
            if outcome["dropped"]:
                status = "dropped"
            elif outcome.get("client_gone"):
                status = "client_disconnected"
            else:
                status = outcome["status"]
            route = classify(method, path)
            if route is not None:
                self.service.faults.count(f"{route}:{status}")
            access_logger.info(
                "%s %s %s %.1fms", method, path, status, (time.perf_counter() - started) * 1000
            )

    async def _handle(
        self, scope: dict[str, Any], receive: Any, send: Any, outcome: dict[str, Any]
    ) -> None:
        service = self.service
        path: str = scope["path"]
        admin = path == "/_admin" or path.startswith("/_admin/")
        auth = next((v for k, v in scope.get("headers", ()) if k == b"authorization"), None)
        if not service.authorized(auth, admin):
            await _send_json(
                send, 401, {"detail": "unauthorized"}, [(b"www-authenticate", b"Bearer")]
            )
            return
        if admin and not service.config.admin_enabled:
            await _send_json(send, 404, {"detail": "Not Found"})
            return
        if not path.startswith("/v1/"):
            await self.app(scope, receive, send)
            return

        route = classify(scope["method"], path)
        if service.config.record_requests and route in ("create", "withdraw"):
            receive = await _logged_receive(service, scope, receive, route)

        faults = service.faults
        retry_after = faults.check_rate_limit()
        if retry_after is not None:
            await _send_json(
                send,
                429,
                {"detail": "rate limit exceeded"},
                [(b"retry-after", str(retry_after).encode())],
            )
            return
        latency = faults.latency_s()
        if latency > 0:
            await asyncio.sleep(latency)

        decision = faults.decide(route) if route is not None else FaultDecision(Fault.NONE)
        if decision.fault is Fault.ERROR:
            body, content_type, headers = _PRE_ERROR_BODIES[decision.status or 500]
            await _send_simple(send, decision.status or 500, body, content_type, headers)
            return
        if decision.fault is Fault.DROP:
            outcome["dropped"] = True
            await _drop(scope, receive, send)
            return
        if decision.fault is Fault.SLOW and decision.delay_s > 0:
            # The work is done at once; the answer comes late (a client timeout then means
            # "nothing is known", yet the referral is stored).
            async def delayed_send(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    await asyncio.sleep(decision.delay_s)
                await send(message)

            await self.app(scope, receive, delayed_send)
            return
        if decision.fault not in (Fault.ERROR_AFTER_COMMIT, Fault.DROP_AFTER_COMMIT):
            await self.app(scope, receive, send)
            return

        # The handler runs and commits; a successful answer is then lost.
        intercepted = False

        async def intercepting_send(message: dict[str, Any]) -> None:
            nonlocal intercepted
            if message["type"] == "http.response.start" and 200 <= message["status"] < 300:
                intercepted = True
                if decision.fault is Fault.ERROR_AFTER_COMMIT:
                    await _send_json(send, 500, {"detail": "internal server error"})
                else:
                    outcome["dropped"] = True
                    await _drop(scope, receive, send)
                return
            if intercepted:
                return
            await send(message)

        await self.app(scope, receive, intercepting_send)
