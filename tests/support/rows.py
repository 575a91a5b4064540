"""Extract rows and loads for routing tests: one builder instead of a copy per test file."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from upstream import ingest, routing
from upstream.dev import generate

TZ = ZoneInfo("America/Toronto")
ELIGIBLE = {"clearance_status": "cleared_otherwise_complainant_request", "charges_laid": 0,
            "consent_status": "given"}
CHARGED = {"clearance_status": "cleared_by_charge", "charges_laid": 1,
           "consent_status": "not_applicable"}


def row(n: int, day: date, *, version: int = 1, hour: int = 9, **overrides) -> dict:
    """Incident n's call on `day` (version `version`); contract-valid, eligible by default."""
    rng = random.Random(n)
    at = datetime(day.year, day.month, day.day, hour, 0, tzinfo=TZ) + timedelta(minutes=n)
    return generate.make_row(rng, "WPS", f"WPS-{day.year}-{n:06d}", at,
                             **{**ELIGIBLE, "record_version": version, **overrides})


def load(settings, day: date, rows: list[dict], agency: str = "WPS", **write_kw) -> None:
    """Write the day's extract (write_kw: generate.write_extract's options) and load it."""
    generate.write_extract(settings.landing.dir, agency, day, rows, **write_kw)
    result = ingest.load_extract(agency, day, settings)
    assert result.outcome == "loaded", result


def route(settings, **kw):
    """One routing run as the DAG does it: plan, deliver, withdraw (transient errors kept)."""
    routing.plan_referrals(settings=settings)
    try:
        delivered = routing.deliver_referrals(settings, **kw)
    except routing.TransientDeliveryError:
        delivered = None
    try:
        withdrawn = routing.propagate_withdrawals(settings, **kw)
    except routing.TransientDeliveryError:
        withdrawn = None
    return delivered, withdrawn


def route_strict(settings) -> routing.DeliveryReport:
    """One routing run that lets every error through: plan, deliver, withdraw; the delivery
    report (`route` keeps transient errors for tests that provoke them). Planning reads the
    settings from the environment, as the routing tests always have."""
    routing.plan_referrals()
    report = routing.deliver_referrals(settings)
    routing.propagate_withdrawals(settings)
    return report
