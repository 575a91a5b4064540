"""Bulk import of an agency's history: the nightly load's checks, in batches.

Every file goes through what `ingest.load_extract` does to it: the manifest checks
(`ingest.verify_manifest`), the header checks, COPY with the same refusals, the same typed
columns, rules and pseudonyms (include/sql/validate/typed_table.sql, one statement for both
paths), the same GX suite (`validation.validate_staged_file`), the
same quarantine and refusal share, and the nightly merge's statements. What changes is the unit
of work: one staging table, one typed pass and ONE GX checkpoint per batch of files, and one
merge per *segment* (consecutive files in extract-date order; a re-extract of a day already
loaded starts a new segment and supersedes first). A segment only adds versions, so merging it
at once leaves what merging its files night by night leaves (tests/integration/test_history.py
compares the two, corrections and re-extracts included).

Resumable: each segment's merge and its files' final status commit together; a file already
processed is recognised by ops.extract_file (agency, day, sha256) and skipped, so a rerun after
a kill continues where the last commit left off. An agency is imported under an exclusive
advisory lock that every nightly load of the agency takes shared
(`upstream.warehouse.locks.lock_agency`). Modules: progress.py (summary, progress), batch.py
(one batch: verify, register, stage, validate, merge by segment).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import date, timedelta
from pathlib import Path

from upstream import ingest
from upstream.ingest.history.batch import Batch
from upstream.ingest.history.progress import (
    ImportError_,
    ImportSummary,
    Progress,
    ProgressLogger,
)
from upstream.ingest.merge import analyze_core_tables
from upstream.settings import Settings, load_settings
from upstream.warehouse import db
from upstream.warehouse.locks import lock_agency, unlock_agency
from upstream.warehouse.sql import statement_folder

log = logging.getLogger(__name__)

# A batch is one COPY table, one typed pass and one GX checkpoint (about 1.5 s of GX whatever
# the size): big enough that GX is a small share, small enough that a kill loses little.
BATCH_FILES = 4000
BATCH_ROWS = 500_000

__all__ = ["BATCH_FILES", "BATCH_ROWS", "ImportError_", "ImportSummary", "Progress",
           "ProgressLogger", "import_history", "run_from_context"]


# --- planning -------------------------------------------------------------------------------


def _days(start: date, end: date) -> Iterator[date]:
    d = start
    while d <= end:
        yield d
        d += timedelta(days=1)


def _batches(days: list[date], landing: Path, agency: str, batch_files: int,
             batch_rows: int) -> Iterator[list[date]]:
    """Consecutive days, cut at batch_files files or about batch_rows rows (file sizes)."""
    batch: list[date] = []
    size = 0
    # ~300 bytes a row in generated extracts; only the cut point depends on it.
    limit = batch_rows * 300
    for d in days:
        batch.append(d)
        csv_path = ingest.delivery_paths(landing, agency, d)[0]
        size += csv_path.stat().st_size if csv_path.is_file() else 0
        if len(batch) >= batch_files or size >= limit:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


# --- the import -----------------------------------------------------------------------------


def import_history(start: date, end: date, agencies: Iterable[str] | None = None, *,
                   landing: Path | None = None, settings: Settings | None = None,
                   url: str | None = None, progress: Progress | None = None,
                   batch_files: int = BATCH_FILES, batch_rows: int = BATCH_ROWS,
                   workers: int | None = None) -> ImportSummary:
    """Import every extract of `agencies` from start to end (inclusive), oldest first.

    Up to `workers` agencies (default UPSTREAM_IMPORT_WORKERS) load at the same time, each on
    its own connection; one agency's files always load in date order on one connection."""
    settings = settings or load_settings()
    if landing is not None:
        settings = settings.with_changes(landing__dir=Path(landing).resolve())
    if end < start:
        raise ImportError_(f"--to {end.isoformat()} is before --from {start.isoformat()}")
    agencies = tuple(agencies or settings.agencies)
    from upstream.contract import AGENCY_CODE_RE

    bad = [a for a in agencies if not AGENCY_CODE_RE.match(a)]
    if bad:
        raise ImportError_(f"not an agency code (2-6 upper-case letters): {', '.join(bad)}")
    workers = workers or settings.landing.import_workers
    if workers < 1:
        raise ImportError_(f"workers must be at least 1, got {workers}")
    summary = ImportSummary(start, end, agencies)
    progress = progress or Progress()
    began = time.monotonic()
    all_days = list(_days(start, end))
    plan: dict[str, list[date]] = {}
    for agency in agencies:
        present = [d for d in all_days if ingest.manifest_present(settings.landing.dir, agency, d)]
        summary.days_without_file += len(all_days) - len(present)
        summary.files_found += len(present)
        plan[agency] = present
    progress.add_total(summary.files_found)
    url = url or db.warehouse_url(settings)

    def one_agency(agency: str) -> ImportSummary:
        part = ImportSummary(start, end, (agency,))
        with db.connect(url, role=db.LOADER) as conn:
            for statement in statement_folder("ingest/session"):  # as the nightly load's
                conn.execute(statement)
            conn.commit()
            lock_agency(conn, agency, shared=False)
            try:
                for days in _batches(plan[agency], settings.landing.dir, agency, batch_files,
                                     batch_rows):
                    Batch(conn, url, settings, agency, part, progress).run(days)
                    part.batches += 1
            finally:
                conn.rollback()
                unlock_agency(conn, agency, shared=False)
        return part

    todo = [a for a in agencies if plan[a]]
    try:
        for part in _run_all(one_agency, todo, workers):
            summary.add(part)
        if todo:
            # Merges into a large core join by index probes and leave its statistics to
            # here (Batch._merge); a killed import's rerun ends here too. Skipped when too
            # little changed (core.analyze_for_load).
            with summary.timed("statistics"), db.connect(url, role=db.LOADER) as conn:
                analyze_core_tables(conn)
    finally:
        summary.seconds = time.monotonic() - began
    return summary


def _run_all(fn: Callable[[str], ImportSummary], agencies: list[str],
             workers: int) -> Iterator[ImportSummary]:
    """fn for each agency, `workers` at a time. The server does most of the work (typing,
    rules, pseudonyms, merge: one backend per connection), so two connections use both cores
    of a 2-core machine (benchmarks/README.md, "History import"). On the first failure no
    further agency starts; the running ones finish their batch-by-batch commits, then the
    failure is raised (a rerun resumes)."""
    if workers == 1 or len(agencies) <= 1:
        for agency in agencies:
            yield fn(agency)
        return
    with ThreadPoolExecutor(max_workers=min(workers, len(agencies)),
                            thread_name_prefix="history-import") as pool:
        futures = [pool.submit(fn, a) for a in agencies]
        failure: BaseException | None = None
        for fut in as_completed(futures):
            if fut.cancelled():
                continue
            exc = fut.exception()
            if exc is not None and failure is None:
                failure = exc
                for other in futures:
                    other.cancel()
        if failure is not None:
            raise failure
        for fut in futures:
            yield fut.result()


# --- Airflow task body ----------------------------------------------------------------------


def run_from_context(context) -> dict:
    """The `upstream_history_import` DAG's task: params in, summary out (and in the log)."""
    from airflow.sdk.exceptions import AirflowFailException

    from upstream.airflow.tasks import mask_runtime_secrets

    mask_runtime_secrets()
    params = context.get("params") or {}
    try:
        start = date.fromisoformat(str(params.get("from") or ""))
        end = date.fromisoformat(str(params.get("to") or ""))
    except ValueError:
        raise AirflowFailException("params 'from' and 'to' must be dates like 2015-01-01") from None
    agencies = [a.strip() for a in str(params.get("agencies") or "").split(",") if a.strip()]
    try:
        workers = int(params["workers"]) if params.get("workers") not in (None, "") else None
    except (TypeError, ValueError):
        raise AirflowFailException("param 'workers' must be a whole number") from None
    progress = Progress()
    try:
        with ProgressLogger(progress):
            summary = import_history(start, end, agencies or None, progress=progress,
                                     workers=workers)
    except ImportError_ as exc:  # bad params fail the same way on every retry
        raise AirflowFailException(exc.public_message) from None
    for line in summary.render().splitlines():
        log.info(line)
    if summary.nothing_found:
        raise AirflowFailException(f"no extract file from {start} to {end} for "
                                   f"{', '.join(summary.agencies)}: nothing imported")
    if summary.refused:
        raise AirflowFailException(f"{len(summary.refused)} file(s) refused (the others are loaded): "
                           + "; ".join(r for _, _, r in summary.refused[:5]))
    return {"files_loaded": summary.files_loaded, "rows_loaded": summary.rows_loaded,
            "files_already_loaded": summary.files_already_loaded,
            "files_refused": len(summary.refused), "rows_quarantined": summary.rows_quarantined,
            "quarantined_by_rule": dict(summary.quarantined_by_rule)}
