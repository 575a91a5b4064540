"""Writing deliveries: the CSV (RFC 4180), its manifest after it, and broken deliveries.

File and manifest names come from upstream.contract, the one home of the contract's names.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from upstream.contract import COLUMNS as CONTRACT_COLUMNS
from upstream.contract import EXTRACT_VERSION, data_file_name, manifest_file_name
from upstream.dev.generate.clock import TZ, default_generated_at

# Column names in the contract's order (the header every good file carries).
COLUMNS: tuple[str, ...] = tuple(CONTRACT_COLUMNS)

BAD_FILE_KINDS: tuple[str, ...] = (
    "manifest_missing",
    "sha256_mismatch",
    "row_count_mismatch",
    "truncated_file",
)


@dataclass
class GeneratedDay:
    """What was written for one agency-day."""

    agency_code: str
    extract_date: date
    csv_path: Path
    manifest_path: Path
    rows: int
    # Which broken delivery this is (one of BAD_FILE_KINDS), None for a good one. Added beyond
    # the brief's fields (with a default, so positional construction still works).
    bad_file_kind: str | None = None


def csv_name(agency_code: str, extract_date: date) -> str:
    return data_file_name(agency_code, extract_date)


def manifest_name(agency_code: str, extract_date: date) -> str:
    return manifest_file_name(agency_code, extract_date)


def fmt(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


def _render(
    rows: Sequence[Mapping[str, object]], columns: Sequence[str], line_ending: str, bom: bool
) -> bytes:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator=line_ending, quoting=csv.QUOTE_MINIMAL)
    writer.writerow(columns)
    writer.writerows([fmt(row.get(c)) for c in columns] for row in rows)
    data = buf.getvalue().encode("utf-8")
    return b"\xef\xbb\xbf" + data if bom else data


def _json_default(value: object) -> str:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"cannot put {type(value).__name__} into a manifest")


def atomic_write(path: Path, data: bytes) -> None:
    # Write beside the target and rename, so nobody ever reads half a file (the temp name does
    # not match the contract's file names, so a sensor will not pick it up).
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def manifest_doc(
    agency_code: str,
    extract_date: date,
    file_name: str,
    rows: int,
    sha256: str,
    generated_at: datetime,
    overrides: Mapping[str, object] | None,
) -> bytes:
    doc: dict[str, object] = {
        "extract_version": EXTRACT_VERSION,
        "agency_code": agency_code,
        "extract_date": extract_date.isoformat(),
        "file": file_name,
        "rows": rows,
        "sha256": sha256,
        # An aware value is kept as given; a naive one is taken as local time.
        "generated_at": (
            generated_at if generated_at.tzinfo else generated_at.replace(tzinfo=TZ)
        ).isoformat(),
    }
    for key, value in (overrides or {}).items():
        if value is None:
            doc.pop(key, None)
        else:
            doc[key] = value
    return (json.dumps(doc, ensure_ascii=False, default=_json_default) + "\n").encode("utf-8")


def _deliver(
    landing_dir: Path,
    agency_code: str,
    extract_date: date,
    data: bytes,
    manifest: bytes | None,
) -> tuple[Path, Path]:
    folder = Path(landing_dir) / agency_code
    folder.mkdir(parents=True, exist_ok=True)
    csv_path = folder / csv_name(agency_code, extract_date)
    manifest_path = folder / manifest_name(agency_code, extract_date)
    # An old manifest next to a rewritten file would describe the wrong bytes: remove it first,
    # so the file counts as incomplete until its own manifest lands.
    manifest_path.unlink(missing_ok=True)
    atomic_write(csv_path, data)
    if manifest is not None:
        atomic_write(manifest_path, manifest)
    return csv_path, manifest_path


def write_extract(
    landing_dir: Path,
    agency_code: str,
    extract_date: date,
    rows: Sequence[Mapping[str, object]],
    *,
    generated_at: datetime | None = None,
    columns: Sequence[str] | None = None,
    line_ending: str = "\n",
    bom: bool = False,
    manifest: bool = True,
    manifest_overrides: Mapping[str, object] | None = None,
) -> GeneratedDay:
    """Write one extract (and, after it, its manifest) under <landing>/<agency>/.

    Rows are mappings; columns missing from a row are written empty, keys not in `columns`
    are left out. None -> empty, bools -> true/false, datetimes -> isoformat. In the manifest,
    `manifest_overrides` replaces or adds keys; a None value deletes the key.
    """
    cols = tuple(columns) if columns is not None else COLUMNS
    data = _render(rows, cols, line_ending, bom)
    man = None
    if manifest:
        man = manifest_doc(
            agency_code,
            extract_date,
            csv_name(agency_code, extract_date),
            len(rows),  # one record per row, however many lines its quoted fields span
            hashlib.sha256(data).hexdigest(),
            generated_at or default_generated_at(extract_date),
            manifest_overrides,
        )
    csv_path, manifest_path = _deliver(landing_dir, agency_code, extract_date, data, man)
    return GeneratedDay(agency_code, extract_date, csv_path, manifest_path, len(rows))


def write_bad_file(
    kind: str,
    landing_dir: Path,
    agency_code: str,
    extract_date: date,
    rows: Sequence[Mapping[str, object]],
    generated_at: datetime,
) -> GeneratedDay:
    """A broken delivery of an otherwise good day (kind from BAD_FILE_KINDS)."""
    good = _render(rows, COLUMNS, "\n", False)
    n = len(rows)
    manifest_rows = n + 1 + extract_date.toordinal() % 3 if kind == "row_count_mismatch" else n
    man = manifest_doc(
        agency_code,
        extract_date,
        csv_name(agency_code, extract_date),
        manifest_rows,
        hashlib.sha256(good).hexdigest(),
        generated_at,
        None,
    )
    data = good
    if kind == "manifest_missing":
        man = None
    elif kind == "sha256_mismatch":
        # One flipped character in transfer: still parses, but is not what was sent.
        buf = bytearray(good)
        i = len(buf) // 2
        while not chr(buf[i]).isalnum():
            i += 1
        buf[i] = ord("7") if chr(buf[i]) != "7" else ord("8")
        data = bytes(buf)
    elif kind == "truncated_file":
        data = good[: max(1, len(good) * 3 // 5)]
    elif kind != "row_count_mismatch":
        raise ValueError(f"unknown bad file kind {kind!r}; expected one of {BAD_FILE_KINDS}")
    csv_path, manifest_path = _deliver(landing_dir, agency_code, extract_date, data, man)
    return GeneratedDay(agency_code, extract_date, csv_path, manifest_path, n, kind)
