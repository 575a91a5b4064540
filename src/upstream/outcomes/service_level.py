"""Contact against service levels: tell the data team when referrals wait too long.

The outcome tables (``outcomes.contact_service_level``) report, per month of the call, the
share of referrals first contacted within 24 h, 48 h and 7 days of delivery. That build is
deterministic (judged against the reference date), so it cannot say what is overdue *now*.
This check can: it counts, per agency, the open referrals (still delivered, no outcome reported
yet) delivered more than 48 hours before ``now`` without a contact, and sends one warning per
agency whose count passes ``UPSTREAM_UNCONTACTED_48H_ALERT`` (default 10; 0 turns the alert
off). Counts only: no referral id, incident id or anything about a person leaves the database.

Runs as role upstream_outcomes (it reads routing.referral and routing.referral_event).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from upstream.alerts import notify
from upstream.settings import load_settings
from upstream.warehouse import db

log = logging.getLogger(__name__)

STEP = "contact_service_level"


def alert_level() -> int:
    """UPSTREAM_UNCONTACTED_48H_ALERT (default 10, 0 = off; read by upstream.settings): alert
    when more referrals than this are overdue."""
    return load_settings().outcomes.uncontacted_48h_alert


def uncontacted_48h(url: str | None = None, now: datetime | None = None) -> dict[str, int]:
    """Open referrals without a contact 48 h after delivery, per agency (only agencies with any).

    `now` defaults to the wall clock, or in a replay (UPSTREAM_ROUTING_CLOCK=extracts, the demo)
    to the routing clock that stamped `delivered_at`: else every demo referral from 2024 would
    be "overdue" against today."""
    with db.connect(url, role=db.OUTCOMES) as conn:
        if now is None:
            from upstream.routing.outbox import replay_now
            from upstream.settings import load_settings

            now = replay_now(conn, load_settings()) or datetime.now(UTC)
        rows = conn.execute(db.read_sql("service/uncontacted_48h.sql"), {"now": now}).fetchall()
    return {r["agency_code"]: r["uncontacted"] for r in rows}


def check_uncontacted_48h(url: str | None = None, now: datetime | None = None,
                          level: int | None = None) -> dict[str, Any]:
    """Count overdue referrals and warn the data team for every agency above the level.

    Returns ``{"level", "uncontacted_48h": {agency: n}, "alerts": {agency: channel outcomes}}``;
    an agency at or below the level, or a level of 0, sends nothing (and says so in the log).
    """
    level = alert_level() if level is None else level
    counts = uncontacted_48h(url, now)
    alerts: dict[str, dict[str, str]] = {}
    for agency, n in counts.items():
        if level <= 0 or n <= level:
            continue
        alert = notify.build_alert(
            agency=agency, extract_date=None, step=STEP, severity="warning",
            outcome="service level missed",
            reason=(f"{n} referrals delivered more than 48 hours ago have no contact yet "
                    f"(alert level {level})"),
            run_url=None)
        alerts[agency] = notify.send_alert(alert)
    log.info("referrals without contact 48 h after delivery: %s (alert level %s%s); alerts: %s",
             counts or "none", level, ", off" if level <= 0 else "", sorted(alerts) or "none")
    return {"level": level, "uncontacted_48h": counts, "alerts": alerts}
