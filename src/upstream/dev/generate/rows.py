"""Valid synthetic rows: people, officers, and one whole row consistent with its overrides."""

from __future__ import annotations

import math
import random
import unicodedata
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from upstream.contract import CONTACT_COLUMNS
from upstream.dev.generate.clock import local, utc
from upstream.dev.generate.tables import (
    CALL_SOURCE,
    CALL_TYPE,
    CHARGE_RATE_BY_TYPE,
    CHARGES,
    CULTURE_TABLE,
    EMAIL_DOMAINS,
    FSAS,
    INJURY_OTHER,
    INJURY_PHYSICAL,
    LDU_LETTERS,
    NARRATIVES,
    NON_CHARGE_CLEARANCE,
    NON_CHARGE_CONSENT,
    RELATIONSHIP,
    SAFE_NOTES,
    WEAPON_OTHER,
    WEAPON_PHYSICAL,
    pick,
)


def poisson(rng: random.Random, lam: float) -> int:
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
    return f"{rng.choice(FSAS)} {rng.randrange(10)}{rng.choice(LDU_LETTERS)}{rng.randrange(10)}"


def officer(rng: random.Random, agency_code: str) -> str:
    # A per-agency force of ~150 officers, so the same ids recur.
    return f"{agency_code[0]}{1000 + rng.randrange(150) * 37 % 9000}"


def person_profile(rng: random.Random) -> dict[str, Any]:
    """Contact details for one victim (stable per victim when rng is seeded by the victim)."""
    given_names, family_names, language, _ = pick(rng, CULTURE_TABLE)
    given = rng.choice(given_names)
    family = rng.choice(family_names)
    phone = f"+1519555{rng.randrange(10000):04d}" if rng.random() < 0.85 else None
    local_part = ".".join(p for p in (_ascii_fold(given), _ascii_fold(family)) if p)
    local_part = local_part or "contact"
    email = (
        f"{local_part}{rng.randrange(100):02d}@{rng.choice(EMAIL_DOMAINS)}"
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


def preferred_contact(rng: random.Random, phone: object, email: object) -> str:
    options = []
    if phone:
        options += ["phone", "phone", "text"]
    if email:
        options.append("email")
    options.append("in_person")
    return rng.choice(options)


def build_row(
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
    call_utc = utc(call_received_at)
    if "cleared_at" in overrides and isinstance(overrides["cleared_at"], datetime):
        changed_utc = utc(overrides["cleared_at"])
    elif changed_at is not None:
        changed_utc = utc(changed_at)
    else:
        changed_utc = call_utc + timedelta(minutes=rng.randint(20, 360))
    if changed_utc < call_utc:
        changed_utc = call_utc

    call_type = overrides.get("call_type") or pick(rng, CALL_TYPE)
    physical = call_type in ("ipv_assault", "ipv_sexual_assault")
    weapon = pick(rng, WEAPON_PHYSICAL if physical else WEAPON_OTHER)
    injury = pick(rng, INJURY_PHYSICAL if physical else INJURY_OTHER)

    if "clearance_status" in overrides:
        clearance = overrides["clearance_status"]
    elif rng.random() < CHARGE_RATE_BY_TYPE.get(str(call_type), 0.55):
        clearance = "cleared_by_charge"
    else:
        clearance = pick(rng, NON_CHARGE_CLEARANCE)
    charged = clearance == "cleared_by_charge"
    charges = pick(rng, CHARGES) if charged else 0
    # not_cleared calls have no clearance time; the extract day is then the day of last change.
    cleared_at = None if clearance == "not_cleared" else local(changed_utc)

    if "consent_status" in overrides:
        consent = overrides["consent_status"]
    else:
        consent = "not_applicable" if charged else pick(rng, NON_CHARGE_CONSENT)

    responding = officer(rng, agency_code)
    consent_at = None
    consent_officer = None
    if consent in ("given", "declined", "withdrawn"):
        span = (changed_utc - call_utc).total_seconds()
        consent_at = local(call_utc + timedelta(seconds=int(rng.uniform(0.3, 1.0) * span)))
        if consent == "given":
            consent_officer = responding if rng.random() < 0.7 else officer(rng, agency_code)
        elif rng.random() < 0.5:
            consent_officer = responding

    year = local(call_utc).year
    if profile is None:
        profile = person_profile(rng)
    contact: dict[str, object] = dict.fromkeys(CONTACT_COLUMNS)
    if consent == "given":
        contact.update(profile)
        contact["victim_preferred_contact"] = preferred_contact(
            rng, profile["victim_phone"], profile["victim_email"]
        )
        if rng.random() < 0.4:
            contact["victim_safe_contact_notes"] = rng.choice(SAFE_NOTES)
        if rng.random() < 0.2:
            contact["victim_postal_code"] = None
    elif rng.random() < 0.3:
        # RMS rows often carry contact details regardless of consent; the pipeline must drop them.
        for key in ("victim_given_name", "victim_family_name", "victim_birth_year",
                    "victim_phone", "victim_postal_code"):  # fmt: skip
            contact[key] = profile[key]
        if rng.random() < 0.3:
            contact["victim_safe_contact_notes"] = rng.choice(SAFE_NOTES)
    if contact["victim_birth_year"] is not None:
        contact["victim_birth_year"] = min(int(contact["victim_birth_year"]), year - 14)

    row: dict[str, object] = {
        "agency_code": agency_code,
        "incident_id": incident_id,
        "record_version": 1,
        "call_received_at": local(call_utc),
        "cleared_at": cleared_at,
        "call_source": pick(rng, CALL_SOURCE),
        "call_type": call_type,
        "patrol_zone": f"Z{rng.randint(1, 6)}",
        "clearance_status": clearance,
        "charges_laid": charges,
        "relationship": pick(rng, RELATIONSHIP),
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
        "narrative": rng.choice(NARRATIVES) if rng.random() < 0.8 else None,
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
    return build_row(rng, agency_code, incident_id, call_received_at, None, None, overrides)

