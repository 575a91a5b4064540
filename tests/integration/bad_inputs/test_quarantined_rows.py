"""Quarantined rows of the bad-input catalogue, and the quarantine limits.

Exactly which row numbers with which rule names land in ops.quarantine_row, the good rows of the
same file loaded with exactly the values they had in the file. The row-level faults are all in
one file (with the quarantine limit raised for that load); the default 5 % limit is tested on its
own. Builders: tests/support/bad_inputs.py.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from support.bad_inputs import (
    CANARY,
    KINDS,
    NARRATIVE_CANARY,
    Env,
    apply_overrides,
    assert_no_leak,
    assert_stored_exactly,
    charged_row,
    connect,
    declined_row,
    extract_files,
    files_containing,
    filler_rows,
    find_text,
    fmt,
    given_row,
    incident,
    load,
    not_asked_row,
    quarantine,
    snapshot,
    staging_tables,
    write_rows,
)

from upstream.ingest import LoadResult, RefusedFile
from upstream.rules import RULES_BY_NAME

pytestmark = pytest.mark.integration

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
def row_faults(env: Env, baseline: LoadResult) -> RowFaultLoad:
    """The baseline first, as before the catalogue was split (same warehouse state)."""
    d = ROW_DAY
    rng = random.Random(603)
    bad: list[tuple[str, dict[str, Any]]] = []
    for i, case in enumerate(ROW_FAULTS):
        for j, over in enumerate(case.rows):
            bad.append((case.id, apply_overrides(KINDS[case.kind](d, 100 + 2 * i + j), over)))
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
