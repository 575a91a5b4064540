"""Rows that break exactly one contract rule, for the quarantine and its tests."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from upstream.dev.generate.clock import local, utc
from upstream.dev.generate.rows import make_row
from upstream.dev.generate.tables import CULTURE_TABLE, pick

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


def _make_given(rng: random.Random, row: dict[str, object]) -> None:
    """Turn a valid row into a valid consent-given row (non-charge clearance, contact data)."""
    if row["clearance_status"] == "cleared_by_charge":
        row["clearance_status"] = "cleared_otherwise_complainant_request"
        row["charges_laid"] = 0
    row["consent_status"] = "given"
    row["consent_recorded_at"] = row["cleared_at"] or row["call_received_at"]
    row["consent_officer_id"] = row["responding_officer_id"]
    if not row.get("victim_given_name") or not row.get("victim_family_name"):
        given_names, family_names, _, _ = pick(rng, CULTURE_TABLE)
        row["victim_given_name"] = rng.choice(given_names)
        row["victim_family_name"] = rng.choice(family_names)
    if not row.get("victim_phone"):
        row["victim_phone"] = f"+1519555{rng.randrange(10000):04d}"
    row["victim_preferred_contact"] = "phone"


def break_row(kind: str, rng: random.Random, row: dict[str, object]) -> dict[str, object]:
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
        row["call_received_at"] = local(call_at).replace(tzinfo=None).isoformat()
    elif kind == "call_in_future":
        # A mistyped year, ten years ahead; the dependent timestamps are cleared (optional) or
        # the consent made one that needs none, so only call_received_at is wrong.
        row["call_received_at"] = local(utc(call_at) + timedelta(days=3653))
        row["cleared_at"] = None
        row["consent_recorded_at"] = None
        if row["consent_status"] in ("given", "declined", "withdrawn"):
            row["consent_status"] = "not_asked"
    elif kind == "cleared_before_call":
        row["cleared_at"] = local(utc(call_at) - timedelta(minutes=rng.randint(30, 180)))
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
    return break_row(kind, rng, make_row(rng, agency_code, incident_id, call_received_at))
