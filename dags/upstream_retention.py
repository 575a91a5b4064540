"""
### Upstream retention: delete what the program no longer needs, and record that it did

Daily at 05:30 America/Toronto (after the night's load and routing), and on manual trigger.
Five independent tasks, each idempotent (a second run the same day deletes and logs nothing):

1. **purge_contacts**: contact details in `contact.victim_contact` go once the referral is
   **withdrawn** or **closed** by the outreach side, and in any case
   `UPSTREAM_CONTACT_RETENTION_DAYS` (default 90) after they were stored or referred, whatever
   the referral's state (also for cases never referred). Each purge of a referred case is a
   `contact_purged` row on the append-only `routing.disclosure_audit` (outcome: why).
2. **purge_quarantine**: `ops.quarantine_row` older than `UPSTREAM_QUARANTINE_RETENTION_DAYS`
   (default 365). Per-file totals stay on `ops.extract_file`.
3. **delete_extract_files**: the CSV of every delivery whose load finished more than
   `UPSTREAM_FILE_RETENTION_DAYS` (default 30) ago; only when its bytes are the recorded ones
   (a newer delivery of that day is never touched). The manifest and the `ops.extract_file`
   row stay; `data_file_deleted_at` is set. After this, that day can no longer be reprocessed.
4. **purge_task_logs**: Airflow task log files older than `UPSTREAM_TASK_LOG_RETENTION_DAYS`
   (default 30) under the base log folder (`AIRFLOW__LOGGING__BASE_LOG_FOLDER`); never follows
   a symlink. Remote log stores are not touched: give them their own lifecycle rule.

5. **purge_data_docs**: GX validation results and Data Docs pages older than
   `UPSTREAM_GX_RESULT_RETENTION_DAYS` (default 90), and their lines in each agency's Data
   Docs index (which lists at most the last 200 validations in any case).

Every purge that removed something adds one line (kind, count, cutoff; no ids, no values) to
the append-only `ops.retention_log`:
`SELECT * FROM ops.retention_log ORDER BY purge_id DESC LIMIT 20`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import CronTriggerTimetable, dag, task

from upstream.airflow.dag_args import default_args
from upstream.airflow.tags import Tag, dag_tags
from upstream.settings import load_settings

SETTINGS = load_settings()


@task
def purge_contacts(**context) -> dict:
    from upstream.airflow.tasks import retention

    return retention.purge_contacts(context)


@task
def purge_quarantine(**context) -> dict:
    from upstream.airflow.tasks import retention

    return retention.purge_quarantine(context)


@task
def delete_extract_files(**context) -> dict:
    from upstream.airflow.tasks import retention

    return retention.delete_extract_files(context)


@task
def purge_task_logs(**context) -> dict:
    from upstream.airflow.tasks import retention

    return retention.purge_task_logs(context)


@task
def purge_data_docs(**context) -> dict:
    from upstream.airflow.tasks import retention

    return retention.purge_data_docs(context)


@dag(
    dag_id="upstream_retention",
    schedule=CronTriggerTimetable("30 5 * * *", timezone=str(SETTINGS.timezone)),
    start_date=datetime(2024, 5, 1, tzinfo=SETTINGS.timezone),
    catchup=False,
    max_active_runs=1,
    doc_md=__doc__,
    tags=dag_tags(Tag.RETENTION, Tag.PRIVACY),
    default_args=default_args(retry_delay=timedelta(minutes=5),
                              max_retry_delay=timedelta(hours=1)),
)
def upstream_retention():
    # Independent: one failing purge must not hold back the others.
    purge_contacts()
    purge_quarantine()
    delete_extract_files()
    purge_task_logs()
    purge_data_docs()


upstream_retention()
