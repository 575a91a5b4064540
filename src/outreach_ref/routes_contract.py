"""The contract routes of Outreach intake API v1 (bearer token: ``config.token``).

* ``POST /v1/referrals``                              create (idempotent on ``Idempotency-Key``)
* ``POST /v1/referrals/{referral_id}/withdrawal``     delete contact, stop contact, ``withdrawn``
* ``GET  /v1/referral-events?after=&limit=``          event feed, cursor = last ``seq``

Validation errors carry ``loc``, ``msg`` and ``type`` only (never the value).
"""

from __future__ import annotations

import json
from functools import partial

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from .models import ReferralIn, cross_field_errors, safe_errors
from .service import START_CURSOR, OutreachService, canonical_hash, error_response


def _parse_cursor(after: str | None) -> int | None:
    if after is None or after == "":
        return 0
    if not after.isascii() or not after.isdigit() or len(after) > 18:
        return None
    return int(after)


def contract_routes(service: OutreachService) -> APIRouter:
    """The /v1 routes, bound to one service instance."""
    config = service.config
    router = APIRouter()

    @router.post("/v1/referrals")
    async def create_referral(request: Request) -> Response:
        service.follow_client(request.headers)
        key = request.headers.get("idempotency-key")
        if key is None or not key.strip():
            return error_response(400, ["header", "Idempotency-Key"], "Field required", "missing")
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json" and not content_type.endswith("+json"):
            return error_response(
                415, ["header", "Content-Type"], "must be application/json", "content_type"
            )
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > config.max_body_bytes:
            return error_response(413, ["body"], "body too large", "too_large")
        body = await request.body()
        if len(body) > config.max_body_bytes:
            return error_response(413, ["body"], "body too large", "too_large")
        try:
            referral = ReferralIn.model_validate_json(body)
        except ValidationError as exc:
            return JSONResponse({"detail": safe_errors(exc, prefix=("body",))}, status_code=422)
        errors = cross_field_errors(referral)
        if errors:
            return JSONResponse({"detail": errors}, status_code=422)
        if key != referral.referral_id:
            return error_response(
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

    @router.post("/v1/referrals/{referral_id}/withdrawal")
    async def withdraw_referral(referral_id: str, request: Request) -> Response:
        service.follow_client(request.headers)
        result = await run_in_threadpool(service.store.withdraw, referral_id, service.now_epoch())
        if result is None:
            return JSONResponse({"detail": "unknown referral"}, status_code=404)
        return JSONResponse({"referral_id": referral_id, "status": "withdrawn"}, status_code=200)

    @router.get("/v1/referral-events")
    async def referral_events(
        request: Request,
        after: str | None = Query(default=None, max_length=64),
        limit: int = Query(default=100, ge=1, le=1000),
    ) -> Response:
        service.follow_client(request.headers)
        after_seq = _parse_cursor(after)
        if after_seq is None:
            return error_response(
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

    return router
