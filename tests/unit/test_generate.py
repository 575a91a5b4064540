"""Tests for the demo data generator (upstream.dev.generate).

The row checker below is written from the contract (ipv-call-extract-v1), independently of the
generator, so a generator bug cannot hide behind shared code.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import re
import time
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from upstream.dev import generate as g

TORONTO = ZoneInfo("America/Toronto")

CONTRACT_COLUMNS = (
    "agency_code", "incident_id", "record_version", "call_received_at", "cleared_at",
    "call_source", "call_type", "patrol_zone", "clearance_status", "charges_laid",
    "relationship", "weapon", "injury_level", "children_present", "substance_involved",
    "consent_status", "consent_recorded_at", "consent_officer_id", "victim_person_id",
    "accused_person_id", "address_id", "victim_given_name", "victim_family_name",
    "victim_birth_year", "victim_phone", "victim_email", "victim_preferred_contact",
    "victim_safe_contact_notes", "victim_language", "victim_postal_code",
    "responding_officer_id", "narrative",
)  # fmt: skip
CONTACT = CONTRACT_COLUMNS[
    CONTRACT_COLUMNS.index("victim_given_name") : CONTRACT_COLUMNS.index("victim_postal_code") + 1
]
REQUIRED = (
    "agency_code", "incident_id", "record_version", "call_received_at", "call_source",
    "call_type", "patrol_zone", "clearance_status", "charges_laid", "relationship", "weapon",
    "injury_level", "children_present", "consent_status", "victim_person_id", "address_id",
    "responding_officer_id",
)  # fmt: skip
ENUMS = {
    "call_source": {"911", "non_emergency", "officer_initiated", "third_party", "online"},
    "call_type": {
        "ipv_assault", "ipv_sexual_assault", "ipv_threats", "ipv_criminal_harassment",
        "ipv_breach_of_order", "ipv_dispute_verbal", "ipv_other",
    },
    "clearance_status": {
        "cleared_by_charge", "cleared_otherwise_complainant_request",
        "cleared_otherwise_departmental_discretion", "cleared_otherwise_beyond_control",
        "cleared_otherwise_other", "not_cleared", "no_offence",
    },
    "relationship": {
        "current_spouse", "former_spouse", "current_common_law", "former_common_law",
        "current_dating", "former_dating", "other_intimate",
    },
    "weapon": {"none", "physical_force", "firearm", "knife", "other_weapon", "unknown"},
    "injury_level": {"none", "minor", "major", "death"},
    "consent_status": {
        "given", "declined", "not_asked", "unable_to_ask", "withdrawn", "not_applicable",
    },
    "victim_preferred_contact": {"phone", "text", "email", "in_person"},
}  # fmt: skip
PHONE_RE = re.compile(r"^\+[1-9]\d{7,14}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
POSTAL_RE = re.compile(r"^[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z] ?\d[ABCEGHJ-NPRSTV-Z]\d$")
INCIDENT_RE = re.compile(r"^[A-Z0-9-]{1,32}$")

# Which rule each bad-row kind must break (names as reported by violations()).
BAD_KIND_RULE = {
    "bad_enum": "enum",
    "missing_required": "required",
    "timestamp_without_offset": "timestamp_format",
    "call_in_future": "call_in_future",
    "cleared_before_call": "cleared_before_call",
    "charges_without_charge_clearance": "charges_laid",
    "not_applicable_without_charge": "consent_not_applicable",
    "given_without_names": "names_when_given",
    "bad_phone": "phone_format",
    "bad_postal_code": "postal_code",
    "bad_incident_id": "incident_id",
    "wrong_agency": "agency_code",
    "record_version_zero": "record_version",
}


def _ts(value: str) -> datetime | None:
    """An ISO 8601 timestamp with offset, or None when it has none / does not parse."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def _int(value: str) -> int | None:
    return int(value) if re.fullmatch(r"-?\d+", value) else None


def day_end(d: date) -> datetime:
    return datetime.combine(d + timedelta(days=1), datetime.min.time(), tzinfo=TORONTO)


def violations(row: dict[str, str], agency: str, extract_date: date) -> set[str]:
    """The contract rules a CSV row (strings; empty = null) breaks."""
    broken: set[str] = set()
    v = {k: (row.get(k) or None) for k in CONTRACT_COLUMNS}
    if any(v[c] is None for c in REQUIRED):
        broken.add("required")
    if v["agency_code"] and (
        not re.fullmatch(r"[A-Z]{2,6}", v["agency_code"]) or v["agency_code"] != agency
    ):
        broken.add("agency_code")
    if v["incident_id"] and not INCIDENT_RE.match(v["incident_id"]):
        broken.add("incident_id")
    if v["record_version"] is not None:
        version = _int(v["record_version"])
        if version is None or version < 1:
            broken.add("record_version")
    stamps: dict[str, datetime] = {}
    for col in ("call_received_at", "cleared_at", "consent_recorded_at"):
        if v[col] is not None:
            parsed = _ts(v[col])
            if parsed is None:
                broken.add("timestamp_format")
            else:
                stamps[col] = parsed
    call = stamps.get("call_received_at")
    if call is not None:
        if call > day_end(extract_date):
            broken.add("call_in_future")
        if call.year < 2000:
            broken.add("call_before_2000")
        if "cleared_at" in stamps and stamps["cleared_at"] < call:
            broken.add("cleared_before_call")
        if "consent_recorded_at" in stamps and stamps["consent_recorded_at"] < call:
            broken.add("consent_recorded_at")
    for col, allowed in ENUMS.items():
        if v[col] is not None and v[col] not in allowed:
            broken.add("enum")
    for col in ("children_present", "substance_involved"):
        if v[col] is not None and v[col] not in ("true", "false"):
            broken.add("boolean")
    charged = v["clearance_status"] == "cleared_by_charge"
    if v["charges_laid"] is not None:
        charges = _int(v["charges_laid"])
        if charges is None or charges < 0 or (charges > 0) != charged:
            broken.add("charges_laid")
    consent = v["consent_status"]
    if consent is not None and v["clearance_status"] is not None:
        if (consent == "not_applicable") != charged:
            broken.add("consent_not_applicable")
    if consent in ("given", "declined", "withdrawn") and v["consent_recorded_at"] is None:
        broken.add("consent_recorded_at")
    if consent == "given":
        if v["consent_officer_id"] is None:
            broken.add("consent_officer_id")
        if v["victim_given_name"] is None or v["victim_family_name"] is None:
            broken.add("names_when_given")
        if v["victim_preferred_contact"] is None:
            broken.add("preferred_contact")
        if v["victim_phone"] is None and v["victim_email"] is None:
            broken.add("phone_or_email")
    if v["victim_phone"] is not None and not PHONE_RE.match(v["victim_phone"]):
        broken.add("phone_format")
    if v["victim_email"] is not None and not EMAIL_RE.match(v["victim_email"]):
        broken.add("email")
    if v["victim_birth_year"] is not None:
        year = _int(v["victim_birth_year"])
        if year is None or not 1900 <= year <= extract_date.year:
            broken.add("birth_year")
    if v["victim_language"] is not None and not re.fullmatch(r"[a-z]{2}", v["victim_language"]):
        broken.add("language")
    if v["victim_postal_code"] is not None and not POSTAL_RE.match(v["victim_postal_code"]):
        broken.add("postal_code")
    return broken


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        return header, [dict(zip(header, rec, strict=True)) for rec in reader]


def count_records(path: Path) -> int:
    return len(read_csv(path)[1])


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def all_files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


START, END = date(2024, 1, 15), date(2024, 3, 14)  # 60 days, across the March DST change


@pytest.fixture(scope="module")
def two_months(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("landing")
    days = g.generate(root, START, END, agencies=("WPS", "LPS"), seed=11)
    loaded = [(day, read_csv(day.csv_path)[1]) for day in days]
    return root, days, loaded


# ---------------------------------------------------------------------------------------------


def test_columns_are_the_contract_columns_in_order():
    assert g.COLUMNS == CONTRACT_COLUMNS
    assert g.CONTACT_COLUMNS == CONTACT


def test_generator_takes_names_and_enums_from_the_contract_module():
    """One home for the contract: the generator keeps no copy of columns, enums or names."""
    from upstream import contract
    from upstream.dev.generate import tables

    assert g.COLUMNS == tuple(contract.COLUMNS)
    assert g.CONTACT_COLUMNS is contract.CONTACT_COLUMNS
    assert g.EXTRACT_VERSION is contract.EXTRACT_VERSION
    assert g.csv_name("WPS", date(2024, 6, 1)) == contract.data_file_name("WPS", date(2024, 6, 1))
    assert g.manifest_name("WPS", date(2024, 6, 1)) == contract.manifest_file_name(
        "WPS", date(2024, 6, 1)) == contract.manifest_name_for(g.csv_name("WPS", date(2024, 6, 1)))
    drawn = {
        "call_source": tables.CALL_SOURCE, "call_type": tables.CALL_TYPE,
        "relationship": tables.RELATIONSHIP, "weapon": tables.WEAPON_PHYSICAL,
        "injury_level": tables.INJURY_OTHER, "clearance_status": tables.NON_CHARGE_CLEARANCE,
        "consent_status": tables.NON_CHARGE_CONSENT,
    }  # fmt: skip
    for column, (values, _) in drawn.items():
        assert set(values) <= set(contract.ENUMS[column]), column
    assert set(tables.WEAPON_OTHER[0]) <= set(contract.ENUMS["weapon"])
    assert set(tables.INJURY_PHYSICAL[0]) <= set(contract.ENUMS["injury_level"])
    assert set(tables.CHARGE_RATE_BY_TYPE) == set(contract.ENUMS["call_type"])


def test_layout_and_manifests_are_correct(two_months):
    root, days, _ = two_months
    assert len(days) == 2 * 60
    for day in days:
        name = f"{day.agency_code}_ipv_calls_{day.extract_date.isoformat()}"
        assert day.csv_path == root / day.agency_code / f"{name}.csv"
        assert day.manifest_path == root / day.agency_code / f"{name}.manifest.json"
        manifest = json.loads(day.manifest_path.read_text(encoding="utf-8"))
        assert set(manifest) == {
            "extract_version", "agency_code", "extract_date", "file", "rows", "sha256",
            "generated_at",
        }  # fmt: skip
        assert manifest["extract_version"] == "1"
        assert manifest["agency_code"] == day.agency_code
        assert manifest["extract_date"] == day.extract_date.isoformat()
        assert manifest["file"] == f"{name}.csv"
        assert manifest["sha256"] == sha256(day.csv_path)
        assert manifest["rows"] == count_records(day.csv_path) == day.rows
        generated = datetime.fromisoformat(manifest["generated_at"])
        expected = datetime.combine(
            day.extract_date + timedelta(days=1), datetime.min.time(), tzinfo=TORONTO
        ).replace(hour=1, minute=5)
        assert generated == expected
        assert generated.utcoffset() == expected.utcoffset()  # -05:00 in winter, -04:00 after
        # The manifest is written after the data file.
        assert day.manifest_path.stat().st_mtime_ns >= day.csv_path.stat().st_mtime_ns
    assert not list(root.rglob(".*.tmp"))


def test_record_count_differs_from_line_count(two_months):
    # Quoted line breaks exist, so counting lines would be wrong; the manifest counts records.
    _, days, _ = two_months
    assert any(day.csv_path.read_bytes().count(b"\n") - 1 > day.rows for day in days), (
        "expected some embedded line breaks in quoted fields"
    )


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    args = {"start": date(2024, 10, 28), "end": date(2024, 11, 6), "agencies": ("WPS", "LPS")}
    g.generate(a, seed=3, bad_rows_share=0.1, bad_files=True, **args)
    g.generate(b, seed=3, bad_rows_share=0.1, bad_files=True, **args)
    g.generate(c, seed=4, bad_rows_share=0.1, bad_files=True, **args)
    files_a, files_b, files_c = all_files(a), all_files(b), all_files(c)
    assert files_a == files_b
    assert files_a.keys() == files_c.keys()
    csvs = [k for k in files_a if k.endswith(".csv")]
    assert sum(files_a[k] != files_c[k] for k in csvs) >= len(csvs) - 2


def test_a_day_does_not_depend_on_the_requested_range(tmp_path):
    g.generate(tmp_path / "a", date(2024, 5, 1), date(2024, 5, 20), seed=5)
    g.generate(tmp_path / "b", date(2024, 5, 12), date(2024, 5, 31), seed=5)
    files_a, files_b = all_files(tmp_path / "a"), all_files(tmp_path / "b")
    overlap = files_a.keys() & files_b.keys()
    assert len(overlap) == 2 * 9
    assert all(files_a[k] == files_b[k] for k in overlap)


def test_zero_calls_gives_header_only_file_and_zero_row_manifest(tmp_path):
    (day,) = g.generate(tmp_path, date(2024, 6, 1), date(2024, 6, 1), calls_per_day=0)
    assert day.rows == 0
    assert day.csv_path.read_bytes() == (",".join(CONTRACT_COLUMNS) + "\n").encode()
    manifest = json.loads(day.manifest_path.read_text())
    assert manifest["rows"] == 0
    assert manifest["sha256"] == sha256(day.csv_path)


def test_generated_at_hour(tmp_path):
    (day,) = g.generate(tmp_path, date(2024, 7, 1), date(2024, 7, 1), generated_at_hour=4)
    manifest = json.loads(day.manifest_path.read_text())
    assert manifest["generated_at"] == "2024-07-02T04:05:00-04:00"


def test_arguments_are_validated(tmp_path):
    with pytest.raises(ValueError):
        g.generate(tmp_path, date(2024, 1, 2), date(2024, 1, 1))
    with pytest.raises(ValueError):
        g.generate(tmp_path, date(2024, 1, 1), date(2024, 1, 1), agencies=("wps",))
    with pytest.raises(ValueError):
        g.generate(tmp_path, date(2024, 1, 1), date(2024, 1, 1), bad_rows_share=1.5)


def test_every_generated_row_follows_the_contract(two_months):
    _, days, loaded = two_months
    first_versions: dict[str, set[str]] = defaultdict(set)
    for day, rows in loaded:
        ids = [r["incident_id"] for r in rows]
        assert len(ids) == len(set(ids)), "incident_id unique within a file"
        end = day_end(day.extract_date)
        for row in rows:
            assert violations(row, day.agency_code, day.extract_date) == set(), row
            stamps = [
                _ts(row[c]) for c in ("call_received_at", "cleared_at", "consent_recorded_at")
            ]
            for stamp in filter(None, stamps):
                assert stamp <= end, "nothing later than the end of the extract day"
                # Local Toronto time with the offset that zone really had at that instant.
                assert stamp.utcoffset() == stamp.astimezone(TORONTO).utcoffset()
            if row["record_version"] == "1":
                assert row["incident_id"] not in first_versions[day.agency_code]
                first_versions[day.agency_code].add(row["incident_id"])
                assert row["incident_id"].startswith(f"{day.agency_code}-")
                if row["cleared_at"]:
                    # A file holds the calls cleared that (local) day.
                    assert _ts(row["cleared_at"]).astimezone(TORONTO).date() == day.extract_date


def test_calibration(two_months):
    _, days, loaded = two_months
    first = [r for _, rows in loaded for r in rows if r["record_version"] == "1"]
    per_agency_day = len(first) / len(days)
    assert 6.5 <= per_agency_day <= 9.5
    charged = [r for r in first if r["clearance_status"] == "cleared_by_charge"]
    assert 0.45 <= len(charged) / len(first) <= 0.65
    assert all(1 <= int(r["charges_laid"]) <= 4 for r in charged)
    not_charged = [r for r in first if r["clearance_status"] != "cleared_by_charge"]
    consent = Counter(r["consent_status"] for r in not_charged)
    assert 0.2 <= consent["given"] / len(not_charged) <= 0.45
    assert {"declined", "not_asked", "unable_to_ask"} <= set(consent)
    # Repeat victims and repeat addresses, per agency, within the window.
    for agency in ("WPS", "LPS"):
        rows = [r for r in first if r["agency_code"] == agency]
        victims = Counter(r["victim_person_id"] for r in rows)
        addresses = Counter(r["address_id"] for r in rows)
        assert sum(n - 1 for n in victims.values()) >= 0.04 * len(rows)
        assert sum(n - 1 for n in addresses.values()) >= 0.03 * len(rows)
    # Call times spread across the day.
    hours = {_ts(r["call_received_at"]).astimezone(TORONTO).hour for r in first}
    assert len(hours) >= 20


def test_contact_fields_realistic(two_months):
    _, _, loaded = two_months
    rows = [r for _, rs in loaded for r in rs]
    given = [r for r in rows if r["consent_status"] == "given"]
    assert given and all(r["victim_given_name"] and r["victim_family_name"] for r in given)
    assert {r["victim_preferred_contact"] for r in given} >= {"phone", "email"}
    # Contact data also shows up where the pipeline must drop it.
    others = [r for r in rows if r["consent_status"] != "given"]
    assert any(any(r[c] for c in CONTACT) for r in others)
    names = {r["victim_given_name"] for r in rows} | {r["victim_family_name"] for r in rows}
    assert any(not n.isascii() for n in names), "accented or non-Latin names expected"
    assert any(r["victim_safe_contact_notes"] for r in rows)
    assert any("\n" in r["narrative"] or '"' in r["narrative"] for r in rows)
    assert all(r["victim_phone"].startswith("+1519555") for r in rows if r["victim_phone"])
    assert {r["patrol_zone"] for r in rows} <= {f"Z{i}" for i in range(1, 7)}


def test_corrections_have_version_2_and_consistent_semantics(tmp_path):
    days = g.generate(tmp_path, date(2024, 4, 1), date(2024, 5, 20), calls_per_day=30, seed=2)
    first: dict[str, tuple[date, dict[str, str]]] = {}
    seconds: list[tuple[date, dict[str, str]]] = []
    for day in days:
        for row in read_csv(day.csv_path)[1]:
            assert violations(row, day.agency_code, day.extract_date) == set()
            if row["record_version"] == "1":
                first[row["incident_id"]] = (day.extract_date, row)
            else:
                assert row["record_version"] == "2"
                seconds.append((day.extract_date, row))
    n_first = len(first)
    assert 0.015 <= len(seconds) / n_first <= 0.05
    kinds = Counter()
    for when, row in seconds:
        if row["incident_id"] not in first:
            continue  # its first version was before the window
        was_day, was = first[row["incident_id"]]
        assert 1 <= (when - was_day).days <= 10
        assert row["call_received_at"] == was["call_received_at"]
        if was["clearance_status"] != row["clearance_status"]:
            kinds["charge_laid"] += 1
            assert row["clearance_status"] == "cleared_by_charge"
            assert row["consent_status"] == "not_applicable"
            assert int(row["charges_laid"]) > 0
            assert _ts(row["cleared_at"]).astimezone(TORONTO).date() == when
        elif row["consent_status"] == "withdrawn":
            kinds["withdrawn"] += 1
            assert was["consent_status"] == "given"
            recorded = _ts(row["consent_recorded_at"])
            assert recorded > _ts(was["consent_recorded_at"]) > _ts(was["call_received_at"])
            assert recorded.astimezone(TORONTO).date() == when
        elif row["consent_status"] != was["consent_status"]:
            kinds["given_later"] += 1
            assert row["consent_status"] == "given"
            assert was["consent_status"] in ("not_asked", "unable_to_ask")
        else:
            kinds["data_fix"] += 1
    assert kinds["charge_laid"] and kinds["withdrawn"], kinds
    # Some charged-later cases keep contact fields in the file (the pipeline must drop them).
    assert any(
        r["clearance_status"] == "cleared_by_charge" and r["victim_given_name"] for _, r in seconds
    )


@pytest.mark.parametrize("kind", g.BAD_ROW_KINDS)
def test_each_bad_row_kind_breaks_exactly_its_rule(tmp_path, kind):
    extract_date = date(2024, 6, 1)
    call = datetime(2024, 6, 1, 9, 30, tzinfo=TORONTO)
    rows = [
        g.make_bad_row(kind, random.Random(i), "WPS", f"WPS-2024-{i:06d}", call) for i in range(25)
    ]
    day = g.write_extract(tmp_path, "WPS", extract_date, rows)
    for row in read_csv(day.csv_path)[1]:
        assert violations(row, "WPS", extract_date) == {BAD_KIND_RULE[kind]}, row


def test_bad_row_kinds_are_covered():
    assert set(g.BAD_ROW_KINDS) == set(BAD_KIND_RULE)
    with pytest.raises(ValueError):
        g.make_bad_row("nope", random.Random(1), "WPS", "WPS-1", datetime.now(UTC))


def test_bad_rows_share(tmp_path):
    days = g.generate(tmp_path, date(2024, 8, 1), date(2024, 8, 30), bad_rows_share=0.25)
    bad, total, rules = 0, 0, Counter()
    for day in days:
        for row in read_csv(day.csv_path)[1]:
            total += 1
            broken = violations(row, day.agency_code, day.extract_date)
            if broken:
                bad += 1
                assert len(broken) == 1, (broken, row)
                rules.update(broken)
    assert 0.15 <= bad / total <= 0.35
    assert set(rules) == set(BAD_KIND_RULE.values())


def test_make_row_is_valid_and_overrides_win(tmp_path):
    call = datetime(2024, 6, 1, 8, 0, tzinfo=TORONTO)
    rng = random.Random(9)
    rows = [g.make_row(rng, "WPS", f"WPS-2024-{i:06d}", call) for i in range(200)]
    rows.append(g.make_row(rng, "WPS", "WPS-X1", call, clearance_status="cleared_by_charge"))
    rows.append(g.make_row(rng, "WPS", "WPS-X2", call, consent_status="given"))
    rows.append(g.make_row(rng, "WPS", "WPS-X3", call, narrative='a, "b"\nc', patrol_zone="Z9"))
    for row in rows:
        assert set(row) == set(CONTRACT_COLUMNS)
    day = g.write_extract(tmp_path, "WPS", date(2024, 6, 1), rows)
    read = read_csv(day.csv_path)[1]
    assert all(violations(r, "WPS", date(2024, 6, 1)) == set() for r in read)
    charged, given, custom = read[-3:]
    assert charged["consent_status"] == "not_applicable" and int(charged["charges_laid"]) > 0
    assert given["victim_given_name"] and given["consent_officer_id"]
    assert custom["narrative"] == 'a, "b"\nc' and custom["patrol_zone"] == "Z9"


def test_bad_files(tmp_path):
    days = g.generate(tmp_path, date(2024, 9, 1), date(2024, 10, 20), bad_files=True)
    seen = Counter()
    for day in days:
        kind = day.bad_file_kind
        seen[kind] += 1
        if kind == "manifest_missing":
            assert day.csv_path.exists() and not day.manifest_path.exists()
            continue
        manifest = json.loads(day.manifest_path.read_text())
        if kind is None:
            assert manifest["sha256"] == sha256(day.csv_path)
            assert manifest["rows"] == count_records(day.csv_path)
        elif kind == "sha256_mismatch":
            assert manifest["sha256"] != sha256(day.csv_path)
            assert manifest["rows"] == count_records(day.csv_path)
        elif kind == "row_count_mismatch":
            assert manifest["sha256"] == sha256(day.csv_path)
            assert manifest["rows"] > count_records(day.csv_path)
        elif kind == "truncated_file":
            assert manifest["sha256"] != sha256(day.csv_path)
            assert not day.csv_path.read_bytes().endswith(b"\n")  # cut mid-record
    assert set(seen) == {None, *g.BAD_FILE_KINDS}
    assert sum(n for k, n in seen.items() if k) <= len(days) // 5, "only a few bad days"


def test_write_large_extract_streams_valid_rows(tmp_path):
    path = tmp_path / "WPS" / "WPS_ipv_calls_2024-06-01.csv"
    began = time.perf_counter()
    assert g.write_large_extract(path, 20_000, seed=3) == path
    assert time.perf_counter() - began < 5
    header, rows = read_csv(path)
    assert tuple(header) == CONTRACT_COLUMNS
    assert len(rows) == 20_000
    assert len({r["incident_id"] for r in rows}) == 20_000
    for row in rows[::37]:
        assert violations(row, "WPS", date(2024, 6, 1)) == set(), row
    manifest = json.loads((tmp_path / "WPS" / "WPS_ipv_calls_2024-06-01.manifest.json").read_text())
    assert manifest["rows"] == 20_000
    assert manifest["sha256"] == sha256(path)
    assert manifest["file"] == path.name
    assert manifest["extract_date"] == "2024-06-01"


def test_write_large_extract_zero_rows(tmp_path):
    path = g.write_large_extract(tmp_path / "WPS_ipv_calls_2024-06-01.csv", 0)
    assert count_records(path) == 0
    manifest = json.loads((tmp_path / "WPS_ipv_calls_2024-06-01.manifest.json").read_text())
    assert manifest["rows"] == 0 and manifest["sha256"] == sha256(path)


def _sample_rows(n: int = 5) -> list[dict]:
    rng = random.Random(4)
    call = datetime(2024, 6, 1, 10, 0, tzinfo=TORONTO)
    rows = [g.make_row(rng, "WPS", f"WPS-2024-{i:06d}", call) for i in range(n)]
    rows[0]["narrative"] = 'line one, with comma\nline "two"'
    return rows


def test_write_extract_bom_and_crlf(tmp_path):
    rows = _sample_rows()
    day = g.write_extract(tmp_path, "WPS", date(2024, 6, 1), rows, bom=True, line_ending="\r\n")
    data = day.csv_path.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    assert data.endswith(b"\r\n")
    assert data.count(b"\r\n") == len(rows) + 1  # the embedded "\n" is not a record end
    manifest = json.loads(day.manifest_path.read_text())
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest()
    header, read = read_csv(day.csv_path)
    assert tuple(header) == CONTRACT_COLUMNS
    assert manifest["rows"] == len(read) == len(rows)
    assert read[0]["narrative"] == 'line one, with comma\nline "two"'


def test_write_extract_custom_columns_and_values(tmp_path):
    rows = _sample_rows()
    rows[1]["extra_col"] = "x"
    columns = [*reversed(CONTRACT_COLUMNS[:-1]), "extra_col"]  # reordered, narrative dropped
    day = g.write_extract(tmp_path, "WPS", date(2024, 6, 1), rows, columns=columns)
    header, read = read_csv(day.csv_path)
    assert header == columns
    assert read[1]["extra_col"] == "x" and read[0]["extra_col"] == ""
    assert read[0]["children_present"] in ("true", "false")
    assert read[0]["call_received_at"] == "2024-06-01T10:00:00-04:00"
    assert read[0]["record_version"] == "1"
    assert "narrative" not in read[0]
    assert all(read[0][c] == "" for c in columns if rows[0].get(c) is None)  # None -> empty


def test_write_extract_manifest_options(tmp_path):
    rows = _sample_rows()
    when = datetime(2024, 6, 3, 7, 0, tzinfo=UTC)
    day = g.write_extract(
        tmp_path, "WPS", date(2024, 6, 1), rows, generated_at=when,
        manifest_overrides={"rows": 99, "sha256": None, "note": "retry"},
    )  # fmt: skip
    manifest = json.loads(day.manifest_path.read_text())
    assert manifest["rows"] == 99 and "sha256" not in manifest and manifest["note"] == "retry"
    assert manifest["generated_at"] == "2024-06-03T07:00:00+00:00"
    assert list(manifest)[:3] == ["extract_version", "agency_code", "extract_date"]
    # Rewriting without a manifest removes the stale one (the file is then incomplete).
    again = g.write_extract(tmp_path, "WPS", date(2024, 6, 1), rows, manifest=False)
    assert again.csv_path.exists() and not again.manifest_path.exists()


def test_write_extract_counts_records_not_lines(tmp_path):
    rows = _sample_rows(3)
    day = g.write_extract(tmp_path, "WPS", date(2024, 6, 1), rows)
    text = day.csv_path.read_text(encoding="utf-8")
    assert text.count("\n") > len(rows) + 1
    manifest = json.loads(day.manifest_path.read_text())
    assert manifest["rows"] == 3
    assert len(list(csv.reader(io.StringIO(text, newline="")))) == 4
