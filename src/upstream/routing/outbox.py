"""The outbox `routing.referral`: brought in line with the current calls, and its audit log.

Planning is set-based SQL (include/sql/routing/plan/, run in file order in one transaction)
and idempotent: a rerun with unchanged calls and the same window changes nothing.
"""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta

from upstream.pseudonyms import hmac_pads
from upstream.settings import Settings, load_settings, pseudonym_key
from upstream.warehouse import db

log = logging.getLogger(__name__)

RECIPIENT = "outreach-api-v1"
PLAN_STEPS = ("01_new_referrals", "02_cancel_unsent", "03_withdraw_unconfirmed",
              "04_requeue_cancelled", "05_withdraw_delivered", "06_charged_after_delivery")


def routing_now(conn, settings: Settings) -> datetime:
    """"Now" for the referral window. `wall`: the clock. `extracts` (demo and replays of old
    extracts): the end of the local day of the newest call loaded, so a demo of 2024 nights routes as
    it would have on those nights."""
    if settings.routing.clock == "extracts":
        newest = conn.execute(db.read_sql("routing/newest_extract_day.sql"),
                              {"tz": settings.timezone.key}).fetchone()["day"]
        if newest is not None:
            return datetime.combine(newest + timedelta(days=1), time(0), settings.timezone)
    return datetime.now(settings.timezone)


def replay_now(conn, settings: Settings) -> datetime | None:
    """The routing clock's "now" when it is not the wall clock (`extracts`), else None.

    Replays stamp what they do with it: `delivered_at`, and the HTTP `Date` of every request
    to the outreach service (a server that follows its clients' calendar, like the reference
    service in the demo, then receives and works referrals on the extracts' days). In `wall`
    mode nothing changes: the database's now() and no `Date` header."""
    return routing_now(conn, settings) if settings.routing.clock == "extracts" else None


def window(conn, settings: Settings) -> dict[str, datetime]:
    """The referral window as bind parameters: a call is sendable when it was received on or
    after the program's launch (local midnight) and is at most referral_max_age_days old."""
    now = routing_now(conn, settings)
    return {"launch_at": datetime.combine(settings.program_launch_date, time(0),
                                          settings.timezone),
            "oldest_at": now - timedelta(days=settings.routing.referral_max_age_days)}


def audit(conn, referral_id: str, action: str, outcome: str, *, fields=(),
          consent_recorded_at=None, consent_officer_id=None) -> None:
    conn.execute(db.read_sql("routing/audit.sql"), {
        "referral_id": referral_id, "action": action, "fields": list(fields),
        "recipient": RECIPIENT, "consent_recorded_at": consent_recorded_at,
        "consent_officer_id": consent_officer_id, "outcome": outcome})


def plan_referrals(url: str | None = None, settings: Settings | None = None) -> dict[str, int]:
    """Outbox in line with the current calls and the referral window; returns counts by status."""
    settings = settings or load_settings()
    inner, outer = hmac_pads(pseudonym_key())
    with db.connect(url, role=db.ROUTER) as conn, conn.transaction():
        params = {"inner_key": inner, "outer_key": outer, **window(conn, settings)}
        for step in PLAN_STEPS:
            conn.execute(db.read_sql(f"routing/plan/{step}.sql"), params)
        counts = {r["status"]: r["n"] for r in conn.execute(db.read_sql("routing/outbox_counts.sql"))}
    log.info("referral outbox: %s", counts)
    if counts.get("expired"):
        log.info("%s eligible case(s) are outside the referral window (launch %s, at most %s "
                 "days old): never sent", counts["expired"], settings.program_launch_date,
                 settings.routing.referral_max_age_days)
    return counts


def retry_parked(referral_ids: list[str] | None, url: str | None = None) -> int:
    """Data team's re-try of parked referrals (all when ids is None): back to pending."""
    with db.connect(url, role=db.ROUTER) as conn, conn.transaction():
        return conn.execute(db.read_sql("routing/retry_parked.sql"), {"ids": referral_ids}).rowcount
