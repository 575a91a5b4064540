"""Deterministic demo data: daily IPV call extracts and their manifests.

Everything written here follows /work/shared/contracts/ipv-call-extract-v1.md (file naming,
manifest, RFC 4180 CSV, every column rule), unless a bad row or bad file is asked for.

Each agency-day is generated from its own seeded random stream (seed, agency, date), and the
cross-day parts (repeat victims, later corrections) are functions of that seed too. So a day's
file does not depend on the requested date range: generating June and then June 15 - July 15
writes byte-identical files for the overlapping days, as a real re-delivery would.

Standard library only; no pandas, nothing that needs a database.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import random
import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

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

TZ = ZoneInfo("America/Toronto")  # the agencies' local time zone (contract: Windsor)
EXTRACT_VERSION = "1"

COLUMNS: tuple[str, ...] = (
    "agency_code",
    "incident_id",
    "record_version",
    "call_received_at",
    "cleared_at",
    "call_source",
    "call_type",
    "patrol_zone",
    "clearance_status",
    "charges_laid",
    "relationship",
    "weapon",
    "injury_level",
    "children_present",
    "substance_involved",
    "consent_status",
    "consent_recorded_at",
    "consent_officer_id",
    "victim_person_id",
    "accused_person_id",
    "address_id",
    "victim_given_name",
    "victim_family_name",
    "victim_birth_year",
    "victim_phone",
    "victim_email",
    "victim_preferred_contact",
    "victim_safe_contact_notes",
    "victim_language",
    "victim_postal_code",
    "responding_officer_id",
    "narrative",
)

# The contract's contact fields (victim_given_name ... victim_postal_code).
CONTACT_COLUMNS: tuple[str, ...] = COLUMNS[
    COLUMNS.index("victim_given_name") : COLUMNS.index("victim_postal_code") + 1
]

BAD_ROW_KINDS: tuple[str, ...] = (
    "bad_enum",
    "missing_required",
    "timestamp_without_offset",
    "call_in_future",
    "cleared_before_call",
    "charges_without_charge_clearance",
    "not_applicable_without_charge",
    "given_without_names",
    "bad_phone",
    "bad_postal_code",
    "bad_incident_id",
    "wrong_agency",
    "record_version_zero",
)

BAD_FILE_KINDS: tuple[str, ...] = (
    "manifest_missing",
    "sha256_mismatch",
    "row_count_mismatch",
    "truncated_file",
)

# Calibration (Windsor 2024 program figures; see the module's tests for the bounds checked).
_CHARGE_RATE_BY_TYPE = {  # call-type mix below times these rates gives ~55% cleared by charge
    "ipv_assault": 0.75,
    "ipv_sexual_assault": 0.60,
    "ipv_threats": 0.55,
    "ipv_criminal_harassment": 0.50,
    "ipv_breach_of_order": 0.80,
    "ipv_dispute_verbal": 0.20,
    "ipv_other": 0.35,
}
_CHRONIC_SHARE = 0.31  # share of calls from the recurring-household pool -> ~25-30% repeat victims
_CHRONIC_CALLS_PER_YEAR = 6.0  # per recurring household; almost all have a prior call within a year
_HOUSEHOLD_EPOCH_DAYS = 730  # households rotate out of the recurring pool (staggered)
_CORRECTION_SHARE = 0.03
_CORRECTION_MAX_LAG = 10
_BAD_FILE_PERIOD = 10  # every 10th day (per agency offset) is a broken delivery when bad_files

_INCIDENT_ID_RE = re.compile(r"^[A-Z0-9-]{1,32}$")
_AGENCY_RE = re.compile(r"^[A-Z]{2,6}$")


def _table(*pairs: tuple[Any, float]) -> tuple[tuple[Any, ...], list[float]]:
    """(values, cumulative weights) for rng.choices."""
    values = tuple(v for v, _ in pairs)
    cum: list[float] = []
    total = 0.0
    for _, w in pairs:
        total += w
        cum.append(total)
    return values, cum


def _pick(rng: random.Random, table: tuple[tuple[Any, ...], list[float]]) -> Any:
    return rng.choices(table[0], cum_weights=table[1])[0]


_CALL_SOURCE = _table(
    ("911", 0.55), ("non_emergency", 0.20), ("officer_initiated", 0.05),
    ("third_party", 0.15), ("online", 0.05),
)  # fmt: skip
_CALL_TYPE = _table(
    ("ipv_assault", 0.35), ("ipv_sexual_assault", 0.03), ("ipv_threats", 0.15),
    ("ipv_criminal_harassment", 0.07), ("ipv_breach_of_order", 0.10),
    ("ipv_dispute_verbal", 0.25), ("ipv_other", 0.05),
)  # fmt: skip
_RELATIONSHIP = _table(
    ("current_spouse", 0.20), ("former_spouse", 0.08), ("current_common_law", 0.20),
    ("former_common_law", 0.12), ("current_dating", 0.18), ("former_dating", 0.17),
    ("other_intimate", 0.05),
)  # fmt: skip
_WEAPON_PHYSICAL = _table(
    ("physical_force", 0.65), ("none", 0.12), ("knife", 0.06), ("other_weapon", 0.08),
    ("firearm", 0.01), ("unknown", 0.08),
)  # fmt: skip
_WEAPON_OTHER = _table(
    ("none", 0.75), ("physical_force", 0.10), ("knife", 0.03), ("other_weapon", 0.04),
    ("firearm", 0.01), ("unknown", 0.07),
)  # fmt: skip
# "death" is a valid enum value but never generated: a homicide is not demo material.
_INJURY_PHYSICAL = _table(("none", 0.45), ("minor", 0.45), ("major", 0.10))
_INJURY_OTHER = _table(("none", 0.90), ("minor", 0.09), ("major", 0.01))
_NON_CHARGE_CLEARANCE = _table(
    ("cleared_otherwise_complainant_request", 0.30),
    ("cleared_otherwise_departmental_discretion", 0.25),
    ("cleared_otherwise_beyond_control", 0.05), ("cleared_otherwise_other", 0.10),
    ("not_cleared", 0.15), ("no_offence", 0.15),
)  # fmt: skip
_NON_CHARGE_CONSENT = _table(
    ("given", 0.33), ("declined", 0.27), ("not_asked", 0.22), ("unable_to_ask", 0.18),
)  # fmt: skip
_CHARGES = _table((1, 0.50), (2, 0.30), (3, 0.15), (4, 0.05))

# Name cultures: (given names, family names, ISO 639-1 language, weight). Several scripts on
# purpose: the pipeline must carry UTF-8 untouched.
_CULTURES: tuple[tuple[tuple[str, ...], tuple[str, ...], str, float], ...] = (
    (("Sarah", "Emily", "Jessica", "Ashley", "Megan", "Amanda", "Nicole", "Michael", "Chris"),
     ("Smith", "Brown", "Wilson", "MacDonald", "O'Brien", "Campbell", "Taylor"), "en", 0.50),
    (("Zoë", "Chloé", "Amélie", "Marie-Ève", "Hélène", "Geneviève"),
     ("Tremblay", "Côté", "Gagnon", "Bélanger", "Lévesque"), "fr", 0.12),
    (("José", "María", "Lucía", "Ana Sofía"), ("García", "Hernández", "Núñez"), "es", 0.06),
    (("Linh", "Hoa", "Thảo"), ("Nguyễn", "Trần", "Phạm"), "vi", 0.05),
    (("محمد", "فاطمة", "Nour", "Layla"), ("حداد", "Haddad", "Khoury"), "ar", 0.08),
    (("芳", "丽", "Mei"), ("李", "王", "陈"), "zh", 0.05),
    (("Priya", "Harpreet", "प्रिया"), ("Singh", "Kaur", "Patel"), "pa", 0.06),
    (("Olena", "Ольга"), ("Kovalenko", "Шевченко"), "uk", 0.04),
)  # fmt: skip
_CULTURE_TABLE = _table(*((c, c[3]) for c in _CULTURES))
_EMAIL_DOMAINS = ("example.com", "example.ca", "example.net", "example.org")
# Windsor forward sortation areas; local delivery units skip the letters Canada Post never uses.
_FSAS = ("N8N", "N8P", "N8R", "N8S", "N8T", "N8W", "N8X", "N8Y", "N9A", "N9B", "N9C", "N9E",
         "N9G", "N9H", "N9J", "N9K")  # fmt: skip
_LDU_LETTERS = "ABCEGHJKLMNPRSTVWXYZ"
_SAFE_NOTES = (
    "weekday mornings only, no voicemail",
    'say you are calling from "the clinic"',
    "text first; call only if she replies",
    "call after 6pm,\npartner works days",
    "shared phone - do not leave messages",
    'use the work number, ask for "Sam"',
)
_NARRATIVES = (
    "Caller reported shouting next door, neighbours concerned.",
    'Victim stated "he took my phone" and left before police arrived.',
    "Verbal dispute over custody, both parties separated for the night.",
    "Complainant reports repeated texts, calls and visits after separation,\nscreenshots provided.",
    'Accused said "it was just an argument"; victim declined statement at scene.',
    "Third party (sister) called; victim safe at her residence, children with grandparent.",
    "Breach of no-contact condition, accused located nearby, arrested without incident.",
    'Minor injuries, treated by EMS on scene.\nVictim given resource card, "VAW services".',
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


# ---------------------------------------------------------------------------------------------
# Small helpers


def csv_name(agency_code: str, extract_date: date) -> str:
    return f"{agency_code}_ipv_calls_{extract_date.isoformat()}.csv"


def manifest_name(agency_code: str, extract_date: date) -> str:
    return f"{agency_code}_ipv_calls_{extract_date.isoformat()}.manifest.json"


def _day_bounds(d: date) -> tuple[datetime, datetime]:
    """Start and end of a local day, in UTC (23, 24 or 25 hours apart)."""
    start = datetime.combine(d, time(), tzinfo=TZ).astimezone(UTC)
    end = datetime.combine(d + timedelta(days=1), time(), tzinfo=TZ).astimezone(UTC)
    return start, end


def _local(ts: datetime) -> datetime:
    # Arithmetic happens in UTC: Python's same-tzinfo arithmetic is wall-clock and breaks on
    # DST days. Values are then shown in local time with the correct offset.
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=TZ)
    return ts.astimezone(UTC).astimezone(TZ)


def _utc(ts: datetime) -> datetime:
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=TZ)
    return ts.astimezone(UTC)


def _default_generated_at(extract_date: date, hour: int = 1) -> datetime:
    # Round-trip through UTC so a wall time skipped by DST (02:05 in spring) is shown as the
    # real local time with its real offset.
    return _local(datetime.combine(extract_date + timedelta(days=1), time(hour, 5), tzinfo=TZ))


def _poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 60:  # normal approximation; Knuth's loop gets slow and underflows
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit = math.exp(-lam)
    k, p = 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _ascii_fold(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return "".join(c for c in folded.lower() if c.isalnum())


def _postal_code(rng: random.Random) -> str:
    return f"{rng.choice(_FSAS)} {rng.randrange(10)}{rng.choice(_LDU_LETTERS)}{rng.randrange(10)}"


def _officer(rng: random.Random, agency_code: str) -> str:
    # A per-agency force of ~150 officers, so the same ids recur.
    return f"{agency_code[0]}{1000 + rng.randrange(150) * 37 % 9000}"


def _person_profile(rng: random.Random) -> dict[str, Any]:
    """Contact details for one victim (stable per victim when rng is seeded by the victim)."""
    given_names, family_names, language, _ = _pick(rng, _CULTURE_TABLE)
    given = rng.choice(given_names)
    family = rng.choice(family_names)
    phone = f"+1519555{rng.randrange(10000):04d}" if rng.random() < 0.85 else None
    local_part = ".".join(p for p in (_ascii_fold(given), _ascii_fold(family)) if p)
    local_part = local_part or "contact"
    email = (
        f"{local_part}{rng.randrange(100):02d}@{rng.choice(_EMAIL_DOMAINS)}"
        if rng.random() < 0.6 or phone is None
        else None
    )
    if rng.random() < 0.1:
        lang = None  # optional column; the pipeline defaults to "en"
    else:
        lang = language if rng.random() < 0.85 else "en"
    return {
        "victim_given_name": given,
        "victim_family_name": family,
        "victim_birth_year": rng.randint(1948, 2006),  # clamped to the call year when used
        "victim_phone": phone,
        "victim_email": email,
        "victim_language": lang,
        "victim_postal_code": _postal_code(rng),
    }


def _preferred_contact(rng: random.Random, phone: object, email: object) -> str:
    options = []
    if phone:
        options += ["phone", "phone", "text"]
    if email:
        options.append("email")
    options.append("in_person")
    return rng.choice(options)


# ---------------------------------------------------------------------------------------------
# Rows


def _row(
    rng: random.Random,
    agency_code: str,
    incident_id: str,
    call_received_at: datetime,
    profile: Mapping[str, Any] | None,
    changed_at: datetime | None,
    overrides: Mapping[str, object],
) -> dict[str, object]:
    """One valid row. `changed_at` bounds every timestamp (the moment the record was cleared or
    last changed); the row's own decisions are taken from `overrides` first so that the derived
    fields stay consistent with them, and the overrides are applied last."""
    call_utc = _utc(call_received_at)
    if "cleared_at" in overrides and isinstance(overrides["cleared_at"], datetime):
        changed_utc = _utc(overrides["cleared_at"])
    elif changed_at is not None:
        changed_utc = _utc(changed_at)
    else:
        changed_utc = call_utc + timedelta(minutes=rng.randint(20, 360))
    if changed_utc < call_utc:
        changed_utc = call_utc

    call_type = overrides.get("call_type") or _pick(rng, _CALL_TYPE)
    physical = call_type in ("ipv_assault", "ipv_sexual_assault")
    weapon = _pick(rng, _WEAPON_PHYSICAL if physical else _WEAPON_OTHER)
    injury = _pick(rng, _INJURY_PHYSICAL if physical else _INJURY_OTHER)

    if "clearance_status" in overrides:
        clearance = overrides["clearance_status"]
    elif rng.random() < _CHARGE_RATE_BY_TYPE.get(str(call_type), 0.55):
        clearance = "cleared_by_charge"
    else:
        clearance = _pick(rng, _NON_CHARGE_CLEARANCE)
    charged = clearance == "cleared_by_charge"
    charges = _pick(rng, _CHARGES) if charged else 0
    # not_cleared calls have no clearance time; the extract day is then the day of last change.
    cleared_at = None if clearance == "not_cleared" else _local(changed_utc)

    if "consent_status" in overrides:
        consent = overrides["consent_status"]
    else:
        consent = "not_applicable" if charged else _pick(rng, _NON_CHARGE_CONSENT)

    responding = _officer(rng, agency_code)
    consent_at = None
    consent_officer = None
    if consent in ("given", "declined", "withdrawn"):
        span = (changed_utc - call_utc).total_seconds()
        consent_at = _local(call_utc + timedelta(seconds=int(rng.uniform(0.3, 1.0) * span)))
        if consent == "given":
            consent_officer = responding if rng.random() < 0.7 else _officer(rng, agency_code)
        elif rng.random() < 0.5:
            consent_officer = responding

    year = _local(call_utc).year
    if profile is None:
        profile = _person_profile(rng)
    contact: dict[str, object] = dict.fromkeys(CONTACT_COLUMNS)
    if consent == "given":
        contact.update(profile)
        contact["victim_preferred_contact"] = _preferred_contact(
            rng, profile["victim_phone"], profile["victim_email"]
        )
        if rng.random() < 0.4:
            contact["victim_safe_contact_notes"] = rng.choice(_SAFE_NOTES)
        if rng.random() < 0.2:
            contact["victim_postal_code"] = None
    elif rng.random() < 0.3:
        # RMS rows often carry contact details regardless of consent; the pipeline must drop them.
        for key in ("victim_given_name", "victim_family_name", "victim_birth_year",
                    "victim_phone", "victim_postal_code"):  # fmt: skip
            contact[key] = profile[key]
        if rng.random() < 0.3:
            contact["victim_safe_contact_notes"] = rng.choice(_SAFE_NOTES)
    if contact["victim_birth_year"] is not None:
        contact["victim_birth_year"] = min(int(contact["victim_birth_year"]), year - 14)

    row: dict[str, object] = {
        "agency_code": agency_code,
        "incident_id": incident_id,
        "record_version": 1,
        "call_received_at": _local(call_utc),
        "cleared_at": cleared_at,
        "call_source": _pick(rng, _CALL_SOURCE),
        "call_type": call_type,
        "patrol_zone": f"Z{rng.randint(1, 6)}",
        "clearance_status": clearance,
        "charges_laid": charges,
        "relationship": _pick(rng, _RELATIONSHIP),
        "weapon": weapon,
        "injury_level": injury,
        "children_present": rng.random() < 0.3,
        "substance_involved": None if rng.random() < 0.15 else rng.random() < 0.35,
        "consent_status": consent,
        "consent_recorded_at": consent_at,
        "consent_officer_id": consent_officer,
        "victim_person_id": f"MNI-{rng.randrange(1_000_000, 10_000_000)}",
        "accused_person_id": (
            f"MNI-{rng.randrange(1_000_000, 10_000_000)}" if rng.random() < 0.9 else None
        ),
        "address_id": f"ADDR-{rng.randrange(100_000, 1_000_000)}",
        **contact,
        "responding_officer_id": responding,
        "narrative": rng.choice(_NARRATIVES) if rng.random() < 0.8 else None,
    }
    row.update(overrides)
    return row


def make_row(
    rng: random.Random,
    agency_code: str,
    incident_id: str,
    call_received_at: datetime,
    **overrides: object,
) -> dict:
    """One valid row (every column of COLUMNS) with plausible values; overrides win.

    clearance_status, consent_status, call_type and cleared_at overrides also steer the
    dependent fields (charges_laid, consent_recorded_at, contact fields) so the row stays
    valid. Without a cleared_at override, cleared_at is 20 minutes to 6 hours after the call:
    choose call_received_at early enough that this stays inside the intended extract day.
    """
    return _row(rng, agency_code, incident_id, call_received_at, None, None, overrides)


def _make_given(rng: random.Random, row: dict[str, object]) -> None:
    """Turn a valid row into a valid consent-given row (non-charge clearance, contact data)."""
    if row["clearance_status"] == "cleared_by_charge":
        row["clearance_status"] = "cleared_otherwise_complainant_request"
        row["charges_laid"] = 0
    row["consent_status"] = "given"
    row["consent_recorded_at"] = row["cleared_at"] or row["call_received_at"]
    row["consent_officer_id"] = row["responding_officer_id"]
    if not row.get("victim_given_name") or not row.get("victim_family_name"):
        given_names, family_names, _, _ = _pick(rng, _CULTURE_TABLE)
        row["victim_given_name"] = rng.choice(given_names)
        row["victim_family_name"] = rng.choice(family_names)
    if not row.get("victim_phone"):
        row["victim_phone"] = f"+1519555{rng.randrange(10000):04d}"
    row["victim_preferred_contact"] = "phone"


def _break(kind: str, rng: random.Random, row: dict[str, object]) -> dict[str, object]:
    """Make a valid row break exactly one contract rule (kind from BAD_ROW_KINDS)."""
    row = dict(row)
    call_at = row["call_received_at"]
    assert isinstance(call_at, datetime)
    if kind == "bad_enum":
        column, value = rng.choice(
            (("call_source", "9-1-1"), ("call_type", "IPV_ASSAULT"), ("weapon", "gun"),
             ("relationship", "spouse"), ("injury_level", "serious"))
        )  # fmt: skip
        row[column] = value
    elif kind == "missing_required":
        column = rng.choice(
            ("call_source", "call_type", "patrol_zone", "victim_person_id", "address_id",
             "responding_officer_id")
        )  # fmt: skip
        row[column] = None
    elif kind == "timestamp_without_offset":
        row["call_received_at"] = _local(call_at).replace(tzinfo=None).isoformat()
    elif kind == "call_in_future":
        # A mistyped year, ten years ahead; the dependent timestamps are cleared (optional) or
        # the consent made one that needs none, so only call_received_at is wrong.
        row["call_received_at"] = _local(_utc(call_at) + timedelta(days=3653))
        row["cleared_at"] = None
        row["consent_recorded_at"] = None
        if row["consent_status"] in ("given", "declined", "withdrawn"):
            row["consent_status"] = "not_asked"
    elif kind == "cleared_before_call":
        row["cleared_at"] = _local(_utc(call_at) - timedelta(minutes=rng.randint(30, 180)))
        if row["clearance_status"] == "not_cleared":
            row["clearance_status"] = "cleared_otherwise_other"
    elif kind == "charges_without_charge_clearance":
        if row["clearance_status"] == "cleared_by_charge":
            row["clearance_status"] = "cleared_otherwise_departmental_discretion"
            row["consent_status"] = "not_asked"
        row["charges_laid"] = rng.randint(1, 3)
    elif kind == "not_applicable_without_charge":
        if row["clearance_status"] == "cleared_by_charge":
            row["clearance_status"] = "cleared_otherwise_complainant_request"
            row["charges_laid"] = 0
        row["consent_status"] = "not_applicable"
    elif kind == "given_without_names":
        _make_given(rng, row)
        row["victim_given_name"] = None
        row["victim_family_name"] = None
    elif kind == "bad_phone":
        _make_given(rng, row)
        digits = f"{rng.randrange(10000):04d}"
        row["victim_phone"] = rng.choice((f"519-555-{digits}", f"(519) 555-{digits}", "555"))
    elif kind == "bad_postal_code":
        _make_given(rng, row)
        row["victim_postal_code"] = rng.choice(("N9A 1A", "90210", "9NA 1A1", "N9A-1A1X"))
    elif kind == "bad_incident_id":
        incident_id = str(row["incident_id"])
        row["incident_id"] = (
            incident_id.replace("-", "/") if "-" in incident_id else incident_id[:31] + "#"
        )
    elif kind == "wrong_agency":
        row["agency_code"] = "LPS" if row["agency_code"] != "LPS" else "WPS"
    elif kind == "record_version_zero":
        row["record_version"] = 0
    else:
        raise ValueError(f"unknown bad row kind {kind!r}; expected one of {BAD_ROW_KINDS}")
    return row


def make_bad_row(
    kind: str,
    rng: random.Random,
    agency_code: str,
    incident_id: str,
    call_received_at: datetime,
) -> dict:
    """A row that breaks exactly the rule named by `kind` (one of BAD_ROW_KINDS)."""
    if kind not in BAD_ROW_KINDS:
        raise ValueError(f"unknown bad row kind {kind!r}; expected one of {BAD_ROW_KINDS}")
    return _break(kind, rng, make_row(rng, agency_code, incident_id, call_received_at))


# ---------------------------------------------------------------------------------------------
# Writing files


def _fmt(value: object) -> str:
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
    writer.writerows([_fmt(row.get(c)) for c in columns] for row in rows)
    data = buf.getvalue().encode("utf-8")
    return b"\xef\xbb\xbf" + data if bom else data


def _json_default(value: object) -> str:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"cannot put {type(value).__name__} into a manifest")


def _atomic_write(path: Path, data: bytes) -> None:
    # Write beside the target and rename, so nobody ever reads half a file (the temp name does
    # not match the contract's file names, so a sensor will not pick it up).
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _manifest(
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
    _atomic_write(csv_path, data)
    if manifest is not None:
        _atomic_write(manifest_path, manifest)
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
        man = _manifest(
            agency_code,
            extract_date,
            csv_name(agency_code, extract_date),
            len(rows),  # one record per row, however many lines its quoted fields span
            hashlib.sha256(data).hexdigest(),
            generated_at or _default_generated_at(extract_date),
            manifest_overrides,
        )
    csv_path, manifest_path = _deliver(landing_dir, agency_code, extract_date, data, man)
    return GeneratedDay(agency_code, extract_date, csv_path, manifest_path, len(rows))


def _write_bad_file(
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
    man = _manifest(
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


# ---------------------------------------------------------------------------------------------
# The simulated agency


@dataclass(frozen=True)
class _Household:
    victim_person_id: str
    accused_person_id: str | None
    address_id: str
    relationship: str


class _Agency:
    """One agency's calls, day by day. Every day is a pure function of (seed, agency, date)."""

    def __init__(self, seed: int, agency_code: str, calls_per_day: float) -> None:
        self.key = f"{seed}:{agency_code}"
        self.agency = agency_code
        self.calls_per_day = calls_per_day
        self.households = max(
            1, round(_CHRONIC_SHARE * 365 * calls_per_day / _CHRONIC_CALLS_PER_YEAR)
        )
        self._base: dict[date, list[dict[str, object]]] = {}
        self._household_cache: dict[tuple[int, int], _Household] = {}
        self._profiles: dict[str, dict[str, Any]] = {}

    def _rng(self, *parts: object) -> random.Random:
        # String seeds are hashed with SHA-512 by random.seed: stable across runs and
        # independent of PYTHONHASHSEED.
        return random.Random(":".join([self.key, *map(str, parts)]))

    def household(self, slot: int, d: date) -> _Household:
        # Households leave the recurring pool after ~2 years (staggered per slot) and a new
        # one takes the slot, so "repeat victim" stays a recent-history notion.
        epoch = (d.toordinal() + slot * 37) // _HOUSEHOLD_EPOCH_DAYS
        cached = self._household_cache.get((slot, epoch))
        if cached is None:
            rng = self._rng("household", slot, epoch)
            cached = _Household(
                victim_person_id=f"MNI-{rng.randrange(100_000, 1_000_000)}",
                accused_person_id=f"MNI-{rng.randrange(100_000, 1_000_000)}",
                address_id=f"ADDR-{rng.randrange(10_000, 100_000)}",
                relationship=_pick(rng, _RELATIONSHIP),
            )
            self._household_cache[(slot, epoch)] = cached
        return cached

    def profile(self, victim_person_id: str) -> dict[str, Any]:
        cached = self._profiles.get(victim_person_id)
        if cached is None:
            cached = _person_profile(self._rng("victim", victim_person_id))
            self._profiles[victim_person_id] = cached
        return cached

    def incident_id(self, d: date, k: int) -> str:
        # Unique per agency across all days: day of year + sequence within the day.
        doy = d.timetuple().tm_yday
        if k < 1000:
            return f"{self.agency}-{d.year}-{doy:03d}{k:03d}"
        return f"{self.agency}-{d.year}-{doy:03d}-{k:06d}"

    def base(self, d: date) -> list[dict[str, object]]:
        """The calls cleared (or last changed) on day d, first versions."""
        rows = self._base.get(d)
        if rows is not None:
            return rows
        rng = self._rng("day", d.isoformat())
        start, end = _day_bounds(d)
        length = (end - start).total_seconds()
        n = _poisson(rng, self.calls_per_day)
        # Clearances lean towards the evening; the call came in minutes to hours before.
        offsets = sorted(
            int(rng.triangular(0, length - 1, 0.75 * length) if rng.random() < 0.7
                else rng.uniform(0, length - 1))
            for _ in range(n)
        )  # fmt: skip
        rows = []
        for k, offset in enumerate(offsets):
            changed = start + timedelta(seconds=offset)
            delay = min(max(rng.lognormvariate(math.log(7200), 0.6), 900), 36000)
            call = changed - timedelta(seconds=int(delay))
            rows.append(self._call(rng, self.incident_id(d, k), call, changed))
        self._base[d] = rows
        return rows

    def _call(
        self, rng: random.Random, incident_id: str, call: datetime, changed: datetime
    ) -> dict[str, object]:
        overrides: dict[str, object] = {}
        if rng.random() < _CHRONIC_SHARE:
            hh = self.household(rng.randrange(self.households), _local(call).date())
            victim = hh.victim_person_id
            overrides["accused_person_id"] = hh.accused_person_id if rng.random() < 0.9 else None
            overrides["relationship"] = hh.relationship
            address = hh.address_id if rng.random() < 0.85 else self.new_address(rng)
        else:
            victim = f"MNI-{rng.randrange(1_000_000, 10_000_000)}"
            address = self.new_address(rng)
        overrides["victim_person_id"] = victim
        overrides["address_id"] = address
        overrides["patrol_zone"] = f"Z{self._rng('address', address).randint(1, 6)}"
        profile = self.profile(victim)
        row = _row(rng, self.agency, incident_id, call, profile, changed, {})
        row.update(overrides)
        return row

    def new_address(self, rng: random.Random) -> str:
        if rng.random() < 0.05:  # a few apartment blocks keep coming back
            return f"ADDR-{self._rng('hotspot', rng.randrange(40)).randrange(1000, 10000)}"
        return f"ADDR-{rng.randrange(100_000, 1_000_000)}"

    def corrections(self, d: date) -> list[dict[str, object]]:
        """Version-2 rows of earlier incidents that changed on day d."""
        out = []
        for lag in range(_CORRECTION_MAX_LAG, 0, -1):
            for row in self.base(d - timedelta(days=lag)):
                rng = self._rng("correction", row["incident_id"])
                if rng.random() >= _CORRECTION_SHARE or rng.randint(1, _CORRECTION_MAX_LAG) != lag:
                    continue
                out.append(self._correct(rng, row, d))
        return out

    def _correct(self, rng: random.Random, row: dict[str, object], d: date) -> dict[str, object]:
        start, _ = _day_bounds(d)
        # Office hours on the day of the change; always after the call (an earlier day).
        changed = _local(start + timedelta(seconds=rng.randint(8 * 3600, 20 * 3600)))
        new = dict(row)
        new["record_version"] = 2
        clearance, consent = row["clearance_status"], row["consent_status"]
        if clearance == "cleared_by_charge":
            kinds = ["data_fix"]
        elif consent == "given":
            kinds = ["consent_withdrawn"] * 5 + ["charge_laid"] * 3 + ["data_fix"] * 2
        elif consent in ("not_asked", "unable_to_ask"):
            kinds = ["consent_given_later"] * 4 + ["charge_laid"] * 4 + ["data_fix"] * 2
        else:
            kinds = ["charge_laid"] * 7 + ["data_fix"] * 3
        kind = rng.choice(kinds)
        if kind == "charge_laid":
            # Charges laid after investigation. Consent no longer applies; any contact fields
            # stay in the file (the contract allows them, the pipeline must drop them).
            new["clearance_status"] = "cleared_by_charge"
            new["charges_laid"] = rng.randint(1, 3)
            new["consent_status"] = "not_applicable"
            new["cleared_at"] = changed
        elif kind == "consent_withdrawn":
            new["consent_status"] = "withdrawn"
            new["consent_recorded_at"] = changed
        elif kind == "consent_given_later":
            victim = str(row["victim_person_id"])
            profile = self.profile(victim)
            new.update(profile)
            call_year = _utc(row["call_received_at"]).astimezone(TZ).year
            new["victim_birth_year"] = min(int(profile["victim_birth_year"]), call_year - 14)
            new["victim_preferred_contact"] = _preferred_contact(
                rng, profile["victim_phone"], profile["victim_email"]
            )
            new["consent_status"] = "given"
            new["consent_recorded_at"] = changed
            new["consent_officer_id"] = _officer(rng, self.agency)
        else:  # data-entry fix of a descriptive field
            column = rng.choice(("weapon", "injury_level", "children_present"))
            if column == "weapon":
                new["weapon"] = rng.choice([w for w in _WEAPON_OTHER[0] if w != row["weapon"]])
            elif column == "injury_level":
                new["injury_level"] = rng.choice(
                    [i for i in ("none", "minor", "major") if i != row["injury_level"]]
                )
            else:
                new["children_present"] = not row["children_present"]
        return new

    def day(self, d: date) -> list[dict[str, object]]:
        rows = list(self.base(d)) + self.corrections(d)
        # Only the correction look-back window is needed again.
        for old in [k for k in self._base if k < d - timedelta(days=_CORRECTION_MAX_LAG)]:
            del self._base[old]
        return rows

    def spoil(
        self, d: date, rows: list[dict[str, object]], share: float
    ) -> list[dict[str, object]]:
        """Replace about `share` of the day's first-version rows with bad rows, cycling kinds."""
        if share <= 0:
            return rows
        rng = self._rng("bad", d.isoformat())
        counter = d.toordinal() % len(BAD_ROW_KINDS)
        out = []
        for row in rows:
            if row["record_version"] == 1 and rng.random() < share:
                out.append(_break(BAD_ROW_KINDS[counter % len(BAD_ROW_KINDS)], rng, row))
                counter += 1
            else:
                out.append(row)
        return out

    def bad_file_kind(self, d: date) -> str | None:
        offset = sum(map(ord, self.agency)) % _BAD_FILE_PERIOD
        if (d.toordinal() + offset) % _BAD_FILE_PERIOD:
            return None
        return BAD_FILE_KINDS[(d.toordinal() // _BAD_FILE_PERIOD) % len(BAD_FILE_KINDS)]


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
        if not _AGENCY_RE.match(agency):
            raise ValueError(f"agency code {agency!r} is not 2-6 upper-case letters")

    written: list[GeneratedDay] = []
    for agency in agencies:
        sim = _Agency(seed, agency, calls_per_day)
        for d in _days(start, end):
            rows = sim.spoil(d, sim.day(d), bad_rows_share)
            generated_at = _default_generated_at(d, generated_at_hour)
            kind = sim.bad_file_kind(d) if bad_files else None
            if kind is not None:
                written.append(_write_bad_file(kind, landing_dir, agency, d, rows, generated_at))
            else:
                written.append(
                    write_extract(landing_dir, agency, d, rows, generated_at=generated_at)
                )
    return written


# ---------------------------------------------------------------------------------------------
# Benchmarks


def write_large_extract(
    path: Path,
    n_rows: int,
    seed: int = 1,
    agency_code: str = "WPS",
    extract_date: date = date(2024, 6, 1),
) -> Path:
    """Stream n_rows valid rows to `path` in constant memory and write the manifest beside it.

    Name `path` by the contract (<AGENCY>_ipv_calls_<date>.csv) if a pipeline is to read it.
    Rows cycle through a pool of 1024 pre-rendered valid rows; only incident_id changes per row
    (so victims, addresses and timestamps repeat; every row is still valid on its own).
    """
    if n_rows < 0:
        raise ValueError("n_rows must not be negative")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    manifest_path = path.with_name(path.stem + ".manifest.json")
    manifest_path.unlink(missing_ok=True)

    rng = random.Random(f"large:{seed}:{agency_code}:{extract_date.isoformat()}")
    start, end = _day_bounds(extract_date)
    length = int((end - start).total_seconds())
    assert COLUMNS[:2] == ("agency_code", "incident_id")
    # The pool rows are rendered by csv.writer once (quoting included); per row only the
    # incident_id is formatted, and it never needs quoting (A-Z 0-9 - only).
    pool = []
    for _ in range(1024):
        changed = start + timedelta(seconds=rng.randrange(length))
        call = changed - timedelta(seconds=rng.randint(900, 6 * 3600))
        row = _row(rng, agency_code, "X", call, None, changed, {})
        buf = io.StringIO(newline="")
        csv.writer(buf, lineterminator="\n").writerow([_fmt(row[c]) for c in COLUMNS[2:]])
        pool.append(buf.getvalue())
    width = max(6, len(str(n_rows)))
    prefix = f"{agency_code},{agency_code}-{extract_date.year}-"
    assert _INCIDENT_ID_RE.match(f"{agency_code}-{extract_date.year}-{n_rows:0{width}d}")

    digest = hashlib.sha256()
    header = io.StringIO(newline="")
    csv.writer(header, lineterminator="\n").writerow(COLUMNS)
    chunk = 50_000
    with path.open("wb") as fh:
        data = header.getvalue().encode("utf-8")
        digest.update(data)
        fh.write(data)
        for lo in range(0, n_rows, chunk):
            # 7919 is odd, so i * 7919 walks the whole 1024-row pool before repeating.
            text = "".join(
                f"{prefix}{i:0{width}d},{pool[(i * 7919) & 1023]}"
                for i in range(lo, min(lo + chunk, n_rows))
            )
            data = text.encode("utf-8")
            digest.update(data)
            fh.write(data)
    _atomic_write(
        manifest_path,
        _manifest(
            agency_code,
            extract_date,
            path.name,
            n_rows,
            digest.hexdigest(),
            _default_generated_at(extract_date),
            None,
        ),
    )
    return path
