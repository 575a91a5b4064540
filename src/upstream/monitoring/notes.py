"""Notes the page adds where a number could mislead: a funnel rate above 100% (why it can
pass its base) and repeat-contact cohorts that read n = 0 (their window has not passed)."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from upstream.monitoring.labels import COHORT_LABELS, STEP_LABELS, label
from upstream.monitoring.tables import Table, display, month_label
from upstream.monitoring.views import SHARE

BASELINE = re.compile(r"baseline|pre[-_ ]?program|before", re.IGNORECASE)


def is_baseline(cohort: str) -> bool:
    return bool(BASELINE.search(cohort))

# Why a funnel rate can pass 100%: steps 1-4 are the calls' current truth, steps 5-11 count
# delivered referrals, which stay referred (02_referrals.sql, docs/measuring.md). No other
# step can pass its base: a contact is also an attempt, unreachable / withdrawn are kinds of
# referred (the fallback is for a step added later).
OVER_BASE_REASONS = {
    "referred": "a referral stays counted as referred once delivered, while consent given "
                "counts the calls as they are now: after delivery, some of these calls had "
                "their consent withdrawn (or corrected) or a charge laid",
    "engaged": "the outreach service reported engaged for some referrals without reporting "
               "a contact first",
    "declined": "the outreach service reported declined for some referrals without reporting "
                "a contact first",
}
OVER_BASE_FALLBACK = "this step counts cases that its base step does not"
# The step each rate is relative to (02_referrals.sql, base_step).
FUNNEL_BASE = {"non_charge": "ipv_calls", "consent_asked": "non_charge",
               "consent_given": "consent_asked", "referred": "consent_given",
               "contact_attempted": "referred", "contacted": "contact_attempted",
               "engaged": "contacted", "declined": "contacted", "unreachable": "referred",
               "withdrawn": "referred", "not_referred_outside_window": "consent_given"}


def over_base_reason(step: str | None) -> str:
    return OVER_BASE_REASONS.get(str(step or ""), OVER_BASE_FALLBACK)


def _flag_over_base(t: Table, rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """A rate above 100% never stands unexplained: its cell gets a marker, a `data-note` and a
    title, and the section a note saying why."""
    notes = []
    for row, cells in zip(rows, t.rows, strict=True):
        rate = row.get("rate")
        if rate is None or rate <= 1:
            continue
        reason = over_base_reason(row.get("step"))
        for cell in cells:
            if cell.attrs.get("data-col") == "rate":
                cell.text += " *"
                cell.attrs["data-note"] = "over-base"
                cell.attrs["title"] = f"Above 100%: {reason}."
        step = row.get("step")
        base = label(FUNNEL_BASE.get(str(step or ""), "the step before"), STEP_LABELS)
        when = "all months" if row.get("month") is None else month_label(row["month"])
        notes.append(f"* {label(step, STEP_LABELS)}, {when}: "
                     f"{display(SHARE, rate)} of {base.lower()}, because {reason}.")
    return notes


def empty_cohort_notes(rows: Iterable[Mapping[str, Any]],
                       build: Mapping[str, Any] | None) -> list[str]:
    """Why cohorts read n = 0 (published 0, not suppressed): most often their window has not
    passed yet. A call counts for a window only once the whole window has elapsed by the
    reference date, so in the program's first N days no program call counts for an N-day
    window (the survival section counts them, censored)."""
    zero: dict[int, list[str]] = defaultdict(list)
    for r in rows:
        if r.get("index_calls") == 0 and r.get("cohort") != "all":
            zero[int(r.get("window_days") or 0)].append(str(r.get("cohort") or ""))
    ref = (build or {}).get("reference_date")
    launch = (build or {}).get("program_launch_date")
    notes = []
    for window, cohorts in sorted(zero.items()):
        program = [c for c in cohorts if not is_baseline(c)]
        baseline = [c for c in cohorts if is_baseline(c)]
        if program and ref and launch and ref < launch + timedelta(days=window):
            first = launch + timedelta(days=window)
            notes.append(
                f"{window}-day window: program cohorts read n = 0 because no call since the "
                f"launch ({launch.isoformat()}) is {window} days old by the reference date "
                f"({ref.isoformat()}); they start to count once it reaches "
                f"{first.isoformat()}. "
                "Time to repeat contact (below) already follows them.")
        elif program:
            names = ", ".join(label(c, COHORT_LABELS) for c in program)
            notes.append(f"{window}-day window: n = 0 for {names}: none of their index calls "
                         "has a complete window by the reference date"
                         + (f" ({ref.isoformat()})." if ref else "."))
        if baseline:
            notes.append(f"{window}-day window: the baseline reads n = 0: no call from before "
                         "the launch with a complete window is loaded"
                         + (f" (launch {launch.isoformat()})." if launch else "."))
    return notes
