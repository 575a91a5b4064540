"""The sections of the monitoring page, each built from a `Snapshot`: charts, tables, notes.

Pure functions: no database, no request. The page template (templates/page.html) lays them out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from markupsafe import Markup

from upstream.monitoring import charts
from upstream.monitoring.data import Snapshot
from upstream.monitoring.labels import (
    COHORT_LABELS,
    COHORT_ORDER,
    MEASURE_LABELS,
    STEP_LABELS,
    label,
)
from upstream.monitoring.notes import _flag_over_base, empty_cohort_notes, is_baseline
from upstream.monitoring.tables import (
    Table,
    axis_days,
    axis_months,
    display,
    month_label,
    table,
)
from upstream.monitoring.views import (
    ALL_ZONES,
    COUNT,
    SHARE,
    VIEWS,
    has_suppressed_count,
    is_total,
)


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


def _split_totals(rows: Iterable[Mapping[str, Any]]) -> tuple[list, list]:
    """(monthly rows, rows over all months): charts and "latest month" use the months only;
    tables show the total rows after them, reading "All months"."""
    rows = list(rows)
    return [r for r in rows if not is_total(r)], [r for r in rows if is_total(r)]


def _months(rows: Iterable[Mapping[str, Any]], column: str = "month") -> list[date]:
    return sorted({r[column] for r in rows if r.get(column) is not None})


def _unavailable_notes(snapshot: Snapshot, names: Sequence[str]) -> list[str]:
    return [f"{VIEWS[n].title} ({n}) is unavailable: {snapshot.unavailable[n]}."
            for n in names if n in snapshot.unavailable]


def calls_section(s: Snapshot) -> Section:
    rows, over_all = _split_totals(s.tables.get("calls_monthly", []))
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
    sec.tables.append(table("calls_monthly",
                            totals + [r for r in over_all if r.get("patrol_zone") == ALL_ZONES],
                            "Calls and consent to referral, agency total (last row: all months)",
                            hide=("agency_code", "patrol_zone")))
    if zones:
        sec.more.append(table("calls_monthly",
                              zones + [r for r in over_all if r.get("patrol_zone") != ALL_ZONES],
                              "By patrol zone"))
    daily = s.tables.get("calls_daily", [])
    if daily:
        sec.more.append(table("calls_daily", daily, "Per day"))
    sec.notes = _unavailable_notes(s, ["calls_monthly", "calls_daily"])
    return sec


def funnel_section(s: Snapshot) -> Section:
    monthly, over_all = _split_totals(s.tables.get("referral_funnel", []))
    rows = sorted(monthly, key=lambda r: (r["month"], r.get("step_order") or 0)) + sorted(
        over_all, key=lambda r: r.get("step_order") or 0)
    months = _months(monthly)
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
    funnel_table = table("referral_funnel", rows,
                         "Every month in the period, then all months together",
                         hide=("agency_code", "step_order"))
    sec.tables.append(funnel_table)
    sec.notes = _unavailable_notes(s, ["referral_funnel"]) + _flag_over_base(funnel_table, rows)
    return sec


def timeliness_section(s: Snapshot) -> Section:
    rows, over_all = _split_totals(s.tables.get("timeliness", []))
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
    rows += sorted(over_all, key=lambda r: str(r.get("measure") or ""))
    sec.tables.append(table("timeliness", rows, "Per month and measure, then all months "
                            "(the median and percentiles of every referral, not of the months)"))
    sec.notes = _unavailable_notes(s, ["timeliness"])
    return sec


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
    monthly, over_all = _split_totals(s.tables.get("contact_service_level", []))
    rows = sorted(monthly, key=lambda r: r["month"])
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
    sec.tables.append(table("contact_service_level", rows + over_all,
                            "Per month of the call, then all months"))
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
    totals = [r for r in s.tables.get("calls_monthly", [])
              if r.get("patrol_zone") == ALL_ZONES and not is_total(r)]
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
