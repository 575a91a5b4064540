"""History is never referred: only calls on or after the program's launch and at most
UPSTREAM_REFERRAL_MAX_AGE_DAYS old when routing runs are sent (issue 14)."""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta

import psycopg
import pytest
from support.rows import TZ, load, route, row

pytestmark = pytest.mark.integration


def _outbox(url) -> dict[str, tuple[str, str | None]]:
    with psycopg.connect(url) as conn:
        return {i: (s, r) for i, s, r in conn.execute(
            "SELECT incident_id, status, status_reason FROM routing.referral")}


def test_wall_clock_window_sends_only_recent_calls_after_launch(upstream_env, outreach,
                                                               warehouse_url, monkeypatch,
                                                               caplog):
    from upstream.settings import load_settings

    today = datetime.now(TZ).date()
    monkeypatch.setenv("UPSTREAM_ROUTING_CLOCK", "wall")
    monkeypatch.setenv("UPSTREAM_PROGRAM_LAUNCH_DATE", (today - timedelta(days=3)).isoformat())
    monkeypatch.setenv("UPSTREAM_REFERRAL_MAX_AGE_DAYS", "30")
    settings = load_settings()
    day = today - timedelta(days=1)
    recent = row(1, day, hour=1)
    before_launch = row(2, today - timedelta(days=5), hour=1)
    too_old = row(3, today - timedelta(days=40), hour=1)
    load(settings, day, [recent, before_launch, too_old])
    with caplog.at_level(logging.INFO, logger="upstream.routing"):
        delivered, _ = route(settings)
    assert delivered.delivered == 1
    sent = {r["payload"]["incident_ref"] for r in outreach.referrals()}
    assert sent == {recent["incident_id"]}
    outbox = _outbox(warehouse_url)
    assert outbox[before_launch["incident_id"]] == ("expired", "outside the referral window")
    assert outbox[too_old["incident_id"]] == ("expired", "outside the referral window")
    assert "2 eligible case(s) are outside the referral window" in caplog.text
    assert [r["route"] for r in outreach.requests_log()] == ["create"]
    # the funnel counts them as "not referred: outside the referral window"
    from upstream import outcomes

    outcomes.rebuild_outcomes(warehouse_url)
    with psycopg.connect(warehouse_url) as conn:
        steps = dict(conn.execute(
            "SELECT step, sum(count) FROM outcomes.referral_funnel"
            " WHERE step IN ('referred', 'not_referred_outside_window') AND NOT all_months"
            " GROUP BY step"))
    assert steps == {"referred": 1, "not_referred_outside_window": 2}


def test_a_referral_never_sent_expires_when_it_ages_out(upstream_env, outreach, warehouse_url,
                                                       monkeypatch):
    from upstream import routing
    from upstream.settings import load_settings

    monkeypatch.setenv("UPSTREAM_REFERRAL_MAX_AGE_DAYS", "30")
    settings = load_settings()
    first = date(2024, 6, 1)
    load(settings, first, [row(1, first)])
    routing.plan_referrals(settings=settings)  # planned; delivery did not run that night
    later = first + timedelta(days=45)  # the demo/test clock: the newest loaded call's day
    load(settings, later, [row(2, later)])
    delivered, _ = route(settings)
    assert delivered.delivered == 1
    assert {r["payload"]["incident_ref"] for r in outreach.referrals()} == {"WPS-2024-000002"}
    assert _outbox(warehouse_url)["WPS-2024-000001"][0] == "expired"
