"""Calibration of the synthetic calls: value mixes, rates, names and free text.

The numbers are Windsor 2024 program figures (tests/unit/test_generate.py checks the bounds);
every enum value drawn here is one of upstream.contract.ENUMS (checked by a test too).
"""

from __future__ import annotations

import random
from typing import Any

# Calibration (Windsor 2024 program figures; tests/unit/test_generate.py for the bounds checked).
CHARGE_RATE_BY_TYPE = {  # call-type mix below times these rates gives ~55% cleared by charge
    "ipv_assault": 0.75,
    "ipv_sexual_assault": 0.60,
    "ipv_threats": 0.55,
    "ipv_criminal_harassment": 0.50,
    "ipv_breach_of_order": 0.80,
    "ipv_dispute_verbal": 0.20,
    "ipv_other": 0.35,
}
CHRONIC_SHARE = 0.31  # share of calls from the recurring-household pool -> ~25-30% repeat victims
CHRONIC_CALLS_PER_YEAR = 6.0  # per recurring household; almost all have a prior call within a year
HOUSEHOLD_EPOCH_DAYS = 730  # households rotate out of the recurring pool (staggered)
CORRECTION_SHARE = 0.03
CORRECTION_MAX_LAG = 10
BAD_FILE_PERIOD = 10  # every 10th day (per agency offset) is a broken delivery when bad_files


def _table(*pairs: tuple[Any, float]) -> tuple[tuple[Any, ...], list[float]]:
    """(values, cumulative weights) for rng.choices."""
    values = tuple(v for v, _ in pairs)
    cum: list[float] = []
    total = 0.0
    for _, w in pairs:
        total += w
        cum.append(total)
    return values, cum


def pick(rng: random.Random, table: tuple[tuple[Any, ...], list[float]]) -> Any:
    return rng.choices(table[0], cum_weights=table[1])[0]


CALL_SOURCE = _table(
    ("911", 0.55), ("non_emergency", 0.20), ("officer_initiated", 0.05),
    ("third_party", 0.15), ("online", 0.05),
)  # fmt: skip
CALL_TYPE = _table(
    ("ipv_assault", 0.35), ("ipv_sexual_assault", 0.03), ("ipv_threats", 0.15),
    ("ipv_criminal_harassment", 0.07), ("ipv_breach_of_order", 0.10),
    ("ipv_dispute_verbal", 0.25), ("ipv_other", 0.05),
)  # fmt: skip
RELATIONSHIP = _table(
    ("current_spouse", 0.20), ("former_spouse", 0.08), ("current_common_law", 0.20),
    ("former_common_law", 0.12), ("current_dating", 0.18), ("former_dating", 0.17),
    ("other_intimate", 0.05),
)  # fmt: skip
WEAPON_PHYSICAL = _table(
    ("physical_force", 0.65), ("none", 0.12), ("knife", 0.06), ("other_weapon", 0.08),
    ("firearm", 0.01), ("unknown", 0.08),
)  # fmt: skip
WEAPON_OTHER = _table(
    ("none", 0.75), ("physical_force", 0.10), ("knife", 0.03), ("other_weapon", 0.04),
    ("firearm", 0.01), ("unknown", 0.07),
)  # fmt: skip
# "death" is a valid enum value but never generated: a homicide is not demo material.
INJURY_PHYSICAL = _table(("none", 0.45), ("minor", 0.45), ("major", 0.10))
INJURY_OTHER = _table(("none", 0.90), ("minor", 0.09), ("major", 0.01))
NON_CHARGE_CLEARANCE = _table(
    ("cleared_otherwise_complainant_request", 0.30),
    ("cleared_otherwise_departmental_discretion", 0.25),
    ("cleared_otherwise_beyond_control", 0.05), ("cleared_otherwise_other", 0.10),
    ("not_cleared", 0.15), ("no_offence", 0.15),
)  # fmt: skip
NON_CHARGE_CONSENT = _table(
    ("given", 0.33), ("declined", 0.27), ("not_asked", 0.22), ("unable_to_ask", 0.18),
)  # fmt: skip
CHARGES = _table((1, 0.50), (2, 0.30), (3, 0.15), (4, 0.05))

# Name cultures: (given names, family names, ISO 639-1 language, weight). Several scripts on
# purpose: the pipeline must carry UTF-8 untouched.
CULTURES: tuple[tuple[tuple[str, ...], tuple[str, ...], str, float], ...] = (
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
CULTURE_TABLE = _table(*((c, c[3]) for c in CULTURES))
EMAIL_DOMAINS = ("example.com", "example.ca", "example.net", "example.org")
# Windsor forward sortation areas; local delivery units skip the letters Canada Post never uses.
FSAS = ("N8N", "N8P", "N8R", "N8S", "N8T", "N8W", "N8X", "N8Y", "N9A", "N9B", "N9C", "N9E",
         "N9G", "N9H", "N9J", "N9K")  # fmt: skip
LDU_LETTERS = "ABCEGHJKLMNPRSTVWXYZ"
SAFE_NOTES = (
    "weekday mornings only, no voicemail",
    'say you are calling from "the clinic"',
    "text first; call only if she replies",
    "call after 6pm,\npartner works days",
    "shared phone - do not leave messages",
    'use the work number, ask for "Sam"',
)
NARRATIVES = (
    "Caller reported shouting next door, neighbours concerned.",
    'Victim stated "he took my phone" and left before police arrived.',
    "Verbal dispute over custody, both parties separated for the night.",
    "Complainant reports repeated texts, calls and visits after separation,\nscreenshots provided.",
    'Accused said "it was just an argument"; victim declined statement at scene.',
    "Third party (sister) called; victim safe at her residence, children with grandparent.",
    "Breach of no-contact condition, accused located nearby, arrested without incident.",
    'Minor injuries, treated by EMS on scene.\nVictim given resource card, "VAW services".',
)


