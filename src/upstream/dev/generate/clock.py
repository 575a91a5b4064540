"""Local time for the synthetic agencies: day bounds, UTC/local conversion, delivery time.

Arithmetic happens in UTC (Python's same-tzinfo arithmetic is wall-clock and breaks on DST
days); values are shown in the agencies' local time with the correct offset.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

TZ = ZoneInfo("America/Toronto")  # the agencies' local time zone (contract: Windsor)


def day_bounds(d: date) -> tuple[datetime, datetime]:
    """Start and end of a local day, in UTC (23, 24 or 25 hours apart)."""
    start = datetime.combine(d, time(), tzinfo=TZ).astimezone(UTC)
    end = datetime.combine(d + timedelta(days=1), time(), tzinfo=TZ).astimezone(UTC)
    return start, end


def local(ts: datetime) -> datetime:
    # Arithmetic happens in UTC: Python's same-tzinfo arithmetic is wall-clock and breaks on
    # DST days. Values are then shown in local time with the correct offset.
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=TZ)
    return ts.astimezone(UTC).astimezone(TZ)


def utc(ts: datetime) -> datetime:
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=TZ)
    return ts.astimezone(UTC)


def default_generated_at(extract_date: date, hour: int = 1) -> datetime:
    # Round-trip through UTC so a wall time skipped by DST (02:05 in spring) is shown as the
    # real local time with its real offset.
    return local(datetime.combine(extract_date + timedelta(days=1), time(hour, 5), tzinfo=TZ))

