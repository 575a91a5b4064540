"""The quarterly board report: HTML and PDF built ONLY from the public release tier.

Reads the views of schema ``release`` (``include/sql/migrations/010_evaluation.sql``) as role
``upstream_public`` and nothing else: the transaction switches to that role (``SET LOCAL
ROLE``) and refuses to read at all when it cannot, so a report can never carry an unrounded
count even if the login user could read more. What the release tier does to the numbers
(random rounding to base 5, a minimum cell size, rates only on large enough bases) is in
docs/measuring.md, "The public release tier".

The PDF is WeasyPrint's rendering of the same HTML (print CSS, A4); the charts are the
monitoring page's inline SVG (``upstream.monitoring.charts``), which WeasyPrint draws itself.

Served by the monitoring app at ``/upstream-monitoring/report/board.html`` and ``.pdf``
(``?agency=WPS&quarter=2024-Q3``), behind Airflow's login like the rest of the page.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import psycopg
from jinja2 import Environment, StrictUndefined, select_autoescape
from psycopg import sql
from psycopg.rows import dict_row

from upstream.monitoring import charts
from upstream.monitoring.labels import COHORT_LABELS, label
from upstream.warehouse.db import read_sql

log = logging.getLogger(__name__)

SCHEMA = "release"
_SQL = "outcomes/report/"
PUBLIC_ROLE = "upstream_public"
QUARTERS_SHOWN = 8
SURVIVAL_DAYS_SHOWN = (0, 30, 90, 182, 365)
COHORTS = ("baseline", "engaged", "referred_not_engaged", "consent_declined",
           "consent_not_asked", "consent_given_not_delivered", "all")
_QUARTER = re.compile(r"^(\d{4})-?Q([1-4])$", re.IGNORECASE)

# (view, order) read for one agency; build_info has no agency.
_READS = {
    "calls_quarterly": "quarter",
    "service_level_quarterly": "quarter",
    "repeat_contact": "window_days, cohort",
    "repeat_survival": "cohort, day",
    "repeat_logrank": "cohort",
}


class ReleaseUnavailable(RuntimeError):
    """The release tier cannot be read as upstream_public (or not at all)."""


def parse_quarter(raw: str | None) -> date | None:
    """'2024-Q3' (or 2024Q3) -> date(2024, 7, 1); '' or None -> None; else ValueError."""
    if raw is None or not raw.strip():
        return None
    m = _QUARTER.match(raw.strip())
    if not m:
        raise ValueError(f"a quarter must look like 2024-Q3, got {raw[:20]!r}")
    return date(int(m.group(1)), 3 * int(m.group(2)) - 2, 1)


def quarter_label(d: date) -> str:
    return f"{d.year} Q{(d.month - 1) // 3 + 1}"


@dataclass
class Release:
    """Everything one board report shows (rows of the release views for one agency)."""

    agency: str | None
    quarter: date | None
    agencies: list[str] = field(default_factory=list)
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    build: dict[str, Any] | None = None


def _switch_to_public(conn: psycopg.Connection) -> None:
    user = conn.execute(read_sql(_SQL + "current_user.sql")).fetchone()["u"]
    if user == PUBLIC_ROLE:
        return
    row = conn.execute(read_sql(_SQL + "can_switch_role.sql"), {"role": PUBLIC_ROLE}).fetchone()
    if not row or not row["m"]:
        raise ReleaseUnavailable(f"the board report is read as role {PUBLIC_ROLE}, and this "
                                 "login cannot switch to it")
    conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(PUBLIC_ROLE)))


def load_release(agency: str | None = None, quarter: date | None = None, *,
                 url: str | None = None) -> Release:
    """Read the release views for one agency (default: the first) as upstream_public."""
    if url is None:
        from upstream.monitoring.data import database_url

        url = database_url()
    try:
        conn = psycopg.connect(url, row_factory=dict_row, autocommit=True, connect_timeout=10,
                               application_name="upstream-board-report")
    except psycopg.OperationalError as exc:
        raise ReleaseUnavailable("the warehouse is not reachable") from exc
    with conn:
        conn.read_only = True
        try:
            with conn.transaction():
                conn.execute(read_sql(_SQL + "statement_timeout.sql"))
                _switch_to_public(conn)
                agencies = [r["agency_code"] for r in conn.execute(
                    read_sql(_SQL + "agencies.sql"))]
                if agency is None and agencies:
                    agency = agencies[0]
                out = Release(agency, quarter, agencies)
                for view, order in _READS.items():
                    out.tables[view] = conn.execute(
                        sql.SQL("SELECT * FROM {} WHERE agency_code = %s ORDER BY {}").format(
                            sql.Identifier(SCHEMA, view), sql.SQL(order)),
                        (agency,)).fetchall()
                out.build = conn.execute(read_sql(_SQL + "build_info.sql")).fetchone()
        except (psycopg.errors.InsufficientPrivilege, psycopg.errors.UndefinedTable,
                psycopg.errors.InvalidSchemaName) as exc:
            raise ReleaseUnavailable(f"the release tier cannot be read: {type(exc).__name__}") \
                from exc
    quarters = [r["quarter"] for r in out.tables["calls_quarterly"] if not r.get("all_quarters")]
    if out.quarter is None and quarters:
        out.quarter = quarters[-1]
    return out


# ----------------------------------------------------------------------------------- content

def _count(v: Any) -> str:
    return "withheld" if v is None else f"{int(v):,}"


def _share(v: Any) -> str:
    return "withheld" if v is None else f"{float(v) * 100:.0f}%"


def _number(v: Any, digits: int = 3) -> str:
    return "withheld" if v is None else f"{float(v):.{digits}f}"


CAVEATS = (
    "Every count in this report is randomly rounded to a multiple of 5 (up or down, with "
    "chances that keep it right on average), and counts below the release minimum are "
    "withheld. Totals may therefore differ from the sum of their parts by a few. Rates are "
    "computed from the rounded counts and shown only when their base is large enough.",
    "Evaluations of second-responder programs find no overall effect on police-reported "
    "repeat incidents (Campbell Collaboration reviews, 2008 and 2022, 15 studies), and often "
    "more reports, read as more willingness to call. A repeat call is police contact, not "
    "necessarily more violence: read repeat measures with the contact and uptake measures.",
    "The measures that programs do move are service uptake (referred, contacted, engaged) and "
    "time to contact; Ontario's situation tables aim at contact within 24 to 48 hours.",
    "Cohorts are self-selected: people who consent and engage differ from those who decline "
    "or are not asked. Differences between cohorts are associations, not the program's effect. "
    "Standardised rates take away differences in prior-call history only.",
    "Time to repeat contact counts every call that ended without a charge: calls still being "
    "followed are censored at the reference date and at 365 days (Kaplan-Meier), so the "
    "program's first months count, unlike fixed 182- and 365-day windows, which need the "
    "whole window to have passed.",
    "Recent quarters are incomplete: outreach events and corrections arrive for weeks.",
)


def _split(rows: list[dict[str, Any]], quarter: date | None) -> tuple[list, dict | None]:
    """The quarters up to `quarter` (the last QUARTERS_SHOWN) and the all-quarters total row."""
    total = next((x for x in rows if x.get("all_quarters")), None)
    quarters = [x for x in rows if not x.get("all_quarters")
                and (quarter is None or x["quarter"] <= quarter)]
    return quarters[-QUARTERS_SHOWN:], total


def _context(r: Release) -> dict[str, Any]:
    calls, calls_total = _split(r.tables.get("calls_quarterly", []), r.quarter)
    service, service_total = _split(r.tables.get("service_level_quarterly", []), r.quarter)
    labels = [(quarter_label(x["quarter"]), "") for x in calls]
    calls_chart = charts.stacked_bars(
        "report-calls", "Calls per quarter", labels,
        [charts.Series("Charged", charts.BLUE, [x["cleared_by_charge"] for x in calls]),
         charts.Series("Not charged", charts.ORANGE, [x["non_charge"] for x in calls])],
        totals=[x["calls"] for x in calls], y_label="calls (rounded)", height=260,
        suppressed="withheld", suppressed_note="withheld: below the release minimum")
    service_chart = charts.line_chart(
        "report-service", "Referrals contacted in time",
        [(quarter_label(x["quarter"]), "") for x in service],
        [charts.Series("Within 24 h", charts.GREEN, [x["share_24h"] for x in service]),
         charts.Series("Within 48 h", charts.BLUE, [x["share_48h"] for x in service]),
         charts.Series("Within 7 days", charts.SKY, [x["share_7d"] for x in service],
                       dashed=True)],
        value_label=lambda v: f"{v * 100:.0f}%", y_max=1.0, height=240)
    from upstream.monitoring.render import survival_curves

    survival = r.tables.get("repeat_survival", [])
    curves = survival_curves(survival)   # with the total: small cohorts are often withheld
    survival_chart = charts.survival_chart("report-survival",
                                           "Share without a repeat call, by cohort", curves,
                                           height=300)
    at_risk: dict[str, dict[int, Any]] = {}
    for x in survival:
        at_risk.setdefault(x["cohort"], {})[x["day"]] = x
    cohorts = [c for c in COHORTS if c in at_risk]
    current = next((x for x in calls if x["quarter"] == r.quarter), None)
    current_service = next((x for x in service if x["quarter"] == r.quarter), None)
    repeat = {(x["cohort"], x["window_days"]): x for x in r.tables.get("repeat_contact", [])}
    return {
        "agency": r.agency or "", "quarter": quarter_label(r.quarter) if r.quarter else "",
        "build": r.build or {}, "calls": calls, "service": service,
        "calls_total": calls_total, "service_total": service_total,
        "calls_chart": calls_chart, "service_chart": service_chart,
        "survival_chart": survival_chart, "current": current,
        "current_service": current_service, "cohorts": cohorts, "at_risk": at_risk,
        "days": SURVIVAL_DAYS_SHOWN, "repeat": repeat,
        "logrank": {x["cohort"]: x for x in r.tables.get("repeat_logrank", [])},
        "caveats": CAVEATS, "quarter_label": quarter_label,
        "cohort_label": lambda c: label(c, COHORT_LABELS),
        "count": _count, "share": _share, "number": _number,
    }


TEMPLATE = r"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Board report {{ quarter }} · {{ agency }}</title>
<style>
@page { size: A4; margin: 16mm 14mm 18mm;
        @bottom-center { content: "Upstream board report · release tier · page " counter(page)
                         " of " counter(pages); font-size: 8pt; color: #595959; } }
body { font-family: "DejaVu Sans", "Liberation Sans", Arial, sans-serif; font-size: 10pt;
       color: #1a1a1a; line-height: 1.35; max-width: 190mm; margin: 0 auto; }
h1 { font-size: 18pt; margin: 0 0 2mm; } h2 { font-size: 13pt; margin: 6mm 0 2mm;
     break-after: avoid; }
p.sub { color: #595959; margin: 0 0 4mm; }
table { border-collapse: collapse; margin: 2mm 0 4mm; font-size: 9pt; }
th, td { border-bottom: 1px solid #d9d9d9; padding: 1.2mm 2.5mm; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.total th, tr.total td { border-top: 2px solid #9aa3ad; font-weight: bold; }
thead th { border-bottom: 2px solid #9aa3ad; color: #595959; }
svg.chart { width: 100%; height: auto; }
section { break-inside: avoid; }
.kpi { display: flex; flex-wrap: wrap; gap: 3mm; }
.kpi div { border: 1px solid #d9d9d9; border-radius: 2mm; padding: 2mm 3mm; min-width: 38mm; }
.kpi b { display: block; font-size: 15pt; }
ul.caveats li { margin-bottom: 1.5mm; }
</style>
</head>
<body>
<h1>Program board report: {{ quarter }}</h1>
<p class="sub">Intimate-partner-violence early intervention · agency {{ agency }} · reference
date {{ build.get("reference_date") or "–" }} · program launch
{{ build.get("program_launch_date") or "–" }} · public release tier: counts rounded to base 5,
small counts withheld.</p>

<section id="quarter">
<h2>This quarter</h2>
{% if current %}
<div class="kpi">
<div><b>{{ count(current.calls) }}</b>calls</div>
<div><b>{{ count(current.non_charge) }}</b>not charged</div>
<div><b>{{ count(current.consent_given) }}</b>consented to a referral</div>
<div><b>{{ count(current.referred) }}</b>referred</div>
<div><b>{{ count(current.contacted) }}</b>contacted</div>
<div><b>{{ count(current.engaged) }}</b>engaged with services</div>
{% if current_service %}<div><b>{{ share(current_service.share_48h) }}</b>contacted within 48 h</div>{% endif %}
</div>
{% else %}<p>No figures for this quarter.</p>{% endif %}
</section>

<section id="calls">
<h2>Calls and referrals per quarter</h2>
{{ calls_chart }}
<table><thead><tr><th>Quarter</th><th>Calls</th><th>Charged</th><th>Not charged</th>
<th>Consent given</th><th>Referred</th><th>Contacted</th><th>Engaged</th></tr></thead><tbody>
{% for x in calls %}<tr><th>{{ quarter_label(x.quarter) }}</th><td class="n">{{ count(x.calls) }}</td>
<td class="n">{{ count(x.cleared_by_charge) }}</td><td class="n">{{ count(x.non_charge) }}</td>
<td class="n">{{ count(x.consent_given) }}</td><td class="n">{{ count(x.referred) }}</td>
<td class="n">{{ count(x.contacted) }}</td><td class="n">{{ count(x.engaged) }}</td></tr>
{% endfor %}{% if calls_total %}{% set x = calls_total %}<tr class="total"><th>All quarters</th><td class="n">{{ count(x.calls) }}</td>
<td class="n">{{ count(x.cleared_by_charge) }}</td><td class="n">{{ count(x.non_charge) }}</td>
<td class="n">{{ count(x.consent_given) }}</td><td class="n">{{ count(x.referred) }}</td>
<td class="n">{{ count(x.contacted) }}</td><td class="n">{{ count(x.engaged) }}</td></tr>
{% endif %}</tbody></table>
<p class="sub">All quarters: every quarter since the first call, not only those shown; rounded on
its own, so it need not equal the sum of the rounded quarters.</p>
</section>

<section id="service">
<h2>Time to first contact against service levels</h2>
{{ service_chart }}
<table><thead><tr><th>Quarter</th><th>Referred</th><th>Within 24 h</th><th>Within 48 h</th>
<th>Within 7 days</th><th>No contact after 48 h</th></tr></thead><tbody>
{% for x in service %}{% set empty = x.referred == 0 %}<tr><th>{{ quarter_label(x.quarter) }}</th><td class="n">{{ count(x.referred) }}</td>
<td class="n">{{ "–" if empty else share(x.share_24h) }}</td><td class="n">{{ "–" if empty else share(x.share_48h) }}</td>
<td class="n">{{ "–" if empty else share(x.share_7d) }}</td><td class="n">{{ count(x.uncontacted_48h) }}</td></tr>
{% endfor %}{% if service_total %}{% set x = service_total %}{% set empty = x.referred == 0 %}<tr class="total"><th>All quarters</th><td class="n">{{ count(x.referred) }}</td>
<td class="n">{{ "–" if empty else share(x.share_24h) }}</td><td class="n">{{ "–" if empty else share(x.share_48h) }}</td>
<td class="n">{{ "–" if empty else share(x.share_7d) }}</td><td class="n">{{ count(x.uncontacted_48h) }}</td></tr>
{% endif %}</tbody></table>
</section>

<section id="survival">
<h2>Time to repeat police contact</h2>
{{ survival_chart }}
<table><thead><tr><th>Cohort</th>{% for d in days %}<th>At risk, day {{ d }}</th>{% endfor %}
<th>No repeat by day 365</th><th>Log-rank p (vs baseline)</th></tr></thead><tbody>
{% for c in cohorts %}<tr><th>{{ cohort_label(c) }}</th>
{% for d in days %}<td class="n">{{ count(at_risk[c][d].at_risk) if d in at_risk[c] else "–" }}</td>{% endfor %}
<td class="n">{{ share(at_risk[c][365].survival) if 365 in at_risk[c] else "–" }}</td>
<td class="n">{{ number(logrank[c].p_value) if c in logrank else "–" }}</td></tr>
{% endfor %}</tbody></table>
</section>

<section id="repeat">
<h2>Repeat contact within fixed windows</h2>
<table><thead><tr><th>Cohort</th><th>Window</th><th>Index calls</th><th>With a repeat</th>
<th>Rate</th><th>Standardised rate</th></tr></thead><tbody>
{% for c in cohorts %}{% for w in (182, 365) %}{% set x = repeat.get((c, w)) %}{% if x %}
<tr><th>{{ cohort_label(c) }}</th><td>{{ w }} days</td><td class="n">{{ count(x.index_calls) }}</td>
<td class="n">{{ count(x.with_repeat) }}</td><td class="n">{{ share(x.repeat_rate) }}</td>
<td class="n">{{ share(x.standardised_rate) }}</td></tr>{% endif %}
{% endfor %}{% endfor %}</tbody></table>
</section>

<section id="caveats">
<h2>Reading these numbers</h2>
<ul class="caveats">{% for c in caveats %}<li>{{ c }}</li>{% endfor %}</ul>
</section>
</body>
</html>
"""

_env = Environment(autoescape=select_autoescape(default=True, default_for_string=True),
                   undefined=StrictUndefined)


def render_html(release: Release) -> str:
    return _env.from_string(TEMPLATE).render(**_context(release))


def render_pdf(html: str) -> bytes:
    """The HTML as an A4 PDF (WeasyPrint; needs the pango library of the system)."""
    from weasyprint import HTML

    return HTML(string=html).write_pdf()
