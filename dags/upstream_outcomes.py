"""
### Upstream outcomes: the program-monitoring tables and their published views

Runs whenever the nightly load publishes `upstream_loaded_calls` or routing's status sync
publishes `upstream_referral_events` (so the day's outreach events are in), every day at 06:00
America/Toronto, and on manual trigger.

**rebuild_outcome_tables** recomputes every table in schema `outcomes` from `core`, `routing`
and `ops` (calls by day/month and zone, the referral funnel, timeliness, repeat police contact
by cohort, data-quality history) and replaces their contents in **one transaction**: readers of
the `published` views see the previous build until it commits, then the new one. Deterministic:
the same data gives the same tables; repeat-contact windows count only once fully elapsed by
the reference date (the latest call's date).

The views in schema `published` (role `upstream_analyst`) hide counts of 1-4 and, by
complementary suppression, any cell that could be recovered from a published total. Definitions
and caveats: `docs/measuring.md`. Safe to re-run at any time.

**check_contact_service_level** counts, per agency, open referrals delivered more than 48 hours
ago without a contact and warns the data team when the count passes
`UPSTREAM_UNCONTACTED_48H_ALERT` (counts only).
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from upstream.airflow.assets import LOADED_CALLS, REFERRAL_EVENTS
from upstream.airflow.dag_args import default_args
from upstream.airflow.tags import Tag, dag_tags
from upstream.settings import load_settings

SETTINGS = load_settings()


@task
def rebuild_outcome_tables(**context) -> dict:
    from upstream.airflow.tasks import outcomes

    return outcomes.rebuild_outcome_tables(context)


@task
def check_contact_service_level(**context) -> dict:
    from upstream.airflow.tasks import outcomes

    return outcomes.check_contact_service_level(context)


@dag(
    dag_id="upstream_outcomes",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 6 * * *", timezone=str(SETTINGS.timezone)),
        assets=LOADED_CALLS | REFERRAL_EVENTS,
    ),
    start_date=datetime(2024, 5, 1, tzinfo=SETTINGS.timezone),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=dag_tags(Tag.OUTCOMES, Tag.MONITORING),
    default_args=default_args(),
)
def upstream_outcomes():
    rebuild_outcome_tables() >> check_contact_service_level()


upstream_outcomes()
