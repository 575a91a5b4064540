"""The bad-input catalogue's builders: rows, raw deliveries, and what the warehouse holds.

Shared by tests/integration/bad_inputs/ (refused files, quarantined rows, unusual valid files);
its conftest.py holds the module-scoped `env` (one warehouse state per module, emptied once) and
`baseline` (one good day, loaded once) fixtures. Every case gets its own extract day, so that the
GX-backed loads stay few. Each load gets a fresh GX project directory: measured, that keeps a
load at ~2 s, where one shared project slows down as its validation results and Data Docs pile up.

Canaries: CANARY is the only name/contact value of every row that must not keep its contact
details (non-consented, quarantined or refused); NARRATIVE_CANARY is in narratives, which are never
stored. Neither may appear in any table outside staging, in an error message or in GX's files.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from support.env import empty_every_table
from support.leaks import files_containing, find_text, staging_tables
from upstream.contract import COLUMNS, REQUIRED_COLUMNS
from upstream.dev import generate
from upstream.dev.generate.files import fmt  # the generator's own field formatting
from upstream.ingest import LoadResult, load_extract, pseudonym
from upstream.settings import Settings, pseudonym_key

TZ = ZoneInfo("America/Toronto")
AGENCY = "WPS"
CANARY = "CANARYNAME123"
NARRATIVE_CANARY = "NARRCANARY987"
FIELDS: tuple[str, ...] = tuple(COLUMNS)
OPTIONAL_FIELDS = tuple(c for c in FIELDS if c not in REQUIRED_COLUMNS)
WAREHOUSE_TABLES = (
    "ops.quarantine_row", "contact.victim_contact", "core.call", "core.call_version",
    "ops.extract_file",
)  # fmt: skip
DELETE = object()  # manifest override: drop the key

assert generate.COLUMNS == FIELDS, "generate.py and the contract disagree on the column order"


# ---------------------------------------------------------------------------------------------
# Environment


@dataclass(frozen=True)
class Env:
    settings: Settings
    url: str
    gx_root: Path




def truncate_warehouse(url: str) -> None:
    empty_every_table(url, must_include=WAREHOUSE_TABLES)


_gx_runs = itertools.count()


def load(env: Env, d: date, **settings_changes: Any) -> LoadResult:
    """load_extract with a fresh GX project directory (see the module docstring)."""
    settings = env.settings.with_changes(validate__gx_dir=env.gx_root / f"run-{next(_gx_runs)}", **settings_changes)
    return load_extract(AGENCY, d, settings)


def connect(env: Env) -> psycopg.Connection:
    return psycopg.connect(env.url, row_factory=dict_row, autocommit=True)


# ---------------------------------------------------------------------------------------------
# Rows


def generated_at(d: date) -> datetime:
    return datetime.combine(d + timedelta(days=1), time(1, 5), TZ)


def call_at(d: date, n: int) -> datetime:
    return datetime.combine(d, time(6, 0), TZ) + timedelta(minutes=3 * n)


def incident(d: date, n: int) -> str:
    return f"{AGENCY}-{d:%Y%m%d}-{n:04d}"


def apply_overrides(row: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in over.items():
        row[key] = value(row) if callable(value) else value
    return row


def declined_row(d: date, n: int, **over: Any) -> dict[str, Any]:
    """Valid, not charged, consent declined; contact fields filled (as RMS rows often are) with
    the canary: they must be dropped."""
    call = call_at(d, n)
    row: dict[str, Any] = dict.fromkeys(FIELDS)
    row.update(
        agency_code=AGENCY, incident_id=incident(d, n), record_version=1,
        call_received_at=call, cleared_at=call + timedelta(hours=2), call_source="911",
        call_type="ipv_threats", patrol_zone="Z3",
        clearance_status="cleared_otherwise_departmental_discretion", charges_laid=0,
        relationship="former_dating", weapon="none", injury_level="none",
        children_present=False, substance_involved=True, consent_status="declined",
        consent_recorded_at=call + timedelta(hours=1), consent_officer_id=None,
        victim_person_id=f"MNI-{d:%y%m%d}{n:04d}", accused_person_id=f"MNI-X{d:%y%m%d}{n:04d}",
        address_id=f"ADDR-{n:06d}",
        victim_given_name=CANARY, victim_family_name=CANARY, victim_birth_year=1988,
        victim_phone="+15195550142", victim_email=f"{CANARY.lower()}@example.com",
        victim_safe_contact_notes=f"ask for {CANARY}", victim_postal_code="N9A 1A1",
        responding_officer_id="W1037",
        narrative=f"{NARRATIVE_CANARY}: caller reported shouting next door, neighbours concerned.",
    )  # fmt: skip
    return apply_overrides(row, over)


def given_row(d: date, n: int, given: str = "Amélie", family: str = "Gagnon",
              **over: Any) -> dict[str, Any]:
    """Valid, not charged, consent given with complete contact details (kept)."""
    row = declined_row(d, n)
    call = row["call_received_at"]
    row.update(
        clearance_status="cleared_otherwise_complainant_request", consent_status="given",
        consent_recorded_at=call + timedelta(minutes=50), consent_officer_id="W2044",
        victim_given_name=given, victim_family_name=family, victim_birth_year=1990,
        victim_phone="+15195550199", victim_email="a.gagnon@example.ca",
        victim_preferred_contact="phone",
        victim_safe_contact_notes="weekday mornings only, no voicemail",
        victim_language="fr", victim_postal_code="N9B 2C3",
    )  # fmt: skip
    return apply_overrides(row, over)


def charged_row(d: date, n: int, **over: Any) -> dict[str, Any]:
    """Valid, cleared by charge (consent not applicable); contact fields filled: dropped."""
    row = declined_row(d, n)
    row.update(clearance_status="cleared_by_charge", charges_laid=2, call_type="ipv_assault",
               weapon="physical_force", injury_level="minor", consent_status="not_applicable",
               consent_recorded_at=None)
    return apply_overrides(row, over)


def not_asked_row(d: date, n: int, **over: Any) -> dict[str, Any]:
    """Valid, not cleared (no cleared_at), consent not asked."""
    row = declined_row(d, n)
    row.update(clearance_status="not_cleared", cleared_at=None, consent_status="not_asked",
               consent_recorded_at=None, substance_involved=None)
    return apply_overrides(row, over)


KINDS: dict[str, Callable[..., dict[str, Any]]] = {
    "declined": declined_row, "given": lambda d, n: given_row(d, n, CANARY, CANARY),
    "charged": charged_row, "not_asked": not_asked_row,
}  # fmt: skip


def filler_rows(d: date, count: int, seed: int, prefix: str = "F") -> list[dict[str, Any]]:
    """Varied valid rows from the project's generator (some consented, some charged)."""
    rng = random.Random(seed)
    return [
        generate.make_row(rng, AGENCY, f"{AGENCY}-{d:%Y%m%d}-{prefix}{k:04d}",
                          datetime.combine(d, time(6, 0), TZ) + timedelta(minutes=4 * k))
        for k in range(count)
    ]


# ---------------------------------------------------------------------------------------------
# Writing deliveries


def render(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] = FIELDS, *,
           line_ending: str = "\n", quoting: int = csv.QUOTE_MINIMAL, delimiter: str = ",",
           header: bool = True) -> bytes:
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator=line_ending, quoting=quoting, delimiter=delimiter)
    if header:
        writer.writerow(columns)
    writer.writerows([fmt(r.get(c)) for c in columns] for r in rows)
    return buf.getvalue().encode("utf-8")


def paths(s: Settings, d: date) -> tuple[Path, Path]:
    folder = s.landing.dir / AGENCY
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{AGENCY}_ipv_calls_{d.isoformat()}"
    return folder / f"{stem}.csv", folder / f"{stem}.manifest.json"


def manifest_doc(d: date, data: bytes, rows: int, /, **overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "extract_version": "1", "agency_code": AGENCY, "extract_date": d.isoformat(),
        "file": f"{AGENCY}_ipv_calls_{d.isoformat()}.csv", "rows": rows,
        "sha256": hashlib.sha256(data).hexdigest(), "generated_at": generated_at(d).isoformat(),
    }  # fmt: skip
    for key, value in overrides.items():
        if value is DELETE:
            doc.pop(key, None)
        else:
            doc[key] = value
    return doc


def deliver(s: Settings, d: date, data: bytes | None, rows: int, /, *, manifest: bool = True,
            manifest_bytes: bytes | None = None, sha_of: bytes | None = None,
            **overrides: Any) -> None:
    """Write raw data bytes (None: no data file), then the manifest describing `sha_of` (default:
    the data itself) unless manifest_bytes are given verbatim."""
    csv_path, manifest_path = paths(s, d)
    if data is not None:
        csv_path.write_bytes(data)
    if manifest_bytes is not None:
        manifest_path.write_bytes(manifest_bytes)
    elif manifest:
        doc = manifest_doc(d, data if sha_of is None else sha_of, rows, **overrides)
        manifest_path.write_text(json.dumps(doc, ensure_ascii=False))


def write_rows(s: Settings, d: date, rows: Sequence[Mapping[str, Any]], **kwargs: Any) -> None:
    """The project's writer (upstream.dev.generate.write_extract) for well-formed deliveries."""
    kwargs.setdefault("generated_at", generated_at(d))
    generate.write_extract(s.landing.dir, AGENCY, d, rows, **kwargs)


# ---------------------------------------------------------------------------------------------
# Inspecting the warehouse


def snapshot(conn: psycopg.Connection) -> dict[str, list[dict[str, Any]]]:
    """Full contents of the tables a refused file must not touch."""
    out = {}
    for table in ("core.call", "core.call_version", "contact.victim_contact"):
        schema, name = table.split(".")
        out[table] = conn.execute(sql.SQL(
            "SELECT * FROM {} ORDER BY agency_code, incident_id, file_id"
        ).format(sql.Identifier(schema, name))).fetchall()
    return out


def extract_files(conn: psycopg.Connection, d: date) -> list[dict[str, Any]]:
    return conn.execute(
        "SELECT file_id, status, reason, rows_in_file, rows_loaded, rows_quarantined, rows_stale,"
        " unknown_columns FROM ops.extract_file WHERE agency_code = %s AND extract_date = %s"
        " ORDER BY file_id", (AGENCY, d)).fetchall()


def quarantine(conn: psycopg.Connection, file_id: int) -> set[tuple[int, str | None, str, str]]:
    return {(r["row_number"], r["incident_id"], r["rule"], r["column_name"])
            for r in conn.execute(
                "SELECT row_number, incident_id, rule, column_name FROM ops.quarantine_row"
                " WHERE file_id = %s", (file_id,))}


def _text(value: Any) -> str | None:
    s = fmt(value)
    return s if s != "" else None


def _ts(value: Any) -> datetime | None:
    s = _text(value)
    return datetime.fromisoformat(s) if s is not None else None


def _int(value: Any) -> int | None:
    s = _text(value)
    return int(s) if s is not None else None


def _bool(value: Any) -> bool | None:
    s = _text(value)
    return None if s is None else {"true": True, "false": False}[s]


def expected_call(row: Mapping[str, Any], key: bytes) -> dict[str, Any]:
    """The core.call values a valid row must produce (pseudonyms computed in Python)."""
    agency = row["agency_code"]
    accused = _text(row.get("accused_person_id"))
    out: dict[str, Any] = {
        "record_version": _int(row["record_version"]),
        "charges_laid": _int(row["charges_laid"]),
        "children_present": _bool(row["children_present"]),
        "substance_involved": _bool(row.get("substance_involved")),
        "victim_key": pseudonym(key, "person", agency, _text(row["victim_person_id"])),
        "accused_key": pseudonym(key, "person", agency, accused) if accused else None,
        "address_key": pseudonym(key, "address", agency, _text(row["address_id"])),
    }
    for col in ("call_received_at", "cleared_at", "consent_recorded_at"):
        out[col] = _ts(row.get(col))
    for col in ("agency_code", "incident_id", "call_source", "call_type", "patrol_zone",
                "clearance_status", "relationship", "weapon", "injury_level", "consent_status",
                "consent_officer_id", "responding_officer_id"):
        out[col] = _text(row.get(col))
    return out


def expected_contact(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "record_version": _int(row["record_version"]),
        "given_name": _text(row.get("victim_given_name")),
        "family_name": _text(row.get("victim_family_name")),
        "birth_year": _int(row.get("victim_birth_year")),
        "phone": _text(row.get("victim_phone")),
        "email": _text(row.get("victim_email")),
        "preferred_contact": _text(row.get("victim_preferred_contact")),
        "safe_contact_notes": _text(row.get("victim_safe_contact_notes")),
        "language": _text(row.get("victim_language")) or "en",
        "postal_code": _text(row.get("victim_postal_code")),
    }


def assert_stored_exactly(conn: psycopg.Connection, rows: Sequence[Mapping[str, Any]],
                          file_id: int, d: date) -> None:
    """Each row is the current call, from this file, with exactly its values; contact details
    exist for exactly the consented rows and equal the input."""
    key = pseudonym_key()
    ids = [_text(r["incident_id"]) for r in rows]
    assert len(set(ids)) == len(ids)
    stored = {r["incident_id"]: r for r in conn.execute(
        "SELECT * FROM core.call WHERE agency_code = %s AND incident_id = ANY(%s)", (AGENCY, ids))}
    contacts = {r["incident_id"]: r for r in conn.execute(
        "SELECT * FROM contact.victim_contact WHERE agency_code = %s AND incident_id = ANY(%s)",
        (AGENCY, ids))}
    assert sorted(stored) == sorted(ids)
    for row in rows:
        got = stored[_text(row["incident_id"])]
        want = expected_call(row, key)
        assert {k: got[k] for k in want} == want, row["incident_id"]
        assert (got["file_id"], got["extract_date"]) == (file_id, d)
        contact = contacts.get(_text(row["incident_id"]))
        if _text(row["consent_status"]) == "given":
            assert contact is not None, row["incident_id"]
            want_c = expected_contact(row)
            assert {k: contact[k] for k in want_c} == want_c, row["incident_id"]
            assert contact["file_id"] == file_id
        else:
            assert contact is None, f"contact kept for non-consented {row['incident_id']}"


def assert_no_leak(env: Env, conn: psycopg.Connection, *texts: str) -> None:
    for needle in (CANARY, NARRATIVE_CANARY):
        assert find_text(conn, needle) == [], f"{needle} persisted"
        assert files_containing(env.gx_root, needle) == [], f"{needle} in GX files"
        for text in texts:
            assert needle not in (text or "")
    assert staging_tables(conn) == 0


# ---------------------------------------------------------------------------------------------
# Baseline: one good day, so that "nothing changed" is checked against non-empty tables

BASE_DAY = date(2024, 5, 1)


def baseline_rows() -> list[dict[str, Any]]:
    d = BASE_DAY
    return [
        declined_row(d, 1), given_row(d, 2), charged_row(d, 3), not_asked_row(d, 4),
        # Version 2 of two incidents (the stale test later delivers older / equal versions).
        given_row(d, 5, "Chloé", "Côté", incident_id="WPS-STALE-1", record_version=2),
        charged_row(d, 6, incident_id="WPS-STALE-2", record_version=2, charges_laid=1),
    ]

