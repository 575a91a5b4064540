"""The routing DAG's task bodies (upstream_routing): plan the outbox, deliver, withdraw, sync.

Routing errors become task failures through `@task_body`: a transient one is retried by
Airflow; a 401/403 or an answer outside the contract fails at once (retrying cannot help) and
the data team's failure alert says why.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict

from upstream.airflow.body import task_body

log = logging.getLogger(__name__)


@task_body
def plan_referrals(context: Mapping) -> dict:
    from upstream import routing

    params = context.get("params") or {}
    retried = 0
    if params.get("retry_parked"):
        ids = params.get("referral_ids") or None
        retried = routing.retry_parked(ids)
        log.info("data team re-try: %s parked referral(s) back to pending", retried)
    counts = routing.plan_referrals()
    return {"outbox": counts, "retried_parked": retried}


@task_body
def deliver_referrals(context: Mapping) -> dict:
    from upstream import routing

    report = routing.deliver_referrals(use_airflow_connection=True)
    # referral ids are keyed hashes, not personal data; reasons name fields, never values
    return {"delivered": report.delivered, "replayed": report.replayed, "parked": report.parked,
            "attempts": report.attempts, "parked_reasons": report.parked_reasons}


@task_body
def propagate_withdrawals(context: Mapping) -> dict:
    from upstream import routing

    return asdict(routing.propagate_withdrawals(use_airflow_connection=True))


@task_body
def sync_referral_events(context: Mapping) -> int:
    from upstream import routing

    return routing.sync_events(use_airflow_connection=True)
