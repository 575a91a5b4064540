"""Consent-gated referrals to the outreach organisation (shared/contracts/outreach-api-v1.md).

plan -> deliver -> withdraw -> sync events. The outbox (routing.referral) makes delivery
exactly-once from the outreach side's point of view: a referral's id is a keyed hash of the
incident, every send carries it as Idempotency-Key, and it stays `pending` until an answer is
recorded, so a crash between send and record is repaired by the next send (a 200 replay).
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass, field
from datetime import datetime

import httpx

from upstream import db
from upstream.config import Settings, load_settings, outreach_token, pseudonym_key
from upstream.ingest import hmac_pads

log = logging.getLogger(__name__)

RECIPIENT = "outreach-api-v1"
CONTACT_FIELDS = ("given_name", "family_name", "phone", "email", "preferred_contact",
                  "safe_contact_notes", "language")
# Everything that ever leaves, by name (the contract's fields, nothing else).
DISCLOSED_FIELDS = (
    "referral_id", "agency_code", "incident_ref", "call_received_at", "call_type",
    *(f"contact.{f}" for f in CONTACT_FIELDS),
    "triage.priority", "triage.flags", "triage.prior_ipv_calls_365d",
    "consent.recorded_at", "consent.officer_id",
)
TRANSIENT_STATUSES = {500, 502, 503, 504}


class TransientDeliveryError(Exception):
    """Some referrals could not be delivered this run; they stay pending and are retried."""

    def __init__(self, public_message: str):
        super().__init__(public_message)
        self.public_message = public_message


@dataclass
class DeliveryReport:
    delivered: int = 0
    replayed: int = 0
    parked: int = 0
    still_pending: int = 0
    skipped_no_contact: int = 0
    attempts: int = 0
    parked_reasons: dict[str, str] = field(default_factory=dict)


# --- triage ----------------------------------------------------------------------------------


def triage(row: dict) -> dict:
    """Flags to help outreach workers order their day; never decides eligibility.

    urgent when any of: a weapon, major injury or death, a breach of order, 2+ prior IPV calls
    for the same victim in 180 days, escalation (more severe than every prior call in 365 days),
    or children present with any prior call in 365 days. Otherwise standard.
    """
    flags: list[str] = []
    if row["children_present"]:
        flags.append("children_present")
    if row["weapon"] in ("firearm", "knife", "other_weapon"):
        flags.append("weapon")
    if row["injury_level"] in ("minor", "major", "death"):
        flags.append("injury")
    if row["call_type"] == "ipv_breach_of_order":
        flags.append("breach_of_order")
    if row["prior_180d"] >= 1:
        flags.append("repeat_calls_180d")
    if row["prior_365d"] >= 1:
        flags.append("repeat_calls_365d")
    if row["max_prior_severity"] is not None and row["severity"] > row["max_prior_severity"]:
        flags.append("escalation")
    urgent = (
        "weapon" in flags
        or row["injury_level"] in ("major", "death")
        or "breach_of_order" in flags
        or row["prior_180d"] >= 2
        or "escalation" in flags
        or ("children_present" in flags and row["prior_365d"] >= 1)
    )
    return {"priority": "urgent" if urgent else "standard", "flags": flags,
            "prior_ipv_calls_365d": int(row["prior_365d"])}


def build_payload(row: dict, settings: Settings) -> dict:
    """The referral body: exactly the contract's fields, built from a whitelist."""
    tz = settings.timezone

    def iso(value: datetime | None) -> str | None:
        return value.astimezone(tz).isoformat() if value else None

    return {
        "referral_id": row["referral_id"],
        "agency_code": row["agency_code"],
        "incident_ref": row["incident_id"],
        "call_received_at": iso(row["call_received_at"]),
        "call_type": row["call_type"],
        "contact": {f: row[f] for f in CONTACT_FIELDS},
        "triage": triage(row),
        "consent": {"recorded_at": iso(row["consent_recorded_at"]),
                    "officer_id": row["consent_officer_id"]},
    }


# --- plan ------------------------------------------------------------------------------------


def plan_referrals(url: str | None = None) -> dict[str, int]:
    """Outbox in line with the current calls (db.read_sql('routing/plan_referrals.sql'))."""
    inner, outer = hmac_pads(pseudonym_key())
    statements = [s for s in db.read_sql("routing/plan_referrals.sql").split(";\n") if s.strip()]
    with db.connect(url, role=db.ROUTER) as conn, conn.transaction():
        for statement in statements:
            conn.execute(statement, {"inner_key": inner, "outer_key": outer})
        counts = {r["status"]: r["n"] for r in conn.execute(
            "SELECT status, count(*) AS n FROM routing.referral GROUP BY status")}
    log.info("referral outbox: %s", counts)
    return counts


def retry_parked(referral_ids: list[str] | None, url: str | None = None) -> int:
    """Data team's re-try of parked referrals (all when ids is None): back to pending."""
    with db.connect(url, role=db.ROUTER) as conn, conn.transaction():
        cur = conn.execute(
            "UPDATE routing.referral SET status = 'pending', attempts = 0, next_attempt_at = now(),"
            " status_reason = NULL WHERE status = 'parked'"
            " AND (%(ids)s::text[] IS NULL OR referral_id = ANY(%(ids)s::text[]))",
            {"ids": referral_ids})
        return cur.rowcount


# --- deliver ---------------------------------------------------------------------------------


def _client(settings: Settings) -> httpx.Client:
    return httpx.Client(
        base_url=settings.outreach_url,
        headers={"Authorization": f"Bearer {outreach_token()}"},
        timeout=settings.outreach_timeout_seconds,
    )


def _backoff(settings: Settings, attempt: int) -> float:
    # Exponential backoff with full jitter, capped at 30 s.
    return random.uniform(0, min(30.0, settings.outreach_backoff_seconds * 2 ** attempt))


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(60.0, max(0.0, float(response.headers.get("Retry-After", "1"))))
    except ValueError:
        return 1.0


def _audit(conn, referral_id: str, action: str, outcome: str, *, fields=(),
           consent_recorded_at=None, consent_officer_id=None) -> None:
    conn.execute(
        "INSERT INTO routing.disclosure_audit (referral_id, action, fields_disclosed, recipient,"
        " legal_basis, consent_recorded_at, consent_officer_id, outcome)"
        " VALUES (%s, %s, %s, %s, 'consent', %s, %s, %s)",
        (referral_id, action, list(fields), RECIPIENT, consent_recorded_at, consent_officer_id,
         outcome))


def _fields_of_422(response: httpx.Response) -> str:
    """Which field the server rejected: the `loc` of its errors, never a value."""
    try:
        detail = response.json().get("detail")
    except ValueError:
        return "unreadable 422 body"
    locs = []
    if isinstance(detail, list):
        for item in detail[:5]:
            if isinstance(item, dict) and isinstance(item.get("loc"), list):
                locs.append(".".join(str(p) for p in item["loc"] if p != "body"))
    return ", ".join(locs) or "field not named"


def _send_one(client: httpx.Client, conn, row: dict, payload: dict, settings: Settings,
              report: DeliveryReport) -> str:
    """Send until a definitive answer or the attempt budget is spent. Returns the status."""
    referral_id = row["referral_id"]
    basis = {"consent_recorded_at": row["consent_recorded_at"],
             "consent_officer_id": row["consent_officer_id"]}
    attempt = 0
    throttled = 0
    last_error = "no attempt"
    while attempt < settings.outreach_max_attempts:
        # Recorded before the bytes leave: a crash after sending still leaves a trace.
        with conn.transaction():
            _audit(conn, referral_id, "disclosure_attempt", "sending", fields=DISCLOSED_FIELDS,
                   **basis)
            conn.execute("UPDATE routing.referral SET attempts = attempts + 1 WHERE referral_id = %s",
                         (referral_id,))
        report.attempts += 1
        try:
            response = client.post("/v1/referrals", json=payload,
                                   headers={"Idempotency-Key": referral_id})
        except httpx.TransportError as exc:  # timeout, refused, dropped: nothing is known
            last_error = f"transport: {type(exc).__name__}"
            time.sleep(_backoff(settings, attempt))
            attempt += 1
            continue
        status = response.status_code
        if status in (200, 201):
            outcome = "201 received" if status == 201 else "200 replay"
            with conn.transaction():
                _audit(conn, referral_id, "disclosure", outcome, fields=DISCLOSED_FIELDS, **basis)
                conn.execute(
                    "UPDATE routing.referral SET status = 'delivered', delivered_at = now(),"
                    " delivered_version = %s, last_error = NULL, status_reason = NULL"
                    " WHERE referral_id = %s", (row["record_version"], referral_id))
            report.delivered += 1
            report.replayed += status == 200
            return "delivered"
        if status in (409, 422):
            reason = ("409 conflict: this referral id was accepted before with another payload"
                      if status == 409 else f"422 rejected field(s): {_fields_of_422(response)}")
            with conn.transaction():
                _audit(conn, referral_id, "disclosure", f"parked: {reason}",
                       fields=DISCLOSED_FIELDS, **basis)
                conn.execute("UPDATE routing.referral SET status = 'parked', status_reason = %s"
                             " WHERE referral_id = %s", (reason, referral_id))
            report.parked += 1
            report.parked_reasons[referral_id] = reason
            return "parked"
        if status == 429 and throttled < 20:
            throttled += 1
            time.sleep(_retry_after(response))
            continue  # throttling is not a failed attempt
        last_error = f"HTTP {status}"
        if status not in TRANSIENT_STATUSES and status != 429:
            # 401/403/404/...: our configuration is wrong; stop and tell the data team.
            raise TransientDeliveryError(
                f"outreach API answered {status} to a referral; check UPSTREAM_OUTREACH_URL/TOKEN")
        time.sleep(_backoff(settings, attempt))
        attempt += 1
    with conn.transaction():
        conn.execute(
            "UPDATE routing.referral SET last_error = %s,"
            " next_attempt_at = now() + make_interval(secs => %s) WHERE referral_id = %s",
            (last_error, min(3600.0, settings.outreach_backoff_seconds * 2 ** attempt), referral_id))
    report.still_pending += 1
    return "pending"


def deliver_referrals(settings: Settings | None = None, url: str | None = None) -> DeliveryReport:
    settings = settings or load_settings()
    report = DeliveryReport()
    due_sql = db.read_sql("routing/due_referrals.sql")
    with db.connect(url, role=db.ROUTER) as conn, _client(settings) as client:
        while True:
            rows = conn.execute(due_sql, {"batch": settings.outreach_batch_size}).fetchall()
            conn.commit()
            rows = [r for r in rows if r["referral_id"] not in report.parked_reasons]
            progressed = False
            for row in rows:
                if not row["has_contact"]:
                    reason = "contact details missing locally"
                    with conn.transaction():
                        conn.execute("UPDATE routing.referral SET status = 'parked',"
                                     " status_reason = %s WHERE referral_id = %s",
                                     (reason, row["referral_id"]))
                    report.skipped_no_contact += 1
                    continue
                outcome = _send_one(client, conn, row, build_payload(row, settings), settings, report)
                progressed = progressed or outcome != "pending"
            if not rows or not progressed:
                break
    log.info("referral delivery: %s delivered (%s replays), %s parked, %s still pending, "
             "%s attempts", report.delivered, report.replayed, report.parked,
             report.still_pending, report.attempts)
    if report.still_pending:
        raise TransientDeliveryError(
            f"{report.still_pending} referral(s) could not be delivered after "
            f"{settings.outreach_max_attempts} attempts each; they stay pending and are retried")
    return report


# --- withdrawal ------------------------------------------------------------------------------


def propagate_withdrawals(settings: Settings | None = None, url: str | None = None) -> int:
    """Tell the outreach side about withdrawn consent for delivered referrals."""
    settings = settings or load_settings()
    done = 0
    with db.connect(url, role=db.ROUTER) as conn, _client(settings) as client:
        due = conn.execute(
            "SELECT r.referral_id, c.consent_recorded_at, c.consent_officer_id"
            " FROM routing.referral r JOIN core.call c USING (agency_code, incident_id)"
            " WHERE r.status = 'delivered' AND r.withdrawal_requested_at IS NOT NULL"
            " AND r.withdrawn_at IS NULL ORDER BY r.referral_id").fetchall()
        conn.commit()
        failures = 0
        for row in due:
            rid = row["referral_id"]
            outcome = None
            for attempt in range(settings.outreach_max_attempts):
                try:
                    response = client.post(f"/v1/referrals/{rid}/withdrawal")
                except httpx.TransportError:
                    time.sleep(_backoff(settings, attempt))
                    continue
                if response.status_code in (200, 404):
                    outcome = ("200 withdrawn" if response.status_code == 200
                               else "404 unknown at outreach side")
                    break
                if response.status_code == 429:
                    time.sleep(_retry_after(response))
                    continue
                time.sleep(_backoff(settings, attempt))
            if outcome is None:
                failures += 1
                continue
            with conn.transaction():
                _audit(conn, rid, "withdrawal", outcome,
                       consent_recorded_at=row["consent_recorded_at"],
                       consent_officer_id=row["consent_officer_id"])
                conn.execute("UPDATE routing.referral SET status = 'withdrawn', withdrawn_at = now()"
                             " WHERE referral_id = %s", (rid,))
            done += 1
    if failures:
        raise TransientDeliveryError(f"{failures} withdrawal(s) not confirmed; retried next run")
    return done


# --- status sync -----------------------------------------------------------------------------

FEED = "referral-events"
EVENT_TYPES = {"received", "contact_attempted", "contacted", "engaged", "declined",
               "unreachable", "withdrawn", "closed"}


def sync_events(settings: Settings | None = None, url: str | None = None,
                max_pages: int = 10_000) -> int:
    """Pull /v1/referral-events from the stored cursor; store events idempotently."""
    settings = settings or load_settings()
    stored = 0
    with db.connect(url, role=db.ROUTER) as conn, _client(settings) as client:
        row = conn.execute("SELECT cursor FROM routing.sync_cursor WHERE feed = %s", (FEED,)).fetchone()
        cursor = row["cursor"] if row else None
        conn.commit()
        for _ in range(max_pages):
            params = {"limit": 1000}
            if cursor is not None:
                params["after"] = cursor
            response = None
            for attempt in range(settings.outreach_max_attempts):
                try:
                    response = client.get("/v1/referral-events", params=params)
                except httpx.TransportError:
                    response = None
                    time.sleep(_backoff(settings, attempt))
                    continue
                if response.status_code == 429:
                    time.sleep(_retry_after(response))
                    continue
                if response.status_code in TRANSIENT_STATUSES:
                    time.sleep(_backoff(settings, attempt))
                    continue
                break
            if response is None or response.status_code != 200:
                raise TransientDeliveryError(
                    f"referral events could not be read (last answer "
                    f"{getattr(response, 'status_code', 'none')}); the cursor is kept")
            body = response.json()
            events = body.get("events") or []
            next_cursor = body.get("next_cursor", cursor)
            good = [e for e in events if e.get("type") in EVENT_TYPES and e.get("event_id")]
            with conn.transaction():
                for e in good:
                    cur = conn.execute(
                        "INSERT INTO routing.referral_event (event_id, referral_id, event_type,"
                        " occurred_at) VALUES (%s, %s, %s, %s) ON CONFLICT (event_id) DO NOTHING",
                        (e["event_id"], e["referral_id"], e["type"], e["occurred_at"]))
                    stored += cur.rowcount
                if next_cursor is not None:
                    conn.execute(
                        "INSERT INTO routing.sync_cursor (feed, cursor) VALUES (%s, %s)"
                        " ON CONFLICT (feed) DO UPDATE SET cursor = EXCLUDED.cursor,"
                        " updated_at = now()", (FEED, str(next_cursor)))
            if len(good) != len(events):
                log.warning("skipped %s event(s) of unknown type", len(events) - len(good))
            if not events:
                break
            cursor = next_cursor
    log.info("referral events: %s new", stored)
    return stored
