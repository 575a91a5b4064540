"""The monitoring page as HTML: charts (inline SVG) with the exact numbers in tables.

Pure functions of a `Snapshot`: no database, no Airflow, no request. The page has no script
at all; it is served with a Content-Security-Policy that forbids scripts (see app.py).

Escaping: the templates (templates/page.html, table.html; package data) are Jinja with
autoescape on, so every value from the database is escaped on output, in text and in
attributes (`xmlattr`). The SVG charts are built in charts.py, which escapes every label
itself; they are the only Markup the template receives. The sections are built in
sections.py, the tables and value formatting in tables.py.
"""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from upstream.monitoring.data import Snapshot
from upstream.monitoring.notes import empty_cohort_notes, over_base_reason
from upstream.monitoring.sections import (
    CAVEATS,
    calls_section,
    funnel_section,
    headline,
    quality_section,
    repeat_section,
    service_section,
    survival_curves,
    survival_section,
    timeliness_section,
)
from upstream.monitoring.tables import display, month_label, raw, table
from upstream.monitoring.views import Filters, month_key

__all__ = ["display", "empty_cohort_notes", "over_base_reason", "period_text", "raw",
           "render_page", "survival_curves", "table"]

TEMPLATES = Path(__file__).with_name("templates")

_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
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
