"""The published views the monitoring page reads, and the filters it applies to them.

This module is the contract between the page and `include/sql/migrations/003_outcomes.sql`:
the page reads these columns of these views in schema ``published`` and nothing else.
No database or Airflow imports here, so rendering can be tested on its own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from urllib.parse import urlencode

SCHEMA = "published"

# Column kinds: how a value is shown, and what NULL means.
TEXT = "text"  # agency, zone, step, measure, cohort, rule
MONTH = "month"  # a date that stands for a month (shown 2024-05)
DAY = "day"  # a date
COUNT = "count"  # a count of people/calls/rows: NULL means suppressed (1-4)
SHARE = "share"  # a proportion 0..1, shown as a percentage
HOURS = "hours"  # a duration in hours
INTEGER = "integer"  # a plain whole number that is not a count (window length)
NUMBER = "number"  # a statistic shown as stored (chi-square, p-value, expected events)
FLAG = "flag"  # a marker, not a figure: all_months (shown as the month cell "All months")

# A row over all months has month NULL and all_months true (013_month_totals.sql).
TOTAL_COLUMN = "all_months"
ALL_MONTHS_LABEL = "All months"
ALL_MONTHS_KEY = "all"  # its data-month attribute

# A count of 1 to 4 is published as NULL. Shown as "<5", never as 0. (003_outcomes.sql also
# withholds a few larger "complementary" cells so that a small one cannot be worked out from a
# total; they are NULL too and read the same. The caveats on the page say so.)
SUPPRESSED_COUNT = "<5"
# A rate, median or share is NULL when it rests on a suppressed count ("suppressed"), or when
# it does not apply (no base step, no cases): then it reads as a dash.
SUPPRESSED_VALUE = "suppressed"
NOT_APPLICABLE = "–"


@dataclass(frozen=True)
class Column:
    name: str
    kind: str
    label: str


@dataclass(frozen=True)
class View:
    name: str
    title: str
    columns: tuple[Column, ...]
    keys: tuple[str, ...]  # the columns that identify a row (after agency_code)
    period_column: str | None  # the month/date column the period filter applies to
    order_by: tuple[str, ...]
    all_agencies: bool = False  # every agency's row, whichever agency the page shows
    has_total: bool = False  # has rows over all months (all_months), shown whatever the period

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def qualified_name(self) -> str:
        return f"{SCHEMA}.{self.name}"


def _cols(*spec: tuple[str, str, str]) -> tuple[Column, ...]:
    return tuple(Column(*s) for s in spec)


AGENCY = ("agency_code", TEXT, "Agency")

VIEWS: dict[str, View] = {
    v.name: v
    for v in (
        View(
            "calls_monthly",
            "Calls per month",
            _cols(
                AGENCY,
                ("month", MONTH, "Month"),
                ("all_months", FLAG, "All months"),
                ("patrol_zone", TEXT, "Patrol zone"),
                ("calls", COUNT, "Calls"),
                ("cleared_by_charge", COUNT, "Charged"),
                ("non_charge", COUNT, "Not charged"),
                ("consent_given", COUNT, "Consent given"),
                ("consent_declined", COUNT, "Consent declined"),
                ("consent_not_asked", COUNT, "Consent not asked"),
                ("consent_unable_to_ask", COUNT, "Unable to ask"),
            ),
            keys=("month", "patrol_zone"),
            period_column="month",
            order_by=("agency_code", "month", "patrol_zone"),
            has_total=True,
        ),
        View(
            "calls_daily",
            "Calls per day",
            _cols(
                AGENCY,
                ("day", DAY, "Day"),
                ("calls", COUNT, "Calls"),
                ("cleared_by_charge", COUNT, "Charged"),
                ("non_charge", COUNT, "Not charged"),
                ("consent_given", COUNT, "Consent given"),
            ),
            keys=("day",),
            period_column="day",
            order_by=("agency_code", "day"),
        ),
        View(
            "referral_funnel",
            "Referral funnel",
            _cols(
                AGENCY,
                ("month", MONTH, "Month"),
                ("all_months", FLAG, "All months"),
                ("step_order", INTEGER, "Step #"),
                ("step", TEXT, "Step"),
                ("count", COUNT, "Count"),
                ("rate", SHARE, "Rate"),
            ),
            keys=("month", "step"),
            period_column="month",
            order_by=("agency_code", "month", "step_order"),
            has_total=True,
        ),
        View(
            "timeliness",
            "Time to first contact",
            _cols(
                AGENCY,
                ("month", MONTH, "Month"),
                ("all_months", FLAG, "All months"),
                ("measure", TEXT, "Measure"),
                ("n", COUNT, "n"),
                ("median_hours", HOURS, "Median (hours)"),
                ("p90_hours", HOURS, "90th percentile (hours)"),
                ("share_within_24h", SHARE, "Within 24 h"),
                ("share_within_7d", SHARE, "Within 7 days"),
            ),
            keys=("month", "measure"),
            period_column="month",
            order_by=("agency_code", "measure", "month"),
            has_total=True,
        ),
        View(
            "repeat_contact",
            "Repeat contact by cohort",
            _cols(
                AGENCY,
                ("cohort", TEXT, "Cohort"),
                ("window_days", INTEGER, "Window (days)"),
                ("index_calls", COUNT, "Index calls (n)"),
                ("with_repeat", COUNT, "Repeats"),
                ("repeat_rate", SHARE, "Repeat rate"),
                ("ci_low", SHARE, "95% CI low"),
                ("ci_high", SHARE, "95% CI high"),
                ("with_charged_repeat", COUNT, "Charged repeats"),
                ("charged_repeat_rate", SHARE, "Charged rate"),
                ("standardised_rate", SHARE, "Standardised rate"),
                ("std_ci_low", SHARE, "Std. 95% CI low"),
                ("std_ci_high", SHARE, "Std. 95% CI high"),
            ),
            keys=("cohort", "window_days"),
            period_column=None,  # cohorts, not months: the period filter does not apply
            order_by=("agency_code", "window_days", "cohort"),
        ),
        View(
            "repeat_survival",
            "Time to repeat contact (Kaplan-Meier)",
            _cols(
                AGENCY,
                ("cohort", TEXT, "Cohort"),
                ("day", INTEGER, "Day"),
                ("at_risk", COUNT, "At risk"),
                ("cum_events", COUNT, "Repeats so far"),
                ("survival", SHARE, "No repeat yet"),
                ("ci_low", SHARE, "95% CI low"),
                ("ci_high", SHARE, "95% CI high"),
            ),
            keys=("cohort", "day"),
            period_column=None,
            order_by=("agency_code", "cohort", "day"),
        ),
        View(
            "repeat_logrank",
            "Log-rank test against the baseline",
            _cols(
                AGENCY,
                ("cohort", TEXT, "Cohort"),
                ("observed", COUNT, "Repeats observed"),
                ("expected", NUMBER, "Expected (as baseline)"),
                ("chi_square", NUMBER, "Chi-square"),
                ("p_value", NUMBER, "p-value"),
            ),
            keys=("cohort",),
            period_column=None,
            order_by=("agency_code", "cohort"),
        ),
        View(
            "contact_service_level",
            "First contact against service levels",
            _cols(
                AGENCY,
                ("month", MONTH, "Month"),
                ("all_months", FLAG, "All months"),
                ("referred", COUNT, "Referred"),
                ("share_24h", SHARE, "Contacted within 24 h"),
                ("share_48h", SHARE, "Within 48 h"),
                ("share_7d", SHARE, "Within 7 days"),
                ("uncontacted_48h", COUNT, "No contact after 48 h"),
            ),
            keys=("month",),
            period_column="month",
            order_by=("agency_code", "month"),
            has_total=True,
        ),
        View(
            "data_quality_daily",
            "Data quality per extract day",
            _cols(
                AGENCY,
                ("extract_date", DAY, "Extract date"),
                ("files_received", COUNT, "Files received"),
                ("files_refused", COUNT, "Files refused"),
                ("rows_in_files", COUNT, "Rows in files"),
                ("rows_loaded", COUNT, "Rows loaded"),
                ("rows_quarantined", COUNT, "Rows quarantined"),
            ),
            keys=("extract_date",),
            period_column="extract_date",
            order_by=("agency_code", "extract_date"),
        ),
        View(
            "agency_quality_latest",
            "Every agency at a glance",
            _cols(
                AGENCY,
                ("last_extract_date", DAY, "Latest extract day"),
                ("last_outcome", TEXT, "Latest file"),
                ("days_behind", INTEGER, "Days behind"),
                ("days_received", INTEGER, "Days received"),
                ("files_refused", COUNT, "Files refused"),
                ("rows_loaded", COUNT, "Rows loaded"),
                ("rows_quarantined", COUNT, "Rows quarantined"),
            ),
            keys=("agency_code",),
            period_column=None,  # each agency's latest night, whatever the period
            order_by=("agency_code",),
            all_agencies=True,
        ),
        View(
            "quarantine_by_rule",
            "Quarantined rows by rule",
            _cols(
                AGENCY,
                ("extract_date", DAY, "Extract date"),
                ("rule", TEXT, "Rule"),
                ("rows", COUNT, "Rows"),
            ),
            keys=("extract_date", "rule"),
            period_column="extract_date",
            order_by=("agency_code", "extract_date", "rule"),
        ),
    )
}

# The data-* attribute that carries each key column on a table cell.
KEY_ATTRIBUTES = {
    "agency_code": "agency",
    "month": "month",
    "patrol_zone": "zone",
    "day": "day",
    "extract_date": "day",
    "step": "step",
    "measure": "measure",
    "cohort": "cohort",
    "window_days": "window",
    "rule": "rule",
}

ALL_ZONES = "(all)"  # calls_monthly rows with this patrol_zone hold the agency totals

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
MAX_AGENCY_LENGTH = 64


def parse_month(raw: str | None) -> date | None:
    """'2024-05' -> date(2024, 5, 1); '' or None -> None; anything else -> ValueError."""
    if raw is None or raw.strip() == "":
        return None
    m = _MONTH.match(raw.strip())
    if not m:
        raise ValueError(f"a month must look like 2024-05, got {raw[:20]!r}")
    year, month = int(m.group(1)), int(m.group(2))
    if not (1 <= month <= 12 and 1900 <= year <= 2999):
        raise ValueError(f"not a month: {raw[:20]!r}")
    return date(year, month, 1)


def next_month(d: date) -> date:
    return date(d.year + (d.month == 12), d.month % 12 + 1, 1)


def month_key(d: date) -> str:
    return f"{d.year:04d}-{d.month:02d}"


@dataclass(frozen=True)
class Filters:
    """What the page and the CSV downloads show: one agency (or all, for CSV) and a period."""

    agency: str | None = None
    month_from: date | None = None  # first day of the first month shown
    month_to: date | None = None  # first day of the last month shown (inclusive)

    @classmethod
    def parse(cls, agency: str | None, month_from: str | None, month_to: str | None) -> Filters:
        agency = (agency or "").strip() or None
        if agency is not None and (
            len(agency) > MAX_AGENCY_LENGTH or any(ord(ch) < 32 for ch in agency)
        ):
            raise ValueError("agency must be a short agency code")
        start, end = parse_month(month_from), parse_month(month_to)
        if start and end and start > end:
            raise ValueError("the period starts after it ends ('from' is after 'to')")
        return cls(agency, start, end)

    @property
    def end_exclusive(self) -> date | None:
        return next_month(self.month_to) if self.month_to else None

    def query(self, **override: str | None) -> str:
        """The query string that reproduces these filters (for CSV links and the form)."""
        params = {
            "agency": self.agency,
            "from": month_key(self.month_from) if self.month_from else None,
            "to": month_key(self.month_to) if self.month_to else None,
        }
        params.update(override)
        return urlencode({k: v for k, v in params.items() if v})


def is_total(row: dict) -> bool:
    """A row over all months (all_months true)."""
    return bool(row.get(TOTAL_COLUMN))


def null_text(kind: str, row_has_suppressed_count: bool) -> str:
    """How a NULL reads: "<5" for a count; for a rate or time "suppressed" when its row has a
    suppressed count, else "–" (not applicable, or withheld because its base was)."""
    if kind == COUNT:
        return SUPPRESSED_COUNT
    if kind in (TEXT, MONTH, DAY, FLAG):
        return ""
    return SUPPRESSED_VALUE if row_has_suppressed_count else NOT_APPLICABLE


def has_suppressed_count(view: View, row: dict) -> bool:
    return any(c.kind == COUNT and row.get(c.name) is None for c in view.columns)
