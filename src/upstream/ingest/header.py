"""The header record of a data file: read it (BOM, line end, UTF-8), check it against the
contract's columns, and name another delimiter when the file uses one. Error messages never
quote a value from the file."""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass
from pathlib import Path

from upstream.contract import COLUMNS, REQUIRED_COLUMNS

BOM = codecs.BOM_UTF8
MAX_HEADER_BYTES = 64 * 1024


@dataclass(frozen=True)
class Header:
    columns: list[str]       # as in the file, in order
    unknown: list[str]       # ignored, reported
    missing_optional: list[str]
    header_bytes: int        # bytes of the header record, BOM included
    has_bom: bool


_OTHER_DELIMITERS = {";": "semicolon-delimited (;)", "\t": "tab-delimited (\\t)",
                     "|": "pipe-delimited (|)"}


def _other_delimiter(header_line: str) -> str | None:
    """Names the delimiter when the header splits into contract columns on another one."""
    for delimiter, described in _OTHER_DELIMITERS.items():
        if delimiter in header_line:
            names = next(csv.reader(io.StringIO(header_line), delimiter=delimiter), [])
            if sum(n.strip() in REQUIRED_COLUMNS for n in names) >= 2:
                return described
    return None


def read_header(csv_path: Path, refuse) -> Header:
    with csv_path.open("rb") as fh:
        head = fh.read(MAX_HEADER_BYTES)
    has_bom = head.startswith(BOM)
    body = head[len(BOM):] if has_bom else head
    if not body.strip():
        raise refuse("data file is empty: not even a header row")
    # The header is the first record; column names never contain line breaks in practice, but
    # parse it as CSV so quoted names work.
    end = body.find(b"\n")
    if end < 0:
        if len(head) == MAX_HEADER_BYTES:
            raise refuse("header row is longer than 64 KiB")
        end = len(body)
        line = body
    else:
        line = body[: end + 1]
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        raise refuse("header row is not valid UTF-8") from None
    if "\r" in text.rstrip("\r\n") or (end == len(body) and "\r" in text):
        raise refuse("header row is not followed by a \\n or \\r\\n line end "
                     "(old Mac \\r-only line ends?)")
    try:
        names = next(csv.reader(io.StringIO(text)), [])
    except csv.Error:
        raise refuse("header row is not valid RFC 4180 CSV") from None
    names = [n.strip() for n in names]
    # Required columns first: a file without a real header would otherwise have its first
    # data row (personal data) quoted back as "column names".
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        delimiter = _other_delimiter(text)
        if delimiter:
            raise refuse(f"the file looks {delimiter}; the contract requires commas")
        raise refuse(f"missing required column(s): {', '.join(missing)}")
    if any(n == "" for n in names):
        raise refuse("header row has an empty column name")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        named = [d for d in dupes if d in COLUMNS]
        others = len(dupes) - len(named)
        raise refuse("header repeats column(s): " + ", ".join(named)
                     + (f"{', ' if named else ''}{others} other name(s)" if others else ""))
    unknown = [n for n in names if n not in COLUMNS]
    missing_optional = [c for c in COLUMNS if c not in names and c not in REQUIRED_COLUMNS]
    return Header(names, unknown, missing_optional,
                  len(line) + (len(BOM) if has_bom else 0), has_bom)
