"""`upstream validate FILE`: check one extract against the contract without loading it.

Runs the same manifest checks, COPY and GX suite as the nightly load, in a throw-away staging
table, and prints which rows break which rules (CSV line numbers, rule names and the rules'
bounds, never values).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from psycopg import sql

from upstream import ingest
from upstream.contract import FILE_NAME_RE
from upstream.rules import RULES_BY_NAME
from upstream.settings import Settings, load_settings
from upstream.warehouse import db
from upstream.warehouse.sql import read_sql
from upstream.warehouse.staging import drop_staging, suspect_table


@dataclass
class CheckReport:
    file: str
    refused_reason: str | None = None
    incomplete_reason: str | None = None  # no manifest, and the caller requires one
    rows: int = 0
    rows_failing: int = 0
    failures: dict[str, tuple[int, list[int]]] = field(default_factory=dict)
    lines: dict[int, int] = field(default_factory=dict)  # record number -> CSV line
    rule_details: dict[str, str] = field(default_factory=dict)  # rule -> file-specific bound
    unknown_columns: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    limits: Settings | None = None

    @property
    def clean(self) -> bool:
        return self.refused_reason is None and self.incomplete_reason is None and not self.failures

    def verdict(self) -> str:
        if self.refused_reason:
            return "REFUSED: " + self.refused_reason
        if not self.failures:
            return f"OK: all {self.rows} rows pass every contract rule"
        share = self.rows_failing / self.rows if self.rows else 0
        if self.limits and ingest.quarantine_refuses(self.limits, self.rows_failing, self.rows):
            return "REFUSED: " + ingest.quarantine_refusal(self.limits, self.rows_failing, self.rows)
        return f"LOADABLE WITH QUARANTINE: {self.rows_failing} of {self.rows} rows ({share:.1%})"

    def render(self) -> str:
        lines = [f"file: {self.file}"]
        if self.incomplete_reason:
            return "\n".join([*lines, "INCOMPLETE: " + self.incomplete_reason])
        lines.append(self.verdict())
        lines += [f"note: {n}" for n in self.notes]
        if self.unknown_columns:
            lines.append("unknown columns (ignored): " + ", ".join(self.unknown_columns))
        if self.failures:
            lines.append("rows that break rules (CSV line numbers as in an editor: the header "
                         "is line 1; a row with a quoted line break spans several lines):")
        for rule, (count, first) in sorted(self.failures.items()):
            at = [str(self.lines.get(n, f"row {n}")) for n in first]
            more = f" (first {len(first)})" if count > len(first) else ""
            noun = "line" if len(at) == 1 else "lines"
            lines.append(f"  {rule}: {count} row(s), {noun} {', '.join(at)}{more}")
            described = RULES_BY_NAME[rule].description
            detail = self.rule_details.get(rule)
            lines.append(f"      rule: {described}" + (f" (here: {detail})" if detail else ""))
        return "\n".join(lines)


def check_file(csv_path: Path, *, require_manifest: bool = True) -> CheckReport:
    settings = load_settings()
    report = CheckReport(file=str(csv_path), limits=settings)
    match = FILE_NAME_RE.match(csv_path.name)
    if not match:
        report.refused_reason = "file name is not <AGENCY>_ipv_calls_<YYYY-MM-DD>.csv"
        return report
    agency = match["agency"]
    try:
        day = date.fromisoformat(match["date"])
    except ValueError:
        report.refused_reason = "file name carries an invalid date"
        return report
    if not csv_path.is_file():
        report.refused_reason = "no such file"
        return report
    manifest_path = csv_path.with_name(csv_path.name[:-4] + ".manifest.json")
    try:
        if require_manifest and manifest_path.is_file():
            delivery = ingest.verify_delivery_files(agency, day, csv_path, manifest_path)
        else:
            if require_manifest:
                report.incomplete_reason = (
                    f"no manifest {manifest_path.name} beside the file: the contract calls a "
                    "data file without its manifest incomplete (the nightly load waits for it); "
                    "rows not checked: `upstream validate --no-manifest FILE` checks the data "
                    "file alone")
                return report
            report.notes.append("data file checked alone (--no-manifest): sha256 and row "
                                "count not checked")
            delivery = ingest.Delivery(agency, day, csv_path, manifest_path,
                                       ingest.file_sha256(csv_path), -1,
                                       _end_of_next_day(day, settings.timezone))
        _check_rows(settings, delivery, report)
    except ingest.RefusedFile as exc:
        report.refused_reason = exc.public_message
    return report


def record_lines(csv_path: Path, records: set[int]) -> dict[int, int]:
    """CSV record number (1 = first data row) -> the line it starts on (header = line 1).

    A record ends at a line break outside quotes; RFC 4180 escapes a quote by doubling it, so
    an odd number of quote characters on a line toggles "inside a quoted field".
    """
    out: dict[int, int] = {}
    if not records:
        return out
    last = max(records)
    record, in_quotes, start = 0, False, 1
    with csv_path.open("rb") as fh:
        for line_no, raw in enumerate(fh, start=1):
            if not in_quotes:
                start = line_no
            if raw.count(b'"') % 2:
                in_quotes = not in_quotes
            if not in_quotes:
                if record in records:
                    out[record] = start
                record += 1
                if record > last:
                    break
    return out


def _rule_details(delivery: ingest.Delivery) -> dict[str, str]:
    """The file-specific bounds of the rules whose limits depend on the file."""
    generated = (f"{delivery.generated_at.isoformat()}, the manifest's generated_at"
                 if delivery.rows >= 0 else
                 f"{delivery.generated_at.isoformat()}, no manifest: end of the next day")
    return {
        "agency_code.matches_file": delivery.agency_code,
        "victim_birth_year.range": f"1900 to {delivery.extract_date.year}",
        "call_received_at.range": f"2000-01-01 to {generated}",
        "cleared_at.not_in_future": generated,
    }


def _end_of_next_day(day, tz):
    from datetime import datetime, time, timedelta

    return datetime.combine(day + timedelta(days=2), time(0), tzinfo=tz)


def _check_rows(settings, delivery: ingest.Delivery, report: CheckReport) -> None:
    from upstream.validate import suite as validation

    where = f"{delivery.agency_code} {delivery.extract_date.isoformat()}"

    def refuse(msg: str) -> ingest.RefusedFile:
        return ingest.RefusedFile(f"{where}: {msg}")

    key = f"check_{uuid.uuid4().hex[:12]}"
    url = db.warehouse_url(settings)
    db.migrate(url)  # a fresh machine: the staging schema must exist
    with db.connect(url, role=db.LOADER) as conn:
        try:
            header = ingest.read_header(delivery.csv_path, refuse)
            report.unknown_columns = header.unknown
            rows, _ = ingest.copy_to_staging(conn, key, delivery.csv_path, header, refuse)
            report.rows = rows
            if delivery.rows >= 0 and rows != delivery.rows:
                raise refuse(f"manifest says {delivery.rows} rows, data file has {rows}")
            ingest.build_typed_table(conn, key, delivery.agency_code, delivery)
            conn.commit()
            result = validation.validate_staged_file(
                conn, settings, file_id=key, agency=delivery.agency_code,
                extract_date=delivery.extract_date, run_name=f"check_{where}", db_url=url)
            report.failures = validation.failing_rows(conn, key, list(result.failures_by_rule))
            report.lines = record_lines(delivery.csv_path, {
                n for _, first in report.failures.values() for n in first})
            report.rule_details = _rule_details(delivery)
            if report.failures:
                report.rows_failing = conn.execute(sql.SQL(read_sql("validate/count_rows.sql"))
                                                   .format(table=suspect_table(key))).fetchone()["n"]
        finally:
            conn.rollback()
            drop_staging(conn, key)
            conn.commit()
