"""clock_follows_client: a replay (the demo) dates its requests, and the service keeps the
client's calendar: referrals are received, worked and withdrawn on the days being replayed.
Off by default: the Date header is then ignored."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from outreach_helpers import SEED, TOKEN, all_events, make_referral, post_referral

from outreach_ref import ServiceConfig
from outreach_ref.service import Clock, client_date
from outreach_ref.testing import run_server

NIGHT = datetime(2024, 5, 8, 4, 0, tzinfo=UTC)  # 00:00 in Toronto: the demo's routing clock


def _dated(moment: datetime) -> dict[str, str]:
    return {"Date": format_datetime(moment, usegmt=True)}


def test_clock_follow_moves_forward_only():
    clock = Clock()
    assert clock.follow(NIGHT) and clock.now() == NIGHT
    assert not clock.follow(NIGHT - timedelta(hours=1)) and clock.now() == NIGHT
    assert clock.follow(NIGHT + timedelta(days=1)) and clock.now() == NIGHT + timedelta(days=1)
    assert clock.describe()["frozen"] is True


@pytest.mark.parametrize(("raw", "expected"), [
    ("Wed, 08 May 2024 04:00:00 GMT", NIGHT),
    ("Wednesday, 08-May-24 04:00:00 GMT", NIGHT),   # RFC 850, obsolete but readable
    ("Wed, 08 May 2024 00:00:00 -0400", NIGHT),
    ("yesterday", None),
    ("", None),
    ("Wed, 08 May 2024 04:00:00 -0000", None),      # "-0000": zone unknown (naive)
])
def test_client_date_reads_http_dates(raw, expected):
    assert client_date({"date": raw} if raw else {}) == expected


@pytest.fixture(scope="module")
def following() -> Iterator:
    with run_server(ServiceConfig(token=TOKEN, seed=SEED, clock_follows_client=True,
                                  timezone="America/Toronto")) as server:
        yield server


def test_referrals_are_received_and_worked_on_the_clients_calendar(following):
    following.reset()
    with following.client() as api:
        body = make_referral("r_clock_1", triage={"priority": "standard", "flags": [],
                                                  "prior_ipv_calls_365d": 0})
        created = api.post("/v1/referrals", json=body,
                           headers={"Idempotency-Key": body["referral_id"], **_dated(NIGHT)})
        assert created.status_code == 201, created.text
        held = following.referral("r_clock_1")
        assert datetime.fromisoformat(held["received_at"]) == NIGHT
        assert held["received_at"].endswith("-04:00")  # rendered in the configured zone

        # the same night: nothing has happened yet
        page = api.get("/v1/referral-events", params={"limit": 100}, headers=_dated(NIGHT))
        assert [e["type"] for e in page.json()["events"]] == ["received"]

        # ten days later on the client's calendar: the worker's whole plan has run by then
        later = NIGHT + timedelta(days=10)
        api.get("/v1/referral-events", params={"limit": 1}, headers=_dated(later))
        events, _ = all_events(api)
        times = [datetime.fromisoformat(e["occurred_at"]) for e in events]
        assert len(events) > 2 and all(NIGHT <= t <= later for t in times)
        assert events[1]["type"] == "contact_attempted"
        assert timedelta(hours=1) <= times[1] - NIGHT <= timedelta(hours=12)

        # an earlier Date (a retry, a slower worker) never turns the clock back
        api.get("/v1/referral-events", headers=_dated(NIGHT))
        assert datetime.fromisoformat(following.clock()["now"]) == later


def test_withdrawal_and_no_date(following):
    following.reset()
    with following.client() as api:
        body = make_referral("r_clock_2")
        assert post_referral(api, body).status_code == 201  # no Date: the server's own clock
        received = datetime.fromisoformat(following.referral("r_clock_2")["received_at"])
        assert abs(received - datetime.now(UTC)) < timedelta(minutes=5)
        body = make_referral("r_clock_3")
        api.post("/v1/referrals", json=body,
                 headers={"Idempotency-Key": body["referral_id"], **_dated(NIGHT)})
        withdrawn_at = NIGHT + timedelta(hours=5)
        assert api.post("/v1/referrals/r_clock_3/withdrawal",
                        headers=_dated(withdrawn_at)).status_code == 200
        events, _ = all_events(api)
        withdrawn = [e for e in events if e["type"] == "withdrawn"]
        assert [datetime.fromisoformat(e["occurred_at"]) for e in withdrawn] == [withdrawn_at]


def test_date_is_ignored_by_default(outreach, api):
    body = make_referral("r_clock_4")
    response = api.post("/v1/referrals", json=body,
                        headers={"Idempotency-Key": body["referral_id"], **_dated(NIGHT)})
    assert response.status_code == 201
    received = datetime.fromisoformat(outreach.referral("r_clock_4")["received_at"])
    assert abs(received - datetime.now(UTC)) < timedelta(minutes=5)
    assert outreach.clock()["frozen"] is False
