"""Consent-gated referrals to the outreach organisation (shared/contracts/outreach-api-v1.md).

plan (outbox.py) -> deliver (delivery.py) -> withdraw (withdrawal.py) -> sync events
(sync.py). Every call to the service goes through one `OutreachClient` (client.py; an
in-memory fake in fake.py) and one `RetryPolicy` (policy.py). What leaves is built from a
whitelist (payload.py); a 422's field names are read from any common shape (problems.py).
"""

from upstream.routing.client import Answer, HttpOutreachClient, OutreachClient
from upstream.routing.delivery import DeliveryReport, deliver_referrals
from upstream.routing.errors import (
    OutreachAuthError,
    OutreachProtocolError,
    RoutingError,
    TransientDeliveryError,
)
from upstream.routing.outbox import plan_referrals, retry_parked
from upstream.routing.payload import CONTACT_FIELDS, DISCLOSED_FIELDS, build_payload, triage
from upstream.routing.policy import RetryPolicy
from upstream.routing.sync import sync_events
from upstream.routing.withdrawal import WithdrawalReport, propagate_withdrawals

__all__ = [
    "CONTACT_FIELDS", "DISCLOSED_FIELDS", "Answer", "DeliveryReport", "HttpOutreachClient",
    "OutreachAuthError", "OutreachClient", "OutreachProtocolError", "RetryPolicy",
    "RoutingError", "TransientDeliveryError", "WithdrawalReport", "build_payload",
    "deliver_referrals", "plan_referrals", "propagate_withdrawals", "retry_parked",
    "sync_events", "triage",
]
