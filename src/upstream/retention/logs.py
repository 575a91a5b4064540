"""Delete Airflow task log files and GX results / Data Docs pages past their retention."""

from __future__ import annotations

import errno
import logging
import os
import stat
from datetime import datetime, timedelta
from pathlib import Path

from upstream.retention.common import (
    RetentionError,
    _clock,
    _log_purge,
    data_docs_retention_days,
    task_log_folder,
    task_log_retention_days,
)
from upstream.settings import load_settings
from upstream.warehouse import db

log = logging.getLogger("upstream.retention")


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
        raise RetentionError(f"task log purge: {len(errors)} entr(y/ies) could not be read or "
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
