"""The demo tells the truth (issue 11): a small `make run` demo path, night by night.

Generated days from the program's launch go through the real loader; after each night the
routing DAG's four steps run in the `extracts` routing clock against the reference outreach
service with the demo's clock behaviour (clock_follows_client, as devserver starts it); the
outcome tables are then rebuilt and the monitoring page rendered from the published views.

What the demo once showed instead: call-to-referral 22,282 h (referrals stamped with today's
clock), every step after "Referred" 0 (the service worked on today's calendar, so nothing had
happened yet), a rate of 103.6% without a word. Library calls, not Airflow (the DAGs call
the same functions): about 25 s on a quiet machine.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
from markupsafe import escape
from psycopg.rows import dict_row

from outreach_ref import ServiceConfig
from outreach_ref.testing import run_server
from upstream import ingest, outcomes, routing
from upstream.dev import generate
from upstream.dev.cli import DEMO_START
from upstream.dev.server import outreach_clock_env

pytestmark = pytest.mark.integration

TZ = ZoneInfo("America/Toronto")
NIGHTS = 8
TOKEN = "demo-truth-token-not-a-secret"


@pytest.fixture
def no_data_docs(monkeypatch):
    from great_expectations.checkpoint.actions import UpdateDataDocsAction

    monkeypatch.setattr(UpdateDataDocsAction, "run",
                        lambda self, checkpoint_result, action_context=None: {})


@pytest.fixture
def demo_service(upstream_env, monkeypatch) -> Iterator:
    """The reference service configured as devserver configures it for the demo."""
    monkeypatch.setenv("UPSTREAM_ROUTING_CLOCK", "extracts")
    env = outreach_clock_env(upstream_env, {"UPSTREAM_ROUTING_CLOCK": "extracts"})
    assert env == {"OUTREACH_TIMEZONE": "America/Toronto", "OUTREACH_CLOCK_FOLLOWS_CLIENT": "true"}
    config = ServiceConfig.from_env({**env, "OUTREACH_TOKEN": TOKEN, "OUTREACH_SEED": "7"})
    with run_server(config) as server:
        monkeypatch.setenv("UPSTREAM_OUTREACH_URL", str(server))
        monkeypatch.setenv("UPSTREAM_OUTREACH_TOKEN", TOKEN)
        monkeypatch.setenv("UPSTREAM_OUTREACH_BACKOFF_SECONDS", "0.01")
        yield server


def test_demo_nights_measure_hours_and_days(upstream_env, demo_service, warehouse_url,
                                            no_data_docs):
    from upstream.monitoring import data, render
    from upstream.monitoring.views import Filters
    from upstream.settings import load_settings

    settings = load_settings()
    assert settings.routing.clock == "extracts"
    end = DEMO_START + timedelta(days=NIGHTS - 1)
    days = generate.generate(settings.landing.dir, DEMO_START, end, ["WPS"], seed=7,
                             calls_per_day=24)
    for day in days:  # one night: load, then the routing DAG's four tasks
        assert ingest.load_extract("WPS", day.extract_date, settings).outcome == "loaded"
        routing.plan_referrals(settings=settings)
        routing.deliver_referrals(settings)
        routing.propagate_withdrawals(settings)
        routing.sync_events(settings)
    outcomes.rebuild_outcomes(warehouse_url)

    midnight_after_last = datetime.combine(end + timedelta(days=1), time(0), TZ)
    held = {r["referral_id"]: r for r in demo_service.referrals()}
    assert len(held) >= 20, "the generator yields referrals"
    with psycopg.connect(warehouse_url, row_factory=dict_row) as conn:
        referrals = conn.execute(
            "SELECT r.referral_id, r.delivered_at, c.call_received_at FROM routing.referral r"
            " JOIN core.call c USING (agency_code, incident_id)"
            " WHERE r.delivered_at IS NOT NULL").fetchall()
        # delivered on the demo's nights (local midnight after a loaded day), after the call,
        # and received by the service at that same moment
        assert len(referrals) == len(held)
        for r in referrals:
            local = r["delivered_at"].astimezone(TZ)
            assert local.time() == time(0) and local <= midnight_after_last
            assert timedelta(0) < r["delivered_at"] - r["call_received_at"] < timedelta(days=3)
            assert datetime.fromisoformat(held[r["referral_id"]]["received_at"]) \
                == r["delivered_at"]
        events = conn.execute("SELECT event_type, occurred_at FROM routing.referral_event"
                              ).fetchall()
        assert max(e["occurred_at"] for e in events) <= midnight_after_last  # no future

        timeliness = {r["measure"]: r for r in conn.execute(
            "SELECT measure, n, median_hours FROM outcomes.timeliness"
            " WHERE agency_code = 'WPS' AND month = %s", (DEMO_START.replace(day=1),))}
        assert 0 < timeliness["call_to_referral"]["median_hours"] < 72
        assert timeliness["referral_to_first_contact"]["n"] > 0
        assert 0 < timeliness["referral_to_first_contact"]["median_hours"] < 14 * 24
        funnel = {r["step"]: r for r in conn.execute(
            "SELECT step, count, rate FROM outcomes.referral_funnel"
            " WHERE agency_code = 'WPS' AND month = %s", (DEMO_START.replace(day=1),))}
    # measured here: 26 referred, 24 attempted, 15 contacted, 7 engaged, 4 declined; medians
    # 11.4 h call to referral, 20.6 h to first contact ('unreachable' needs a week or more)
    for step in ("contact_attempted", "contacted", "engaged", "declined"):
        assert funnel[step]["count"] > 0, step

    # the 48-hour service level is judged on the demo's clock too: the referrals of the last
    # two nights are not overdue (against today's clock every uncontacted one would be)
    from upstream.outcomes import service_level

    with psycopg.connect(warehouse_url, row_factory=dict_row) as conn:
        could_be_late = conn.execute(
            "SELECT count(*) AS n FROM routing.referral WHERE delivered_at <= %s",
            (midnight_after_last - timedelta(hours=48),)).fetchone()["n"]
        open_now = conn.execute(
            "SELECT count(*) AS n FROM routing.referral r WHERE status = 'delivered' AND NOT"
            " EXISTS (SELECT 1 FROM routing.referral_event e WHERE e.referral_id = r.referral_id"
            " AND e.event_type IN ('contacted', 'engaged', 'declined', 'unreachable',"
            " 'withdrawn', 'closed'))").fetchone()["n"]
    overdue = service_level.uncontacted_48h(warehouse_url).get("WPS", 0)
    assert overdue <= could_be_late < len(referrals) and overdue < open_now

    # the page: every rate above 100% carries its explanation
    snapshot = data.load(Filters("WPS"), url=warehouse_url)
    page = render.render_page(snapshot)
    shown = snapshot.tables["referral_funnel"]
    over = [r for r in shown if r["rate"] is not None and r["rate"] > 1]
    flagged = re.findall(r'<td[^>]*data-col="rate"[^>]*data-note="over-base"', page)
    assert len(flagged) == len(over)
    for r in over:
        assert escape(render.over_base_reason(r["step"])) in page
    assert snapshot.build is not None and snapshot.build["reference_date"] == end
