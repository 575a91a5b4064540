"""Retention: delete what the program no longer needs, and keep a record that it was deleted.

Four purges, each idempotent and each taking the clock (``now``) explicitly, so tests (and a
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

Every purge that removed something writes one line to the append-only ``ops.retention_log``
(kind, count, cutoff; never an id or a value). A run that finds nothing writes nothing, so a
second run is a no-op in the database as on disk.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

from upstream.contract import AGENCY_CODE_RE
from upstream.ingest import COPY_BLOCK, LOAD_LOCK_NAMESPACE, delivery_paths
from upstream.settings import Settings, load_retention, load_settings
from upstream.warehouse import db

log = logging.getLogger(__name__)

# Where a contact purge happened, for the audit's recipient column (nothing was disclosed).
PURGE_RECIPIENT = "none: local deletion"


# --- settings --------------------------------------------------------------------------------
# Read by upstream.settings (settings.retention); see the README table.


def _at_least_one_day(name: str, days: int) -> int:
    if days < 1:
        raise ValueError(f"setting {name} must be at least 1 day, got {days}")
    return days


def contact_retention_days() -> int:
    """UPSTREAM_CONTACT_RETENTION_DAYS (default 90)."""
    return load_retention().contact_days


def quarantine_retention_days() -> int:
    """UPSTREAM_QUARANTINE_RETENTION_DAYS (default 365)."""
    return load_retention().quarantine_days


def task_log_retention_days() -> int:
    """UPSTREAM_TASK_LOG_RETENTION_DAYS (default 30)."""
    return load_retention().task_log_days


def data_docs_retention_days() -> int:
    """UPSTREAM_GX_RESULT_RETENTION_DAYS (default 90): GX results and Data Docs pages."""
    return load_retention().gx_result_days


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


# --- helpers ---------------------------------------------------------------------------------


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


# --- extract files ---------------------------------------------------------------------------


def _hash_open_file(fd: int) -> str:
    digest = hashlib.sha256()
    while block := os.read(fd, COPY_BLOCK):
        digest.update(block)
    return digest.hexdigest()


def _expected_path(landing_dir: Path, row: dict) -> Path | None:
    """landing/<agency>/<file name>, only when both are what the contract allows."""
    agency = row["agency_code"]
    if not AGENCY_CODE_RE.fullmatch(agency or ""):
        return None
    path = delivery_paths(landing_dir, agency, row["extract_date"])[0]
    return path if row["file_name"] == path.name else None


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def delete_extract_files(now: datetime | None = None, settings: Settings | None = None, *,
                         url: str | None = None) -> dict:
    """Delete the data files of deliveries finished longer ago than the file retention period.

    A file is deleted only when it is a regular file (not a symlink) at the contract's path and
    its bytes are the ones recorded (sha256): a newer delivery of the same day under the same
    name is never touched. The loader's per-file advisory lock is taken first, so a file being
    (re)loaded right now is skipped. Manifests and load records stay.
    """
    now = _clock(now)
    settings = settings or load_settings()
    days = file_retention_days(settings)
    older_than = now - timedelta(days=days)
    landing = settings.landing.dir
    counts = {"deleted": 0, "absent": 0, "other_bytes": 0, "busy": 0, "skipped": 0,
              "errors": 0}
    with db.connect(url or db.warehouse_url(settings), role=db.LOADER) as conn:
        due = conn.execute(db.read_sql("retention/extract_files_due.sql"),
                           {"older_than": older_than}).fetchall()
        conn.commit()
        mark_sql = db.read_sql("retention/mark_extract_file_deleted.sql")
        by_path: dict[Path, list[dict]] = {}
        for row in due:
            path = _expected_path(landing, row)
            if path is None:
                log.warning("extract file %s: recorded name is not a contract name; skipped",
                            row["file_id"])
                counts["skipped"] += 1
                continue
            by_path.setdefault(path, []).append(row)
        for path, rows in by_path.items():
            try:
                outcome = _delete_one(conn, path, rows, older_than, mark_sql)
            except OSError as exc:  # e.g. no permission: the others still go
                conn.rollback()
                log.error("could not delete the data file %s (%s)", path.name,
                          errno.errorcode.get(exc.errno or 0, type(exc).__name__))
                outcome = "errors"
            counts[outcome] += 1
        if counts["deleted"]:
            with conn.transaction():
                _log_purge(conn, "extract_file", counts["deleted"], days, older_than,
                           "data files deleted from the landing area; manifests and load "
                           "records kept")
    log.info("extract files: %s (finished before %s)", counts, older_than.isoformat())
    if counts["errors"]:
        raise RuntimeError(f"{counts['errors']} data file(s) past retention could not be "
                           "deleted; see the task log")
    return counts


def _delete_one(conn, path: Path, rows: list[dict], older_than: datetime, mark_sql: str) -> str:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return "absent"
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a symlink: not a delivery, not ours to delete
            log.warning("%s is a symlink; skipped", path.name)
            return "skipped"
        raise
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):
            return "skipped"
        sha = _hash_open_file(fd)
    finally:
        os.close(fd)
    match = next((r for r in rows if r["sha256"] == sha), None)
    if match is None:
        return "other_bytes"  # a later delivery of that day under the same name
    file_id = match["file_id"]
    got = conn.execute("SELECT pg_try_advisory_lock(%s, %s) AS ok",
                       (LOAD_LOCK_NAMESPACE, file_id)).fetchone()["ok"]
    conn.commit()
    if not got:
        return "busy"
    try:
        with conn.transaction():
            marked = conn.execute(mark_sql,
                                  {"file_id": file_id, "older_than": older_than}).fetchone()
            if marked is None:
                return "busy"  # picked up for a reload since it was listed
            # The same bytes still (not replaced between hashing and now)?
            if _identity(os.lstat(path)) != _identity(opened):
                raise _Replaced
            os.unlink(path)
    except _Replaced:
        return "other_bytes"
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s, %s)", (LOAD_LOCK_NAMESPACE, file_id))
        conn.commit()
    log.info("deleted data file of extract file %s (%s, finished before the cutoff)", file_id,
             path.name)
    return "deleted"


class _Replaced(Exception):
    """The file at the path changed after it was hashed; roll back the mark."""


# --- Airflow task logs -----------------------------------------------------------------------


def _refuse_root(root: Path) -> str | None:
    if root == Path(root.anchor):
        return "is a filesystem root"
    if root == Path.home().resolve():
        return "is a home directory"
    return None


def _stat_entry(name: str, dirfd: int, counts: dict) -> os.stat_result | None:
    """The entry's own stat, or None when it is gone or a symlink (counted, never followed)."""
    try:
        st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        counts["symlinks_skipped"] += 1
        return None
    return st


def purge_task_logs(now: datetime | None = None, *, folder: Path | None = None,
                    url: str | None = None) -> dict:
    """Delete task log files (regular files only) older than the retention period by mtime,
    then the directories that became empty. Never follows a symlink, never leaves the folder.
    """
    now = _clock(now)
    days = task_log_retention_days()
    older_than = now - timedelta(days=days)
    cutoff = older_than.timestamp()
    configured = Path(folder) if folder is not None else task_log_folder()
    counts = {"files": 0, "dirs": 0, "symlinks_skipped": 0}
    errors: list[OSError] = []
    if not configured.is_dir():
        log.warning("task log folder %s does not exist; nothing to purge", configured)
        return counts
    root = configured.resolve()  # the configured folder itself may be a symlink
    refused = _refuse_root(root)
    if refused:
        raise ValueError(f"task log folder {root} {refused}; refusing to purge it")
    emptied: set[str] = set()
    for dirpath, dirnames, filenames, dirfd in os.fwalk(root, topdown=False,
                                                        onerror=errors.append,
                                                        follow_symlinks=False):
        for name in filenames:
            st = _stat_entry(name, dirfd, counts)
            if st is not None and stat.S_ISREG(st.st_mode) and st.st_mtime < cutoff:
                try:
                    os.unlink(name, dir_fd=dirfd)
                except FileNotFoundError:
                    continue
                except OSError as exc:  # e.g. no permission: the others still go
                    errors.append(exc)
                    continue
                counts["files"] += 1
                emptied.add(dirpath)
        for name in dirnames:
            st = _stat_entry(name, dirfd, counts)
            if st is None:
                continue
            child = os.path.join(dirpath, name)
            # Only directories this run emptied, or empty ones untouched for the whole period:
            # a directory a running task just created for its log is left alone.
            if child not in emptied and st.st_mtime >= cutoff:
                continue
            try:
                os.rmdir(name, dir_fd=dirfd)
            except OSError as exc:
                if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT, errno.ENOTDIR):
                    errors.append(exc)
                continue
            counts["dirs"] += 1
            emptied.add(dirpath)
    for err in errors[:5]:
        log.warning("task log folder: %s on %s", errno.errorcode.get(err.errno or 0, "error"),
                    getattr(err, "filename", None) or "an entry")
    if counts["files"]:
        with db.connect(url, role=db.LOADER) as conn, conn.transaction():
            _log_purge(conn, "task_log", counts["files"], days, older_than,
                       f"{counts['files']} log file(s), {counts['dirs']} empty folder(s)")
    log.info("task logs purged: %s (older than %s)", counts, older_than.isoformat())
    if errors:
        raise RuntimeError(f"task log purge: {len(errors)} entr(y/ies) could not be read or "
                           "deleted; see the task log")
    return counts



# --- GX validation results and Data Docs ---------------------------------------------------


def purge_data_docs(now: datetime | None = None, *, gx_dir: Path | None = None,
                    url: str | None = None) -> dict:
    """Delete GX validation results and Data Docs pages older than the retention period (by
    mtime) and drop them from the Data Docs index (upstream.validate.datadocs), so neither the disk nor
    a night's validation grows with history."""
    from upstream.validate import datadocs

    now = _clock(now)
    days = data_docs_retention_days()
    older_than = now - timedelta(days=days)
    counts = datadocs.purge(Path(gx_dir) if gx_dir is not None else load_settings().validate.gx_dir,
                            older_than)
    items = counts["pages"] + counts["results"]
    if items:
        with db.connect(url, role=db.LOADER) as conn, conn.transaction():
            _log_purge(conn, "data_docs", items, days, older_than,
                       f"{counts['pages']} Data Docs page(s), {counts['results']} GX result(s)")
    log.info("Data Docs and GX results purged: %s (older than %s)", counts, older_than.isoformat())
    return counts
