"""What decides the demo's clock and what the page says about rates above 100% and empty
repeat cohorts (issue 11), without a database: the integration test is test_demo_truth.py."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from markupsafe import escape

from upstream.airflow.dates import extract_date_for_run
from upstream.dev.cli import DEMO_DAYS, DEMO_START
from upstream.dev.server import demo_backfill_window, outreach_clock_env
from upstream.monitoring.data import Snapshot
from upstream.monitoring.render import empty_cohort_notes, over_base_reason, render_page
from upstream.monitoring.views import Filters
from upstream.settings import load_settings

TZ = ZoneInfo("America/Toronto")
DAGS = Path(__file__).resolve().parents[2] / "dags"


def _backfill_runs(from_date: str, to_date: str) -> list:
    """The nightly runs `airflow backfill create --from-date --to-date` creates: the CLI's own
    date parser and the DAG's own timetable, iterated as Airflow's backfill does."""
    from airflow.cli.cli_config import ARG_BACKFILL_FROM_DATE, ARG_BACKFILL_TO_DATE
    from airflow.dag_processing.dagbag import DagBag
    from airflow.timetables.base import TimeRestriction

    dag = DagBag(dag_folder=str(DAGS / "upstream_nightly.py")).dags["upstream_nightly"]
    restriction = TimeRestriction(ARG_BACKFILL_FROM_DATE.kwargs["type"](from_date),
                                  ARG_BACKFILL_TO_DATE.kwargs["type"](to_date), catchup=True)
    runs, info = [], None
    while info := dag.timetable.next_dagrun_info_v2(last_dagrun_info=info,
                                                    restriction=restriction):
        runs.append(info.logical_date)
    return runs


def test_the_demo_backfill_runs_every_demo_night():
    runs = _backfill_runs(*demo_backfill_window(DEMO_START, DEMO_DAYS, TZ))
    days = [extract_date_for_run(None, r, None, TZ) for r in runs]
    assert days == [date.fromordinal(DEMO_START.toordinal() + i) for i in range(DEMO_DAYS)]
    # the old bare dates left the last night out: 00:00 is before its 03:00 run
    old = _backfill_runs("2024-05-07", "2024-05-27")
    assert len(old) == DEMO_DAYS - 1


def test_the_service_follows_the_routing_clock_only_in_a_replay(monkeypatch):
    monkeypatch.setenv("UPSTREAM_TIMEZONE", "America/Toronto")
    settings = load_settings()
    assert outreach_clock_env(settings, {"UPSTREAM_ROUTING_CLOCK": "extracts"}) == {
        "OUTREACH_TIMEZONE": "America/Toronto", "OUTREACH_CLOCK_FOLLOWS_CLIENT": "true"}
    assert outreach_clock_env(settings, {"UPSTREAM_ROUTING_CLOCK": "wall"}) == {
        "OUTREACH_TIMEZONE": "America/Toronto"}
    # an explicit setting wins
    assert outreach_clock_env(settings, {"UPSTREAM_ROUTING_CLOCK": "extracts",
                                         "OUTREACH_CLOCK_FOLLOWS_CLIENT": "false"})[
        "OUTREACH_CLOCK_FOLLOWS_CLIENT"] == "false"


def test_the_routing_client_dates_its_requests():
    from datetime import datetime

    import httpx

    from upstream.routing.client import HttpOutreachClient, OutreachEndpoint

    seen = []
    transport = httpx.MockTransport(lambda r: seen.append(r.headers.get("date"))
                                    or httpx.Response(200, json={"events": []}))
    endpoint = OutreachEndpoint("http://outreach.invalid", "t", "test")
    night = datetime(2024, 5, 8, 0, 0, tzinfo=TZ)
    HttpOutreachClient(endpoint, 1, transport, date=night).events(None, 10)
    HttpOutreachClient(endpoint, 1, transport).events(None, 10)
    assert seen == ["Wed, 08 May 2024 04:00:00 GMT", None]


def _funnel_page(rows) -> str:
    s = Snapshot(Filters("WPS"), agencies=["WPS"])
    s.tables = {"referral_funnel": [
        dict(agency_code="WPS", month=date(2024, 5, 1), step_order=i, step=step, count=n,
             rate=rate) for i, (step, n, rate) in enumerate(rows, start=1)]}
    return render_page(s)


def test_a_rate_above_100_percent_says_why():
    page = _funnel_page([("consent_given", 28, Decimal("0.5")),
                         ("referred", 29, Decimal("1.0357")),
                         ("contacted", 20, Decimal("0.8")),
                         ("engaged", 21, Decimal("1.05"))])
    flagged = re.findall(r'<td([^>]*data-col="rate"[^>]*data-note="over-base"[^>]*)>([^<]*)<',
                         page)
    assert len(flagged) == 2 and all(text.endswith(" *") for _, text in flagged)
    assert "Referred, May 2024: 103.6% of consent given, because " in page
    assert escape(over_base_reason("referred")) in page
    assert escape(over_base_reason("engaged")) in page
    assert "consent withdrawn (or corrected) or a charge laid" in over_base_reason("referred")


def test_rates_up_to_100_percent_carry_no_note():
    page = _funnel_page([("consent_given", 28, Decimal("0.5")),
                         ("referred", 28, Decimal("1.0000"))])
    assert "over-base" not in page and "*" not in re.sub(r"<style>.*?</style>", "", page,
                                                          flags=re.S)


def _cohort(cohort: str, window: int, n: int | None) -> dict:
    return dict(agency_code="WPS", cohort=cohort, window_days=window, index_calls=n)


def test_empty_cohorts_explained_by_the_window_not_elapsed():
    rows = [_cohort("baseline", 182, 0), _cohort("engaged", 182, 0),
            _cohort("referred_not_engaged", 182, 0), _cohort("all", 182, 0),
            _cohort("engaged", 365, None)]  # suppressed, not empty: no note
    build = {"reference_date": date(2024, 5, 26), "program_launch_date": date(2024, 5, 6)}
    notes = empty_cohort_notes(rows, build)
    assert notes[0] == (
        "182-day window: program cohorts read n = 0 because no call since the launch "
        "(2024-05-06) is 182 days old by the reference date (2024-05-26); they start to count "
        "once it reaches 2024-11-04. Time to repeat contact (below) already follows them.")
    assert notes[1].startswith("182-day window: the baseline reads n = 0")
    assert len(notes) == 2


@pytest.mark.parametrize("build", [None, {"reference_date": date(2025, 6, 1),
                                          "program_launch_date": date(2024, 5, 6)}])
def test_empty_cohort_after_the_window_is_named(build):
    notes = empty_cohort_notes([_cohort("consent_not_asked", 182, 0),
                                _cohort("engaged", 182, 40)], build)
    assert len(notes) == 1 and "n = 0 for Not asked for consent" in notes[0]
