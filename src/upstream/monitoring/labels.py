"""Readable names for the codes the published views carry (steps, measures, cohorts)."""

from __future__ import annotations

# Readable names for the codes 003_outcomes.sql publishes (unknown codes are shown as they are,
# with underscores as spaces).
STEP_LABELS = {
    "ipv_calls": "IPV calls",
    "non_charge": "Not charged",
    "consent_asked": "Consent asked",
    "consent_given": "Consent given",
    "referred": "Referred",
    "contact_attempted": "Contact attempted",
    "contacted": "Contacted",
    "engaged": "Engaged",
    "declined": "Declined",
    "unreachable": "Unreachable",
    "withdrawn": "Withdrawn",
    "not_referred_outside_window": "Not referred: outside the referral window",
}
MEASURE_LABELS = {
    "call_to_referral": "Call to referral",
    "referral_to_first_contact": "Referral to first contact",
}
COHORT_LABELS = {
    "baseline": "Baseline, before launch",
    "engaged": "Engaged with services",
    "referred_not_engaged": "Referred, not engaged",
    "consent_declined": "Declined consent",
    "consent_not_asked": "Not asked for consent",
    "consent_given_not_delivered": "Consent given, not delivered",
    "all": "All index calls (total)",
}
COHORT_ORDER = tuple(COHORT_LABELS)


def label(code: str | None, labels: dict[str, str]) -> str:
    text = "" if code is None else str(code)
    if text in labels:
        return labels[text]
    cleaned = text.replace("_", " ").strip()
    return cleaned[:1].upper() + cleaned[1:] if cleaned else text
