"""Deterministic demo data: daily IPV call extracts and their manifests.

Everything written here follows /work/shared/contracts/ipv-call-extract-v1.md (file naming,
manifest, RFC 4180 CSV, every column rule), unless a bad row or bad file is asked for.

Each agency-day is generated from its own seeded random stream (seed, agency, date), and the
cross-day parts (repeat victims, later corrections) are functions of that seed too. So a day's
file does not depend on the requested date range: generating June and then June 15 - July 15
writes byte-identical files for the overlapping days, as a real re-delivery would.

Standard library and upstream.contract only; no pandas, nothing that needs a database.

The package is split by concern: tables (calibration), clock (local time), rows, bad_rows,
files (CSV + manifest, broken deliveries), agency (the day-by-day simulation), large
(benchmark extracts). Names used by tests and the CLI are re-exported here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, timedelta
from pathlib import Path

from upstream.contract import AGENCY_CODE_RE, CONTACT_COLUMNS, EXTRACT_VERSION
from upstream.dev.generate.agency import Agency
from upstream.dev.generate.bad_rows import BAD_ROW_KINDS, make_bad_row
from upstream.dev.generate.clock import TZ, default_generated_at
from upstream.dev.generate.files import (
    BAD_FILE_KINDS,
    COLUMNS,
    GeneratedDay,
    csv_name,
    manifest_name,
    write_bad_file,
    write_extract,
)
from upstream.dev.generate.large import write_large_extract
from upstream.dev.generate.rows import make_row

__all__ = [
    "BAD_FILE_KINDS",
    "BAD_ROW_KINDS",
    "COLUMNS",
    "CONTACT_COLUMNS",
    "EXTRACT_VERSION",
    "TZ",
    "GeneratedDay",
    "csv_name",
    "generate",
    "make_bad_row",
    "make_row",
    "manifest_name",
    "write_extract",
    "write_large_extract",
]


# Kept under its old private name: tests build manifests with the default delivery time.
_default_generated_at = default_generated_at


def _days(start: date, end: date) -> Iterator[date]:
    d = start
    while d <= end:
        yield d
        d += timedelta(days=1)


def generate(
    landing_dir: Path,
    start: date,
    end: date,
    agencies: Sequence[str] = ("WPS",),
    seed: int = 7,
    calls_per_day: float = 8.0,
    bad_rows_share: float = 0.0,
    bad_files: bool = False,
    generated_at_hour: int = 1,
) -> list[GeneratedDay]:
    """Write an extract and manifest for every agency and every day start..end inclusive.

    Same arguments, same bytes (generated_at included). A day's content depends only on seed,
    agency and date, not on the range asked for. bad_rows_share replaces that share of
    first-version rows with rows that each break one rule; bad_files makes every tenth day
    (per agency) a broken delivery instead (see BAD_FILE_KINDS and GeneratedDay.bad_file_kind).
    Rows are never later than the end of their extract day: asking for a day that has not
    ended yet produces timestamps in the future.
    """
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    if start.year < 2000:
        raise ValueError("the contract refuses calls before 2000")
    if not 0 <= bad_rows_share <= 1:
        raise ValueError("bad_rows_share must be between 0 and 1")
    if not 0 <= generated_at_hour <= 23:
        raise ValueError("generated_at_hour must be an hour of the day (0-23)")
    if calls_per_day < 0:
        raise ValueError("calls_per_day must not be negative")
    for agency in agencies:
        if not AGENCY_CODE_RE.match(agency):
            raise ValueError(f"agency code {agency!r} is not 2-6 upper-case letters")

    written: list[GeneratedDay] = []
    for agency in agencies:
        sim = Agency(seed, agency, calls_per_day)
        for d in _days(start, end):
            rows = sim.spoil(d, sim.day(d), bad_rows_share)
            generated_at = default_generated_at(d, generated_at_hour)
            kind = sim.bad_file_kind(d) if bad_files else None
            if kind is not None:
                written.append(write_bad_file(kind, landing_dir, agency, d, rows, generated_at))
            else:
                written.append(
                    write_extract(landing_dir, agency, d, rows, generated_at=generated_at)
                )
    return written
