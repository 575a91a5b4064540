"""The IPV call extract contract, version 1 (shared/contracts/ipv-call-extract-v1.md), as data.

Import-light on purpose: the DAG, the CLI and the generator read it.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import PurePath

EXTRACT_VERSION = "1"

ENUMS: dict[str, tuple[str, ...]] = {
    "call_source": ("911", "non_emergency", "officer_initiated", "third_party", "online"),
    "call_type": (
        "ipv_assault", "ipv_sexual_assault", "ipv_threats", "ipv_criminal_harassment",
        "ipv_breach_of_order", "ipv_dispute_verbal", "ipv_other",
    ),
    "clearance_status": (
        "cleared_by_charge", "cleared_otherwise_complainant_request",
        "cleared_otherwise_departmental_discretion", "cleared_otherwise_beyond_control",
        "cleared_otherwise_other", "not_cleared", "no_offence",
    ),
    "relationship": (
        "current_spouse", "former_spouse", "current_common_law", "former_common_law",
        "current_dating", "former_dating", "other_intimate",
    ),
    "weapon": ("none", "physical_force", "firearm", "knife", "other_weapon", "unknown"),
    "injury_level": ("none", "minor", "major", "death"),
    "consent_status": ("given", "declined", "not_asked", "unable_to_ask", "withdrawn", "not_applicable"),
    "victim_preferred_contact": ("phone", "text", "email", "in_person"),
}

# Column -> (required, maximum length in characters). Lengths are ours: the contract sets none,
# but a 10 MB "name" is an exporter fault, not a name.
COLUMNS: dict[str, tuple[bool, int]] = {
    "agency_code": (True, 6),
    "incident_id": (True, 32),
    "record_version": (True, 10),
    "call_received_at": (True, 40),
    "cleared_at": (False, 40),
    "call_source": (True, 40),
    "call_type": (True, 40),
    "patrol_zone": (True, 32),
    "clearance_status": (True, 60),
    "charges_laid": (True, 10),
    "relationship": (True, 40),
    "weapon": (True, 40),
    "injury_level": (True, 40),
    "children_present": (True, 5),
    "substance_involved": (False, 5),
    "consent_status": (True, 40),
    "consent_recorded_at": (False, 40),
    "consent_officer_id": (False, 64),
    "victim_person_id": (True, 64),
    "accused_person_id": (False, 64),
    "address_id": (True, 64),
    "victim_given_name": (False, 200),
    "victim_family_name": (False, 200),
    "victim_birth_year": (False, 4),
    "victim_phone": (False, 16),
    "victim_email": (False, 254),
    "victim_preferred_contact": (False, 20),
    "victim_safe_contact_notes": (False, 2000),
    "victim_language": (False, 2),
    "victim_postal_code": (False, 7),
    "responding_officer_id": (True, 64),
    "narrative": (False, 1_000_000),
}

REQUIRED_COLUMNS = tuple(c for c, (req, _) in COLUMNS.items() if req)

# Kept only for rows whose current consent is 'given' (contract: victim_given_name ... postal).
CONTACT_COLUMNS = (
    "victim_given_name", "victim_family_name", "victim_birth_year", "victim_phone",
    "victim_email", "victim_preferred_contact", "victim_safe_contact_notes", "victim_language",
    "victim_postal_code",
)

# Never copied out of the extract.
NEVER_STORED = ("narrative",)

AGENCY_CODE_RE = re.compile(r"^[A-Z]{2,6}$")
INCIDENT_ID_RE = re.compile(r"^[A-Z0-9-]{1,32}$")
FILE_NAME_RE = re.compile(r"^(?P<agency>[A-Z]{2,6})_ipv_calls_(?P<date>\d{4}-\d{2}-\d{2})\.csv$")


def data_file_name(agency_code: str, extract_date: date) -> str:
    return f"{agency_code}_ipv_calls_{extract_date.isoformat()}.csv"


def manifest_file_name(agency_code: str, extract_date: date) -> str:
    return f"{agency_code}_ipv_calls_{extract_date.isoformat()}.manifest.json"


def manifest_name_for(data_file: str) -> str:
    """The manifest's name beside a data file (<stem>.csv -> <stem>.manifest.json)."""
    return f"{PurePath(data_file).stem}.manifest.json"
