"""Bulk import of an agency's history: the nightly load's checks, in batches.

Every file goes through what `ingest.load_extract` does to it: the manifest checks
(`ingest.verify_manifest`), the header checks, COPY with the same refusals, the same typed
columns, rules and pseudonyms (include/sql/history/typed_batch.sql mirrors
validate/typed_table.sql per file), the same GX suite (`validation.validate_staged_file`), the
same quarantine and refusal share, and the nightly merge's statements. What changes is the unit
of work: one staging table, one typed pass and ONE GX checkpoint per batch of files, and one
merge per *segment* (consecutive files in extract-date order; a re-extract of a day already
loaded starts a new segment and supersedes first). A segment only adds versions, so merging it
at once leaves what merging its files night by night leaves (tests/integration/test_history.py
compares the two, corrections and re-extracts included).

Resumable: each segment's merge and its files' final status commit together; a file already
processed is recognised by ops.extract_file (agency, day, sha256) and skipped, so a rerun after
a kill continues where the last commit left off. An agency is imported under an exclusive
advisory lock that every nightly load of the agency takes shared (`ingest.lock_agency`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import psycopg
from psycopg import sql

from upstream import ingest
from upstream.contract import COLUMNS
from upstream.settings import Settings, load_settings, pseudonym_key
from upstream.warehouse import db

log = logging.getLogger(__name__)

# A batch is one COPY table, one typed pass and one GX checkpoint (about 1.5 s of GX whatever
# the size): big enough that GX is a small share, small enough that a kill loses little.
BATCH_FILES = 4000
BATCH_ROWS = 500_000
PROGRESS_LOG_SECONDS = 30.0


class ImportError_(Exception):
    """The import cannot start or go on; `public_message` is safe to print and log."""

    def __init__(self, public_message: str):
        super().__init__(public_message)
        self.public_message = public_message


@dataclass
class ImportSummary:
    start: date
    end: date
    agencies: tuple[str, ...]
    files_found: int = 0
    files_loaded: int = 0
    files_already_loaded: int = 0
    files_ignored_older: int = 0
    days_without_file: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    batches: int = 0
    refused: list[tuple[str, str, str]] = field(default_factory=list)  # agency, day, reason
    quarantined_by_rule: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    seconds_by_phase: Counter = field(default_factory=Counter)  # for benchmarks/bench_history.py

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.seconds_by_phase[phase] += time.perf_counter() - began

    @property
    def nothing_found(self) -> bool:
        return self.files_found == 0

    def render(self) -> str:
        lines = [
            f"history import {self.start.isoformat()}..{self.end.isoformat()} for "
            f"{', '.join(self.agencies)}: {self.files_found} file(s) found in "
            f"{self.seconds:.1f} s ({self.batches} batch(es))",
            f"  files loaded: {self.files_loaded} ({self.rows_loaded} rows)",
            f"  files already loaded (skipped): {self.files_already_loaded}",
            f"  files ignored (a later extract of the day is loaded): {self.files_ignored_older}",
            f"  days without a file: {self.days_without_file}",
            f"  files refused: {len(self.refused)}",
        ]
        lines += [f"    {reason}" for _, _, reason in self.refused]
        lines.append(f"  rows quarantined: {self.rows_quarantined}")
        lines += [f"    {rule}: {n}" for rule, n in sorted(
            self.quarantined_by_rule.items(), key=lambda kv: (-kv[1], kv[0]))]
        if self.nothing_found:
            lines.append("  nothing imported: no extract file in this range")
        return "\n".join(lines)


class Progress:
    """Counters the import advances; `on_change` (the CLI's progress bar) sees every step."""

    def __init__(self, on_change: Callable[[Progress], None] | None = None):
        self.total_files = 0
        self.files = 0
        self.rows = 0
        self.started = time.monotonic()
        self.on_change = on_change
        self._lock = threading.Lock()

    def add_total(self, n: int) -> None:
        with self._lock:
            self.total_files += n
        self._changed()

    def advance(self, files: int = 0, rows: int = 0) -> None:
        with self._lock:
            self.files += files
            self.rows += rows
        self._changed()

    def _changed(self) -> None:
        if self.on_change:
            self.on_change(self)

    def line(self) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        rate = self.files / elapsed
        left = self.total_files - self.files
        eta = str(timedelta(seconds=round(left / rate))) if rate > 0 else "unknown"
        return (f"history import: {self.files}/{self.total_files} files, {self.rows} rows, "
                f"{rate:.1f} files/s, {self.rows / elapsed:.0f} rows/s, ETA {eta}")


class ProgressLogger:
    """A progress line in the log every `interval` seconds while the import runs (task logs)."""

    def __init__(self, progress: Progress, interval: float = PROGRESS_LOG_SECONDS):
        self.progress, self.interval = progress, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="history-progress", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            log.info(self.progress.line())

    def __enter__(self) -> ProgressLogger:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        log.info(self.progress.line())


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


# --- one batch ------------------------------------------------------------------------------


@dataclass
class _File:
    delivery: ingest.Delivery
    file_id: int = 0
    prior: str | None = None
    supersedes: bool = False
    header: ingest.Header | None = None
    rows: int = 0
    first_row: int = 0
    result: ingest.LoadResult | None = None


def _staging_key(agency: str) -> str:
    # One batch per agency at a time (the agency lock), so a fixed name: a rerun drops what a
    # killed import left.
    return f"hist_{agency.lower()}"


def _record_refusal(conn: psycopg.Connection, agency: str, day: date, landing: Path,
                    exc: ingest.RefusedFile) -> None:
    """As the nightly DAG records a file refused before it is registered."""
    csv_path, _ = ingest.delivery_paths(landing, agency, day)
    if not csv_path.is_file():
        return
    conn.execute(
        "INSERT INTO ops.extract_file (agency_code, extract_date, file_name, sha256, status,"
        " reason, finished_at) VALUES (%s, %s, %s, %s, 'refused', %s, now())"
        " ON CONFLICT (agency_code, extract_date, sha256) DO UPDATE SET reason = EXCLUDED.reason",
        (agency, day, csv_path.name, ingest.file_sha256(csv_path), exc.public_message))


def _finish_many(conn: psycopg.Connection, files: Iterable[_File], status: str) -> None:
    """The nightly load's _finish for many files, in one statement."""
    files = list(files)
    if not files:
        return
    r = [f.result for f in files]
    conn.execute(
        "UPDATE ops.extract_file AS e SET status = %s, reason = u.reason,"
        " rows_in_file = u.rows_in_file, rows_loaded = u.rows_loaded,"
        " rows_quarantined = u.rows_quarantined, rows_stale = u.rows_stale,"
        " unknown_columns = ARRAY(SELECT jsonb_array_elements_text(u.unknown)),"
        " data_docs_path = u.docs,"
        " finished_at = now()"
        " FROM unnest(%s::bigint[], %s::text[], %s::int[], %s::int[], %s::int[], %s::int[],"
        " %s::jsonb[], %s::text[]) AS u (file_id, reason, rows_in_file, rows_loaded,"
        " rows_quarantined, rows_stale, unknown, docs) WHERE e.file_id = u.file_id",
        (status, [f.file_id for f in files], [x.reason for x in r], [x.rows_in_file for x in r],
         [x.rows_loaded for x in r], [x.rows_quarantined for x in r], [x.rows_stale for x in r],
         [json.dumps(x.unknown_columns) for x in r],
         [x.data_docs_path for x in r]))


class _Batch:
    def __init__(self, conn: psycopg.Connection, url: str, settings: Settings, agency: str,
                 summary: ImportSummary, progress: Progress):
        self.conn, self.url, self.settings, self.agency = conn, url, settings, agency
        self.summary, self.progress = summary, progress
        self.key = _staging_key(agency)
        self.raw, self.typed = ingest._staging_names(self.key)
        self.suspect = ingest.suspect_table(self.key)

    def refuse(self, f: _File | None, day: date, exc: ingest.RefusedFile) -> None:
        self.summary.refused.append((self.agency, day.isoformat(), exc.public_message))
        if f is not None:
            f.result.outcome = "refused"
            f.result.reason = exc.public_message

    def run(self, days: list[date]) -> None:
        conn = self.conn
        files: list[_File] = []
        timed = self.summary.timed
        with timed("verify manifests"):
            self._verify(days, files)
        with timed("register"):
            todo = self._register(files)
        if not todo:
            return
        try:
            with timed("COPY to staging"):
                self._stage(todo)
            staged = [f for f in todo if f.result.outcome != "refused"]
            if staged:
                self._validate(staged)
            loadable = [f for f in staged if f.result.outcome != "refused"]
            with timed("merge"):
                for segment in self._segments(loadable):
                    self._merge(segment)
                refused = [f for f in todo if f.result.outcome == "refused"]
                _finish_many(conn, refused, "refused")
                conn.commit()
            self.progress.advance(files=len(refused))
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.rollback()
            ingest.drop_staging(conn, self.key)
            conn.commit()

    def _verify(self, days: list[date], files: list[_File]) -> None:
        conn, agency = self.conn, self.agency
        landing = self.settings.landing.dir
        for d in days:  # the manifest checks, sha256 included
            try:
                files.append(_File(ingest.verify_manifest(landing, agency, d)))
            except ingest.ManifestMissing:
                self.summary.days_without_file += 1
                self.progress.advance(files=1)
            except ingest.RefusedFile as exc:
                _record_refusal(conn, agency, d, landing, exc)
                self.refuse(None, d, exc)
                self.progress.advance(files=1)
        conn.commit()

    def _register(self, files: list[_File]) -> list[_File]:
        """ops.extract_file rows (as the nightly load registers a file); the files to load."""
        conn = self.conn
        if not files:
            return []
        # One statement for the batch (the nightly load's _register_file, per file).
        rows = conn.execute(
            "INSERT INTO ops.extract_file (agency_code, extract_date, file_name, sha256,"
            " manifest_rows, generated_at, status)"
            " SELECT %s, d, n, s, r, g, 'loading' FROM unnest(%s::date[], %s::text[], %s::text[],"
            " %s::int[], %s::timestamptz[]) WITH ORDINALITY AS u (d, n, s, r, g, o) ORDER BY o"
            " ON CONFLICT (agency_code, extract_date, sha256) DO UPDATE"
            " SET manifest_rows = EXCLUDED.manifest_rows"
            " RETURNING file_id, extract_date, sha256, status, (xmax <> 0) AS existed",
            (self.agency, [f.delivery.extract_date for f in files],
             [f.delivery.csv_path.name for f in files], [f.delivery.sha256 for f in files],
             [f.delivery.rows for f in files], [f.delivery.generated_at for f in files])).fetchall()
        by_key = {(r["extract_date"], r["sha256"]): r for r in rows}
        for f in files:
            d = f.delivery
            row = by_key[(d.extract_date, d.sha256)]
            f.file_id, f.prior = row["file_id"], (row["status"] if row["existed"] else None)
            f.result = ingest.LoadResult(d.agency_code, d.extract_date.isoformat(), "loaded",
                                         file_id=f.file_id)
        conn.commit()
        done = [f for f in files if f.prior in ("loaded", "superseded", "ignored_older")]
        self.summary.files_already_loaded += sum(f.prior != "ignored_older" for f in done)
        self.summary.files_ignored_older += sum(f.prior == "ignored_older" for f in done)
        self.progress.advance(files=len(done))
        todo = [f for f in files if f not in done]
        if not todo:
            return []
        # The same-day decisions of load_extract: an older extract than a loaded one is
        # ignored; a newer one supersedes it (and starts a merge segment).
        others = conn.execute(
            "SELECT file_id, extract_date, generated_at FROM ops.extract_file"
            " WHERE agency_code = %s AND status = 'loaded' AND extract_date = ANY(%s)",
            (self.agency, [f.delivery.extract_date for f in todo])).fetchall()
        by_day: dict[date, list] = {}
        for o in others:
            by_day.setdefault(o["extract_date"], []).append(o)
        keep = []
        ignored = []
        for f in todo:
            loaded = [o for o in by_day.get(f.delivery.extract_date, []) if o["file_id"] != f.file_id]
            if any(o["generated_at"] >= f.delivery.generated_at for o in loaded):
                f.result.outcome = "ignored_older"
                f.result.reason = "an extract of this day generated later is already loaded"
                ignored.append(f)
            else:
                f.supersedes = bool(loaded)
                keep.append(f)
        _finish_many(conn, ignored, "ignored_older")
        conn.commit()
        self.summary.files_ignored_older += len(ignored)
        self.progress.advance(files=len(ignored))
        return keep

    def _stage(self, files: list[_File]) -> None:
        """COPY every file into one all-text table; a file COPY refuses is refused alone."""
        conn = self.conn
        ingest.drop_staging(conn, self.key)
        conn.execute(sql.SQL(
            "CREATE UNLOGGED TABLE {raw} (raw_row bigint GENERATED ALWAYS AS IDENTITY,"
            " file_id bigint NOT NULL DEFAULT current_setting('upstream.copy_file')::bigint, {cols})"
        ).format(raw=self.raw, cols=sql.SQL(", ").join(
            sql.SQL("{} text").format(sql.Identifier(c)) for c in COLUMNS)))
        extras: set[str] = set()
        for f in files:
            d = f.delivery
            where = f"{self.agency} {d.extract_date.isoformat()}"

            def refuse(msg: str, where=where, d=d) -> ingest.RefusedFile:
                return ingest.RefusedFile(f"{where}: {msg}", agency=self.agency,
                                          extract_date=d.extract_date)
            try:
                with conn.transaction():
                    f.header = ingest.read_header(d.csv_path, refuse)
                    f.result.unknown_columns = f.header.unknown
                    if f.header.unknown:
                        log.warning("%s: ignoring unknown column(s): %s", where,
                                    ", ".join(f.header.unknown[:20]))
                    cols = [c if c in COLUMNS else f"extra_{i}" for i, c in enumerate(f.header.columns)]
                    for c in cols:
                        if c not in COLUMNS and c not in extras:
                            conn.execute(sql.SQL("ALTER TABLE {} ADD COLUMN {} text").format(
                                self.raw, sql.Identifier(c)))
                            extras.add(c)
                    f.rows, sha = self._copy(f, cols, refuse)
                    if sha != d.sha256:
                        raise refuse("data file changed while it was being loaded")
                    if f.rows != d.rows:
                        raise refuse(f"manifest says {d.rows} rows, data file has {f.rows} "
                                     "(truncated or corrupted transfer)")
            except ingest.RefusedFile as exc:
                self.refuse(f, d.extract_date, exc)
                continue
            except (psycopg.errors.DataError, psycopg.errors.InternalError_) as exc:
                self.refuse(f, d.extract_date, refuse(ingest._copy_failure_message(exc)))
                continue
            f.result.rows_in_file = f.rows
            self.progress.advance(rows=f.rows)

    def _copy(self, f: _File, cols: list[str], refuse) -> tuple[int, str]:
        import hashlib

        conn = self.conn
        conn.execute("SELECT set_config('upstream.copy_file', %s, true)", (str(f.file_id),))
        idents = sql.SQL(", ").join(map(sql.Identifier, cols))
        stmt = sql.SQL("COPY {raw} ({cols}) FROM STDIN WITH (FORMAT csv, HEADER true,"
                       " ENCODING 'UTF8', FORCE_NULL ({cols}))").format(raw=self.raw, cols=idents)
        digest = hashlib.sha256()
        with conn.cursor() as cur:
            with cur.copy(stmt) as copy, f.delivery.csv_path.open("rb") as fh:
                first = True
                for block in iter(lambda: fh.read(ingest.COPY_BLOCK), b""):
                    digest.update(block)
                    if first and f.header.has_bom:
                        block = block[len(ingest.BOM):]
                    first = False
                    copy.write(block)
            rows = cur.rowcount
        return rows, digest.hexdigest()

    def _validate(self, files: list[_File]) -> None:
        """Typed table, one GX checkpoint for the batch, quarantine, refusal share."""
        from upstream.rules import RULES
        from upstream.validate import suite as validation

        conn = self.conn
        began = time.perf_counter()
        conn.execute("CREATE TEMP TABLE IF NOT EXISTS hist_file (file_id bigint PRIMARY KEY,"
                     " first_row bigint, extract_date date, generated_at timestamptz,"
                     " extract_year int)")
        conn.execute("TRUNCATE pg_temp.hist_file")
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO pg_temp.hist_file VALUES (%s, %s, %s, %s, %s)",
                            [(f.file_id, f.first_row, f.delivery.extract_date,
                              f.delivery.generated_at, f.delivery.extract_date.year) for f in files])
        # each file's first raw row: row numbers count from 1 per file, as nightly
        conn.execute(sql.SQL("UPDATE pg_temp.hist_file AS h SET first_row = r.first_row FROM ("
                             "SELECT file_id, min(raw_row) AS first_row FROM {} GROUP BY file_id"
                             ") AS r WHERE r.file_id = h.file_id").format(self.raw))
        conn.execute("ANALYZE pg_temp.hist_file")
        inner, outer = ingest.hmac_pads(pseudonym_key())
        setting = ingest._PAD_SETTING
        conn.execute("SELECT set_config(%s, %s, true), set_config(%s, %s, true)",
                     (setting.format("inner"), inner.hex(), setting.format("outer"), outer.hex()))
        pad = "(SELECT decode(current_setting({}), 'hex'))"
        conn.execute(sql.SQL(db.read_sql("history/typed_batch.sql")).format(
            raw=self.raw, typed=self.typed, expected_agency=sql.Literal(self.agency),
            failed_rules=ingest.failed_rules_expression(),
            inner_key=sql.SQL(pad).format(sql.Literal(setting.format("inner"))),
            outer_key=sql.SQL(pad).format(sql.Literal(setting.format("outer")))))
        conn.execute(sql.SQL(db.read_sql("validate/suspect_rows.sql")).format(
            suspect=self.suspect, typed=self.typed))
        ids = [f.file_id for f in files]
        conn.execute("DELETE FROM ops.quarantine_row WHERE file_id = ANY(%s)", (ids,))
        conn.commit()  # GX reads the suspect rows through its own connection
        self.summary.seconds_by_phase["typed pass (rules, pseudonyms)"] += time.perf_counter() - began
        began = time.perf_counter()

        first, last = files[0].delivery.extract_date, files[-1].delivery.extract_date
        report = validation.validate_staged_file(
            conn, self.settings, file_id=self.key, agency=self.agency, extract_date=last,
            run_name=f"{self.agency}_history_{first.isoformat()}_{last.isoformat()}_{files[0].file_id}",
            db_url=self.url)
        self.summary.seconds_by_phase["GX checkpoint"] += time.perf_counter() - began
        began = time.perf_counter()
        if report.failures_by_rule:
            conn.execute(sql.SQL(db.read_sql("history/quarantine_batch.sql")).format(
                suspect=self.suspect), {"rule_names": [r.name for r in RULES],
                                        "rule_columns": [r.column for r in RULES]})
        per_file = {r["file_id"]: r["n"] for r in conn.execute(
            "SELECT file_id, count(DISTINCT row_number) AS n FROM ops.quarantine_row"
            " WHERE file_id = ANY(%s) GROUP BY file_id", (ids,))}
        by_rule: dict[int, dict[str, int]] = {}
        for r in conn.execute(sql.SQL(
                "SELECT file_id, f.rule, count(*) AS n FROM {}, unnest(failed_rules) AS f (rule)"
                " GROUP BY file_id, f.rule").format(self.suspect)):
            by_rule.setdefault(r["file_id"], {})[r["rule"]] = r["n"]
        max_share = self.settings.validate.quarantine_max_share
        for f in files:
            res = f.result
            res.data_docs_path = report.data_docs_path
            res.quarantine_by_rule = by_rule.get(f.file_id, {})
            res.rows_quarantined = per_file.get(f.file_id, 0)
            res.quarantined_share = res.rows_quarantined / f.rows if f.rows else 0.0
            self.summary.quarantined_by_rule.update(res.quarantine_by_rule)
            self.summary.rows_quarantined += res.rows_quarantined
            if res.rows_quarantined and res.quarantined_share > max_share:
                # load_extract's message, word for word
                where = f"{self.agency} {f.delivery.extract_date.isoformat()}"
                self.refuse(f, f.delivery.extract_date, ingest.RefusedFile(
                    f"{where}: {res.rows_quarantined} of {f.rows} rows "
                    f"({res.quarantined_share:.1%}) broke contract rules, above the "
                    f"{max_share:.1%} limit: nothing loaded "
                    f"(top rules: {ingest._top_rules(res.quarantine_by_rule)})"))
        conn.commit()  # the quarantine report stays, whatever happens next
        self.summary.seconds_by_phase["quarantine"] += time.perf_counter() - began

    @staticmethod
    def _segments(files: list[_File]) -> Iterator[list[_File]]:
        seg: list[_File] = []
        for f in sorted(files, key=lambda f: f.delivery.extract_date):
            if f.supersedes and seg:
                yield seg
                seg = []
            seg.append(f)
        if seg:
            yield seg

    def _merge(self, seg: list[_File]) -> None:
        """The nightly merge for a segment's files, their final status in the same commit."""
        conn, typed = self.conn, self.typed
        ids = [f.file_id for f in seg]
        params = {"file_ids": ids}
        with conn.transaction():
            conn.execute("CREATE TEMP TABLE affected_incident (agency_code text, incident_id text)"
                         " ON COMMIT DROP")
            affected = conn.execute(sql.SQL(
                "INSERT INTO affected_incident SELECT DISTINCT agency_code, incident_id FROM {}"
                " WHERE file_id = ANY(%(file_ids)s) AND cardinality(failed_rules) = 0"
            ).format(typed), params).rowcount
            head = seg[0]
            if head.supersedes:  # only a segment's first file supersedes (see _segments)
                d = head.delivery
                superseded = [r["file_id"] for r in conn.execute(
                    "UPDATE ops.extract_file SET status = 'superseded', superseded_by = %s"
                    " WHERE agency_code = %s AND extract_date = %s AND status = 'loaded'"
                    " AND file_id <> %s RETURNING file_id",
                    (head.file_id, self.agency, d.extract_date, head.file_id))]
                if superseded:
                    conn.execute(
                        "INSERT INTO affected_incident SELECT DISTINCT v.agency_code, v.incident_id"
                        " FROM core.call_version v WHERE v.file_id = ANY(%s) AND NOT EXISTS ("
                        " SELECT 1 FROM affected_incident a WHERE a.agency_code = v.agency_code"
                        " AND a.incident_id = v.incident_id)", (superseded,))
                    conn.execute("DELETE FROM core.call_version WHERE file_id = ANY(%s)", (superseded,))
            conn.execute(sql.SQL(db.read_sql("history/insert_call_versions.sql")).format(
                typed=typed), params)
            conn.execute("ANALYZE pg_temp.affected_incident")
            conn.execute("SELECT core.analyze_for_load('call_version')")
            conn.execute(db.read_sql("load/current_winners.sql"))
            conn.execute("ANALYZE pg_temp.current_winner")
            conn.execute(db.read_sql("load/update_current_calls.sql"))
            if affected > 10_000:
                # A large segment into a core.call the planner thinks (nearly) empty: it probed
                # core.call by an index of rows this very statement inserts, quadratic (78 s for
                # 30k calls, 1 s as a hash anti-join). Small segments keep their index probes.
                conn.execute("SET LOCAL enable_nestloop = off")
            conn.execute(db.read_sql("load/insert_current_calls.sql"))
            conn.execute("SET LOCAL enable_nestloop = on")
            conn.execute("SELECT core.analyze_for_load('call')")
            conn.execute(db.read_sql("load/drop_orphaned_current_calls.sql"))
            conn.execute(db.read_sql("load/refresh_contacts.sql"))
            conn.execute(sql.SQL(db.read_sql("history/upsert_contacts.sql")).format(typed=typed),
                         params)
            broken = conn.execute(db.read_sql("load/check_integrity.sql"),
                                  {"file_id": ids[0]}).fetchone()
            broken = {name: n for name, n in broken.items() if n}
            if broken:
                raise RuntimeError(f"{self.agency}: history merge left broken references "
                                   f"{broken}; rolled back")
            loaded = {r["file_id"]: r["n"] for r in conn.execute(
                "SELECT file_id, count(*) AS n FROM core.call_version WHERE file_id = ANY(%s)"
                " GROUP BY file_id", (ids,))}
            stale = {r["file_id"]: r["n"] for r in conn.execute(
                db.read_sql("history/stale_rows.sql"), params)}
            for f in seg:
                f.result.rows_loaded = loaded.get(f.file_id, 0)
                f.result.rows_stale = stale.get(f.file_id, 0)
            _finish_many(conn, seg, "loaded")
        conn.commit()
        self.summary.files_loaded += len(seg)
        self.summary.rows_loaded += sum(f.result.rows_loaded for f in seg)
        self.progress.advance(files=len(seg))


# --- the import -----------------------------------------------------------------------------


def import_history(start: date, end: date, agencies: Iterable[str] | None = None, *,
                   landing: Path | None = None, settings: Settings | None = None,
                   url: str | None = None, progress: Progress | None = None,
                   batch_files: int = BATCH_FILES, batch_rows: int = BATCH_ROWS) -> ImportSummary:
    """Import every extract of `agencies` from start to end (inclusive), oldest first."""
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
    with db.connect(url, role=db.LOADER) as conn:
        conn.execute("SET work_mem = '128MB'")
        conn.commit()
        for agency in agencies:
            if not plan[agency]:
                continue
            ingest.lock_agency(conn, agency, shared=False)
            try:
                for days in _batches(plan[agency], settings.landing.dir, agency, batch_files,
                                     batch_rows):
                    _Batch(conn, url, settings, agency, summary, progress).run(days)
                    summary.batches += 1
            finally:
                conn.rollback()
                ingest.unlock_agency(conn, agency, shared=False)
    summary.seconds = time.monotonic() - began
    return summary


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
    progress = Progress()
    try:
        with ProgressLogger(progress):
            summary = import_history(start, end, agencies or None, progress=progress)
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
