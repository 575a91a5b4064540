"""The monitoring page as HTML: charts (inline SVG) with the exact numbers in tables.

Pure functions of a `Snapshot`: no database, no Airflow, no request. The page has no script
at all; it is served with a Content-Security-Policy that forbids scripts (see app.py).

Escaping: the template is Jinja with autoescape on, so every value from the database is
escaped on output, in text and in attributes (`xmlattr`). The SVG charts are built in
charts.py, which escapes every label itself; they are the only Markup the template receives.

Every number in a table sits in a cell that says what it is, for people using screen readers
and for tests:
``<td data-table="calls_monthly" data-agency="WPS" data-month="2024-05" data-zone="(all)"
data-col="calls" data-value="57">57</td>``; a suppressed count reads "<5" with
``data-value=""`` and ``data-suppressed="true"``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from jinja2 import DictLoader, Environment, StrictUndefined, select_autoescape
from markupsafe import Markup

from upstream.monitoring import charts
from upstream.monitoring.data import Snapshot
from upstream.monitoring.views import (
    ALL_ZONES,
    COHORT_LABELS,
    COHORT_ORDER,
    COUNT,
    DAY,
    HOURS,
    KEY_ATTRIBUTES,
    MEASURE_LABELS,
    MONTH,
    SHARE,
    STEP_LABELS,
    SUPPRESSED_COUNT,
    SUPPRESSED_VALUE,
    TEXT,
    VIEWS,
    Filters,
    has_suppressed_count,
    label,
    month_key,
    null_text,
)

MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
LONG_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
               "September", "October", "November", "December")
BASELINE = re.compile(r"baseline|pre[-_ ]?program|before", re.IGNORECASE)


# ----------------------------------------------------------------------------- formatting

def display(kind: str, value: Any, row_has_suppressed_count: bool = True) -> str:
    """How a value reads on the page. NULL is never shown as 0 (see views.null_text)."""
    if value is None:
        return null_text(kind, row_has_suppressed_count)
    if kind == COUNT:
        return f"{int(value):,}"
    if kind == SHARE:
        return f"{float(value) * 100:.1f}%"
    if kind == HOURS:
        return f"{float(value):,.1f}"
    if kind == MONTH and isinstance(value, date):
        return month_key(value)
    if kind == DAY and isinstance(value, date):
        return value.isoformat()
    return str(value)


def raw(kind: str, value: Any) -> str:
    """The machine-readable value (data-value / data-<key>)."""
    if value is None:
        return ""
    if kind == MONTH and isinstance(value, date):
        return month_key(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def month_label(d: date) -> str:
    return f"{LONG_MONTHS[d.month - 1]} {d.year}"


def axis_months(months: Sequence[date]) -> list[tuple[str, str]]:
    out = []
    for i, m in enumerate(months):
        out.append((MONTH_NAMES[m.month - 1], str(m.year) if i == 0 or m.month == 1 else ""))
    return out


def axis_days(days: Sequence[date]) -> list[tuple[str, str]]:
    out = []
    for i, d in enumerate(days):
        new_month = i == 0 or d.day == 1 or days[i - 1].month != d.month
        out.append((str(d.day), f"{MONTH_NAMES[d.month - 1]} {d.year}" if new_month else ""))
    return out


# ----------------------------------------------------------------------------- tables

@dataclass
class Cell:
    text: str
    attrs: dict[str, str] = field(default_factory=dict)
    header: bool = False


@dataclass
class Table:
    view: str
    caption: str
    headers: list[str]
    rows: list[list[Cell]]
    csv_name: str = ""

    def __len__(self) -> int:
        return len(self.rows)


def table(view_name: str, rows: Iterable[Mapping[str, Any]], caption: str,
          hide: Sequence[str] = ("agency_code",)) -> Table:
    view = VIEWS[view_name]
    shown = [c for c in view.columns if c.name not in hide]
    out: list[list[Cell]] = []
    for row in rows:
        suppressed = has_suppressed_count(view, row)
        keys = {"table": view.name, "agency": raw(TEXT, row.get("agency_code"))}
        for k in view.keys:
            keys[KEY_ATTRIBUTES[k]] = raw(view.column(k).kind, row.get(k))
        cells = []
        for c in shown:
            value = row.get(c.name)
            if c.name in view.keys:
                cells.append(Cell(display(c.kind, value), {"scope": "row"}, header=True))
                continue
            attrs = {f"data-{k}": v for k, v in keys.items()}
            attrs["data-col"] = c.name
            attrs["data-value"] = raw(c.kind, value)
            classes = ["num"] if c.kind not in (TEXT,) else []
            text = display(c.kind, value, suppressed)
            if value is None and c.kind not in (TEXT, MONTH, DAY):
                attrs["data-suppressed"] = "true"
                attrs["title"] = {
                    SUPPRESSED_COUNT: "suppressed: a count from 1 to 4 (or withheld with one)",
                    SUPPRESSED_VALUE: "suppressed: it rests on a suppressed count",
                }.get(text, "not published: does not apply, or its base was suppressed")
                classes.append("suppressed")
            if classes:
                attrs["class"] = " ".join(classes)
            cells.append(Cell(text, attrs))
        out.append(cells)
    return Table(view.name, caption, [c.label for c in shown], out, f"{view.name}.csv")


# ----------------------------------------------------------------------------- sections

@dataclass
class Section:
    id: str
    title: str
    lead: str = ""
    charts: list[tuple[str, Markup]] = field(default_factory=list)  # (caption, svg)
    tables: list[Table] = field(default_factory=list)
    more: list[Table] = field(default_factory=list)  # shown folded (<details>)
    notes: list[str] = field(default_factory=list)
    csv: list[str] = field(default_factory=list)  # view names


def _months(rows: Iterable[Mapping[str, Any]], column: str = "month") -> list[date]:
    return sorted({r[column] for r in rows if r.get(column) is not None})


def _unavailable_notes(snapshot: Snapshot, names: Sequence[str]) -> list[str]:
    return [f"{VIEWS[n].title} ({n}) is unavailable: {snapshot.unavailable[n]}."
            for n in names if n in snapshot.unavailable]


def calls_section(s: Snapshot) -> Section:
    rows = s.tables.get("calls_monthly", [])
    totals = sorted((r for r in rows if r.get("patrol_zone") == ALL_ZONES),
                    key=lambda r: r["month"])
    zones = [r for r in rows if r.get("patrol_zone") != ALL_ZONES]
    months = [r["month"] for r in totals]
    title = "Calls per month: charged and not charged"
    chart = charts.stacked_bars(
        "chart-calls", title, axis_months(months),
        [charts.Series("Charged", charts.BLUE, [r["cleared_by_charge"] for r in totals]),
         charts.Series("Not charged", charts.ORANGE, [r["non_charge"] for r in totals])],
        totals=[r["calls"] for r in totals], y_label="calls")
    sec = Section("calls", "Calls per month",
                  "Intimate-partner-violence calls attended, split by whether a charge was laid. "
                  "The number above each bar is the month's total.",
                  charts=[(title, chart)], csv=["calls_monthly", "calls_daily"])
    sec.tables.append(table("calls_monthly", totals, "Calls and consent to referral, agency total",
                            hide=("agency_code", "patrol_zone")))
    if zones:
        sec.more.append(table("calls_monthly", zones, "By patrol zone"))
    daily = s.tables.get("calls_daily", [])
    if daily:
        sec.more.append(table("calls_daily", daily, "Per day"))
    sec.notes = _unavailable_notes(s, ["calls_monthly", "calls_daily"])
    return sec


def funnel_section(s: Snapshot) -> Section:
    rows = sorted(s.tables.get("referral_funnel", []),
                  key=lambda r: (r["month"], r.get("step_order") or 0))
    months = _months(rows)
    sec = Section("funnel", "Referral funnel",
                  "From the call to a family-services contact: how many reached each step. "
                  "Each rate is relative to the step it follows from (referred ÷ consent "
                  "given; engaged and declined ÷ contacted; unreachable and withdrawn ÷ "
                  "referred).", csv=["referral_funnel"])
    if months:
        latest = months[-1]
        steps = [charts.FunnelStep(label(r.get("step"), STEP_LABELS), r.get("count"),
                                   r.get("rate"))
                 for r in rows if r["month"] == latest]
        title = f"Referral funnel, {month_label(latest)}"
        sec.charts.append((title, charts.funnel("chart-funnel", title, steps)))
        sec.lead += f" The chart shows the latest month in the period ({month_label(latest)})."
    else:
        sec.charts.append(("", charts.empty_chart("chart-funnel", "Referral funnel")))
    funnel_table = table("referral_funnel", rows, "Every month in the period",
                         hide=("agency_code", "step_order"))
    sec.tables.append(funnel_table)
    sec.notes = _unavailable_notes(s, ["referral_funnel"]) + _flag_over_base(funnel_table, rows)
    return sec


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
        notes.append(f"* {label(step, STEP_LABELS)}, {month_label(row['month'])}: "
                     f"{display(SHARE, rate)} of {base.lower()}, because {reason}.")
    return notes


def timeliness_section(s: Snapshot) -> Section:
    rows = s.tables.get("timeliness", [])
    by_measure: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for r in rows:
        by_measure[str(r.get("measure") or "")].append(r)
    sec = Section("timeliness", "Time to first contact",
                  "How long people waited, per month: the median and the 90th percentile in "
                  "hours, and the share reached within 24 hours and within 7 days.",
                  csv=["timeliness"])
    for i, (measure, mrows) in enumerate(sorted(by_measure.items())):
        mrows = sorted(mrows, key=lambda r: r["month"])
        labels = axis_months([r["month"] for r in mrows])
        name = label(measure, MEASURE_LABELS)
        title = f"{name}: hours (median and 90th percentile)"
        sec.charts.append((title, charts.line_chart(
            f"chart-time-hours-{i}", title, labels,
            [charts.Series("Median", charts.BLUE, [r.get("median_hours") for r in mrows]),
             charts.Series("90th percentile", charts.VERMILLION,
                           [r.get("p90_hours") for r in mrows], dashed=True)],
            value_label=lambda v: f"{v:,.0f} h")))
        title = f"{name}: share reached in time"
        sec.charts.append((title, charts.line_chart(
            f"chart-time-share-{i}", title, labels,
            [charts.Series("Within 24 hours", charts.GREEN,
                           [r.get("share_within_24h") for r in mrows]),
             charts.Series("Within 7 days", charts.SKY, [r.get("share_within_7d") for r in mrows],
                           dashed=True)],
            value_label=lambda v: f"{v * 100:.0f}%", y_max=1.0)))
    if not by_measure:
        sec.charts.append(("", charts.empty_chart("chart-time", "Time to first contact")))
    rows = sorted(rows, key=lambda r: (str(r.get("measure") or ""), r["month"]))
    sec.tables.append(table("timeliness", rows, "Per month and measure"))
    sec.notes = _unavailable_notes(s, ["timeliness"])
    return sec


def is_baseline(cohort: str) -> bool:
    return bool(BASELINE.search(cohort))


def cohort_sort_key(row: Mapping[str, Any]) -> tuple:
    cohort = str(row.get("cohort") or "")
    known = COHORT_ORDER.index(cohort) if cohort in COHORT_ORDER else len(COHORT_ORDER)
    return (row.get("window_days") or 0, not is_baseline(cohort), known, cohort)


def repeat_section(s: Snapshot) -> Section:
    rows = s.tables.get("repeat_contact", [])
    by_window: dict[int, list[Mapping[str, Any]]] = defaultdict(list)
    for r in rows:
        by_window[int(r.get("window_days") or 0)].append(r)
    sec = Section("repeat", "Repeat contact by cohort",
                  "Of the calls that ended without a charge (index calls), the share followed "
                  "by another police call about the same person within the window, per cohort, "
                  "with its 95% confidence interval. The baseline cohort (calls before the "
                  "program started) is the dashed reference line; n is the number of index "
                  "calls a rate rests on. A call counts only once its whole window has passed, "
                  "and cohorts are not filtered by the period. The standardised rate is what "
                  "the cohort's rate would be with the baseline's mix of prior-call history "
                  "(0, 1, 2 or more calls in the year before), so that cohorts with more "
                  "prior calls are compared fairly.", csv=["repeat_contact"])
    for window, wrows in sorted(by_window.items()):
        wrows = sorted(wrows, key=cohort_sort_key)
        items = [charts.Interval(label(r.get("cohort"), COHORT_LABELS), r.get("repeat_rate"),
                                 r.get("ci_low"), r.get("ci_high"), r.get("index_calls"),
                                 baseline=is_baseline(str(r.get("cohort") or "")),
                                 missing=display(SHARE, None,
                                                 has_suppressed_count(VIEWS["repeat_contact"], r)))
                 for r in wrows]
        title = f"Repeat call within {window} days"
        sec.charts.append((title, charts.intervals(f"chart-repeat-{window}", title, items)))
    if not by_window:
        sec.charts.append(("", charts.empty_chart("chart-repeat", "Repeat contact by cohort")))
    ordered = sorted(rows, key=cohort_sort_key)
    sec.tables.append(table("repeat_contact", ordered, "Per cohort and window"))
    sec.notes = _unavailable_notes(s, ["repeat_contact"]) + empty_cohort_notes(rows, s.build)
    return sec


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


# Cohort colours of the survival chart (Okabe-Ito; the baseline grey and dashed).
COHORT_COLOURS = {
    "baseline": charts.GREY,
    "engaged": charts.BLUE,
    "referred_not_engaged": charts.ORANGE,
    "consent_declined": charts.VERMILLION,
    "consent_not_asked": charts.PURPLE,
    "consent_given_not_delivered": charts.SKY,
    "all": charts.GREEN,
}


def survival_curves(rows: Iterable[Mapping[str, Any]]) -> list[charts.Curve]:
    """One curve per cohort from repeat_survival rows (published or release)."""
    by_cohort: dict[str, list[tuple]] = defaultdict(list)
    for r in rows:
        by_cohort[str(r.get("cohort") or "")].append(
            (int(r["day"]), r.get("survival"), r.get("ci_low"), r.get("ci_high")))
    order = [c for c in (*COHORT_ORDER, "all") if c in by_cohort] + sorted(
        c for c in by_cohort if c not in COHORT_ORDER and c != "all")
    return [charts.Curve(label(c, COHORT_LABELS), COHORT_COLOURS.get(c, charts.INK),
                         by_cohort[c], dashed=is_baseline(c)) for c in order]


def survival_section(s: Snapshot) -> Section:
    rows = sorted(s.tables.get("repeat_survival", []),
                  key=lambda r: (cohort_sort_key(r), r.get("day") or 0))
    sec = Section("survival", "Time to repeat contact",
                  "Kaplan-Meier estimate of the share of index calls (calls that ended without "
                  "a charge) not yet followed by another police call about the same person, by "
                  "day since the call, with its 95% confidence band. Every index call counts: "
                  "calls still being followed are censored at the reference date (and at 365 "
                  "days), so the program's first months are not left out as they are from the "
                  "fixed windows. The log-rank test compares each cohort's curve with the "
                  "baseline (calls before the program).",
                  csv=["repeat_survival", "repeat_logrank"])
    title = "Share without a repeat call, by cohort"
    main = [c for c in survival_curves(rows) if c.name != COHORT_LABELS["all"]]
    sec.charts.append((title, charts.survival_chart("chart-survival", title, main)))
    sec.tables.append(table("repeat_logrank", sorted(s.tables.get("repeat_logrank", []),
                                                     key=cohort_sort_key),
                            "Log-rank test of each cohort against the baseline (days 0-365)"))
    sec.more.append(table("repeat_survival", rows, "Estimate and number at risk by day"))
    sec.notes = _unavailable_notes(s, ["repeat_survival", "repeat_logrank"])
    return sec


def service_section(s: Snapshot) -> Section:
    rows = sorted(s.tables.get("contact_service_level", []), key=lambda r: r["month"])
    sec = Section("service", "First contact against service levels",
                  "Of the referrals delivered to the outreach organisation, the share with a "
                  "first contact within 24 hours, 48 hours and 7 days of delivery (situation "
                  "tables aim at 24 to 48 hours), and how many had no contact 48 hours after "
                  "delivery. Unlike the timeliness medians, the base is every referral, reached "
                  "or not.", csv=["contact_service_level"])
    title = "Share of referrals contacted in time"
    sec.charts.append((title, charts.line_chart(
        "chart-service", title, axis_months([r["month"] for r in rows]),
        [charts.Series("Within 24 h", charts.GREEN, [r.get("share_24h") for r in rows]),
         charts.Series("Within 48 h", charts.BLUE, [r.get("share_48h") for r in rows]),
         charts.Series("Within 7 days", charts.SKY, [r.get("share_7d") for r in rows],
                       dashed=True)],
        value_label=lambda v: f"{v * 100:.0f}%", y_max=1.0)))
    sec.tables.append(table("contact_service_level", rows, "Per month of the call"))
    sec.notes = _unavailable_notes(s, ["contact_service_level"])
    return sec


def quality_section(s: Snapshot) -> Section:
    rows = sorted(s.tables.get("data_quality_daily", []), key=lambda r: r["extract_date"])
    days = [r["extract_date"] for r in rows]

    def accepted(r: Mapping[str, Any]) -> int | None:
        got, refused = r.get("files_received"), r.get("files_refused")
        return None if got is None or refused is None else max(0, got - refused)

    sec = Section("quality", "Data quality",
                  "What arrived from the agency each night: files received and refused, and "
                  "rows held back (quarantined) because they failed a validation rule. "
                  "Quarantined rows are left out of every figure above until corrected.",
                  csv=["data_quality_daily", "agency_quality_latest", "quarantine_by_rule"])
    sec.charts.append(("Files received per extract day", charts.stacked_bars(
        "chart-files", "Files received per extract day", axis_days(days),
        [charts.Series("Accepted", charts.GREEN, [accepted(r) for r in rows]),
         charts.Series("Refused", charts.VERMILLION, [r.get("files_refused") for r in rows])],
        y_label="files", height=220)))
    sec.charts.append(("Rows quarantined per extract day", charts.stacked_bars(
        "chart-quarantine", "Rows quarantined per extract day", axis_days(days),
        [charts.Series("Rows quarantined", charts.PURPLE,
                       [r.get("rows_quarantined") for r in rows])],
        y_label="rows", height=220)))
    sec.tables.append(table("data_quality_daily", rows, "Per extract day"))
    # A province of agencies: who delivered last night, who was refused, who is behind
    # (the grid in Airflow shows the same per agency task group, run by run).
    province = s.tables.get("agency_quality_latest", [])
    if province:
        sec.tables.insert(0, table("agency_quality_latest", province,
                                   "Every agency at a glance (latest extract day)", hide=()))
    rules = s.tables.get("quarantine_by_rule", [])
    if rules:
        sec.more.append(table("quarantine_by_rule", rules, "Quarantined rows by rule"))
    sec.notes = _unavailable_notes(s, ["data_quality_daily", "agency_quality_latest",
                                       "quarantine_by_rule"])
    return sec


def headline(s: Snapshot) -> tuple[str, list[tuple[str, str, str]]]:
    """The latest month's agency totals: (month label, [(label, text, column)])."""
    totals = [r for r in s.tables.get("calls_monthly", []) if r.get("patrol_zone") == ALL_ZONES]
    if not totals:
        return "", []
    latest = max(totals, key=lambda r: r["month"])
    items = [("Calls", "calls"), ("Charged", "cleared_by_charge"),
             ("Not charged", "non_charge"), ("Consented to a referral", "consent_given")]
    return month_label(latest["month"]), [(label, display(COUNT, latest.get(col)), col)
                                          for label, col in items]


CAVEATS = (
    "Counts from 1 to 4 are suppressed to protect the people involved: they read “<5”, never "
    "0, and a rate or time that rests on one reads “suppressed”. A few larger counts are "
    "withheld with them, so that a small count cannot be worked out from a total; they read "
    "“<5” too. Totals may therefore not add up, and figures are never combined across "
    "agencies. “–” means the figure does not apply (for example no earlier step).",
    "Cohorts are self-selected: people who accept a referral differ from those who decline or "
    "cannot be asked. A lower repeat rate than the baseline is not proof that the program "
    "works, and a wide confidence interval (small n) means little either way.",
    "More reporting can look like failure: when victims trust the program more, they call "
    "again sooner, and more calls and repeat calls get recorded. A rise is not necessarily "
    "more violence.",
    "Time to first contact counts only the people who were reached: the median, the 90th "
    "percentile and the shares within 24 hours / 7 days are of those contacted (n), so a "
    "month in which fewer people were reached can look faster. Months are months of the call.",
    "Rows that failed validation are quarantined and left out until the agency corrects them, "
    "so recent months can still change.",
)


# ----------------------------------------------------------------------------- page

PAGE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>Program monitoring{% if agency %} · {{ agency }}{% endif %}</title>
<style>
:root { color-scheme: light; --ink:#1a1a1a; --muted:#595959; --line:#d9d9d9; --accent:#0072B2; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
       color:var(--ink); background:#f4f5f7; }
header.page { background:#14263d; color:#fff; padding:18px 28px 14px; }
header.page h1 { margin:0; font-size:24px; font-weight:650; }
header.page p { margin:4px 0 0; color:#d6dde8; }
main { max-width:1180px; margin:0 auto; padding:18px 20px 40px; }
form.filters { display:flex; flex-wrap:wrap; gap:14px; align-items:flex-end; background:#fff;
  border:1px solid var(--line); border-radius:8px; padding:12px 16px; }
form.filters label { display:flex; flex-direction:column; font-size:13px; color:var(--muted); }
form.filters select, form.filters input { font:inherit; padding:5px 8px; min-width:150px;
  border:1px solid #9aa3ad; border-radius:5px; background:#fff; color:var(--ink); }
form.filters button { font:inherit; padding:6px 16px; border-radius:5px; border:0;
  background:var(--accent); color:#fff; cursor:pointer; }
form.filters a { align-self:center; }
nav.toc { margin:12px 2px; font-size:14px; }
nav.toc a { margin-right:14px; }
.error { background:#fde8e4; border:1px solid #d55e00; padding:10px 14px; border-radius:6px; }
.headline { display:grid; grid-template-columns:repeat(auto-fit,minmax(170px,1fr)); gap:12px;
  margin:14px 0; }
h2.latest { font-size:16px; margin:16px 0 0; }
.tile { background:#fff; border:1px solid var(--line); border-radius:8px; padding:10px 14px; }
.tile .v { font-size:28px; font-weight:700; }
.tile .l { color:var(--muted); font-size:13px; }
section.card { background:#fff; border:1px solid var(--line); border-radius:8px;
  padding:16px 20px; margin:16px 0; }
section.card h2 { margin:0 0 4px; font-size:20px; }
p.lead { margin:0 0 10px; color:var(--muted); max-width:900px; }
figure { margin:10px 0 14px; } figcaption { font-weight:600; margin-bottom:2px; }
svg.chart { display:block; max-width:900px; }
.tablewrap { overflow-x:auto; }
table { border-collapse:collapse; margin:6px 0 10px; font-size:13.5px; }
caption { text-align:left; font-weight:600; padding:4px 0; }
th, td { border-bottom:1px solid #e6e6e6; padding:4px 8px; text-align:left; white-space:nowrap; }
thead th { border-bottom:2px solid #9aa3ad; font-size:13px; color:var(--muted); }
td.num { text-align:right; font-variant-numeric:tabular-nums; }
td.suppressed { color:var(--muted); font-style:italic; }
details { margin:6px 0; } summary { cursor:pointer; color:var(--accent); }
.note { color:#8a4b00; }
.csv { font-size:14px; }
.caveats li { margin:4px 0; max-width:950px; }
footer { color:var(--muted); font-size:13px; margin-top:20px; }
@media print { body { background:#fff; } form.filters, nav.toc, .csv { display:none; }
  section.card { break-inside:avoid; border:0; } }
</style>
</head>
<body>
<header class="page">
<h1>Program monitoring</h1>
<p>Intimate-partner-violence early intervention · police and family services{% if agency %} ·
agency <strong>{{ agency }}</strong>{% endif %} · {{ period }}</p>
</header>
<main>
<form class="filters" method="get" action="{{ base }}/">
<label>Agency
<select name="agency">
{% for a in agencies %}<option value="{{ a }}"{% if a == agency %} selected{% endif %}>{{ a }}</option>
{% endfor %}{% if agency and agency not in agencies %}<option value="{{ agency }}" selected>{{ agency }}</option>{% endif %}
</select></label>
<label>From month <input type="month" name="from" value="{{ month_from }}" placeholder="2024-01"></label>
<label>To month <input type="month" name="to" value="{{ month_to }}" placeholder="2024-12"></label>
<button type="submit">Show</button>
<a href="{{ base }}/">Reset</a>
</form>
{% if error %}<p class="error" role="alert">{{ error }}</p>{% endif %}
{% if not error %}
<nav class="toc" aria-label="Sections">{% for sec in sections %}<a href="#{{ sec.id }}">{{ sec.title }}</a>{% endfor %}<a href="#caveats">Caveats</a></nav>
{% if headline_items %}
<h2 class="latest">Latest month: {{ headline_month }}</h2>
<div class="headline">
{% for label, text, col in headline_items %}<div class="tile"><div class="v" data-headline="{{ col }}">{{ text }}</div><div class="l">{{ label }}</div></div>
{% endfor %}</div>
{% endif %}
{% for sec in sections %}
<section class="card" id="{{ sec.id }}" aria-labelledby="{{ sec.id }}-h">
<h2 id="{{ sec.id }}-h">{{ sec.title }}</h2>
<p class="lead">{{ sec.lead }}</p>
{% for note in sec.notes %}<p class="note">{{ note }}</p>{% endfor %}
{% for caption, chart in sec.charts %}<figure>{% if caption %}<figcaption>{{ caption }}</figcaption>{% endif %}{{ chart }}</figure>{% endfor %}
{% for t in sec.tables %}{{ render_table(t) }}{% endfor %}
{% for t in sec.more %}<details{% if t|length <= 12 %} open{% endif %}><summary>{{ t.caption }} ({{ t|length }} rows)</summary>{{ render_table(t) }}</details>{% endfor %}
<p class="csv">Download CSV:
{% for name in sec.csv %}<a href="{{ base }}/csv/{{ name }}.csv?{{ csv_query }}" download>{{ name }}.csv</a>{% if not loop.last %} · {% endif %}{% endfor %}</p>
</section>
{% endfor %}
<section class="card" id="board" aria-labelledby="board-h">
<h2 id="board-h">Quarterly board report</h2>
<p class="lead">Built only from the public release tier (schema <code>release</code>): counts
randomly rounded to a multiple of 5, counts below the release minimum withheld, rates only on
large enough bases. Safe to pass on outside the data team.</p>
<p class="csv">Download: <a href="{{ base }}/report/board.html?{{ report_query }}" data-report="html">board report (HTML)</a> ·
<a href="{{ base }}/report/board.pdf?{{ report_query }}" data-report="pdf" download>board report (PDF)</a></p>
</section>
<section class="card caveats" id="caveats" aria-labelledby="caveats-h">
<h2 id="caveats-h">Read these numbers with care</h2>
<ul>{% for c in caveats %}<li>{{ c }}</li>{% endfor %}</ul>
</section>
{% endif %}
<footer>Figures from the warehouse's published views (aggregates only), read-only.
Generated {{ generated_at }}.</footer>
</main>
</body>
</html>
"""

TABLE = r"""{% macro render_table(t) -%}
<div class="tablewrap"><table data-table="{{ t.view }}">
<caption>{{ t.caption }}</caption>
<thead><tr>{% for h in t.headers %}<th scope="col">{{ h }}</th>{% endfor %}</tr></thead>
<tbody>
{% for row in t.rows %}<tr>{% for c in row %}{% if c.header %}<th{{ c.attrs|xmlattr }}>{{ c.text }}</th>{% else %}<td{{ c.attrs|xmlattr }}>{{ c.text }}</td>{% endif %}{% endfor %}</tr>
{% else %}<tr><td colspan="{{ t.headers|length }}">No figures for this selection.</td></tr>
{% endfor %}</tbody>
</table></div>
{%- endmacro %}"""

_env = Environment(
    loader=DictLoader({"page.html": "{% from 'table.html' import render_table %}" + PAGE,
                       "table.html": TABLE}),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=False,
)


def period_text(filters: Filters) -> str:
    if filters.month_from and filters.month_to:
        if filters.month_from == filters.month_to:
            return month_label(filters.month_from)
        return f"{month_label(filters.month_from)} to {month_label(filters.month_to)}"
    if filters.month_from:
        return f"from {month_label(filters.month_from)}"
    if filters.month_to:
        return f"up to {month_label(filters.month_to)}"
    return "all months published"


def render_page(snapshot: Snapshot, *, base: str = "", generated_at: str = "",
                error: str | None = None) -> str:
    f = snapshot.filters
    sections = [] if error else [calls_section(snapshot), funnel_section(snapshot),
                                 timeliness_section(snapshot), service_section(snapshot),
                                 repeat_section(snapshot), survival_section(snapshot),
                                 quality_section(snapshot)]
    headline_month, headline_items = ("", []) if error else headline(snapshot)
    return _env.get_template("page.html").render(
        base=base,
        agency=f.agency or "",
        agencies=snapshot.agencies,
        period=period_text(f),
        month_from=month_key(f.month_from) if f.month_from else "",
        month_to=month_key(f.month_to) if f.month_to else "",
        csv_query=f.query(),
        report_query=f.query(**{"from": None, "to": None}),
        sections=sections,
        headline_month=headline_month,
        headline_items=headline_items,
        caveats=CAVEATS,
        generated_at=generated_at,
        error=error,
    )
