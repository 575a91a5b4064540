"""
### Upstream nightly: pull, verify, validate and load each agency's IPV call extract

Runs at 03:00 America/Toronto for the **previous day's** extract of every agency in
`UPSTREAM_AGENCIES`, one task group per agency (one failing agency does not block the others):

1. **wait_for_manifest**: reschedule-mode sensor (holds no worker slot); the manifest is written
   after the data file is complete. A day's deadline is its nightly run time (03:00 the next
   morning) plus `UPSTREAM_MANIFEST_DEADLINE_SECONDS`: once it has passed, a missing manifest
   fails at once with an alert naming the folder; only a day whose deadline is ahead waits.
2. **verify_manifest**: extract_version, agency, date, file name, sha256.
3. **validate_and_load**: COPY into a staging table, Great Expectations suite (one expectation
   per contract rule, Data Docs path in the log), quarantine of bad rows (refuse the file only
   when both `UPSTREAM_QUARANTINE_MAX_SHARE` and `UPSTREAM_QUARANTINE_MAX_ROWS` are exceeded),
   one set-based merge honouring `record_version`, staging dropped. Validation and load share
   one task because the raw file may exist in the database only while this step runs.
   Publishes the `upstream_loaded_calls` Asset.

Reprocess a day: *Trigger DAG* with the `extract_date` param (a loaded file is a no-op; a
corrected re-extract replaces the day). It starts at once: runs of different days may be
active together (no `max_active_runs=1`), and a per-agency database lock
(`upstream.warehouse.locks.agency_load_lock`) makes one agency's loads merge one at a time. Backfill:
`airflow backfill create --dag-id upstream_nightly --from-date ... --to-date ...` or the UI's
backfill dialog. Any extract day loads, however old: `start_date` lies far back (with
`catchup=False` the schedule only ever creates the latest night), so no run is created without
tasks and reported "success" for a day before it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, TaskGroup, dag, task
from airflow.timetables.trigger import CronTriggerTimetable

from upstream.airflow.assets import LOADED_CALLS
from upstream.airflow.dag_args import default_args
from upstream.airflow.dates import NIGHTLY_RUN_TIME
from upstream.airflow.tags import Tag, dag_tags
from upstream.settings import load_settings

SETTINGS = load_settings()
if not SETTINGS.agencies:  # without a task group every run would "succeed" having done nothing
    raise ValueError("UPSTREAM_AGENCIES names no agency: the nightly DAG would load nothing")


def _extract_date(context) -> str | None:
    from upstream.airflow.dates import extract_date_from_context

    return extract_date_from_context(context).isoformat()


@task.sensor(
    mode="reschedule",
    poke_interval=SETTINGS.landing.manifest_poke_seconds,
    # The deadline is enforced by the poke itself (see upstream.airflow.dates.manifest_deadline);
    # this is only a backstop for a run that is never looked at again.
    timeout=timedelta(days=7).total_seconds(),
    retries=0,
)
def wait_for_manifest(agency: str, **context) -> bool:
    from upstream.airflow.tasks import nightly

    return nightly.manifest_arrived(agency, context)


@task
def verify_manifest(agency: str, **context) -> dict:
    from upstream.airflow.tasks import nightly

    return nightly.verify_manifest(agency, context)


@task
def validate_and_load(agency: str, **context) -> dict:
    from upstream.airflow.tasks import nightly

    return nightly.validate_and_load(agency, context)


@task(outlets=[LOADED_CALLS])
def publish_loaded_calls(load: dict) -> dict:
    from upstream.airflow.tasks import nightly

    return nightly.publish_loaded_calls(load)


@dag(
    dag_id="upstream_nightly",
    schedule=CronTriggerTimetable(
        f"{NIGHTLY_RUN_TIME.minute} {NIGHTLY_RUN_TIME.hour} * * *", timezone=str(SETTINGS.timezone)),
    # Far back on purpose: Airflow creates no task instances for a logical date before
    # start_date and reports such a run "success" (issue 14). catchup=False keeps the schedule
    # to the latest night.
    start_date=datetime(1970, 1, 1, tzinfo=SETTINGS.timezone),
    catchup=False,
    doc_md=__doc__,
    tags=dag_tags(Tag.INGEST, Tag.NIGHTLY),
    params={
        "extract_date": Param(
            None, type=["null", "string"], format="date",
            description="Extract day to (re)process, YYYY-MM-DD. Empty: the day before the run.",
        ),
    },
    default_args=default_args(resolve_extract_date=_extract_date),
)
def upstream_nightly():
    for agency in SETTINGS.agencies:
        with TaskGroup(group_id=agency, tooltip=f"{agency} extract"):
            arrived = wait_for_manifest.override(task_id="wait_for_manifest")(agency)
            verified = verify_manifest.override(task_id="verify_manifest")(agency)
            loaded = validate_and_load.override(task_id="validate_and_load")(agency)
            published = publish_loaded_calls.override(task_id="publish_loaded_calls")(loaded)
            arrived >> verified >> loaded >> published


upstream_nightly()
