"""What a referral carries: the triage flags and the payload, built from a whitelist.

Only the fields of shared/contracts/outreach-api-v1.md leave; `DISCLOSED_FIELDS` names them for
the audit log. Pure functions: unit-tested without a database or a server.
"""

from __future__ import annotations

from datetime import datetime

from upstream.settings import Settings

CONTACT_FIELDS = ("given_name", "family_name", "phone", "email", "preferred_contact",
                  "safe_contact_notes", "language")
# Everything that ever leaves, by name (the contract's fields, nothing else).
DISCLOSED_FIELDS = (
    "referral_id", "agency_code", "incident_ref", "call_received_at", "call_type",
    *(f"contact.{f}" for f in CONTACT_FIELDS),
    "triage.priority", "triage.flags", "triage.prior_ipv_calls_365d",
    "consent.recorded_at", "consent.officer_id",
)


def triage(row: dict) -> dict:
    """Flags to help outreach workers order their day; never decides eligibility.

    urgent when any of: a weapon, major injury or death, a breach of order, 2+ prior IPV calls
    for the same victim in 180 days, escalation (more severe than every prior call in 365 days),
    or children present with any prior call in 365 days. Otherwise standard.
    """
    flags: list[str] = []
    if row["children_present"]:
        flags.append("children_present")
    if row["weapon"] in ("firearm", "knife", "other_weapon"):
        flags.append("weapon")
    if row["injury_level"] in ("minor", "major", "death"):
        flags.append("injury")
    if row["call_type"] == "ipv_breach_of_order":
        flags.append("breach_of_order")
    if row["prior_180d"] >= 1:
        flags.append("repeat_calls_180d")
    if row["prior_365d"] >= 1:
        flags.append("repeat_calls_365d")
    if row["max_prior_severity"] is not None and row["severity"] > row["max_prior_severity"]:
        flags.append("escalation")
    urgent = (
        "weapon" in flags
        or row["injury_level"] in ("major", "death")
        or "breach_of_order" in flags
        or row["prior_180d"] >= 2
        or "escalation" in flags
        or ("children_present" in flags and row["prior_365d"] >= 1)
    )
    return {"priority": "urgent" if urgent else "standard", "flags": flags,
            "prior_ipv_calls_365d": int(row["prior_365d"])}


def build_payload(row: dict, settings: Settings) -> dict:
    """The referral body: exactly the contract's fields, built from a whitelist."""
    tz = settings.timezone

    def iso(value: datetime | None) -> str | None:
        return value.astimezone(tz).isoformat() if value else None

    return {
        "referral_id": row["referral_id"],
        "agency_code": row["agency_code"],
        "incident_ref": row["incident_id"],
        "call_received_at": iso(row["call_received_at"]),
        "call_type": row["call_type"],
        "contact": {f: row[f] for f in CONTACT_FIELDS},
        "triage": triage(row),
        "consent": {"recorded_at": iso(row["consent_recorded_at"]),
                    "officer_id": row["consent_officer_id"]},
    }
