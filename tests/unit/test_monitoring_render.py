"""The monitoring page without a database or Airflow: escaping, suppression, CSV safety, charts."""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from datetime import date
from decimal import Decimal
from html.parser import HTMLParser

import pytest

from upstream.monitoring import charts
from upstream.monitoring.csvout import neutralise, to_csv
from upstream.monitoring.data import Snapshot
from upstream.monitoring.render import render_page
from upstream.monitoring.views import FLAG, VIEWS, Filters, parse_month

HOSTILE = "<script>alert(1)</script>"
ATTR_BREAK = '" onmouseover="alert(2)" x="'


def _snapshot(agency: str = "WPS", text: str = "ok") -> Snapshot:
    """One row in every view; every text column carries `text`; some counts suppressed."""
    s = Snapshot(Filters(agency, date(2024, 5, 1), date(2024, 6, 1)), agencies=[agency, "RCP"])
    s.tables = {
        "calls_monthly": [
            dict(agency_code=agency, month=date(2024, 5, 1), patrol_zone="(all)", calls=57,
                 cleared_by_charge=None, non_charge=53, consent_given=12, consent_declined=None,
                 consent_not_asked=30, consent_unable_to_ask=0),
            dict(agency_code=agency, month=date(2024, 5, 1), patrol_zone=text, calls=1234,
                 cleared_by_charge=400, non_charge=834, consent_given=None,
                 consent_declined=None, consent_not_asked=None, consent_unable_to_ask=None),
        ],
        "calls_daily": [dict(agency_code=agency, day=date(2024, 5, 2), calls=None,
                             cleared_by_charge=None, non_charge=None, consent_given=None)],
        "referral_funnel": [
            dict(agency_code=agency, month=date(2024, 5, 1), step_order=0, step="ipv_calls",
                 count=61, rate=None),
            dict(agency_code=agency, month=date(2024, 5, 1), step_order=1, step=text, count=40,
                 rate=Decimal("1.0")),
            dict(agency_code=agency, month=date(2024, 5, 1), step_order=2, step="Contacted",
                 count=None, rate=None),
        ],
        "timeliness": [dict(agency_code=agency, month=date(2024, 5, 1), measure=text, n=None,
                            median_hours=None, p90_hours=Decimal("70.25"),
                            share_within_24h=Decimal("0.5"), share_within_7d=None)],
        "repeat_contact": [
            dict(agency_code=agency, cohort="baseline", window_days=90, index_calls=300,
                 with_repeat=60, repeat_rate=Decimal("0.2"), ci_low=Decimal("0.16"),
                 ci_high=Decimal("0.25"), with_charged_repeat=None, charged_repeat_rate=None),
            dict(agency_code=agency, cohort=text, window_days=90, index_calls=None,
                 with_repeat=None, repeat_rate=None, ci_low=None, ci_high=None,
                 with_charged_repeat=None, charged_repeat_rate=None, standardised_rate=None,
                 std_ci_low=None, std_ci_high=None),
            dict(agency_code=agency, cohort="engaged", window_days=90, index_calls=50,
                 with_repeat=10, repeat_rate=Decimal("0.2"), ci_low=Decimal("0.11"),
                 ci_high=Decimal("0.33"), with_charged_repeat=5, charged_repeat_rate=Decimal("0.1"),
                 standardised_rate=Decimal("0.18"), std_ci_low=Decimal("0.1"),
                 std_ci_high=Decimal("0.26")),
        ],
        "repeat_survival": [
            dict(agency_code=agency, cohort="baseline", day=0, at_risk=300, cum_events=0,
                 survival=Decimal("1"), ci_low=Decimal("1"), ci_high=Decimal("1")),
            dict(agency_code=agency, cohort="baseline", day=90, at_risk=250, cum_events=40,
                 survival=Decimal("0.86"), ci_low=Decimal("0.82"), ci_high=Decimal("0.9")),
            dict(agency_code=agency, cohort=text, day=90, at_risk=None, cum_events=None,
                 survival=None, ci_low=None, ci_high=None),
        ],
        "repeat_logrank": [dict(agency_code=agency, cohort=text, observed=None, expected=None,
                                chi_square=None, p_value=None)],
        "contact_service_level": [dict(agency_code=agency, month=date(2024, 5, 1), referred=20,
                                       share_24h=Decimal("0.4"), share_48h=None,
                                       share_7d=Decimal("0.9"), uncontacted_48h=None)],
        "data_quality_daily": [dict(agency_code=agency, extract_date=date(2024, 5, 2),
                                    files_received=1, files_refused=0, rows_in_files=80,
                                    rows_loaded=77, rows_quarantined=None)],
        "quarantine_by_rule": [dict(agency_code=agency, extract_date=date(2024, 5, 2), rule=text,
                                    rows=None)],
        "agency_quality_latest": [
            dict(agency_code=agency, last_extract_date=date(2024, 5, 2), last_outcome="loaded",
                 days_behind=0, days_received=1, files_refused=0, rows_loaded=77,
                 rows_quarantined=None)],
    }
    return s


class Cells(HTMLParser):
    """Collects (attributes, text) of every element that has data-col."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[tuple[dict[str, str], str]] = []
        self._open: dict[str, str] | None = None
        self._text: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        d = {k: v or "" for k, v in attrs}
        if "data-col" in d:
            self._open, self._text = d, []

    def handle_data(self, data):
        if self._open is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        if self._open is not None and tag in ("td", "th"):
            self.cells.append((self._open, "".join(self._text)))
            self._open = None


def _cells(html: str) -> Cells:
    parser = Cells()
    parser.feed(html)
    return parser


@pytest.mark.parametrize("where", ["agency", "text"])
def test_hostile_text_is_escaped_everywhere(where):
    snapshot = _snapshot(agency=HOSTILE, text=HOSTILE) if where == "agency" else _snapshot(
        text=HOSTILE)
    html = render_page(snapshot, base="/upstream-monitoring", generated_at="now")
    assert HOSTILE not in html
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # The hostile text still reads as itself (in the tables and the SVG labels).
    parsed = _cells(html)
    assert not [t for t, _ in parsed.tags if t == "script"]
    if where == "agency":
        assert all(a["data-agency"] == HOSTILE for a, _ in parsed.cells)
    else:
        rules = [a["data-rule"] for a, _ in parsed.cells if a["data-table"] == "quarantine_by_rule"]
        assert rules == [HOSTILE]


def test_text_cannot_break_out_of_an_attribute():
    html = render_page(_snapshot(agency=ATTR_BREAK, text=ATTR_BREAK), generated_at="now")
    parsed = _cells(html)
    for _tag, attrs in parsed.tags:
        assert "onmouseover" not in attrs
    assert ATTR_BREAK not in html


def test_hostile_text_in_charts_is_escaped():
    svg = str(charts.funnel("f", HOSTILE, [charts.FunnelStep(HOSTILE, 3, None)]))
    svg += str(charts.intervals("i", HOSTILE, [charts.Interval(HOSTILE, 0.1, 0.05, 0.2, 10)]))
    svg += str(charts.stacked_bars("s", HOSTILE, [(HOSTILE, HOSTILE)],
                                   [charts.Series(HOSTILE, charts.BLUE, [3])], totals=[3]))
    svg += str(charts.line_chart("l", HOSTILE, [(HOSTILE, "")],
                                 [charts.Series(HOSTILE, charts.BLUE, [1.5])], str))
    svg += str(charts.empty_chart('x" onload="alert(1)', HOSTILE, HOSTILE))
    assert HOSTILE not in svg and "<script" not in svg
    assert 'onload="' not in svg


def test_filter_error_message_is_escaped():
    with pytest.raises(ValueError) as err:
        Filters.parse("WPS", HOSTILE, None)
    html = render_page(Snapshot(Filters()), error=f"Please check the filters: {err.value}")
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_suppressed_counts_read_less_than_five_never_zero():
    html = render_page(_snapshot(), generated_at="now")
    cells = {(a["data-table"], a.get("data-month") or a.get("data-day") or a.get("data-cohort"),
              a.get("data-zone") or a.get("data-step") or a.get("data-rule")
              or a.get("data-measure") or "",
              a["data-col"]): (a, text) for a, text in _cells(html).cells}
    attrs, text = cells[("calls_monthly", "2024-05", "(all)", "cleared_by_charge")]
    assert text == "<5" and attrs["data-value"] == "" and attrs["data-suppressed"] == "true"
    attrs, text = cells[("calls_monthly", "2024-05", "(all)", "consent_unable_to_ask")]
    assert text == "0" and attrs["data-value"] == "0" and "data-suppressed" not in attrs
    assert cells[("calls_monthly", "2024-05", "(all)", "calls")][1] == "57"
    assert cells[("calls_monthly", "2024-05", "ok", "calls")][1] == "1,234"
    assert cells[("referral_funnel", "2024-05", "Contacted", "count")][1] == "<5"
    assert cells[("referral_funnel", "2024-05", "Contacted", "rate")][1] == "suppressed"
    assert cells[("referral_funnel", "2024-05", "ok", "rate")][1] == "100.0%"
    # A rate with no base (the first step) is not a suppression: a dash, not "suppressed".
    attrs, text = cells[("referral_funnel", "2024-05", "ipv_calls", "rate")]
    assert text == "–" and attrs["data-value"] == ""
    assert cells[("timeliness", "2024-05", "ok", "median_hours")][1] == "suppressed"
    assert cells[("timeliness", "2024-05", "ok", "p90_hours")][1] == "70.2"
    assert cells[("quarantine_by_rule", "2024-05-02", "ok", "rows")][1] == "<5"
    assert cells[("data_quality_daily", "2024-05-02", "", "rows_quarantined")][1] == "<5"
    # Every NULL cell, whatever the view, reads "<5", "suppressed" or "–", never 0 or blank.
    for attrs, text in cells.values():
        if attrs["data-value"] == "":
            assert attrs.get("data-suppressed") == "true"
            assert text in ("<5", "suppressed", "–"), attrs
    # The headline tiles too, and the bar chart marks the suppressed segment "<5".
    assert re.search(r'data-headline="cleared_by_charge">&lt;5<', html)
    assert "&lt;5<title>Charged: suppressed" in html


def test_every_published_column_is_in_a_cell():
    cells = _cells(render_page(_snapshot(), generated_at="now")).cells
    for name, view in VIEWS.items():
        cols = {a["data-col"] for a, _ in cells if a["data-table"] == name}
        # a FLAG column (all_months) is not a cell: the month cell of its row reads "All months"
        flags = {c.name for c in view.columns if c.kind == FLAG}
        expected = set(view.column_names) - {"agency_code", "step_order", *view.keys, *flags}
        assert cols == expected, name


def test_rows_over_all_months_read_all_months_and_stay_out_of_the_charts():
    s = _snapshot()
    total = dict(s.tables["calls_monthly"][0], month=None, all_months=True, calls=9999)
    s.tables["calls_monthly"].append(total)
    s.tables["referral_funnel"].append(dict(agency_code="WPS", month=None, all_months=True,
                                            step_order=0, step="ipv_calls", count=8888,
                                            rate=Decimal("1.5")))
    s.tables["contact_service_level"].append(dict(
        agency_code="WPS", month=None, all_months=True, referred=7777, share_24h=None,
        share_48h=None, share_7d=None, uncontacted_48h=None))
    s.tables["timeliness"].append(dict(agency_code="WPS", month=None, all_months=True,
                                       measure="call_to_referral", n=6666, median_hours=None,
                                       p90_hours=None, share_within_24h=None,
                                       share_within_7d=None))
    html = render_page(s, generated_at="now")
    for view, col, value in (("calls_monthly", "calls", "9999"),
                             ("referral_funnel", "count", "8888"),
                             ("contact_service_level", "referred", "7777"),
                             ("timeliness", "n", "6666")):
        assert re.search(f'data-table="{view}"[^>]*data-month="all"[^>]*data-col="{col}"'
                         f'[^>]*data-value="{value}"', html), view
    assert html.count(">All months<") >= 4
    assert "All months: 150.0% of" not in html and "all months: 150.0%" in html
    # the headline and the charts are the latest month's, never the total's
    assert "9,999" not in html.split('id="calls"')[0]
    charts_only = "".join(re.findall(r"<svg.*?</svg>", html, re.S))
    for value in ("9999", "9,999", "8,888", "7,777", "6,666"):
        assert value not in charts_only


def test_period_filter_keeps_the_rows_over_all_months():
    from upstream.monitoring.data import _select

    query, params = _select("referral_funnel", Filters("WPS", date(2024, 5, 1),
                                                       date(2024, 6, 1)))
    text = query.as_string(None) if hasattr(query, "as_string") else str(query)
    assert '("month" >= %(start)s OR "all_months")' in text
    assert '("month" < %(end)s OR "all_months")' in text
    query, _ = _select("calls_daily", Filters("WPS", date(2024, 5, 1), date(2024, 6, 1)))
    assert "all_months" not in query.as_string(None)


def test_csv_neutralises_formulas_and_keeps_numbers():
    view = VIEWS["quarantine_by_rule"]
    hostile = ["=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd",
               'a,"quoted",\nmultiline', "plain"]
    rows = [dict(agency_code=h, extract_date=date(2024, 5, 2), rule=h, rows=i)
            for i, h in enumerate(hostile)]
    rows.append(dict(agency_code="WPS", extract_date=date(2024, 5, 3), rule="x", rows=None))
    text = to_csv(view, rows)
    assert text.startswith("\ufeff")
    parsed = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert parsed[0] == ["agency_code", "extract_date", "rule", "rows"]
    for h, (agency, day, rule, count) in zip(hostile, parsed[1:], strict=False):
        expected = "'" + h if h[0] in "=+-@\t\r" else h
        assert agency == rule == expected
        assert day == "2024-05-02" and count.isdigit()
    assert parsed[-1] == ["WPS", "2024-05-03", "x", "<5"]
    assert neutralise("=1") == "'=1" and neutralise("1=1") == "1=1"


def test_csv_suppressed_values():
    rows = [dict(agency_code="WPS", month=date(2024, 5, 1), all_months=False, step_order=1,
                 step="Called", count=None, rate=None),
            dict(agency_code="WPS", month=None, all_months=True, step_order=1,
                 step="Called", count=12, rate=None)]
    parsed = list(csv.DictReader(io.StringIO(to_csv(VIEWS["referral_funnel"], rows, bom=False))))
    assert parsed == [{"agency_code": "WPS", "month": "2024-05-01", "all_months": "false",
                       "step_order": "1", "step": "Called", "count": "<5", "rate": "suppressed"},
                      {"agency_code": "WPS", "month": "", "all_months": "true",
                       "step_order": "1", "step": "Called", "count": "12", "rate": "–"}]


@pytest.mark.parametrize("make", [
    lambda: charts.stacked_bars("a", "Calls", [], []),
    lambda: charts.stacked_bars("a", "Calls", [("Jan", "2024")],
                                [charts.Series("x", charts.BLUE, [None])], totals=[None]),
    lambda: charts.funnel("b", "Funnel", []),
    lambda: charts.line_chart("c", "Time", [], [], str),
    lambda: charts.line_chart("c", "Time", [("Jan", "")],
                              [charts.Series("x", charts.BLUE, [None])], str),
    lambda: charts.intervals("d", "Repeat", []),
    lambda: charts.empty_chart("e", "Nothing"),
])
def test_charts_with_empty_or_suppressed_data_are_valid_svg(make):
    svg = str(make())
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.find("{http://www.w3.org/2000/svg}title") is not None


def test_every_chart_of_a_full_page_is_well_formed_svg():
    html = render_page(_snapshot(text="A & B <c>"), generated_at="now")
    svgs = re.findall(r"<svg .*?</svg>", html, flags=re.S)
    assert len(svgs) >= 7
    for svg in svgs:
        ET.fromstring(svg)


def test_empty_snapshot_renders_every_section():
    html = render_page(Snapshot(Filters()), generated_at="now")
    for section in ("calls", "funnel", "timeliness", "repeat", "quality", "caveats"):
        assert f'id="{section}"' in html
    assert html.count("No data for this selection") >= 5
    assert "No figures for this selection." in html
    assert "data-col" not in html


def test_unavailable_view_is_reported_not_fatal():
    s = _snapshot()
    s.tables["timeliness"] = []
    s.unavailable["timeliness"] = "not published yet"
    html = render_page(s, generated_at="now")
    assert "Time to first contact (timeliness) is unavailable: not published yet." in html


def test_caveats_and_csv_links_carry_the_filters():
    html = render_page(_snapshot(agency="W&S"), base="/upstream-monitoring", generated_at="now")
    assert "self-selected" in html and "More reporting can look like failure" in html
    assert ('href="/upstream-monitoring/csv/calls_monthly.csv?agency=W%26S&amp;from=2024-05'
            '&amp;to=2024-06"') in html


def test_filters():
    assert parse_month("2024-05") == date(2024, 5, 1)
    assert parse_month("") is None
    for bad in ("2024-13", "May 2024", "2024-5", "2024-05-01"):
        with pytest.raises(ValueError):
            parse_month(bad)
    with pytest.raises(ValueError):
        Filters.parse("WPS", "2024-06", "2024-05")
    with pytest.raises(ValueError):
        Filters.parse("W" * 65, None, None)
    f = Filters.parse(" WPS ", "2024-05", "2024-12")
    assert f.agency == "WPS" and f.end_exclusive == date(2025, 1, 1)
    assert f.query() == "agency=WPS&from=2024-05&to=2024-12"


def test_app_sets_security_headers_and_rejects_bad_filters(monkeypatch):
    import asyncio

    import httpx

    from upstream.monitoring import app as app_module

    monkeypatch.setattr(app_module.data, "load", lambda filters, *a, **k: _snapshot())
    asgi = httpx.ASGITransport(app=app_module.create_app(protect=False))

    class Client:  # a synchronous face on httpx's ASGI transport
        def get(self, url, **kwargs):
            async def go():
                async with httpx.AsyncClient(transport=asgi, base_url="http://t") as c:
                    return await c.get(url, **kwargs)

            return asyncio.run(go())

    client = Client()
    page = client.get("/", params={"agency": "WPS"})
    assert page.status_code == 200
    assert "script-src" not in page.headers["content-security-policy"]
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    bad = client.get("/", params={"from": HOSTILE})
    assert bad.status_code == 400 and HOSTILE not in bad.text
    got = client.get("/csv/calls_monthly.csv", params={"agency": "WPS", "from": "2024-05"})
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    assert 'filename="upstream_calls_monthly_WPS_from-2024-05.csv"' in got.headers[
        "content-disposition"]
    assert client.get("/csv/pg_authid.csv").status_code == 404


def test_page_templates_are_package_data():
    """The templates are files next to render.py, shipped by pyproject's package-data globs,
    so a normal (non-editable) install renders the same page as the working tree."""
    import fnmatch
    import tomllib
    from pathlib import Path

    from upstream.monitoring import render

    repo_root = Path(__file__).resolve().parents[2]
    pyproject = tomllib.loads((repo_root / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["upstream.monitoring"]
    package_dir = Path(render.__file__).parent
    templates = sorted(p.relative_to(package_dir).as_posix()
                       for p in render.TEMPLATES.iterdir() if p.is_file())
    assert {"templates/page.html", "templates/table.html"} <= set(templates)
    for name in templates:
        assert any(fnmatch.fnmatch(name, g) for g in globs), name
    assert render._env.autoescape("page.html") is True  # the page's escaping
