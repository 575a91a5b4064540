"""One simulated agency: its calls day by day, recurring households, later corrections.

Every day is a pure function of (seed, agency, date), so re-generating a range writes the
same bytes for the days it shares with an earlier run.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from upstream.dev.generate.bad_rows import BAD_ROW_KINDS, break_row
from upstream.dev.generate.clock import TZ, day_bounds, local, utc
from upstream.dev.generate.files import BAD_FILE_KINDS
from upstream.dev.generate.rows import (
    build_row,
    officer,
    person_profile,
    poisson,
    preferred_contact,
)
from upstream.dev.generate.tables import (
    BAD_FILE_PERIOD,
    CHRONIC_CALLS_PER_YEAR,
    CHRONIC_SHARE,
    CORRECTION_MAX_LAG,
    CORRECTION_SHARE,
    HOUSEHOLD_EPOCH_DAYS,
    RELATIONSHIP,
    WEAPON_OTHER,
    pick,
)


@dataclass(frozen=True)
class _Household:
    victim_person_id: str
    accused_person_id: str | None
    address_id: str
    relationship: str


class Agency:
    """One agency's calls, day by day. Every day is a pure function of (seed, agency, date)."""

    def __init__(self, seed: int, agency_code: str, calls_per_day: float) -> None:
        self.key = f"{seed}:{agency_code}"
        self.agency = agency_code
        self.calls_per_day = calls_per_day
        self.households = max(
            1, round(CHRONIC_SHARE * 365 * calls_per_day / CHRONIC_CALLS_PER_YEAR)
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
        epoch = (d.toordinal() + slot * 37) // HOUSEHOLD_EPOCH_DAYS
        cached = self._household_cache.get((slot, epoch))
        if cached is None:
            rng = self._rng("household", slot, epoch)
            cached = _Household(
                victim_person_id=f"MNI-{rng.randrange(100_000, 1_000_000)}",
                accused_person_id=f"MNI-{rng.randrange(100_000, 1_000_000)}",
                address_id=f"ADDR-{rng.randrange(10_000, 100_000)}",
                relationship=pick(rng, RELATIONSHIP),
            )
            self._household_cache[(slot, epoch)] = cached
        return cached

    def profile(self, victim_person_id: str) -> dict[str, Any]:
        cached = self._profiles.get(victim_person_id)
        if cached is None:
            cached = person_profile(self._rng("victim", victim_person_id))
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
        start, end = day_bounds(d)
        length = (end - start).total_seconds()
        n = poisson(rng, self.calls_per_day)
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
        if rng.random() < CHRONIC_SHARE:
            hh = self.household(rng.randrange(self.households), local(call).date())
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
        row = build_row(rng, self.agency, incident_id, call, profile, changed, {})
        row.update(overrides)
        return row

    def new_address(self, rng: random.Random) -> str:
        if rng.random() < 0.05:  # a few apartment blocks keep coming back
            return f"ADDR-{self._rng('hotspot', rng.randrange(40)).randrange(1000, 10000)}"
        return f"ADDR-{rng.randrange(100_000, 1_000_000)}"

    def corrections(self, d: date) -> list[dict[str, object]]:
        """Version-2 rows of earlier incidents that changed on day d."""
        out = []
        for lag in range(CORRECTION_MAX_LAG, 0, -1):
            for row in self.base(d - timedelta(days=lag)):
                rng = self._rng("correction", row["incident_id"])
                if rng.random() >= CORRECTION_SHARE or rng.randint(1, CORRECTION_MAX_LAG) != lag:
                    continue
                out.append(self._correct(rng, row, d))
        return out

    def _correct(self, rng: random.Random, row: dict[str, object], d: date) -> dict[str, object]:
        start, _ = day_bounds(d)
        # Office hours on the day of the change; always after the call (an earlier day).
        changed = local(start + timedelta(seconds=rng.randint(8 * 3600, 20 * 3600)))
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
            call_year = utc(row["call_received_at"]).astimezone(TZ).year
            new["victim_birth_year"] = min(int(profile["victim_birth_year"]), call_year - 14)
            new["victim_preferred_contact"] = preferred_contact(
                rng, profile["victim_phone"], profile["victim_email"]
            )
            new["consent_status"] = "given"
            new["consent_recorded_at"] = changed
            new["consent_officer_id"] = officer(rng, self.agency)
        else:  # data-entry fix of a descriptive field
            column = rng.choice(("weapon", "injury_level", "children_present"))
            if column == "weapon":
                new["weapon"] = rng.choice([w for w in WEAPON_OTHER[0] if w != row["weapon"]])
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
        for old in [k for k in self._base if k < d - timedelta(days=CORRECTION_MAX_LAG)]:
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
                out.append(break_row(BAD_ROW_KINDS[counter % len(BAD_ROW_KINDS)], rng, row))
                counter += 1
            else:
                out.append(row)
        return out

    def bad_file_kind(self, d: date) -> str | None:
        offset = sum(map(ord, self.agency)) % BAD_FILE_PERIOD
        if (d.toordinal() + offset) % BAD_FILE_PERIOD:
            return None
        return BAD_FILE_KINDS[(d.toordinal() // BAD_FILE_PERIOD) % len(BAD_FILE_KINDS)]

