"""Delete the data files (CSV) of deliveries past UPSTREAM_FILE_RETENTION_DAYS, only when their
bytes are the recorded ones and no loader holds the file's lock."""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import stat
from datetime import datetime, timedelta
from pathlib import Path

from upstream.contract import AGENCY_CODE_RE
from upstream.ingest import COPY_BLOCK, LOAD_LOCK_NAMESPACE, delivery_paths
from upstream.retention.common import RetentionError, _clock, _log_purge, file_retention_days
from upstream.settings import Settings, load_settings
from upstream.warehouse import db

log = logging.getLogger("upstream.retention")


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
        raise RetentionError(f"{counts['errors']} data file(s) past retention could not be "
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
    lock = {"namespace": LOAD_LOCK_NAMESPACE, "file_id": file_id}
    got = conn.execute(db.read_sql("retention/try_file_lock.sql"), lock).fetchone()["ok"]
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
        conn.execute(db.read_sql("retention/unlock_file_lock.sql"), lock)
        conn.commit()
    log.info("deleted data file of extract file %s (%s, finished before the cutoff)", file_id,
             path.name)
    return "deleted"


class _Replaced(Exception):
    """The file at the path changed after it was hashed; roll back the mark."""

