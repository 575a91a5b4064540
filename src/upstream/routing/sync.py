"""Pull what happened to referrals (GET /v1/referral-events) from the stored cursor.

Events are delivered at least once; each page and the cursor after it are stored in one
statement (include/sql/routing/sync_store_page.sql), so a crash never skips or doubles one.
"""

from __future__ import annotations

import logging

from upstream.routing.client import OutreachClient, http_client
from upstream.routing.errors import TransientDeliveryError
from upstream.routing.outbox import replay_now
from upstream.routing.policy import RetryPolicy
from upstream.settings import Settings, load_settings
from upstream.warehouse import db

log = logging.getLogger(__name__)

FEED = "referral-events"
PAGE_SIZE = 1000
EVENT_TYPES = frozenset({"received", "contact_attempted", "contacted", "engaged", "declined",
                         "unreachable", "withdrawn", "closed"})


def sync_events(settings: Settings | None = None, url: str | None = None,
                max_pages: int = 10_000, *, client: OutreachClient | None = None,
                policy: RetryPolicy | None = None,
                use_airflow_connection: bool = False) -> int:
    """Store new events idempotently; returns how many were new."""
    settings = settings or load_settings()
    policy = policy or RetryPolicy.from_settings(settings)
    stored = skipped = 0
    own_client = client is None
    try:
        with db.connect(url, role=db.ROUTER) as conn:
            if own_client:  # a replay reads the events up to the extracts' "now"
                client = http_client(settings, use_airflow=use_airflow_connection,
                                     date=replay_now(conn, settings))
            row = conn.execute(db.read_sql("routing/sync_cursor_get.sql"), {"feed": FEED}).fetchone()
            cursor = row["cursor"] if row else None
            conn.commit()
            for _ in range(max_pages):
                answer = policy.run(lambda c=cursor: client.events(c, PAGE_SIZE),
                                    what="the referral events")
                if answer.status != 200 or not isinstance(answer.body, dict):
                    raise TransientDeliveryError(
                        f"referral events could not be read ({answer.describe()}); "
                        "the cursor is kept")
                events = answer.body.get("events") or []
                next_cursor = answer.body.get("next_cursor", cursor)
                good = [e for e in events if isinstance(e, dict)
                        and e.get("type") in EVENT_TYPES and e.get("event_id")
                        and e.get("referral_id") and e.get("occurred_at")]
                skipped += len(events) - len(good)
                with conn.transaction():
                    stored += conn.execute(db.read_sql("routing/sync_store_page.sql"), {
                        "event_ids": [str(e["event_id"]) for e in good],
                        "referral_ids": [str(e["referral_id"]) for e in good],
                        "types": [e["type"] for e in good],
                        "occurred": [e["occurred_at"] for e in good],
                        "feed": FEED,
                        "cursor": None if next_cursor is None else str(next_cursor),
                    }).fetchone()["stored"]
                if not events:
                    break
                cursor = next_cursor
    finally:
        if own_client and client is not None:
            client.close()
    if skipped:
        log.warning("skipped %s event(s) of unknown type or without an id", skipped)
    log.info("referral events: %s new", stored)
    return stored
