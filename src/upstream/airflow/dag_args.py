"""What every Upstream DAG shares: owner, retries with exponential backoff, the data-team alert.

Import-light (DAG files import it at parse time).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from upstream.alerts.notify import DataTeamNotifier
from upstream.settings import load_settings


def default_args(*, retry_delay: timedelta | None = None,
                 max_retry_delay: timedelta = timedelta(minutes=30),
                 resolve_extract_date: Callable | None = None) -> dict:
    if retry_delay is None:
        # first retry after 2 min by default; tests that kill a worker shorten it
        retry_delay = timedelta(seconds=load_settings().airflow.retry_delay_seconds)
    return {
        "owner": "upstream-data-team",
        "retries": 3,
        "retry_delay": retry_delay,
        "retry_exponential_backoff": True,
        "max_retry_delay": max_retry_delay,
        "on_failure_callback": DataTeamNotifier(resolve_extract_date=resolve_extract_date),
    }
