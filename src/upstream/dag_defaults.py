"""What every Upstream DAG shares: owner, retries with exponential backoff, the data-team alert.

Import-light (DAG files import it at parse time).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from upstream.notify import DataTeamNotifier


def default_args(*, retry_delay: timedelta = timedelta(minutes=2),
                 max_retry_delay: timedelta = timedelta(minutes=30),
                 resolve_extract_date: Callable | None = None) -> dict:
    return {
        "owner": "upstream-data-team",
        "retries": 3,
        "retry_delay": retry_delay,
        "retry_exponential_backoff": True,
        "max_retry_delay": max_retry_delay,
        "on_failure_callback": DataTeamNotifier(resolve_extract_date=resolve_extract_date),
    }
