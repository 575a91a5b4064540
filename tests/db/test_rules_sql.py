"""The SQL helpers the row rules rely on (parsing, HMAC pseudonyms) and the rule predicates on a
typed table built by the production SQL. No GX. The catalogue itself (pure Python) is tested in
tests/unit/test_rule_catalogue.py.

The checks use the session's migrated warehouse (`warehouse_url`) and run inside a transaction
that is rolled back, so they leave nothing behind (no staging table survives a test).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from upstream.contract import COLUMNS, REQUIRED_COLUMNS
from upstream.ingest import Delivery, build_typed_table
from upstream.pseudonyms import hmac_pads, pseudonym
from upstream.rules import RULES
from upstream.warehouse.sql import read_sql

# ---------------------------------------------------------------------------------------------
# SQL helpers


@pytest.fixture
def conn(warehouse_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(warehouse_url, row_factory=dict_row) as c:
        c.execute("SET TIME ZONE 'UTC'")
        yield c
        c.rollback()


def _utc(value: Any, conn: psycopg.Connection) -> datetime | None:
    return conn.execute(
        "SELECT staging.parse_timestamptz(%s::text) AT TIME ZONE 'UTC' AS v", (value,)
    ).fetchone()["v"]


VALID_TIMESTAMPS = [
    ("2024-06-01T12:00:00Z", datetime(2024, 6, 1, 12)),
    ("2024-06-01T12:00:00+00:00", datetime(2024, 6, 1, 12)),
    ("2024-06-01T12:00:00+05:30", datetime(2024, 6, 1, 6, 30)),
    ("2024-06-01T12:00:00-0400", datetime(2024, 6, 1, 16)),
    ("2024-06-01T12:00:00-04", datetime(2024, 6, 1, 16)),
    ("2024-06-01T12:00:00.123456-04:00", datetime(2024, 6, 1, 16, 0, 0, 123456)),
    ("2024-06-01T12:00:00.5Z", datetime(2024, 6, 1, 12, 0, 0, 500000)),
    ("2024-06-01T12:00Z", datetime(2024, 6, 1, 12)),
    ("2024-06-01 12:00:00-04:00", datetime(2024, 6, 1, 16)),
    ("2024-02-29T23:59:59+00:00", datetime(2024, 2, 29, 23, 59, 59)),
    ("2000-02-29T00:00:00Z", datetime(2000, 2, 29)),
    ("2024-12-31T23:30:00-05:00", datetime(2025, 1, 1, 4, 30)),
    ("2024-03-10T02:30:00-05:00", datetime(2024, 3, 10, 7, 30)),  # local DST gap, offset given
    ("2024-11-03T01:30:00-04:00", datetime(2024, 11, 3, 5, 30)),  # ambiguous local hour
    ("2024-11-03T01:30:00-05:00", datetime(2024, 11, 3, 6, 30)),
    ("2024-06-01T00:00:00+14:00", datetime(2024, 5, 31, 10)),
    ("0001-01-01T00:00:00Z", datetime(1, 1, 1)),
]

INVALID_TIMESTAMPS = [
    "2024-06-01T12:00:00",            # no offset
    "2024-06-01 12:00",               # no offset
    "2024-06-01",                     # date only
    "2023-02-29T00:00:00Z",           # not a leap year
    "1900-02-29T00:00:00Z",           # not a leap year (century)
    "2024-02-30T10:00:00-05:00",
    "2024-04-31T00:00:00Z",
    "2024-06-01T24:00:00Z",
    "2024-06-01T12:60:00Z",
    "2024-06-01T12:00:60Z",           # leap second
    "2024-13-01T00:00:00Z",
    "2024-00-10T00:00:00Z",
    "2024-06-00T00:00:00Z",
    "0000-01-01T00:00:00Z",
    "2024-6-1T12:00:00Z",
    "2024-06-01T12:00:00+15:00",
    "2024-06-01T12:00:00.1234567Z",   # more than microseconds
    "2024-06-01T12:00:00z",
    " 2024-06-01T12:00:00Z",
    "2024-06-01T12:00:00Z ",
    "2024-06-01T12:00:00-04:00\n",    # '$' must not match before a final newline
    "2024-06-01T12:00:00 Z",
    "\uff12\uff10\uff12\uff14-06-01T12:00:00Z",  # full-width digits
    "06/01/2024 12:00 -04:00",
    "now", "today", "infinity", "-infinity", "epoch", "allballs",
    "",
    "garbage",
]


@pytest.mark.parametrize(("raw", "expected"), VALID_TIMESTAMPS)
def test_parse_timestamptz_valid(conn: psycopg.Connection, raw: str, expected: datetime) -> None:
    assert _utc(raw, conn) == expected


@pytest.mark.parametrize("raw", INVALID_TIMESTAMPS)
def test_parse_timestamptz_invalid_is_null(conn: psycopg.Connection, raw: str) -> None:
    assert _utc(raw, conn) is None


def test_parse_timestamptz_null(conn: psycopg.Connection) -> None:
    assert _utc(None, conn) is None


def test_parse_timestamptz_does_not_depend_on_session_time_zone(conn: psycopg.Connection) -> None:
    conn.execute("SET TIME ZONE 'America/Toronto'")
    assert _utc("2024-06-01T12:00:00+05:30", conn) == datetime(2024, 6, 1, 6, 30)
    assert _utc("2024-06-01T12:00:00", conn) is None
    conn.execute("SET TIME ZONE 'UTC'")


@pytest.mark.parametrize(("raw", "expected"), [
    ("0", 0), ("1", 1), ("42", 42), ("+7", 7), ("-3", -3), ("007", 7), ("-0", 0),
    ("2147483648", 2147483648), ("999999999999999", 999999999999999),
    ("-999999999999999", -999999999999999),
    ("", None), (" 1", None), ("1 ", None), ("1.0", None), ("1e3", None), ("0x1F", None),
    ("1_000", None), ("1,000", None), ("+", None), ("-", None), ("--1", None), ("1\n", None),
    ("9999999999999999", None),  # 16 digits
    ("\u0661\u0662", None), ("\uff11", None),  # Arabic-Indic / full-width digits
    ("one", None), (None, None),
])  # fmt: skip
def test_parse_int(conn: psycopg.Connection, raw: str | None, expected: int | None) -> None:
    got = conn.execute("SELECT staging.parse_int(%s::text) AS v", (raw,)).fetchone()["v"]
    assert got == expected


@pytest.mark.parametrize(("raw", "expected"), [
    ("true", True), ("false", False),
    ("TRUE", None), ("True", None), ("FALSE", None), ("t", None), ("f", None), ("1", None),
    ("0", None), ("yes", None), ("no", None), ("on", None), ("", None), (" true", None),
    ("false ", None), (None, None),
])  # fmt: skip
def test_parse_bool(conn: psycopg.Connection, raw: str | None, expected: bool | None) -> None:
    got = conn.execute("SELECT staging.parse_bool(%s::text) AS v", (raw,)).fetchone()["v"]
    assert got is expected


KEYS = [b"", b"k", b"test-pseudonym-key", b"x" * 63, b"y" * 64, b"z" * 65, b"long-key" * 40,
        bytes(range(256)), "clé-ünïcode-李".encode()]
MESSAGES = ["", "person:WPS:MNI-1234567", "address:WPS:ADDR-000042", "Zoë 李 محمد Nguyễn 🙂",
            "x" * 10_000]


@pytest.mark.parametrize("key", KEYS, ids=lambda k: f"key{len(k)}")
def test_hmac_sha256_hex_matches_python(conn: psycopg.Connection, key: bytes) -> None:
    inner, outer = hmac_pads(key)
    assert len(inner) == len(outer) == 64
    for message in MESSAGES:
        got = conn.execute("SELECT core.hmac_sha256_hex(%s, %s, %s) AS v",
                           (inner, outer, message)).fetchone()["v"]
        assert got == hmac.new(key, message.encode(), hashlib.sha256).hexdigest()
    assert conn.execute("SELECT core.hmac_sha256_hex(%s, %s, NULL) AS v",
                        (inner, outer)).fetchone()["v"] is None


@pytest.mark.parametrize("key", KEYS, ids=lambda k: f"key{len(k)}")
def test_pseudonym_is_hmac_of_kind_agency_id(key: bytes) -> None:
    assert pseudonym(key, "person", "WPS", "MNI-1") == hmac.new(
        key, b"person:WPS:MNI-1", hashlib.sha256).hexdigest()
    assert pseudonym(key, "person", "WPS", "MNI-1") != pseudonym(key, "address", "WPS", "MNI-1")
    assert pseudonym(key, "person", "WPS", "MNI-1") != pseudonym(key, "person", "LPS", "MNI-1")


# ---------------------------------------------------------------------------------------------
# The predicates on a typed table built by the production SQL (no GX)

GENERATED_AT = datetime.fromisoformat("2024-06-02T01:05:00-04:00")
VALID = {
    "agency_code": "WPS", "incident_id": "WPS-2024-153001", "record_version": "1",
    "call_received_at": "2024-06-01T09:00:00-04:00", "cleared_at": "2024-06-01T11:00:00-04:00",
    "call_source": "911", "call_type": "ipv_threats", "patrol_zone": "Z3",
    "clearance_status": "cleared_otherwise_other", "charges_laid": "0",
    "relationship": "former_dating", "weapon": "none", "injury_level": "none",
    "children_present": "false", "substance_involved": "true", "consent_status": "given",
    "consent_recorded_at": "2024-06-01T10:00:00-04:00", "consent_officer_id": "W2044",
    "victim_person_id": "MNI-1", "accused_person_id": "MNI-2", "address_id": "ADDR-1",
    "victim_given_name": "Zoë", "victim_family_name": "Nguyễn", "victim_birth_year": "1990",
    "victim_phone": "+15195550142", "victim_email": "zoe@example.ca",
    "victim_preferred_contact": "text", "victim_safe_contact_notes": "mornings, no voicemail",
    "victim_language": "fr", "victim_postal_code": "N9A 1A1", "responding_officer_id": "W1037",
    "narrative": "free text",
}  # fmt: skip
CHARGED = {"clearance_status": "cleared_by_charge", "charges_laid": "2",
           "consent_status": "not_applicable", "consent_recorded_at": None,
           "consent_officer_id": None}
ONLY_REQUIRED = {c: (VALID[c] if c in REQUIRED_COLUMNS else None) for c in COLUMNS} | {
    "consent_status": "not_asked"}

ROW_CASES: list[tuple[str, Mapping[str, Any], set[str]]] = [
    ("valid_consent_given", {}, set()),
    ("valid_charged", CHARGED, set()),
    ("valid_only_required_columns", ONLY_REQUIRED, set()),
    ("valid_edges", {  # every bound hit exactly
        "call_received_at": "2000-01-01T00:00:00Z", "cleared_at": GENERATED_AT.isoformat(),
        "consent_recorded_at": "2000-01-01T00:00:00+00:00", "victim_birth_year": "2024",
        "victim_phone": "+123456789012345", "incident_id": "A" * 32, "agency_code": "WPS",
        "victim_language": "zz", "victim_postal_code": "X0A1B0", "record_version": "2147483647",
        "victim_email": "a@b.c",
    }, set()),
    ("valid_call_at_generation_time", {"call_received_at": GENERATED_AT.isoformat(),
                                       "cleared_at": None, "consent_recorded_at":
                                       GENERATED_AT.isoformat()}, set()),
    ("all_null", dict.fromkeys(COLUMNS), {f"{c}.required" for c in REQUIRED_COLUMNS}),
    ("call_a_microsecond_before_2000", {"call_received_at": "1999-12-31T23:59:59.999999Z",
                                        "consent_recorded_at": "2000-01-01T00:00:00Z"},
     {"call_received_at.range"}),
    ("call_a_minute_after_generation", {"call_received_at": "2024-06-02T01:06:00-04:00",
                                        "cleared_at": None, "consent_recorded_at":
                                        "2024-06-02T01:06:00-04:00"},
     {"call_received_at.range"}),
    ("consent_given_but_charged", {"clearance_status": "cleared_by_charge", "charges_laid": "1"},
     {"consent_status.not_applicable_iff_charged"}),
    ("blank_strings_are_not_null", {"patrol_zone": " ", "consent_officer_id": "\t"},
     {"patrol_zone.no_control_characters", "consent_officer_id.no_control_characters"}),
]


@pytest.mark.parametrize(("overrides", "expected"), [(o, e) for _, o, e in ROW_CASES],
                         ids=[i for i, _, _ in ROW_CASES])
def test_rules_on_typed_rows(conn: psycopg.Connection, overrides: Mapping[str, Any],
                             expected: set[str]) -> None:
    """Each row breaks exactly the expected rules (so a valid row breaks none)."""
    file_id = 987_654_321  # never a real load's; everything is rolled back
    raw = sql.Identifier("staging", f"load_{file_id}_raw")
    typed = sql.Identifier("staging", f"load_{file_id}_typed")
    cols = list(COLUMNS)
    conn.execute(sql.SQL(read_sql("ingest/create_raw_table.sql")).format(
        raw=raw, cols=sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(c)) for c in cols)))
    conn.execute(read_sql("ingest/set_copy_file.sql"), {"file_id": str(file_id)})
    values = VALID | dict(overrides)
    conn.execute(sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        raw, sql.SQL(", ").join(map(sql.Identifier, cols)),
        sql.SQL(", ").join(sql.Placeholder() * len(cols))), [values[c] for c in cols])
    delivery = Delivery("WPS", date(2024, 6, 1), Path("x.csv"), Path("x.manifest.json"),
                        "0" * 64, 1, GENERATED_AT)
    build_typed_table(conn, file_id, "WPS", delivery)
    failing = set()
    for rule in RULES:
        query = sql.SQL("SELECT count(*) AS n FROM {} WHERE {}").format(typed, sql.SQL(rule.failing))
        if conn.execute(query).fetchone()["n"]:
            failing.add(rule.name)
    assert failing == expected
