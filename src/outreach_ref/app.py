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
see ``service.client_date`` and ``service.Clock.follow``.
* ``GET  /_admin/stats``                  counters (responses per route/status, faults) + counts
* ``POST /_admin/reset``                  delete all data, reset counters, faults and clock

Privacy: request bodies are never logged; the access log line is method, path, status and
duration; validation errors carry ``loc``, ``msg`` and ``type`` only (never the value).

This module only wires the parts: ``service`` (store, simulator, faults, clock),
``middleware`` (auth, faults, access log), ``routes_contract`` and ``routes_admin``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from .config import ServiceConfig
from .middleware import OutreachMiddleware, classify
from .models import safe_errors
from .routes_admin import admin_routes
from .routes_contract import contract_routes
from .service import START_CURSOR, Clock, OutreachService, canonical_hash

__all__ = [
    "START_CURSOR", "Clock", "OutreachMiddleware", "OutreachService", "canonical_hash",
    "classify", "create_app",
]  # fmt: skip


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

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": safe_errors(list(exc.errors()))}, status_code=422)

    app.include_router(contract_routes(service))
    app.include_router(admin_routes(service))
    app.add_middleware(OutreachMiddleware, service=service)
    return app
