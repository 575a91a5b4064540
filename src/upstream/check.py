"""`upstream validate FILE`: check one extract against the contract without loading it.

Runs the same manifest checks, COPY and GX suite as the nightly load, in a throw-away staging
table, and prints which rows break which rules (row numbers and rule names, never values).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from psycopg import sql

from upstream import db, ingest
from upstream.config import load_settings
from upstream.contract import FILE_NAME_RE


@dataclass
class CheckReport:
    file: str
    refused_reason: str | None = None
    rows: int = 0
    rows_failing: int = 0
    failures: dict[str, tuple[int, list[int]]] = field(default_factory=dict)
    unknown_columns: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    max_share: float = 0.05

    @property
    def clean(self) -> bool:
        return self.refused_reason is None and not self.failures

    def verdict(self) -> str:
        if self.refused_reason:
            return "REFUSED: " + self.refused_reason
        if not self.failures:
            return f"OK: all {self.rows} rows pass every contract rule"
        share = self.rows_failing / self.rows if self.rows else 0
        if share > self.max_share:
            return (f"REFUSED: {self.rows_failing} of {self.rows} rows ({share:.1%}) break rules, "
                    f"above the {self.max_share:.1%} limit")
        return f"LOADABLE WITH QUARANTINE: {self.rows_failing} of {self.rows} rows ({share:.1%})"

    def render(self) -> str:
        lines = [f"file: {self.file}", self.verdict()]
        lines += [f"note: {n}" for n in self.notes]
        if self.unknown_columns:
            lines.append("unknown columns (ignored): " + ", ".join(self.unknown_columns))
        for rule, (count, first) in sorted(self.failures.items()):
            more = " ..." if count > len(first) else ""
            lines.append(f"  {rule}: {count} row(s), rows {', '.join(map(str, first))}{more}")
        return "\n".join(lines)


def check_file(csv_path: Path) -> CheckReport:
    settings = load_settings()
    report = CheckReport(file=str(csv_path), max_share=settings.quarantine_max_share)
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
        if manifest_path.is_file():
            delivery = ingest.verify_delivery_files(agency, day, csv_path, manifest_path)
        else:
            report.notes.append("no manifest beside the file: sha256 and row count not checked")
            delivery = ingest.Delivery(agency, day, csv_path, manifest_path,
                                       ingest.file_sha256(csv_path), -1,
                                       _end_of_next_day(day, settings.timezone))
        _check_rows(settings, delivery, report)
    except ingest.RefusedFile as exc:
        report.refused_reason = exc.public_message
    return report


def _end_of_next_day(day, tz):
    from datetime import datetime, time, timedelta

    return datetime.combine(day + timedelta(days=2), time(0), tzinfo=tz)


def _check_rows(settings, delivery: ingest.Delivery, report: CheckReport) -> None:
    from upstream import validation

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
            if report.failures:
                report.rows_failing = conn.execute(
                    sql.SQL("SELECT count(*) AS n FROM {}").format(ingest.suspect_table(key))
                ).fetchone()["n"]
        finally:
            conn.rollback()
            ingest.drop_staging(conn, key)
            conn.commit()
