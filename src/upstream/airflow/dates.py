"""Which extract day a DAG run is for, whatever started it (schedule, backfill, manual, asset)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

# The nightly run for extract day D starts at this local time on day D+1 (the DAG's schedule).
NIGHTLY_RUN_TIME = time(3)


def nightly_logical_date(extract_date: date, tz: ZoneInfo | None = None) -> datetime:
    """The scheduled run that processes `extract_date` (03:00 local the next morning)."""
    if tz is None:
        from upstream.settings import load_settings

        tz = load_settings().timezone
    return datetime.combine(extract_date + timedelta(days=1), NIGHTLY_RUN_TIME, tzinfo=tz)


def manifest_deadline(extract_date: date, tz: ZoneInfo, deadline_seconds: int) -> datetime:
    """When a day's manifest is overdue: its nightly run time plus the manifest deadline.

    A run for a day whose deadline has passed (a reprocess, a backfill, a late start) does not
    wait for a missing file: it fails at once. Only a day whose deadline is ahead waits.
    """
    nightly = datetime.combine(extract_date + timedelta(days=1), NIGHTLY_RUN_TIME, tzinfo=tz)
    return nightly + timedelta(seconds=deadline_seconds)


def extract_date_for_run(params: Mapping | None, logical_date: datetime | None,
                         run_after: datetime | None, tz: ZoneInfo) -> date:
    """An explicit `extract_date` param wins; else the local day before the run's date.

    Scheduled and backfill runs have a logical_date (the nightly 03:00 local trigger); manual
    and asset-triggered runs in Airflow 3 may not, so fall back to run_after.
    """
    explicit = (params or {}).get("extract_date")
    if explicit:
        try:
            return date.fromisoformat(str(explicit))
        except ValueError:
            raise ValueError("param extract_date must be a date like 2024-06-01") from None
    anchor = logical_date or run_after
    if anchor is None:
        raise ValueError("run has neither an extract_date param nor a logical date")
    return anchor.astimezone(tz).date() - timedelta(days=1)


def extract_date_from_context(context: Mapping) -> date:
    from upstream.settings import load_settings

    dag_run = context.get("dag_run")
    return extract_date_for_run(
        context.get("params"),
        context.get("logical_date"),
        getattr(dag_run, "run_after", None),
        load_settings().timezone,
    )
