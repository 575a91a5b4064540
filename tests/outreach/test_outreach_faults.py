"""Fault injection of the reference Outreach server."""

from __future__ import annotations

import time

import httpx
import pytest
from outreach_helpers import all_events, make_referral, post_referral


def test_rate_limit_answers_429_with_retry_after(outreach, api):
    outreach.set_faults(rate_limit_per_second=3, rate_limit_burst=3)
    responses = [api.get("/v1/referral-events") for _ in range(12)]
    statuses = [r.status_code for r in responses]
    assert statuses[:3] == [200, 200, 200]
    limited = [r for r in responses if r.status_code == 429]
    assert len(limited) >= 3
    for response in limited:
        retry_after = response.headers["Retry-After"]
        assert retry_after.isdigit() and int(retry_after) >= 1
    time.sleep(int(limited[-1].headers["Retry-After"]))
    assert api.get("/v1/referral-events").status_code == 200
    # a rate-limited POST did nothing
    outreach.set_faults(rate_limit_per_second=0.5, rate_limit_burst=1)
    assert post_referral(api, make_referral("r_rl_1")).status_code == 201
    assert post_referral(api, make_referral("r_rl_2")).status_code == 429
    assert [r["referral_id"] for r in outreach.referrals()] == ["r_rl_1"]
    # the admin surface is not rate limited
    assert outreach.stats()["counters"]["rate_limited"] >= 1


def _status_run(api: httpx.Client, prefix: str, n: int) -> list[int]:
    return [post_referral(api, make_referral(f"{prefix}_{i:03d}")).status_code for i in range(n)]


def test_error_rate_is_roughly_honoured_before_anything_is_done(outreach, api):
    outreach.set_faults(error_rate=0.3)
    statuses = _status_run(api, "r_err", 300)
    errors = [s for s in statuses if s >= 500]
    assert set(statuses) <= {201, 500, 502, 503, 504}
    assert 0.2 * 300 <= len(errors) <= 0.4 * 300
    assert len(set(errors)) >= 3  # the 5xx flavours vary
    held = outreach.referrals()
    assert len(held) == statuses.count(201)  # an injected error stored nothing
    events, _ = all_events(api)
    assert len(events) == statuses.count(201)


def test_fault_sequence_is_deterministic_for_a_seed(outreach, api):
    outreach.set_faults(error_rate=0.25, seed=99)
    first = _status_run(api, "r_det", 60)
    outreach.reset()
    outreach.set_faults(error_rate=0.25, seed=99)
    second = _status_run(api, "r_det", 60)
    assert first == second
    outreach.reset()
    outreach.set_faults(error_rate=0.25, seed=100)
    assert _status_run(api, "r_det", 60) != first


def test_error_after_commit_stores_then_replay_is_200(outreach, api):
    outreach.set_faults(error_after_commit_rate=1.0)
    body = make_referral("r_lost")
    response = post_referral(api, body)
    assert response.status_code == 500
    assert outreach.referral("r_lost")["contact_present"] is True
    outreach.set_faults(error_after_commit_rate=0.0)
    replay = post_referral(api, body)
    assert replay.status_code == 200
    assert replay.json() == {"referral_id": "r_lost", "status": "received"}
    events, _ = all_events(api)
    assert [e["type"] for e in events] == ["received"]
    # a request that fails validation is not turned into a 500
    outreach.set_faults(error_after_commit_rate=1.0)
    assert post_referral(api, make_referral("r_bad", narrative="x")).status_code == 422


def test_error_after_commit_rate_roughly_honoured(outreach, api):
    outreach.set_faults(error_after_commit_rate=0.2)
    statuses = _status_run(api, "r_eac", 200)
    assert set(statuses) <= {201, 500}
    assert 0.1 * 200 <= statuses.count(500) <= 0.3 * 200
    assert len(outreach.referrals()) == 200  # every one was stored


def test_drop_connection_is_a_transport_error_and_stores_nothing(outreach, api):
    outreach.set_faults(drop_connection_rate=1.0)
    body = make_referral("r_drop")
    with pytest.raises(httpx.TransportError):
        post_referral(api, body)
    assert outreach.referrals() == []
    outreach.set_faults(drop_connection_rate=0.0)
    assert post_referral(api, body).status_code == 201


def test_drop_after_commit_stores_then_replay_is_200(outreach, api):
    outreach.set_faults(drop_after_commit_rate=1.0)
    body = make_referral("r_drop_after")
    with pytest.raises(httpx.TransportError):
        post_referral(api, body)
    assert outreach.referral("r_drop_after")["contact_present"] is True
    outreach.set_faults(drop_after_commit_rate=0.0)
    assert post_referral(api, body).status_code == 200


def test_mixed_faults_a_retrying_client_ends_with_everything_exactly_once(outreach, api):
    outreach.set_faults(
        error_rate=0.15,
        drop_connection_rate=0.1,
        error_after_commit_rate=0.1,
        drop_after_commit_rate=0.1,
    )
    outcomes: dict[str, list] = {}
    for i in range(60):
        body = make_referral(f"r_mix_{i:02d}")
        seen = []
        for _attempt in range(50):
            try:
                response = post_referral(api, body)
            except httpx.TransportError:
                seen.append("transport")
                continue
            seen.append(response.status_code)
            if response.status_code in (200, 201):
                break
        outcomes[body["referral_id"]] = seen
    assert all(seen[-1] in (200, 201) for seen in outcomes.values())
    assert any("transport" in seen for seen in outcomes.values())
    assert any(seen[-1] == 200 for seen in outcomes.values())  # a lost response, replayed
    assert len(outreach.referrals()) == 60
    events, _ = all_events(api)
    assert sorted(e["referral_id"] for e in events) == sorted(outcomes)


def test_slow_requests_time_out_client_side_but_are_processed(outreach, api):
    outreach.set_faults(slow_rate=1.0, slow_ms=600)
    body = make_referral("r_slow")
    with pytest.raises(httpx.ReadTimeout):
        api.post("/v1/referrals", json=body, headers={"Idempotency-Key": "r_slow"}, timeout=0.2)
    deadline = time.monotonic() + 3
    while outreach.referral("r_slow") is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert outreach.referral("r_slow") is not None
    outreach.set_faults(slow_rate=0.0)
    assert post_referral(api, body).status_code == 200


def test_latency_applies_to_every_contract_route(outreach, api):
    outreach.set_faults(latency_ms=150)
    started = time.monotonic()
    api.get("/v1/referral-events")
    assert time.monotonic() - started >= 0.15


def test_faults_only_hit_the_configured_routes(outreach, api):
    outreach.set_faults(error_rate=1.0)  # default fault_routes: create only
    assert api.get("/v1/referral-events").status_code == 200
    assert post_referral(api, make_referral("r_route")).status_code >= 500
    outreach.set_faults(error_rate=1.0, fault_routes=["events", "withdraw"])
    assert api.get("/v1/referral-events").status_code >= 500
    assert api.post("/v1/referrals/r_route/withdrawal").status_code >= 500
    assert post_referral(api, make_referral("r_route")).status_code == 201


def test_event_redelivery_is_at_least_once_without_losses(outreach, api):
    for i in range(30):
        post_referral(api, make_referral(f"r_redeliver_{i:02d}"))
    outreach.set_faults(event_redelivery_rate=1.0)
    events, _ = all_events(api, limit=8)
    ids = [e["event_id"] for e in events]
    assert len(ids) > len(set(ids)) == 30  # duplicates, but nothing lost


def test_fault_settings_are_validated(outreach):
    with pytest.raises(httpx.HTTPStatusError):
        outreach.set_faults(error_rate=1.5)
    with pytest.raises(httpx.HTTPStatusError):
        outreach.set_faults(error_rate=0.6, drop_connection_rate=0.6)
    with pytest.raises(httpx.HTTPStatusError):
        outreach.set_faults(no_such_fault=1)
    assert outreach.faults()["error_rate"] == 0.0
