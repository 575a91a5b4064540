"""One batch of a history import: verify and register its files, COPY them into one staging
table, one typed pass and ONE GX checkpoint, quarantine, then merge segment by segment."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import psycopg
from psycopg import sql

from upstream import ingest
from upstream.contract import COLUMNS
from upstream.ingest.history.progress import ImportSummary, Progress
from upstream.ingest.history.stream import Group, tagged_file
from upstream.ingest.load import quarantine_refusal, quarantine_refuses
from upstream.ingest.manifest import verify_manifests
from upstream.ingest.merge import (
    check_integrity,
    join_policy,
    rederive_current_calls,
    stored_call_estimate,
    supersede_day,
)
from upstream.ingest.staging import (
    copy_failure_message,
    copy_file,
    copy_statement,
    failed_rules_expression,
)
from upstream.pseudonyms import set_pads
from upstream.settings import Settings
from upstream.warehouse.sql import read_sql
from upstream.warehouse.staging import (
    batch_files_table,
    drop_staging,
    staging_names,
    suspect_table,
)

log = logging.getLogger("upstream.ingest.history")

# GX keeps process-wide state (its project manager holds "the" current context), so agencies
# importing in parallel threads take turns at their checkpoints (about 1 s a batch).
_GX_TURN = threading.Lock()


@dataclass
class _File:
    delivery: ingest.Delivery
    file_id: int = 0
    prior: str | None = None
    supersedes: bool = False
    header: ingest.Header | None = None
    rows: int = 0
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
    conn.execute(read_sql("ingest/record_refusal.sql"), {
        "agency": agency, "extract_date": day, "file_name": csv_path.name,
        "sha256": ingest.file_sha256(csv_path), "reason": exc.public_message})


def _finish_many(conn: psycopg.Connection, files: Iterable[_File], status: str) -> None:
    """The nightly load's _finish for many files, in one statement."""
    files = list(files)
    if not files:
        return
    r = [f.result for f in files]
    conn.execute(read_sql("history/finish_files.sql"), (
        status, [f.file_id for f in files], [x.reason for x in r], [x.rows_in_file for x in r],
         [x.rows_loaded for x in r], [x.rows_quarantined for x in r], [x.rows_stale for x in r],
         [json.dumps(x.unknown_columns) for x in r],
         [x.data_docs_path for x in r]))


class Batch:
    def __init__(self, conn: psycopg.Connection, url: str, settings: Settings, agency: str,
                 summary: ImportSummary, progress: Progress):
        self.conn, self.url, self.settings, self.agency = conn, url, settings, agency
        self.summary, self.progress = summary, progress
        self.key = _staging_key(agency)
        self.raw, self.typed = staging_names(self.key)
        self.suspect = suspect_table(self.key)

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
            drop_staging(conn, self.key)
            conn.commit()

    def _verify(self, days: list[date], files: list[_File]) -> None:
        conn, agency = self.conn, self.agency
        landing = self.settings.landing.dir
        checked = verify_manifests(landing, agency, days)  # the manifest checks, sha256 included
        for d, outcome in zip(days, checked, strict=True):
            if isinstance(outcome, ingest.ManifestMissing):
                self.summary.days_without_file += 1
                self.progress.advance(files=1)
            elif isinstance(outcome, ingest.RefusedFile):
                _record_refusal(conn, agency, d, landing, outcome)
                self.refuse(None, d, outcome)
                self.progress.advance(files=1)
            else:
                files.append(_File(outcome))
        conn.commit()

    def _register(self, files: list[_File]) -> list[_File]:
        """ops.extract_file rows (as the nightly load registers a file); the files to load."""
        conn = self.conn
        if not files:
            return []
        # One statement for the batch (the nightly load's _register_file, per file).
        rows = conn.execute(read_sql("history/register_files.sql"), (
            self.agency, [f.delivery.extract_date for f in files],
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
        others = conn.execute(read_sql("history/loaded_same_days.sql"), (
            self.agency, [f.delivery.extract_date for f in todo])).fetchall()
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
        """COPY every file into one all-text table; a file COPY refuses is refused alone.

        Small files whose records can be tagged exactly go in groups, one COPY each
        (history/stream.py); the others, and every file of a group whose COPY fails, one by one."""
        conn = self.conn
        drop_staging(conn, self.key)
        conn.execute(sql.SQL(read_sql("ingest/create_raw_table.sql")).format(
            raw=self.raw,
            cols=sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(c)) for c in COLUMNS)))
        extras: set[str] = set()
        groups: list[Group] = []
        one_by_one: list[tuple[_File, list[str]]] = []
        for f in files:
            d = f.delivery
            try:
                f.header = ingest.read_header(d.csv_path, self._refusal(d))
            except ingest.RefusedFile as exc:
                self.refuse(f, d.extract_date, exc)
                continue
            f.result.unknown_columns = f.header.unknown
            if f.header.unknown:
                log.warning("%s %s: ignoring unknown column(s): %s", self.agency,
                            d.extract_date.isoformat(), ", ".join(f.header.unknown[:20]))
            cols = [c if c in COLUMNS else f"extra_{i}" for i, c in enumerate(f.header.columns)]
            for c in cols:
                if c not in COLUMNS and c not in extras:
                    conn.execute(sql.SQL(read_sql("history/add_raw_column.sql")).format(
                        raw=self.raw, column=sql.Identifier(c)))
                    extras.add(c)
            tagged = tagged_file(f.delivery, f.header, f.file_id)
            if tagged is None:
                one_by_one.append((f, cols))
                continue
            crlf = tagged[2]
            if not groups or not groups[-1].accepts(tuple(cols), crlf):
                groups.append(Group(tuple(cols), crlf))
            groups[-1].members.append((f, tagged[0], tagged[1]))
        for group in groups:
            one_by_one += self._copy_group(group)
        for f, cols in one_by_one:
            self._copy_one(f, cols)

    def _refusal(self, d: ingest.Delivery):
        where = f"{self.agency} {d.extract_date.isoformat()}"

        def refuse(msg: str) -> ingest.RefusedFile:
            return ingest.RefusedFile(f"{where}: {msg}", agency=self.agency,
                                      extract_date=d.extract_date)
        return refuse

    def _copy_group(self, group: Group) -> list[tuple[_File, list[str]]]:
        """One COPY for the group; on any failure, its files for the per-file COPY."""
        conn = self.conn
        statement = sql.SQL(read_sql("history/copy_tagged_csv.sql")).format(
            raw=self.raw, cols=sql.SQL(", ").join(map(sql.Identifier, group.columns)))
        expected = sum(n for _, _, n in group.members)
        try:
            with conn.transaction(), conn.cursor() as cur:
                with cur.copy(statement) as copy:
                    for _, data, _ in group.members:
                        copy.write(data)
                if cur.rowcount != expected:
                    raise psycopg.errors.DataError("tagged COPY row count differs")
        except (psycopg.errors.DataError, psycopg.errors.InternalError_):
            return [(f, list(group.columns)) for f, _, _ in group.members]
        for f, _, n in group.members:
            f.rows = f.result.rows_in_file = n
        self.progress.advance(rows=expected)
        return []

    def _copy_one(self, f: _File, cols: list[str]) -> None:
        """The per-file COPY, with the nightly load's refusals."""
        conn, d = self.conn, f.delivery
        refuse = self._refusal(d)
        try:
            with conn.transaction():
                f.rows, sha = self._copy(f, cols, refuse)
                if sha != d.sha256:
                    raise refuse("data file changed while it was being loaded")
                if f.rows != d.rows:
                    raise refuse(f"manifest says {d.rows} rows, data file has {f.rows} "
                                 "(truncated or corrupted transfer)")
        except ingest.RefusedFile as exc:
            self.refuse(f, d.extract_date, exc)
            return
        except (psycopg.errors.DataError, psycopg.errors.InternalError_) as exc:
            self.refuse(f, d.extract_date, refuse(copy_failure_message(exc)))
            return
        f.result.rows_in_file = f.rows
        self.progress.advance(rows=f.rows)

    def _copy(self, f: _File, cols: list[str], refuse) -> tuple[int, str]:
        conn = self.conn
        conn.execute(read_sql("ingest/set_copy_file.sql"), {"file_id": str(f.file_id)})
        return copy_file(conn, copy_statement(self.raw, cols), f.delivery.csv_path,
                         f.header.has_bom)

    def _validate(self, files: list[_File]) -> None:
        """Typed table, one GX checkpoint for the batch, quarantine, refusal share."""
        from upstream.rules import RULES
        from upstream.validate import suite as validation

        conn = self.conn
        began = time.perf_counter()
        files_table = batch_files_table(self.key)
        conn.execute(sql.SQL(read_sql("history/create_batch_files.sql")).format(files=files_table))
        with conn.cursor() as cur:
            cur.executemany(sql.SQL(read_sql("history/insert_batch_file.sql")).format(
                files=files_table), [(f.file_id, f.delivery.extract_date, f.delivery.generated_at,
                                      f.delivery.extract_date.year) for f in files])
        # each file's first raw row: row numbers count from 1 per file, as nightly
        conn.execute(sql.SQL(read_sql("history/batch_file_first_rows.sql")).format(
            raw=self.raw, files=files_table))
        conn.execute(sql.SQL(read_sql("history/analyze_batch_files.sql")).format(
            raw=self.raw, files=files_table))
        pads = set_pads(conn)
        conn.execute(sql.SQL(read_sql("validate/typed_table.sql")).format(
            raw=self.raw, typed=self.typed, files=files_table,
            expected_agency=sql.Literal(self.agency),
            failed_rules=failed_rules_expression(), **pads))
        conn.execute(sql.SQL(read_sql("validate/suspect_rows.sql")).format(
            suspect=self.suspect, typed=self.typed))
        ids = [f.file_id for f in files]
        conn.execute(read_sql("ingest/delete_quarantine.sql"), {"file_ids": ids})
        conn.commit()  # GX reads the suspect rows through its own connection
        self.summary.seconds_by_phase["typed pass (rules, pseudonyms)"] += time.perf_counter() - began
        began = time.perf_counter()

        first, last = files[0].delivery.extract_date, files[-1].delivery.extract_date
        with _GX_TURN:
            report = validation.validate_staged_file(
                conn, self.settings, file_id=self.key, agency=self.agency, extract_date=last,
                run_name=f"{self.agency}_history_{first.isoformat()}_{last.isoformat()}_"
                         f"{files[0].file_id}",
                db_url=self.url)
        self.summary.seconds_by_phase["GX checkpoint"] += time.perf_counter() - began
        began = time.perf_counter()
        if report.failures_by_rule:
            conn.execute(sql.SQL(read_sql("history/quarantine_batch.sql")).format(
                suspect=self.suspect), {"rule_names": [r.name for r in RULES],
                                        "rule_columns": [r.column for r in RULES]})
        per_file = {r["file_id"]: r["n"] for r in conn.execute(
            read_sql("history/quarantined_per_file.sql"), {"file_ids": ids})}
        by_rule: dict[int, dict[str, int]] = {}
        for r in conn.execute(sql.SQL(read_sql("history/rule_counts_per_file.sql")).format(
                suspect=self.suspect)):
            by_rule.setdefault(r["file_id"], {})[r["rule"]] = r["n"]
        for f in files:
            res = f.result
            res.data_docs_path = report.data_docs_path
            res.quarantine_by_rule = by_rule.get(f.file_id, {})
            res.rows_quarantined = per_file.get(f.file_id, 0)
            res.quarantined_share = res.rows_quarantined / f.rows if f.rows else 0.0
            self.summary.quarantined_by_rule.update(res.quarantine_by_rule)
            self.summary.rows_quarantined += res.rows_quarantined
            if quarantine_refuses(self.settings, res.rows_quarantined, f.rows):
                # load_extract's rule (both limits) and message, word for word
                self.refuse(f, f.delivery.extract_date, self._refusal(f.delivery)(
                    f"{quarantine_refusal(self.settings, res.rows_quarantined, f.rows)}: "
                    f"nothing loaded (top rules: {ingest.top_rules(res.quarantine_by_rule)})"))
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
            conn.execute(read_sql("load/create_affected_incidents.sql"))
            affected = conn.execute(sql.SQL(read_sql("load/affected_from_files.sql")).format(
                typed=typed), params).rowcount
            head = seg[0]
            if head.supersedes:  # only a segment's first file supersedes (see _segments)
                supersede_day(conn, head.file_id, head.delivery)
            conn.execute(sql.SQL(read_sql("load/insert_call_versions.sql")).format(
                typed=typed), params)
            # core's statistics, when the policy leaves them, wait for import_history's end
            rederive_current_calls(conn, join_policy(affected, stored_call_estimate(conn)))
            conn.execute(sql.SQL(read_sql("load/upsert_contacts.sql")).format(typed=typed),
                         params)
            check_integrity(conn, ids[0], f"{self.agency}: history merge")
            loaded = {r["file_id"]: r["n"] for r in conn.execute(
                read_sql("history/versions_per_file.sql"), params)}
            stale = {r["file_id"]: r["n"] for r in conn.execute(
                read_sql("history/stale_rows.sql"), params)}
            for f in seg:
                f.result.rows_loaded = loaded.get(f.file_id, 0)
                f.result.rows_stale = stale.get(f.file_id, 0)
            _finish_many(conn, seg, "loaded")
        conn.commit()
        self.summary.files_loaded += len(seg)
        self.summary.rows_loaded += sum(f.result.rows_loaded for f in seg)
        self.progress.advance(files=len(seg))
