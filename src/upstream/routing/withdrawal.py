"""Withdrawals: tell the outreach side to delete contact details it may hold.

Planning requests a withdrawal for (a) a delivered referral whose consent was withdrawn and
(b) any referral that was sent at least once without a confirmed answer and is no longer
sendable (consent withdrawn, charge laid, out of the window). The answer resolves what the
server held: 200 = it held the referral and has deleted the contact details; 404 = it never
had it (recorded, not an error). Both are on the audit log.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from upstream.routing.client import OutreachClient, http_client
from upstream.routing.errors import OutreachProtocolError, TransientDeliveryError
from upstream.routing.outbox import audit, replay_now
from upstream.routing.policy import RetryPolicy
from upstream.settings import Settings, load_settings
from upstream.warehouse import db

log = logging.getLogger(__name__)


@dataclass
class WithdrawalReport:
    withdrawn: int = 0       # 200: the server held it and deleted the contact details
    never_held: int = 0      # 404: the server never had it
    unconfirmed: int = 0     # no definitive answer: retried next run

    @property
    def confirmed(self) -> int:
        return self.withdrawn + self.never_held


def _outcome(status: int, row: dict) -> str:
    unconfirmed_send = row["status"] != "delivered"
    if status == 200:
        return ("200 withdrawn: the server held it after an unconfirmed send"
                if unconfirmed_send else "200 withdrawn")
    return ("404 never held: the unconfirmed send had not reached the server"
            if unconfirmed_send else "404 unknown at outreach side")


def propagate_withdrawals(settings: Settings | None = None, url: str | None = None, *,
                          client: OutreachClient | None = None,
                          policy: RetryPolicy | None = None,
                          use_airflow_connection: bool = False) -> WithdrawalReport:
    settings = settings or load_settings()
    policy = policy or RetryPolicy.from_settings(settings)
    report = WithdrawalReport()
    own_client = client is None
    try:
        with db.connect(url, role=db.ROUTER) as conn:
            if own_client:
                client = http_client(settings, use_airflow=use_airflow_connection,
                                     date=replay_now(conn, settings))
            due = conn.execute(db.read_sql("routing/due_withdrawals.sql")).fetchall()
            conn.commit()
            for row in due:
                rid = row["referral_id"]
                answer = policy.run(lambda rid=rid: client.withdraw(rid), what="a withdrawal")
                if answer.unknown or answer.throttled:
                    report.unconfirmed += 1
                    continue
                if answer.status not in (200, 404):
                    raise OutreachProtocolError(
                        f"outreach service answered {answer.status} to a withdrawal; check the "
                        "upstream_outreach connection (or UPSTREAM_OUTREACH_URL)")
                with conn.transaction():
                    audit(conn, rid, "withdrawal", _outcome(answer.status, row),
                          consent_recorded_at=row["consent_recorded_at"],
                          consent_officer_id=row["consent_officer_id"])
                    conn.execute(db.read_sql("routing/mark_withdrawn.sql"),
                                 {"held": answer.status == 200, "referral_id": rid})
                if answer.status == 200:
                    report.withdrawn += 1
                else:
                    report.never_held += 1
    finally:
        if own_client and client is not None:
            client.close()
    log.info("withdrawals: %s confirmed (%s deleted at the server, %s never held there), "
             "%s unconfirmed", report.confirmed, report.withdrawn, report.never_held,
             report.unconfirmed)
    if report.unconfirmed:
        raise TransientDeliveryError(
            f"{report.unconfirmed} withdrawal(s) not confirmed; retried next run")
    return report
