"""The reference Outreach intake API v1 (see /work/shared/contracts/outreach-api-v1.md).

Contract routes (bearer token: ``config.token``):

* ``POST /v1/referrals``                              create (idempotent on ``Idempotency-Key``)
* ``POST /v1/referrals/{referral_id}/withdrawal``     delete contact, stop contact, ``withdrawn``
* ``GET  /v1/referral-events?after=&limit=``          event feed, cursor = last ``seq``

Test-only admin routes under ``/_admin`` (bearer token: ``config.admin_token`` or ``token``;
absent when ``admin_enabled`` is false):

* ``GET  /_admin/health``                 ``{"ok": true, "pid": ...}``
* ``GET  /_admin/referrals[/{id}]``       what is held, incl. ``contact_present`` / ``contact``
* ``GET  /_admin/requests``               the request log (``record_requests`` only)
* ``GET|POST /_admin/faults``             read / change fault settings (JSON object, any subset)
* ``POST /_admin/simulate?until=<iso>``   emit simulated events up to ``until`` (default: now)
* ``GET|POST /_admin/clock``              ``{"now": iso}`` freeze, ``{"offset_seconds": n}``
                                          shift, ``{}`` back to the real clock (survives a
                                          restart; ``reset`` clears it)

With ``clock_follows_client`` (replays such as the demo), the HTTP ``Date`` header of a
contract request moves the clock forward to that time (a frozen clock, never set back):
see :func:`client_date` and :meth:`Clock.follow`.
* ``GET  /_admin/stats``                  counters (responses per route/status, faults) + counts
* ``POST /_admin/reset``                  delete all data, reset counters, faults and clock

Privacy: request bodies are never logged; the access log line is method, path, status and
duration; validation errors carry ``loc``, ``msg`` and ``type`` only (never the value).
"""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import hmac
import json
import logging
import os
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from .config import ServiceConfig
from .faults import Fault, FaultDecision, FaultInjector
from .models import ClockUpdate, FaultUpdate, ReferralIn, cross_field_errors, safe_errors
from .server import ABORT_EXTENSION
from .simulator import Simulator, plan_events
from .store import Store

logger = logging.getLogger("outreach_ref")
access_logger = logging.getLogger("outreach_ref.access")

START_CURSOR = "0"


class Clock:
    """The server's notion of "now" (UTC): real, frozen, or real + offset.

    Set through ``POST /_admin/clock``; persisted in the store so a restart keeps it.
    """

    META_KEY = "clock"

    def __init__(self, store: Store | None = None) -> None:
        self._lock = threading.Lock()
        self._store = store
        self._frozen: datetime | None = None
        self._offset = timedelta(0)
        saved = store.get_meta(self.META_KEY) if store is not None else None
        if saved:
            state = json.loads(saved)
            frozen = state.get("frozen")
            self._frozen = datetime.fromisoformat(frozen) if frozen else None
            self._offset = timedelta(seconds=state.get("offset_seconds") or 0.0)

    def now(self) -> datetime:
        with self._lock:
            if self._frozen is not None:
                return self._frozen
            return datetime.now(UTC) + self._offset

    def set(self, now: datetime | None = None, offset_seconds: float | None = None) -> None:
        with self._lock:
            self._set(now, offset_seconds)

    def _set(self, now: datetime | None, offset_seconds: float | None) -> None:
        self._frozen = now.astimezone(UTC) if now is not None else None
        self._offset = timedelta(seconds=offset_seconds or 0.0)
        if self._store is not None:
            real = self._frozen is None and not self._offset
            state = {
                "frozen": self._frozen.isoformat() if self._frozen else None,
                "offset_seconds": self._offset.total_seconds(),
            }
            self._store.set_meta(self.META_KEY, None if real else json.dumps(state))

    def follow(self, moment: datetime) -> bool:
        """Freeze the clock at ``moment`` unless it is already frozen at or after it.

        A replayed calendar only moves forward: a request dated earlier than the clock (a
        retry, a slower worker) never takes back what has already happened. Returns whether
        the clock moved.
        """
        with self._lock:
            if self._frozen is not None and moment <= self._frozen:
                return False
            self._set(moment, None)
            return True

    def describe(self) -> dict[str, Any]:
        with self._lock:
            frozen, offset = self._frozen, self._offset
        return {
            "now": self.now().isoformat(),
            "frozen": frozen is not None,
            "offset_seconds": offset.total_seconds(),
        }


class OutreachService:
    """Everything one server instance holds; ``app.state.outreach``."""

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.store = Store(config.db_path, partial(plan_events, config.seed), config.timezone)
        self.simulator = Simulator(self.store)
        self.faults = FaultInjector(config)
        self.clock = Clock(self.store)
        self._token = config.token.encode()
        self._admin_token = config.effective_admin_token.encode()

    def now_epoch(self) -> int:
        return int(self.clock.now().timestamp())

    def authorized(self, header: bytes | None, admin: bool) -> bool:
        expected = self._admin_token if admin else self._token
        if not header:
            return False
        scheme, _, presented = header.partition(b" ")
        if scheme.lower() != b"bearer":
            return False
        return hmac.compare_digest(presented.strip(), expected)

    def reset(self) -> None:
        self.store.reset()
        self.faults = FaultInjector(self.config)
        self.clock.set(None, None)


# ---------------------------------------------------------------------- helpers


def canonical_hash(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _error(status: int, loc: list[Any], msg: str, type_: str) -> JSONResponse:
    return JSONResponse({"detail": [{"loc": loc, "msg": msg, "type": type_}]}, status_code=status)


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


# ---------------------------------------------------------------------- middleware


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


# ---------------------------------------------------------------------- the app


def _parse_cursor(after: str | None) -> int | None:
    if after is None or after == "":
        return 0
    if not after.isascii() or not after.isdigit() or len(after) > 18:
        return None
    return int(after)


def client_date(headers: Any) -> datetime | None:
    """The request's HTTP ``Date`` (RFC 9110 IMF-fixdate, or the obsolete forms), or None when
    absent or unreadable (a bad ``Date`` is ignored, never an error: the contract does not
    require one)."""
    raw = headers.get("date")
    if not raw:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    return moment if moment.tzinfo is not None else None


def _parse_until(raw: str) -> datetime | None:
    text = raw.strip()
    if " " in text and "T" in text:  # an unencoded "+" in a query string became a space
        text = text.replace(" ", "+")
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


def create_app(config: ServiceConfig) -> FastAPI:
    service = OutreachService(config)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            service.store.close()

    app = FastAPI(
        title="Outreach intake API (reference implementation)",
        version="1",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.outreach = service

    def follow_client(request: Request) -> None:
        if config.clock_follows_client:
            moment = client_date(request.headers)
            if moment is not None:
                service.clock.follow(moment)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": safe_errors(list(exc.errors()))}, status_code=422)

    # ------------------------------------------------------------------ contract routes
    @app.post("/v1/referrals")
    async def create_referral(request: Request) -> Response:
        follow_client(request)
        key = request.headers.get("idempotency-key")
        if key is None or not key.strip():
            return _error(400, ["header", "Idempotency-Key"], "Field required", "missing")
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json" and not content_type.endswith("+json"):
            return _error(
                415, ["header", "Content-Type"], "must be application/json", "content_type"
            )
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > config.max_body_bytes:
            return _error(413, ["body"], "body too large", "too_large")
        body = await request.body()
        if len(body) > config.max_body_bytes:
            return _error(413, ["body"], "body too large", "too_large")
        try:
            referral = ReferralIn.model_validate_json(body)
        except ValidationError as exc:
            return JSONResponse({"detail": safe_errors(exc, prefix=("body",))}, status_code=422)
        errors = cross_field_errors(referral)
        if errors:
            return JSONResponse({"detail": errors}, status_code=422)
        if key != referral.referral_id:
            return _error(
                422,
                ["header", "Idempotency-Key"],
                "must equal the body's referral_id",
                "value_error",
            )
        raw = json.loads(body)
        raw_contact = raw.pop("contact")
        result = await run_in_threadpool(
            partial(
                service.store.create_referral,
                referral_id=referral.referral_id,
                payload=raw,
                contact=referral.contact.model_dump(),
                body_hash=canonical_hash(raw),
                contact_hash=canonical_hash(raw_contact),
                priority=referral.triage.priority,
                now_epoch=service.now_epoch(),
            )
        )
        if result == "created":
            return JSONResponse(
                {"referral_id": referral.referral_id, "status": "received"}, status_code=201
            )
        if result == "replay":
            return JSONResponse(
                {"referral_id": referral.referral_id, "status": "received"}, status_code=200
            )
        if result == "replay_withdrawn":
            return JSONResponse(
                {"referral_id": referral.referral_id, "status": "withdrawn"}, status_code=200
            )
        return JSONResponse(
            {"detail": "Idempotency-Key was already used with a different payload"}, status_code=409
        )

    @app.post("/v1/referrals/{referral_id}/withdrawal")
    async def withdraw_referral(referral_id: str, request: Request) -> Response:
        follow_client(request)
        result = await run_in_threadpool(service.store.withdraw, referral_id, service.now_epoch())
        if result is None:
            return JSONResponse({"detail": "unknown referral"}, status_code=404)
        return JSONResponse({"referral_id": referral_id, "status": "withdrawn"}, status_code=200)

    @app.get("/v1/referral-events")
    async def referral_events(
        request: Request,
        after: str | None = Query(default=None, max_length=64),
        limit: int = Query(default=100, ge=1, le=1000),
    ) -> Response:
        follow_client(request)
        after_seq = _parse_cursor(after)
        if after_seq is None:
            return _error(
                422, ["query", "after"], "not a cursor returned by this server", "value_error"
            )
        if config.simulate_on_read:
            await run_in_threadpool(service.simulator.advance, service.clock.now())
        events = await run_in_threadpool(service.store.list_events, after_seq, limit)
        if events:
            next_cursor = str(events[-1].seq)
            if len(events) >= 2 and service.faults.redeliver():
                next_cursor = str(events[len(events) // 2 - 1].seq)
        else:
            next_cursor = after if after else START_CURSOR
        return JSONResponse({"events": [e.as_api() for e in events], "next_cursor": next_cursor})

    # ------------------------------------------------------------------ admin routes
    @app.get("/_admin/health")
    async def admin_health() -> dict[str, Any]:
        return {"ok": True, "pid": os.getpid()}

    @app.get("/_admin/referrals")
    async def admin_referrals() -> dict[str, Any]:
        return {"referrals": await run_in_threadpool(service.store.list_referrals)}

    @app.get("/_admin/referrals/{referral_id}")
    async def admin_referral(referral_id: str) -> Response:
        rows = await run_in_threadpool(service.store.list_referrals, referral_id)
        if not rows:
            return JSONResponse({"detail": "unknown referral"}, status_code=404)
        return JSONResponse(rows[0])

    @app.get("/_admin/requests")
    async def admin_requests() -> dict[str, Any]:
        return {"requests": await run_in_threadpool(service.store.request_log)}

    @app.get("/_admin/faults")
    async def admin_get_faults() -> dict[str, Any]:
        return service.faults.settings()

    @app.post("/_admin/faults")
    async def admin_set_faults(update: FaultUpdate) -> Response:
        changes = update.model_dump(exclude_unset=True)
        seed = changes.pop("seed", None)
        try:
            settings = service.faults.update(changes)
        except ValueError as exc:
            return _error(422, ["body"], str(exc), "value_error")
        if seed is not None:
            service.faults.reseed(seed)
        return JSONResponse(settings)

    @app.post("/_admin/simulate")
    async def admin_simulate(until: str | None = Query(default=None)) -> Response:
        if until is None:
            moment = service.clock.now()
        else:
            parsed = _parse_until(until)
            if parsed is None:
                return _error(
                    422,
                    ["query", "until"],
                    "must be an ISO 8601 datetime with offset",
                    "value_error",
                )
            moment = parsed
        emitted = await run_in_threadpool(service.simulator.advance, moment)
        return JSONResponse({"emitted": emitted, "until": moment.isoformat()})

    @app.get("/_admin/clock")
    async def admin_get_clock() -> dict[str, Any]:
        return service.clock.describe()

    @app.post("/_admin/clock")
    async def admin_set_clock(update: ClockUpdate) -> dict[str, Any]:
        service.clock.set(update.now, update.offset_seconds)
        return service.clock.describe()

    @app.get("/_admin/stats")
    async def admin_stats() -> dict[str, Any]:
        return {
            "counters": service.faults.counters_snapshot(),
            "store": await run_in_threadpool(service.store.counts),
        }

    @app.post("/_admin/reset")
    async def admin_reset() -> dict[str, Any]:
        await run_in_threadpool(service.reset)
        return {"ok": True}

    app.add_middleware(OutreachMiddleware, service=service)
    return app
