"""Which extract day a DAG run is for, whatever started it (schedule, backfill, manual, asset)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo


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
    from upstream.config import load_settings

    dag_run = context.get("dag_run")
    return extract_date_for_run(
        context.get("params"),
        context.get("logical_date"),
        getattr(dag_run, "run_after", None),
        load_settings().timezone,
    )
