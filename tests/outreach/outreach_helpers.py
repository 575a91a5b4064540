"""Helpers shared by the reference Outreach server's tests."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import httpx

TOKEN = "test-token-3b1f"
SEED = 20240601


def make_referral(referral_id: str | None = None, **overrides: Any) -> dict[str, Any]:
    """A valid referral body; ``overrides`` replace top-level keys (deep-copied)."""
    body: dict[str, Any] = {
        "referral_id": referral_id or f"r_{uuid.uuid4().hex[:16]}",
        "agency_code": "WPS",
        "incident_ref": "WPS-2024-004211",
        "call_received_at": "2024-06-01T22:14:00-04:00",
        "call_type": "ipv_dispute_verbal",
        "contact": {
            "given_name": "Avelina",
            "family_name": "Brightwater",
            "phone": "+15195550100",
            "email": None,
            "preferred_contact": "phone",
            "safe_contact_notes": "weekday mornings only, no voicemail",
            "language": "en",
        },
        "triage": {
            "priority": "urgent",
            "flags": ["children_present", "repeat_calls_180d"],
            "prior_ipv_calls_365d": 2,
        },
        "consent": {"recorded_at": "2024-06-01T22:40:00-04:00", "officer_id": "W1234"},
    }
    body.update(copy.deepcopy(overrides))
    return body


def post_referral(
    client: httpx.Client, body: dict[str, Any], key: str | None = "same"
) -> httpx.Response:
    headers = {}
    if key == "same":
        headers["Idempotency-Key"] = body["referral_id"]
    elif key is not None:
        headers["Idempotency-Key"] = key
    return client.post("/v1/referrals", json=body, headers=headers)


def all_events(
    client: httpx.Client, limit: int = 1000, after: str | None = None
) -> tuple[list[dict], str]:
    """Follow ``next_cursor`` until an empty page; returns (events, final cursor)."""
    events: list[dict] = []
    cursor = after
    for _ in range(10_000):
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["after"] = cursor
        response = client.get("/v1/referral-events", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        if not page["events"]:
            assert page["next_cursor"] == (cursor if cursor is not None else page["next_cursor"])
            return events, page["next_cursor"]
        events.extend(page["events"])
        cursor = page["next_cursor"]
    raise AssertionError("event feed never caught up")
