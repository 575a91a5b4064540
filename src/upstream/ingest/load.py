"""Load one agency-day extract: verify the manifest, register the file, stage and type it,
validate it (GX), quarantine the rows that break rules or refuse the file, merge the rest.

Idempotent: a file already processed (same agency, day and sha256) is not loaded again, an
extract older than a loaded one of the day is ignored. Privacy: the raw file lives in a per-load
staging table only inside `load_extract`, which drops it in a `finally` (and
`drop_stale_staging` sweeps what a killed worker left). Error messages name files, rows,
columns and rules, never a value from the file. Module attributes are looked up at call time so
benchmarks/bench_ingest.py can time each phase.
"""

from __future__ import annotations

import logging
from datetime import date

import psycopg

from upstream.ingest import header as headers
from upstream.ingest import manifest, staging
from upstream.ingest import merge as merging
from upstream.ingest.manifest import Delivery
from upstream.ingest.outcome import LoadResult, RefusedFile
from upstream.settings import Settings, load_settings
from upstream.warehouse import connect as wh
from upstream.warehouse import locks
from upstream.warehouse import staging as staging_tables
from upstream.warehouse.sql import read_sql, statement_folder

log = logging.getLogger(__name__)


def _register_file(conn: psycopg.Connection, d: Delivery) -> tuple[int, str | None]:
    row = conn.execute(read_sql("ingest/register_file.sql"), {
        "agency": d.agency_code, "extract_date": d.extract_date, "file_name": d.csv_path.name,
        "sha256": d.sha256, "rows": d.rows, "generated_at": d.generated_at}).fetchone()
    prior = None
    if row["existed"]:
        prior = conn.execute(read_sql("ingest/stored_file.sql"),
                             {"file_id": row["file_id"]}).fetchone()["status"]
    conn.commit()
    return row["file_id"], prior


def _finish(conn: psycopg.Connection, file_id: int, status: str, result: LoadResult) -> None:
    conn.execute(read_sql("ingest/finish_file.sql"), {
        "status": status, "reason": result.reason, "rows_in_file": result.rows_in_file,
        "rows_loaded": result.rows_loaded, "rows_quarantined": result.rows_quarantined,
        "rows_stale": result.rows_stale, "unknown_columns": result.unknown_columns,
        "data_docs_path": result.data_docs_path, "file_id": file_id})
    conn.commit()


def load_extract(agency: str, extract_date: date, settings: Settings | None = None,
                 *, url: str | None = None, run_name: str | None = None) -> LoadResult:
    """Verify, validate (GX) and load one agency-day. Idempotent; see module docstring.

    Raises RefusedFile (after recording it) when the file is refused as a whole.
    """
    settings = settings or load_settings()
    delivery = manifest.verify_manifest(settings.landing.dir, agency, extract_date)
    where = f"{agency} {extract_date.isoformat()}"

    def refuse(msg: str) -> RefusedFile:
        return RefusedFile(f"{where}: {msg}", agency=agency, extract_date=extract_date)

    result = LoadResult(agency, extract_date.isoformat(), outcome="loaded")
    with wh.connect(url or wh.warehouse_url(settings), role=wh.LOADER) as conn:
        # temp_buffers before this session's first temp table; work_mem keeps the duplicate
        # check's hash and the merge's sort of a large file in memory.
        for statement in statement_folder("ingest/session"):
            conn.execute(statement)
        # Shared, until this connection closes: a history import of the agency excludes it.
        locks.lock_agency(conn, agency, shared=True)
        file_id, prior = _register_file(conn, delivery)
        result.file_id = file_id
        # One loader per file: a second worker on the same file must not touch the first
        # one's staging tables. Session-level lock, released when this connection closes.
        if not locks.try_file_lock(conn, file_id):
            raise RuntimeError(f"{where}: this file is being loaded by another worker right now")
        conn.commit()
        if prior in ("loaded", "superseded", "ignored_older"):
            stored = conn.execute(read_sql("ingest/stored_file.sql"),
                                  {"file_id": file_id}).fetchone()
            result.outcome = "already_loaded" if prior != "ignored_older" else "ignored_older"
            result.rows_in_file = stored["rows_in_file"] or 0
            result.rows_loaded = stored["rows_loaded"] or 0
            result.rows_quarantined = stored["rows_quarantined"] or 0
            result.rows_stale = stored["rows_stale"] or 0
            result.data_docs_path = stored["data_docs_path"]
            log.debug("%s: file already processed (%s); nothing to do", where, prior)
            return result
        newer = conn.execute(read_sql("ingest/newer_loaded_file.sql"), {
            "agency": agency, "extract_date": extract_date, "file_id": file_id,
            "generated_at": delivery.generated_at}).fetchone()
        if newer:
            result.outcome = "ignored_older"
            result.reason = "an extract of this day generated later is already loaded"
            _finish(conn, file_id, "ignored_older", result)
            return result
        try:
            return _validate_and_merge(conn, url or wh.warehouse_url(settings), settings,
                                       delivery, file_id, result, refuse, run_name)
        except RefusedFile as exc:
            conn.rollback()
            result.outcome = "refused"
            result.reason = exc.public_message
            _finish(conn, file_id, "refused", result)
            exc.result = result  # the caller's outcome line reports the counts too
            raise
        except BaseException:
            conn.rollback()
            result.reason = "load failed unexpectedly; see the task log"
            _finish(conn, file_id, "refused", result)
            raise
        finally:
            conn.rollback()
            staging_tables.drop_staging(conn, file_id)
            conn.commit()


def _validate_and_merge(conn, url: str, settings, delivery: Delivery, file_id: int, result: LoadResult,
                        refuse, run_name: str | None) -> LoadResult:
    from upstream.validate import (
        suite as validation,  # GX is heavy: import only when a file is validated
    )

    agency, extract_date = delivery.agency_code, delivery.extract_date
    header = headers.read_header(delivery.csv_path, refuse)
    result.unknown_columns = header.unknown
    if header.unknown:
        log.warning("%s %s: ignoring unknown column(s): %s", agency, extract_date,
                    ", ".join(header.unknown[:20]))
    staging_tables.drop_staging(conn, file_id)
    rows, sha = staging.copy_to_staging(conn, file_id, delivery.csv_path, header, refuse)
    if sha != delivery.sha256:
        raise refuse("data file changed while it was being loaded")
    if rows != delivery.rows:
        raise refuse(f"manifest says {delivery.rows} rows, data file has {rows} "
                     "(truncated or corrupted transfer)")
    result.rows_in_file = rows
    staging.build_typed_table(conn, file_id, agency, delivery)
    conn.execute(read_sql("ingest/delete_quarantine.sql"), {"file_ids": [file_id]})
    conn.commit()  # GX reads the typed table through its own connection

    report = validation.validate_staged_file(
        conn, settings, file_id=file_id, agency=agency, extract_date=extract_date,
        run_name=run_name or f"{agency}_{extract_date.isoformat()}_{file_id}", db_url=url,
    )
    result.data_docs_path = report.data_docs_path
    result.quarantine_by_rule = report.failures_by_rule
    if report.failures_by_rule:
        result.rows_quarantined = validation.quarantine_failing_rows(conn, file_id)
    result.quarantined_share = (result.rows_quarantined / rows) if rows else 0.0
    if quarantine_refuses(settings, result.rows_quarantined, rows):
        conn.commit()  # keep the quarantine report of a refused file
        raise refuse(
            f"{quarantine_refusal(settings, result.rows_quarantined, rows)}: nothing loaded "
            f"(top rules: {top_rules(report.failures_by_rule)})")
    merging.merge(conn, file_id, delivery, result)
    _finish(conn, file_id, "loaded", result)
    return result


def quarantine_refuses(settings: Settings, bad_rows: int, rows: int) -> bool:
    """Systematic breakage refuses the file; a few bad rows are quarantined and the rest loads.

    Both limits must be exceeded: the share alone misjudges small files (at the program's ~8
    calls a day one bad row is 12%), the count alone misjudges large ones.
    """
    share = bad_rows / rows if rows else 0.0
    return bad_rows > settings.validate.quarantine_max_rows and share > settings.validate.quarantine_max_share


def quarantine_refusal(settings: Settings, bad_rows: int, rows: int) -> str:
    share = bad_rows / rows if rows else 0.0
    return (f"{bad_rows} of {rows} rows ({share:.1%}) broke contract rules, above both limits "
            f"({settings.validate.quarantine_max_share:.1%} and {settings.validate.quarantine_max_rows} rows)")


def top_rules(failures: dict[str, int]) -> str:
    top = sorted(failures.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    return ", ".join(f"{name} x{count}" for name, count in top)
