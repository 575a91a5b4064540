"""
### Upstream routing: consented non-charge cases to the outreach organisation

Runs whenever the nightly load publishes `upstream_loaded_calls` (and on manual trigger).
Eligibility is one SQL view, `core.eligible_case`: current clearance is not
`cleared_by_charge` **and** current consent is `given`.

1. **plan_referrals**: the outbox `routing.referral` follows the current calls (new eligible
   cases inside the referral window -> pending, outside it -> expired, never sent; charged or
   consent changed before any send -> cancelled; withdrawn after delivery, or no longer
   sendable after a send without a confirmed answer -> withdrawal requested).
2. **deliver_referrals**: POST /v1/referrals with `Idempotency-Key` = referral id, through the
   one retry policy (5xx / timeouts / drops: backoff with full jitter; 429: `Retry-After`, not
   an attempt; 401/403: the task fails at once and alerts); 409 / 422 park the referral with
   the field names (no values).
3. **propagate_withdrawals**: POST /v1/referrals/{id}/withdrawal for every requested
   withdrawal (200: deleted at the server; 404: it never held it; both audited).
4. **sync_referral_events**: pulls /v1/referral-events from the stored cursor; publishes
   `upstream_referral_events` (the outcomes DAG rebuilds on it).

**Re-try parked referrals**: *Trigger* with `retry_parked` = true and, optionally, a list of
`referral_ids` (empty = all parked). Every disclosure is on `routing.disclosure_audit`.
The service: Airflow connection `upstream_outreach` (HTTP, token as password), else
`UPSTREAM_OUTREACH_URL` / `UPSTREAM_OUTREACH_TOKEN`.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Param, dag, task

from upstream.airflow.assets import LOADED_CALLS, REFERRAL_EVENTS
from upstream.airflow.dag_args import default_args
from upstream.airflow.tags import Tag, dag_tags
from upstream.settings import load_settings

SETTINGS = load_settings()


@task
def plan_referrals(**context) -> dict:
    from upstream.airflow.tasks import routing

    return routing.plan_referrals(context)


@task
def deliver_referrals(**context) -> dict:
    from upstream.airflow.tasks import routing

    return routing.deliver_referrals(context)


@task(trigger_rule="all_done")
def propagate_withdrawals(**context) -> dict:
    from upstream.airflow.tasks import routing

    return routing.propagate_withdrawals(context)


@task(trigger_rule="all_done", outlets=[REFERRAL_EVENTS])
def sync_referral_events(**context) -> int:
    from upstream.airflow.tasks import routing

    return routing.sync_referral_events(context)


@dag(
    dag_id="upstream_routing",
    schedule=[LOADED_CALLS],
    start_date=datetime(2024, 5, 1, tzinfo=SETTINGS.timezone),
    catchup=False,
    max_active_runs=1,  # one sender at a time: the outbox is the single source of truth
    doc_md=__doc__,
    tags=dag_tags(Tag.ROUTING, Tag.OUTREACH),
    params={
        "retry_parked": Param(False, type="boolean",
                              description="Move parked referrals back to pending first."),
        "referral_ids": Param([], type="array", items={"type": "string"},
                              description="Only these parked referrals (empty: all)."),
    },
    default_args=default_args(),
)
def upstream_routing():
    planned = plan_referrals()
    delivered = deliver_referrals()
    withdrawn = propagate_withdrawals()
    synced = sync_referral_events()
    planned >> delivered >> withdrawn >> synced


upstream_routing()
