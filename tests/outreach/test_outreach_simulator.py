"""The outcome simulator: plausible, deterministic, idempotent, stops on withdrawal."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

from outreach_helpers import SEED, all_events, make_referral, post_referral

from outreach_ref.simulator import outcome_of, plan_events

T0 = datetime(2024, 6, 2, 2, 0, tzinfo=UTC)
FINAL_TYPES = ("engaged", "declined", "unreachable")


def _parse(ts: str) -> datetime:
    value = datetime.fromisoformat(ts)
    assert value.tzinfo is not None
    return value


def test_plan_is_deterministic_and_seed_dependent():
    assert plan_events(1, "r_abc", "urgent") == plan_events(1, "r_abc", "urgent")
    ids = [f"r_{i}" for i in range(50)]
    assert [plan_events(1, r) for r in ids] != [plan_events(2, r) for r in ids]


def test_plan_shapes_over_many_referrals():
    outcomes = Counter()
    for i in range(2000):
        plan = plan_events(SEED, f"r_plan_{i}", "urgent" if i % 3 == 0 else "standard")
        offsets = [p.offset_s for p in plan]
        assert offsets[0] >= 60 and offsets == sorted(offsets) and len(set(offsets)) == len(offsets)
        types = [p.type for p in plan]
        assert types[0] == "contact_attempted" and types[-1] == "closed"
        outcome = outcome_of(plan)
        outcomes[outcome] += 1
        if outcome == "unreachable":
            assert "contacted" not in types and types.count("contact_attempted") >= 3
        else:
            assert types.count("contacted") == 1
            assert types.index("contacted") < types.index(outcome)
    assert 0.45 <= outcomes["engaged"] / 2000 <= 0.55
    assert 0.20 <= outcomes["declined"] / 2000 <= 0.30
    assert 0.20 <= outcomes["unreachable"] / 2000 <= 0.30


def test_outcomes_over_400_referrals_through_the_api(outreach, api):
    outreach.set_clock(now=T0)
    ids = [f"r_sim_{i:03d}" for i in range(400)]
    for i, rid in enumerate(ids):
        priority = "urgent" if i % 4 == 0 else "standard"
        body = make_referral(
            rid, triage={"priority": priority, "flags": [], "prior_ipv_calls_365d": 0}
        )
        assert post_referral(api, body).status_code == 201
    # nothing has happened yet at T0
    events, cursor = all_events(api)
    assert {e["type"] for e in events} == {"received"}

    assert outreach.simulate(T0 + timedelta(days=60)) > 400
    more, _ = all_events(api, after=cursor)
    by_referral: dict[str, list[dict]] = defaultdict(list)
    for event in events + more:
        by_referral[event["referral_id"]].append(event)
    assert set(by_referral) == set(ids)

    finals = Counter()
    contact_delays = []
    for rid, evs in by_referral.items():
        types = [e["type"] for e in evs]
        times = [_parse(e["occurred_at"]) for e in evs]
        assert types[0] == "received" and types[-1] == "closed"
        received = times[0]
        assert all(t > received for t in times[1:]), rid
        assert times == sorted(times)
        assert types[1] == "contact_attempted"
        assert times[1] - received <= timedelta(hours=12)
        final = [t for t in types if t in FINAL_TYPES]
        assert len(final) == 1
        finals[final[0]] += 1
        if final[0] == "unreachable":
            assert "contacted" not in types
            assert types.count("contact_attempted") >= 2
        else:
            assert types.count("contacted") == 1
            contact_delays.append(times[types.index("contacted")] - received)
    assert 0.40 <= finals["engaged"] / 400 <= 0.60
    assert 0.17 <= finals["declined"] / 400 <= 0.33
    assert 0.17 <= finals["unreachable"] / 400 <= 0.33
    within_two_days = sum(d <= timedelta(days=2) for d in contact_delays) / len(contact_delays)
    assert 0.75 <= within_two_days < 1.0  # mostly, but some later

    assert outreach.simulate(T0 + timedelta(days=90)) == 0  # idempotent: all emitted


def test_advance_emits_only_due_events_once(outreach, api):
    outreach.set_clock(now=T0)
    post_referral(api, make_referral("r_partial"))
    plan = plan_events(SEED, "r_partial", "urgent")
    second = T0 + timedelta(seconds=plan[1].offset_s)
    assert outreach.simulate(second - timedelta(seconds=1)) == 1
    assert outreach.simulate(second - timedelta(seconds=1)) == 0
    assert outreach.simulate(second) == 1
    events, _ = all_events(api)
    assert [e["type"] for e in events] == ["received", plan[0].type, plan[1].type]
    assert _parse(events[2]["occurred_at"]) == second


def test_same_seed_same_story(outreach, api):
    def story() -> list[tuple[str, timedelta]]:
        outreach.reset()
        outreach.set_clock(now=T0)
        for rid in ("r_story_a", "r_story_b", "r_story_c"):
            post_referral(api, make_referral(rid))
        outreach.simulate(T0 + timedelta(days=40))
        events, _ = all_events(api)
        return [(e["referral_id"], e["type"], _parse(e["occurred_at"]) - T0) for e in events]

    first = story()
    assert len(first) > 9
    assert story() == first


def test_events_follow_the_server_clock_on_read(outreach, api):
    outreach.set_clock(now=T0)
    post_referral(api, make_referral("r_clock"))
    _, cursor = all_events(api)
    outreach.set_clock(now=T0 + timedelta(days=30))
    events, _ = all_events(api, after=cursor)  # simulate_on_read advances to the clock
    assert events and events[-1]["type"] == "closed"


def test_withdrawn_referrals_get_no_further_events(outreach, api):
    outreach.set_clock(now=T0)
    post_referral(api, make_referral("r_stop"))
    post_referral(api, make_referral("r_go"))
    outreach.simulate(T0 + timedelta(hours=13))  # first attempts happened
    outreach.set_clock(now=T0 + timedelta(hours=14))
    assert api.post("/v1/referrals/r_stop/withdrawal").status_code == 200
    outreach.simulate(T0 + timedelta(days=60))
    events, _ = all_events(api)
    stop = [e["type"] for e in events if e["referral_id"] == "r_stop"]
    assert stop[0] == "received" and stop[-1] == "withdrawn"
    assert "closed" not in stop
    go = [e["type"] for e in events if e["referral_id"] == "r_go"]
    assert go[-1] == "closed"
    withdrawn_at = _parse([e for e in events if e["type"] == "withdrawn"][0]["occurred_at"])
    assert withdrawn_at == T0 + timedelta(hours=14)
