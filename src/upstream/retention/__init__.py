"""Retention: delete what the program no longer needs, and keep a record that it was deleted.

Five purges, each idempotent and each taking the clock (``now``) explicitly, so tests (and a
catch-up after an outage) can move it:

* :func:`purge_contacts` — ``contact.victim_contact`` rows whose referral was withdrawn or
  closed by the outreach side, or that are older than ``UPSTREAM_CONTACT_RETENTION_DAYS``
  (default 90; counted from the first of stored_at and the referral's planned_at), whatever
  the referral's state and also when the case was never referred. Each purge of a referred
  case is a ``contact_purged`` row on the append-only ``routing.disclosure_audit``.
* :func:`purge_quarantine` — ``ops.quarantine_row`` older than
  ``UPSTREAM_QUARANTINE_RETENTION_DAYS`` (default 365).
* :func:`delete_extract_files` — the data file (CSV) of every delivery whose load finished
  longer ago than ``UPSTREAM_FILE_RETENTION_DAYS`` (default 30); the manifest and the
  ``ops.extract_file`` row stay, ``data_file_deleted_at`` is set.
* :func:`purge_task_logs` — Airflow task log files older than
  ``UPSTREAM_TASK_LOG_RETENTION_DAYS`` (default 30) under the base log folder.
* :func:`purge_data_docs` — GX validation results and Data Docs pages older than
  ``UPSTREAM_GX_RESULT_RETENTION_DAYS`` (default 90).

Contacts and quarantine are here; files in ``files.py``, task logs and Data Docs in ``logs.py``,
settings, clock and the purge log in ``common.py``.

Every purge that removed something writes one line to the append-only ``ops.retention_log``
(kind, count, cutoff; never an id or a value). A run that finds nothing writes nothing, so a
second run is a no-op in the database as on disk.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from upstream.retention.common import (
    RetentionError,
    _clock,
    _log_purge,
    contact_retention_days,
    data_docs_retention_days,
    file_retention_days,
    quarantine_retention_days,
    task_log_folder,
    task_log_retention_days,
)
from upstream.retention.files import delete_extract_files
from upstream.retention.logs import purge_data_docs, purge_task_logs
from upstream.warehouse import db

log = logging.getLogger(__name__)

# Where a contact purge happened, for the audit's recipient column (nothing was disclosed).
PURGE_RECIPIENT = "none: local deletion"

__all__ = [
    "PURGE_RECIPIENT", "RetentionError", "contact_retention_days", "data_docs_retention_days",
    "delete_extract_files", "file_retention_days", "purge_contacts", "purge_data_docs",
    "purge_quarantine", "purge_task_logs", "quarantine_retention_days", "task_log_folder",
    "task_log_retention_days",
]


# --- contact details -------------------------------------------------------------------------


def purge_contacts(now: datetime | None = None, *, url: str | None = None) -> dict:
    """Delete contact details no referral needs any more. Returns counts by reason."""
    now = _clock(now)
    days = contact_retention_days()
    older_than = now - timedelta(days=days)
    older_outcome = f"older than {days} days"
    counts = {"purged": 0, "withdrawn": 0, "closed": 0, "older": 0, "without_referral": 0,
              "audited": 0}
    with db.connect(url, role=db.ROUTER) as conn, conn.transaction():
        rows = conn.execute(db.read_sql("retention/purge_contacts.sql"),
                            {"now": now, "older_than": older_than,
                             "older_outcome": older_outcome,
                             "recipient": PURGE_RECIPIENT}).fetchall()
        for row in rows:
            key = "older" if row["reason"] == older_outcome else row["reason"]
            counts[key] += row["n"]
            counts["purged"] += row["n"]
            if not row["referred"]:
                counts["without_referral"] += row["n"]
            counts["audited"] = row["audited"]
        if counts["purged"]:
            detail = (f"withdrawn {counts['withdrawn']}, closed {counts['closed']}, "
                      f"{older_outcome} {counts['older']}; {counts['audited']} on "
                      f"routing.disclosure_audit, {counts['without_referral']} without a referral")
            _log_purge(conn, "victim_contact", counts["purged"], days, older_than, detail)
    log.info("contact details purged: %s (clock %s, retention %s days)", counts,
             now.isoformat(), days)
    return counts


# --- quarantine records ----------------------------------------------------------------------


def purge_quarantine(now: datetime | None = None, *, url: str | None = None) -> dict:
    """Delete quarantine records older than the retention period. Returns the count."""
    now = _clock(now)
    days = quarantine_retention_days()
    older_than = now - timedelta(days=days)
    with db.connect(url, role=db.LOADER) as conn, conn.transaction():
        purged = conn.execute(db.read_sql("retention/purge_quarantine.sql"),
                              {"older_than": older_than}).rowcount
        if purged:
            _log_purge(conn, "quarantine_row", purged, days, older_than, None)
    log.info("quarantine records purged: %s (older than %s)", purged, older_than.isoformat())
    return {"purged": purged}
