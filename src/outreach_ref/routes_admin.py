"""Test-only admin routes under ``/_admin`` (bearer token: ``config.admin_token`` or
``token``; answered 404 by the middleware when ``admin_enabled`` is false). See app.py for the list.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from .models import ClockUpdate, FaultUpdate
from .service import OutreachService, error_response


def _parse_until(raw: str) -> datetime | None:
    text = raw.strip()
    if " " in text and "T" in text:  # an unencoded "+" in a query string became a space
        text = text.replace(" ", "+")
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


def admin_routes(service: OutreachService) -> APIRouter:
    """The /_admin routes, bound to one service instance."""
    router = APIRouter()

    @router.get("/_admin/health")
    async def admin_health() -> dict[str, Any]:
        return {"ok": True, "pid": os.getpid()}

    @router.get("/_admin/referrals")
    async def admin_referrals() -> dict[str, Any]:
        return {"referrals": await run_in_threadpool(service.store.list_referrals)}

    @router.get("/_admin/referrals/{referral_id}")
    async def admin_referral(referral_id: str) -> Response:
        rows = await run_in_threadpool(service.store.list_referrals, referral_id)
        if not rows:
            return JSONResponse({"detail": "unknown referral"}, status_code=404)
        return JSONResponse(rows[0])

    @router.get("/_admin/requests")
    async def admin_requests() -> dict[str, Any]:
        return {"requests": await run_in_threadpool(service.store.request_log)}

    @router.get("/_admin/faults")
    async def admin_get_faults() -> dict[str, Any]:
        return service.faults.settings()

    @router.post("/_admin/faults")
    async def admin_set_faults(update: FaultUpdate) -> Response:
        changes = update.model_dump(exclude_unset=True)
        seed = changes.pop("seed", None)
        try:
            settings = service.faults.update(changes)
        except ValueError as exc:
            return error_response(422, ["body"], str(exc), "value_error")
        if seed is not None:
            service.faults.reseed(seed)
        return JSONResponse(settings)

    @router.post("/_admin/simulate")
    async def admin_simulate(until: str | None = Query(default=None)) -> Response:
        if until is None:
            moment = service.clock.now()
        else:
            parsed = _parse_until(until)
            if parsed is None:
                return error_response(
                    422,
                    ["query", "until"],
                    "must be an ISO 8601 datetime with offset",
                    "value_error",
                )
            moment = parsed
        emitted = await run_in_threadpool(service.simulator.advance, moment)
        return JSONResponse({"emitted": emitted, "until": moment.isoformat()})

    @router.get("/_admin/clock")
    async def admin_get_clock() -> dict[str, Any]:
        return service.clock.describe()

    @router.post("/_admin/clock")
    async def admin_set_clock(update: ClockUpdate) -> dict[str, Any]:
        service.clock.set(update.now, update.offset_seconds)
        return service.clock.describe()

    @router.get("/_admin/stats")
    async def admin_stats() -> dict[str, Any]:
        return {
            "counters": service.faults.counters_snapshot(),
            "store": await run_in_threadpool(service.store.counts),
        }

    @router.post("/_admin/reset")
    async def admin_reset() -> dict[str, Any]:
        await run_in_threadpool(service.reset)
        return {"ok": True}

    return router
