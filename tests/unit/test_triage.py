"""The documented triage rule and the whitelisted referral payload (no database)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from upstream.routing import build_payload, triage

BASE = {"children_present": False, "weapon": "none", "injury_level": "none",
        "call_type": "ipv_dispute_verbal", "prior_180d": 0, "prior_365d": 0,
        "max_prior_severity": None, "severity": 0}


@pytest.mark.parametrize(("change", "priority", "flags"), [
    ({}, "standard", []),
    ({"children_present": True}, "standard", ["children_present"]),
    ({"children_present": True, "prior_365d": 1, "max_prior_severity": 0},
     "urgent", ["children_present", "repeat_calls_365d"]),
    ({"weapon": "knife", "severity": 2}, "urgent", ["weapon"]),
    ({"weapon": "physical_force"}, "standard", []),
    ({"injury_level": "minor", "severity": 1}, "standard", ["injury"]),
    ({"injury_level": "major", "severity": 2}, "urgent", ["injury"]),
    ({"call_type": "ipv_breach_of_order"}, "urgent", ["breach_of_order"]),
    ({"prior_180d": 1, "prior_365d": 1, "max_prior_severity": 0},
     "standard", ["repeat_calls_180d", "repeat_calls_365d"]),
    ({"prior_180d": 2, "prior_365d": 3, "max_prior_severity": 0},
     "urgent", ["repeat_calls_180d", "repeat_calls_365d"]),
    ({"prior_365d": 1, "max_prior_severity": 0, "injury_level": "minor", "severity": 1},
     "urgent", ["injury", "repeat_calls_365d", "escalation"]),
    ({"prior_365d": 1, "max_prior_severity": 2, "injury_level": "minor", "severity": 1},
     "standard", ["injury", "repeat_calls_365d"]),
])
def test_triage_rule(change, priority, flags):
    result = triage({**BASE, **change})
    assert result["priority"] == priority
    assert result["flags"] == flags
    assert result["prior_ipv_calls_365d"] == change.get("prior_365d", 0)


def test_payload_carries_only_the_contract_fields():
    row = {**BASE, "referral_id": "r_abc", "agency_code": "WPS", "incident_id": "WPS-1",
           "call_received_at": datetime(2024, 6, 2, 2, 14, tzinfo=UTC),
           "consent_recorded_at": datetime(2024, 6, 2, 2, 40, tzinfo=UTC),
           "consent_officer_id": "W1234", "given_name": "A", "family_name": "B",
           "phone": "+15195550100", "email": None, "preferred_contact": "phone",
           "safe_contact_notes": None, "language": "en",
           # present in the row, must never leave:
           "narrative": "x", "accused_key": "k", "address_key": "a", "postal_code": "N9A 1A1",
           "birth_year": 1990, "victim_key": "v"}
    from upstream.settings import load_settings

    payload = build_payload(row, load_settings())
    assert set(payload) == {"referral_id", "agency_code", "incident_ref", "call_received_at",
                            "call_type", "contact", "triage", "consent"}
    assert set(payload["contact"]) == {"given_name", "family_name", "phone", "email",
                                       "preferred_contact", "safe_contact_notes", "language"}
    assert payload["call_received_at"] == "2024-06-01T22:14:00-04:00"  # agency local time
    assert payload["consent"] == {"recorded_at": "2024-06-01T22:40:00-04:00", "officer_id": "W1234"}
    text = repr(payload)
    for never in ("narrative", "accused", "address", "N9A 1A1", "1990"):
        assert never not in text
