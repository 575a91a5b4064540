"""Corrections and idempotency at the load level (upstream.ingest.load_extract, real PostgreSQL).

* the same file again is a no-op: every table identical;
* a later record_version is the truth (charge laid, consent withdrawn / given later), contact
  details follow the current consent;
* a same-day re-extract with a newer generated_at replaces that day, an older one is ignored;
* the order in which days are loaded does not change the result;
* pseudonyms are HMAC-SHA-256 as computed in Python; narratives are never stored.

Each load gets a fresh GX project directory (measured faster than one shared project, whose
validation results and Data Docs pile up; it changes nothing the tests look at).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import random
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row
from support import leaks
from support.env import empty_every_table

from upstream.contract import COLUMNS
from upstream.dev import generate
from upstream.ingest import LoadResult, load_extract
from upstream.pseudonyms import pseudonym
from upstream.settings import Settings, pseudonym_key

pytestmark = pytest.mark.integration

TZ = ZoneInfo("America/Toronto")
AGENCY = "WPS"
FIELDS: tuple[str, ...] = tuple(COLUMNS)
NARRATIVE_CANARY = "NARRSEMANTICS4242"
TIMESTAMP_COLUMNS = {"loaded_at", "first_seen_at", "finished_at", "recorded_at", "stored_at"}
WAREHOUSE_TABLES = (
    "ops.quarantine_row", "contact.victim_contact", "core.call", "core.call_version",
    "ops.extract_file",
)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Helpers

_gx_runs = itertools.count()


def load(settings: Settings, d: date) -> LoadResult:
    return load_extract(AGENCY, d, settings.with_changes(validate__gx_dir=settings.validate.gx_dir / f"run-{next(_gx_runs)}"))


def connect(url: str) -> psycopg.Connection:
    return psycopg.connect(url, row_factory=dict_row, autocommit=True)


def truncate(url: str) -> None:
    """Empty every warehouse table (later migrations' tables included, seeded ones kept)."""
    empty_every_table(url, must_include=WAREHOUSE_TABLES)


def generated_at(d: date, hour: int = 1, minute: int = 5) -> datetime:
    return datetime.combine(d + timedelta(days=1), time(hour, minute), TZ)


def write(settings: Settings, d: date, rows: Sequence[Mapping[str, Any]],
          gen: datetime | None = None) -> None:
    generate.write_extract(settings.landing.dir, AGENCY, d, rows, generated_at=gen or generated_at(d))


def row(d: date, incident_id: str, kind: str, **over: Any) -> dict[str, Any]:
    """A valid version-1 row of one of the kinds declined | given | charged | not_asked."""
    n = sum(map(ord, incident_id)) % 200
    call = datetime.combine(d, time(6, 0), TZ) + timedelta(minutes=3 * n)
    r: dict[str, Any] = dict.fromkeys(FIELDS)
    r.update(
        agency_code=AGENCY, incident_id=incident_id, record_version=1, call_received_at=call,
        cleared_at=call + timedelta(hours=2), call_source="911", call_type="ipv_threats",
        patrol_zone="Z2", clearance_status="cleared_otherwise_departmental_discretion",
        charges_laid=0, relationship="current_spouse", weapon="none", injury_level="none",
        children_present=True, substance_involved=False, consent_status="declined",
        consent_recorded_at=call + timedelta(hours=1),
        victim_person_id=f"MNI-V-{incident_id}", accused_person_id=f"MNI-A-{incident_id}",
        address_id=f"ADDR-{incident_id}", responding_officer_id="W1037",
        # Contact fields present whatever the consent (RMS rows often carry them).
        victim_given_name="Olena", victim_family_name="Kovalenko", victim_birth_year=1979,
        victim_phone="+15195550100",
        narrative=f"{NARRATIVE_CANARY}: verbal dispute, \"both parties\" separated,\nnight.",
    )  # fmt: skip
    if kind == "given":
        r.update(clearance_status="cleared_otherwise_complainant_request", consent_status="given",
                 consent_officer_id="W2044", victim_email="olena.k@example.org",
                 victim_preferred_contact="text", victim_language="uk",
                 victim_safe_contact_notes="text first; call only if she replies",
                 victim_postal_code="N9C 1B2")
    elif kind == "charged":
        r.update(clearance_status="cleared_by_charge", charges_laid=1, consent_status="not_applicable",
                 consent_recorded_at=None, call_type="ipv_assault", weapon="physical_force")
    elif kind == "not_asked":
        r.update(consent_status="not_asked", consent_recorded_at=None)
    else:
        assert kind == "declined"
    r.update(over)
    return r


def later(v: Mapping[str, Any], d: date, version: int, **changes: Any) -> dict[str, Any]:
    """The same incident again on day d with a higher record_version (changed at 10:00)."""
    changed = datetime.combine(d, time(10, 0), TZ)
    out = dict(v)
    out["record_version"] = version
    for key, value in changes.items():
        out[key] = changed if value is CHANGED_AT else value
    return out


CHANGED_AT = object()
CHARGE_LAID = {"clearance_status": "cleared_by_charge", "charges_laid": 2,
               "consent_status": "not_applicable", "consent_recorded_at": None,
               "cleared_at": CHANGED_AT}
WITHDRAWN = {"consent_status": "withdrawn", "consent_recorded_at": CHANGED_AT}
GIVEN_LATER = {"consent_status": "given", "consent_recorded_at": CHANGED_AT,
               "consent_officer_id": "W3001", "victim_given_name": "Ольга",
               "victim_family_name": "Шевченко", "victim_email": "olga@example.net",
               "victim_phone": "+15195550177", "victim_preferred_contact": "email",
               "victim_safe_contact_notes": "email only, \"never\" call", "victim_language": "uk",
               "clearance_status": "cleared_otherwise_complainant_request"}


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def expected_call(r: Mapping[str, Any], key: bytes) -> dict[str, Any]:
    def ts(c: str) -> datetime | None:
        v = r.get(c)
        return datetime.fromisoformat(v) if isinstance(v, str) else v

    accused = _text(r.get("accused_person_id"))
    out = {c: _text(r.get(c)) for c in (
        "agency_code", "incident_id", "call_source", "call_type", "patrol_zone",
        "clearance_status", "relationship", "weapon", "injury_level", "consent_status",
        "consent_officer_id", "responding_officer_id")}
    out.update(
        record_version=int(r["record_version"]), charges_laid=int(r["charges_laid"]),
        children_present=r["children_present"], substance_involved=r.get("substance_involved"),
        call_received_at=ts("call_received_at"), cleared_at=ts("cleared_at"),
        consent_recorded_at=ts("consent_recorded_at"),
        victim_key=pseudonym(key, "person", AGENCY, r["victim_person_id"]),
        accused_key=pseudonym(key, "person", AGENCY, accused) if accused else None,
        address_key=pseudonym(key, "address", AGENCY, r["address_id"]),
    )
    return out


def expected_contact(r: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "record_version": int(r["record_version"]),
        "given_name": r.get("victim_given_name"), "family_name": r.get("victim_family_name"),
        "birth_year": r.get("victim_birth_year"), "phone": r.get("victim_phone"),
        "email": r.get("victim_email"), "preferred_contact": r.get("victim_preferred_contact"),
        "safe_contact_notes": r.get("victim_safe_contact_notes"),
        "language": r.get("victim_language") or "en", "postal_code": r.get("victim_postal_code"),
    }  # fmt: skip


@dataclasses.dataclass
class State:
    calls: dict[str, dict[str, Any]]
    contacts: dict[str, dict[str, Any]]
    versions: list[tuple[str, int, date]]


def state(url: str) -> State:
    with connect(url) as conn:
        calls = {r["incident_id"]: r for r in conn.execute("SELECT * FROM core.call")}
        contacts = {r["incident_id"]: r for r in conn.execute("SELECT * FROM contact.victim_contact")}
        versions = [(r["incident_id"], r["record_version"], r["extract_date"]) for r in conn.execute(
            "SELECT incident_id, record_version, extract_date FROM core.call_version ORDER BY 1, 2, 3")]
    return State(calls, contacts, versions)


def assert_current(st: State, r: Mapping[str, Any], d: date) -> None:
    """Row r (from day d's file) is the current truth, and contact details exist exactly when
    its consent is 'given', equal to the row's."""
    got = st.calls[r["incident_id"]]
    want = expected_call(r, pseudonym_key())
    assert {k: got[k] for k in want} == want, r["incident_id"]
    assert got["extract_date"] == d, r["incident_id"]
    contact = st.contacts.get(r["incident_id"])
    if r["consent_status"] == "given":
        assert contact is not None, f"no contact for consented {r['incident_id']}"
        want_c = expected_contact(r)
        assert {k: contact[k] for k in want_c} == want_c, r["incident_id"]
    else:
        assert contact is None, f"contact kept for {r['incident_id']} ({r['consent_status']})"


def dump(url: str, exclude: set[str] = TIMESTAMP_COLUMNS) -> dict[str, list[tuple]]:
    """Every row of every table outside staging (system schemas aside), ordered, minus the
    excluded columns."""
    out = {}
    with connect(url) as conn:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_type = 'BASE TABLE' AND table_schema NOT IN"
            " ('pg_catalog', 'information_schema', 'staging') AND table_schema NOT LIKE 'pg_%'"
            " ORDER BY 1, 2").fetchall()
        assert {f"{t['table_schema']}.{t['table_name']}" for t in tables} >= set(WAREHOUSE_TABLES)
        for t in tables:
            cols = [c["column_name"] for c in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = %s"
                " AND table_name = %s ORDER BY ordinal_position",
                (t["table_schema"], t["table_name"])) if c["column_name"] not in exclude]
            query = sql.SQL("SELECT {} FROM {} ORDER BY {}").format(
                sql.SQL(", ").join(map(sql.Identifier, cols)),
                sql.Identifier(t["table_schema"], t["table_name"]),
                sql.SQL(", ").join(sql.Literal(i) for i in range(1, len(cols) + 1)))
            out[f"{t['table_schema']}.{t['table_name']}"] = [
                tuple(r.values()) for r in conn.execute(query)]
    return out


def text_columns_containing(url: str, needle: str) -> list[str]:
    """Every text-like column of every table outside staging that holds needle."""
    with connect(url) as conn:
        return leaks.find_text(conn, needle)


def staging_tables(url: str) -> int:
    with connect(url) as conn:
        return leaks.staging_tables(conn)


def file_status(url: str, d: date) -> list[tuple[int, str, int | None, str | None]]:
    with connect(url) as conn:
        return [(r["file_id"], r["status"], r["superseded_by"], r["reason"]) for r in conn.execute(
            "SELECT file_id, status, superseded_by, reason FROM ops.extract_file"
            " WHERE agency_code = %s AND extract_date = %s ORDER BY file_id", (AGENCY, d))]


# ---------------------------------------------------------------------------------------------
# The same file again


def test_rerun_of_the_same_file_is_a_noop(upstream_env: Settings, warehouse_url: str) -> None:
    d = date(2024, 6, 1)
    rng = random.Random(7)
    rows = [row(d, "WPS-R-1", "declined"), row(d, "WPS-R-2", "given"),
            row(d, "WPS-R-3", "charged"), row(d, "WPS-R-4", "not_asked"),
            row(d, "WPS-R-5", "declined", call_source="nine-one-one")]  # quarantined
    rows += [  # varied valid rows from the project's generator
        generate.make_row(rng, AGENCY, f"WPS-R-F{k:02d}",
                          datetime.combine(d, time(7, 0), TZ) + timedelta(minutes=5 * k))
        for k in range(30)]
    write(upstream_env, d, rows)
    first = load(upstream_env, d)
    assert (first.outcome, first.rows_loaded, first.rows_quarantined) == ("loaded", 34, 1)
    full_before = dump(warehouse_url, exclude=set())
    before = dump(warehouse_url)
    assert before["core.call"] and before["ops.quarantine_row"] and before["contact.victim_contact"]

    again = load(upstream_env, d)
    assert again.outcome == "already_loaded"
    assert again.file_id == first.file_id
    assert (again.rows_in_file, again.rows_loaded, again.rows_quarantined, again.rows_stale) == \
        (first.rows_in_file, first.rows_loaded, first.rows_quarantined, first.rows_stale)
    assert dump(warehouse_url) == before
    assert dump(warehouse_url, exclude=set()) == full_before  # not even a timestamp moved

    # A transfer retry: the same bytes written again, with a fresh manifest file.
    csv_path = upstream_env.landing.dir / AGENCY / f"{AGENCY}_ipv_calls_{d}.csv"
    data = csv_path.read_bytes()
    write(upstream_env, d, rows)
    assert csv_path.read_bytes() == data
    assert load(upstream_env, d).outcome == "already_loaded"
    assert dump(warehouse_url, exclude=set()) == full_before
    assert staging_tables(warehouse_url) == 0

    # Pseudonyms are HMAC-SHA-256 with the configured key, as computed in Python.
    key = pseudonym_key()
    assert key == os.environ["UPSTREAM_PSEUDONYM_KEY"].encode("utf-8")
    st = state(warehouse_url)
    loaded = [r for r in rows if r["incident_id"] != "WPS-R-5"]
    assert sorted(st.calls) == sorted(r["incident_id"] for r in loaded)
    for r in loaded:
        assert_current(st, r, d)
        call = st.calls[r["incident_id"]]
        assert call["victim_key"] == pseudonym(key, "person", AGENCY, r["victim_person_id"])
        assert call["address_key"] == pseudonym(key, "address", AGENCY, r["address_id"])
    assert text_columns_containing(warehouse_url, NARRATIVE_CANARY) == []


# ---------------------------------------------------------------------------------------------
# Corrections: a later record_version

DAY1, DAY2 = date(2024, 6, 10), date(2024, 6, 12)


@dataclasses.dataclass(frozen=True)
class Correction:
    id: str
    v1: dict[str, Any]
    v2: dict[str, Any] | None   # None: no later version


def _corrections() -> list[Correction]:
    d1, d2 = DAY1, DAY2
    declined = row(d1, "WPS-C-CHARGE", "declined")
    given_charged = row(d1, "WPS-C-GIVEN-CHARGE", "given")
    withdrawn = row(d1, "WPS-C-WITHDRAWN", "given")
    given_later = row(d1, "WPS-C-GIVEN-LATER", "declined")
    given_updated = row(d1, "WPS-C-GIVEN-UPDATE", "given")
    return [
        Correction("charge_laid_in_v2", declined, later(declined, d2, 2, **CHARGE_LAID)),
        Correction("charge_laid_in_v2_drops_contact", given_charged,
                   later(given_charged, d2, 2, **CHARGE_LAID)),
        Correction("consent_withdrawn_in_v2_deletes_contact", withdrawn,
                   later(withdrawn, d2, 2, **WITHDRAWN)),
        Correction("consent_given_in_v2_stores_contact", given_later,
                   later(given_later, d2, 2, **GIVEN_LATER)),
        Correction("contact_details_fixed_in_v3", given_updated,
                   later(given_updated, d2, 3, victim_phone="+15195550188",
                         victim_preferred_contact="phone", victim_language=None)),
        Correction("no_later_version_keeps_contact", row(d1, "WPS-C-UNCHANGED", "given"), None),
    ]


CORRECTIONS = _corrections()


@dataclasses.dataclass
class CorrectionRun:
    results: tuple[LoadResult, LoadResult]
    after_day1: State
    after_day2: State
    narrative_hits: list[str]
    staging_tables: int


@pytest.fixture(scope="module")
def correction_run(module_env, warehouse_url: str) -> Iterator[CorrectionRun]:
    with module_env("corrections", key="corrections-key-" + "k" * 80,  # > 64 bytes
                    agencies=AGENCY, reset=False) as settings:
        truncate(warehouse_url)  # every table, later migrations' too
        write(settings, DAY1, [c.v1 for c in CORRECTIONS])
        r1 = load(settings, DAY1)
        s1 = state(warehouse_url)
        write(settings, DAY2, [c.v2 for c in CORRECTIONS if c.v2])
        r2 = load(settings, DAY2)
        s2 = state(warehouse_url)
        yield CorrectionRun((r1, r2), s1, s2, text_columns_containing(warehouse_url, NARRATIVE_CANARY),
                            staging_tables(warehouse_url))


def test_correction_loads(correction_run: CorrectionRun) -> None:
    r1, r2 = correction_run.results
    n2 = sum(1 for c in CORRECTIONS if c.v2)
    assert (r1.outcome, r1.rows_loaded, r1.rows_quarantined, r1.rows_stale) == \
        ("loaded", len(CORRECTIONS), 0, 0)
    assert (r2.outcome, r2.rows_loaded, r2.rows_quarantined, r2.rows_stale) == ("loaded", n2, 0, 0)
    assert correction_run.narrative_hits == []
    assert correction_run.staging_tables == 0


@pytest.mark.parametrize("case", CORRECTIONS, ids=lambda c: c.id)
def test_correction(correction_run: CorrectionRun, case: Correction) -> None:
    incident = case.v1["incident_id"]
    assert_current(correction_run.after_day1, case.v1, DAY1)
    if case.v2 is None:
        assert_current(correction_run.after_day2, case.v1, DAY1)
        assert [v for v in correction_run.after_day2.versions if v[0] == incident] == \
            [(incident, 1, DAY1)]
    else:
        assert_current(correction_run.after_day2, case.v2, DAY2)
        assert [v for v in correction_run.after_day2.versions if v[0] == incident] == \
            [(incident, 1, DAY1), (incident, case.v2["record_version"], DAY2)]


# ---------------------------------------------------------------------------------------------
# Same-day re-extracts


def test_newer_re_extract_replaces_the_day_and_older_is_ignored(
        upstream_env: Settings, warehouse_url: str) -> None:
    d0, d1 = date(2024, 6, 20), date(2024, 6, 21)
    z_v1 = row(d0, "WPS-X-Z", "given", victim_phone="+15195550111")
    write(upstream_env, d0, [z_v1])
    assert load(upstream_env, d0).outcome == "loaded"

    x = row(d1, "WPS-X-X", "given", victim_given_name="Xenia")
    y = row(d1, "WPS-X-Y", "declined")
    z_v2 = later(z_v1, d1, 2, victim_phone="+15195550222", consent_recorded_at=CHANGED_AT)
    write(upstream_env, d1, [x, y, z_v2], gen=generated_at(d1, 1, 5))
    folder = upstream_env.landing.dir / AGENCY
    original = {p.name: p.read_bytes() for p in folder.glob(f"*{d1}*")}
    first = load(upstream_env, d1)
    assert first.outcome == "loaded"
    st = state(warehouse_url)
    assert_current(st, x, d1)
    assert_current(st, z_v2, d1)

    # The corrected export: X was not an IPV call, Y's consent is given, Z did not change today.
    y_fixed = row(d1, "WPS-X-Y", "given", patrol_zone="Z5", victim_given_name="Yara")
    write(upstream_env, d1, [y_fixed], gen=generated_at(d1, 3, 5))
    second = load(upstream_env, d1)
    assert (second.outcome, second.rows_loaded, second.rows_stale) == ("loaded", 1, 0)
    assert file_status(warehouse_url, d1) == [
        (first.file_id, "superseded", second.file_id, None), (second.file_id, "loaded", None, None)]
    st = state(warehouse_url)
    assert "WPS-X-X" not in st.calls and "WPS-X-X" not in st.contacts
    assert [v for v in st.versions if v[0] == "WPS-X-X"] == []
    assert_current(st, y_fixed, d1)
    assert st.calls["WPS-X-Z"]["record_version"] == 1  # back to the only version still in force
    assert {k: st.calls["WPS-X-Z"][k] for k in ("extract_date", "consent_status")} == \
        {"extract_date": d0, "consent_status": "given"}
    assert [v for v in st.versions if v[0] == "WPS-X-Z"] == [("WPS-X-Z", 1, d0)]
    settled = dump(warehouse_url)

    # An older re-extract (generated before the one loaded) is ignored, whatever it holds.
    write(upstream_env, d1, [x, y], gen=generated_at(d1, 0, 30))
    older = load(upstream_env, d1)
    assert (older.outcome, older.rows_loaded) == ("ignored_older", 0)
    assert older.reason == "an extract of this day generated later is already loaded"
    assert file_status(warehouse_url, d1)[-1] == (
        older.file_id, "ignored_older", None, "an extract of this day generated later is already loaded")
    after_older = dump(warehouse_url)
    assert {t: v for t, v in after_older.items() if t != "ops.extract_file"} == \
        {t: v for t, v in settled.items() if t != "ops.extract_file"}
    assert load(upstream_env, d1).outcome == "ignored_older"  # and again: still a no-op
    assert dump(warehouse_url) == after_older

    # The superseded original delivered again (a transfer retry) does not come back.
    for name, data in original.items():
        (folder / name).write_bytes(data)
    assert load(upstream_env, d1).outcome == "already_loaded"
    assert dump(warehouse_url) == after_older
    assert text_columns_containing(warehouse_url, NARRATIVE_CANARY) == []
    assert staging_tables(warehouse_url) == 0


def test_re_extract_dropping_a_version_drops_the_stale_contact(
        upstream_env: Settings, warehouse_url: str) -> None:
    d0, d1 = date(2024, 6, 24), date(2024, 6, 25)
    v1 = row(d0, "WPS-X-P", "given", victim_phone="+15195550111")
    write(upstream_env, d0, [v1])
    load(upstream_env, d0)
    v2 = later(v1, d1, 2, victim_phone="+15195550222", consent_recorded_at=CHANGED_AT)
    write(upstream_env, d1, [v2, row(d1, "WPS-X-Q", "declined")], gen=generated_at(d1, 1, 5))
    load(upstream_env, d1)
    write(upstream_env, d1, [row(d1, "WPS-X-Q", "declined")], gen=generated_at(d1, 3, 5))
    assert load(upstream_env, d1).outcome == "loaded"
    st = state(warehouse_url)
    assert st.calls["WPS-X-P"]["record_version"] == 1
    # v1's details are no longer at hand (its file was staged and dropped long ago): the
    # details of the withdrawn-from-the-record v2 must not stay; deleting is the safe side.
    assert "WPS-X-P" not in st.contacts


# ---------------------------------------------------------------------------------------------
# Days out of order


def _days() -> dict[date, list[dict[str, Any]]]:
    d1, d2, d3 = date(2024, 7, 1), date(2024, 7, 2), date(2024, 7, 3)
    a1 = row(d1, "WPS-O-A", "declined")
    b1 = row(d1, "WPS-O-B", "given")
    c1 = row(d1, "WPS-O-C", "charged")
    e1 = row(d1, "WPS-O-E", "given", victim_email="e@example.org")
    a2 = later(a1, d2, 2, **CHARGE_LAID)
    b2 = later(b1, d2, 2, **WITHDRAWN)
    d_1 = row(d2, "WPS-O-D", "given", victim_given_name="محمد", victim_family_name="حداد")
    return {
        d1: [a1, b1, c1, e1],
        d2: [a2, b2, d_1],
        d3: [
            later(a2, d3, 2, patrol_zone="Z6"),  # equal version on a later day: ignored
            later(b2, d3, 3, **GIVEN_LATER),      # consent given again
            later(c1, d3, 2, weapon="knife"),     # data-entry fix
            later(e1, d3, 2, consent_status="declined", consent_recorded_at=CHANGED_AT),
        ],
    }


def test_days_loaded_out_of_order_give_the_same_result(
        upstream_env: Settings, warehouse_url: str) -> None:
    days = _days()
    d1, d2, d3 = sorted(days)
    for d, rows in days.items():
        write(upstream_env, d, rows)
    no_ids = {"file_id", "superseded_by"} | TIMESTAMP_COLUMNS

    def run(order: Sequence[date]) -> dict[str, list[tuple]]:
        truncate(warehouse_url)
        for d in order:
            assert load(upstream_env, d).outcome == "loaded"
        out = dump(warehouse_url, exclude=no_ids)
        del out["ops.extract_file"], out["ops.quarantine_row"]
        return out

    in_order = run([d1, d2, d3])
    st = state(warehouse_url)
    a1, b1, c1, e1 = days[d1]
    a2, b2, d_1 = days[d2]
    _, b3, c2, e2 = days[d3]
    assert_current(st, a2, d2)  # not the equal version of d3
    assert_current(st, b3, d3)
    assert_current(st, c2, d3)
    assert_current(st, d_1, d2)
    assert_current(st, e2, d3)
    assert len(in_order["core.call_version"]) == 11
    for order in ([d3, d2, d1], [d1, d3, d2]):
        assert run(order) == in_order, order
    assert text_columns_containing(warehouse_url, NARRATIVE_CANARY) == []
    assert staging_tables(warehouse_url) == 0


def test_set_based_integrity_check_catches_broken_references(warehouse_url: str) -> None:
    """The merge's set-based check (it replaces per-row foreign keys, migration 006) really
    counts what a foreign key would have refused: a contact without its current call, and
    versions of an unregistered file."""
    from upstream.warehouse import db

    truncate(warehouse_url)
    check = db.read_sql("load/check_integrity.sql")
    with psycopg.connect(warehouse_url, row_factory=dict_row) as conn:
        file_id = conn.execute(
            "INSERT INTO ops.extract_file (agency_code, extract_date, file_name, sha256, status)"
            " VALUES ('WPS', '2024-06-01', 'f.csv', 'x', 'loading') RETURNING file_id").fetchone()["file_id"]
        conn.execute("CREATE TEMP TABLE affected_incident (agency_code text, incident_id text)")
        conn.execute("INSERT INTO affected_incident VALUES ('WPS', 'WPS-1')")
        clean = conn.execute(check, {"file_id": file_id}).fetchone()
        assert clean == {"versions_without_file": 0, "contacts_without_current_call": 0}
        conn.execute("INSERT INTO contact.victim_contact (agency_code, incident_id, record_version,"
                     " file_id) VALUES ('WPS', 'WPS-1', 1, %s)", (file_id,))
        assert conn.execute(check, {"file_id": file_id}).fetchone()["contacts_without_current_call"] == 1
        conn.execute(
            "INSERT INTO core.call_version (agency_code, incident_id, file_id, extract_date,"
            " record_version, call_received_at, call_source, call_type, patrol_zone,"
            " clearance_status, charges_laid, relationship, weapon, injury_level,"
            " children_present, consent_status, victim_key, address_key, responding_officer_id)"
            " VALUES ('WPS', 'WPS-2', %s, '2024-06-01', 1, now(), 's', 't', 'z', 'c', 0, 'r',"
            " 'w', 'i', false, 'declined', 'v', 'a', 'o')", (file_id + 1,))
        assert conn.execute(check, {"file_id": file_id + 1}).fetchone()["versions_without_file"] == 1
        conn.rollback()
