"""What every purge shares: its settings (from upstream.settings), the clock, the purge log,
and the one error type whose message is safe to show (upstream.airflow.body)."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from upstream.settings import Settings, load_retention
from upstream.warehouse import db


class RetentionError(RuntimeError):
    """A purge that could not finish; the message names counts only (safe for alerts)."""

    def __init__(self, public_message: str):
        super().__init__(public_message)
        self.public_message = public_message


# --- settings --------------------------------------------------------------------------------
# Read by upstream.settings (the README table); "at least 1 day" is checked when a purge runs,
# so one bad retention period fails that purge only.


def _at_least_one_day(name: str, days: int) -> int:
    if days < 1:
        raise ValueError(f"setting {name} must be at least 1 day, got {days}")
    return days


def contact_retention_days() -> int:
    """UPSTREAM_CONTACT_RETENTION_DAYS (default 90)."""
    return _at_least_one_day("UPSTREAM_CONTACT_RETENTION_DAYS",
                             load_retention().contact_days)


def quarantine_retention_days() -> int:
    """UPSTREAM_QUARANTINE_RETENTION_DAYS (default 365)."""
    return _at_least_one_day("UPSTREAM_QUARANTINE_RETENTION_DAYS",
                             load_retention().quarantine_days)


def task_log_retention_days() -> int:
    """UPSTREAM_TASK_LOG_RETENTION_DAYS (default 30)."""
    return _at_least_one_day("UPSTREAM_TASK_LOG_RETENTION_DAYS",
                             load_retention().task_log_days)


def data_docs_retention_days() -> int:
    """UPSTREAM_GX_RESULT_RETENTION_DAYS (default 90): GX results and Data Docs pages."""
    return _at_least_one_day("UPSTREAM_GX_RESULT_RETENTION_DAYS",
                             load_retention().gx_result_days)


def file_retention_days(settings: Settings) -> int:
    """UPSTREAM_FILE_RETENTION_DAYS, read by upstream.settings (default 30)."""
    return _at_least_one_day("UPSTREAM_FILE_RETENTION_DAYS", settings.retention.file_days)


def task_log_folder() -> Path:
    """Airflow's base log folder: AIRFLOW__LOGGING__BASE_LOG_FOLDER, else Airflow's own
    configuration (airflow.cfg) when Airflow is installed, else $AIRFLOW_HOME/logs."""
    explicit = os.environ.get("AIRFLOW__LOGGING__BASE_LOG_FOLDER")
    if explicit:
        return Path(explicit)
    try:
        from airflow.configuration import conf
    except ImportError:
        conf = None
    if conf is not None:
        configured = conf.get("logging", "base_log_folder", fallback=None)
        if configured:
            return Path(configured)
    home = os.environ.get("AIRFLOW_HOME") or str(Path.home() / "airflow")
    return Path(home) / "logs"


def _clock(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now


def _log_purge(conn, kind: str, items: int, days: int, older_than: datetime,
               detail: str | None) -> None:
    conn.execute(db.read_sql("retention/log_purge.sql"),
                 {"kind": kind, "items": items, "retention_days": days,
                  "older_than": older_than, "detail": detail})

