"""Deliver due referrals: POST /v1/referrals, exactly once as the outreach side sees it.

A referral's id is a keyed hash of the incident and every send carries it as Idempotency-Key.
Each send is on the audit log (and counted in `attempts`) before its bytes leave, and the
referral stays `pending` until a definitive answer is recorded: a crash between send and
record is repaired by the next send (a 200 replay), and `attempts > 0` tells planning that the
server may hold the referral if the case stops being eligible (then it is withdrawn).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from upstream.routing.client import Answer, OutreachClient, http_client
from upstream.routing.errors import OutreachProtocolError, TransientDeliveryError
from upstream.routing.outbox import RECIPIENT, audit, replay_now, window
from upstream.routing.payload import DISCLOSED_FIELDS, build_payload
from upstream.routing.policy import RetryPolicy
from upstream.routing.problems import describe_422
from upstream.settings import Settings, load_settings
from upstream.warehouse import db

log = logging.getLogger(__name__)

MAX_PENDING_PAUSE_SECONDS = 3600.0


@dataclass
class DeliveryReport:
    delivered: int = 0
    replayed: int = 0
    parked: int = 0
    still_pending: int = 0
    skipped_no_contact: int = 0
    attempts: int = 0
    parked_reasons: dict[str, str] = field(default_factory=dict)


def _park(conn, referral_id: str, reason: str, report: DeliveryReport, basis: dict) -> None:
    with conn.transaction():
        audit(conn, referral_id, "disclosure", f"parked: {reason}", fields=DISCLOSED_FIELDS,
              **basis)
        conn.execute(db.read_sql("routing/mark_parked.sql"),
                     {"reason": reason, "referral_id": referral_id})
    report.parked += 1
    report.parked_reasons[referral_id] = reason


def _send_one(client: OutreachClient, policy: RetryPolicy, conn, row: dict,
              settings: Settings, report: DeliveryReport, stamp: datetime | None = None) -> str:
    """Send until a definitive answer or the policy's budget is spent. Returns the status.
    `stamp`: the replay clock's now for `delivered_at` (None: the database's now())."""
    referral_id = row["referral_id"]
    basis = {"consent_recorded_at": row["consent_recorded_at"],
             "consent_officer_id": row["consent_officer_id"]}
    payload = build_payload(row, settings)

    def record_attempt() -> None:
        with conn.transaction():
            conn.execute(db.read_sql("routing/record_send_attempt.sql"), {
                "referral_id": referral_id, "fields": list(DISCLOSED_FIELDS),
                "recipient": RECIPIENT, **basis})
        report.attempts += 1

    answer: Answer = policy.run(lambda: client.send(payload), what="a referral",
                                before_attempt=record_attempt)
    if answer.status in (200, 201):
        outcome = "201 received" if answer.status == 201 else "200 replay"
        with conn.transaction():
            audit(conn, referral_id, "disclosure", outcome, fields=DISCLOSED_FIELDS, **basis)
            conn.execute(db.read_sql("routing/mark_delivered.sql"),
                         {"record_version": row["record_version"], "referral_id": referral_id,
                          "delivered_at": stamp})
        report.delivered += 1
        report.replayed += answer.status == 200
        return "delivered"
    if answer.status == 409:
        _park(conn, referral_id, "409 conflict: this referral id was accepted before with "
              "another payload", report, basis)
        return "parked"
    if answer.status == 422:
        _park(conn, referral_id, describe_422(answer.body), report, basis)
        return "parked"
    if answer.unknown or answer.throttled:
        failures = policy.max_attempts
        with conn.transaction():
            conn.execute(db.read_sql("routing/mark_unknown.sql"), {
                "error": answer.describe(), "referral_id": referral_id,
                "pause_seconds": min(MAX_PENDING_PAUSE_SECONDS,
                                     policy.backoff_seconds * 2 ** failures)})
        report.still_pending += 1
        return "pending"
    # 404 / 405 / 400 ...: the URL or the server is wrong for this contract: stop, alert.
    raise OutreachProtocolError(
        f"outreach service answered {answer.status} to a referral; check the upstream_outreach "
        "connection (or UPSTREAM_OUTREACH_URL)")


def deliver_referrals(settings: Settings | None = None, url: str | None = None, *,
                      client: OutreachClient | None = None,
                      policy: RetryPolicy | None = None,
                      use_airflow_connection: bool = False) -> DeliveryReport:
    settings = settings or load_settings()
    policy = policy or RetryPolicy.from_settings(settings)
    report = DeliveryReport()
    due_sql = db.read_sql("routing/due_referrals.sql")
    own_client = client is None
    try:
        with db.connect(url, role=db.ROUTER) as conn:
            # a replay (routing clock `extracts`) delivers on the extracts' calendar
            stamp = replay_now(conn, settings)
            conn.commit()
            if own_client:
                client = http_client(settings, use_airflow=use_airflow_connection, date=stamp)
            while True:
                rows = conn.execute(due_sql, {"batch": settings.outreach.batch_size,
                                              **window(conn, settings)}).fetchall()
                conn.commit()
                rows = [r for r in rows if r["referral_id"] not in report.parked_reasons]
                progressed = False
                for row in rows:
                    if not row["has_contact"]:
                        with conn.transaction():
                            conn.execute(db.read_sql("routing/mark_parked.sql"), {
                                "reason": "contact details missing locally",
                                "referral_id": row["referral_id"]})
                        report.skipped_no_contact += 1
                        continue
                    outcome = _send_one(client, policy, conn, row, settings, report, stamp)
                    progressed = progressed or outcome != "pending"
                if not rows or not progressed:
                    break
    finally:
        if own_client and client is not None:
            client.close()
    log.info("referral delivery: %s delivered (%s replays), %s parked, %s still pending, "
             "%s requests", report.delivered, report.replayed, report.parked,
             report.still_pending, report.attempts)
    if report.still_pending:
        raise TransientDeliveryError(
            f"{report.still_pending} referral(s) got no definitive answer after "
            f"{policy.max_attempts} attempts each; they stay pending and are retried")
    return report
