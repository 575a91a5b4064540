"""One retry policy for every outreach call, exercised through the in-memory fake service."""

from __future__ import annotations

import pytest

from upstream.routing import OutreachAuthError, RetryPolicy
from upstream.routing.fake import InMemoryOutreachClient

PAYLOAD = {"referral_id": "r_1", "agency_code": "WPS", "incident_ref": "WPS-2024-000001",
           "contact": {"given_name": "A"}}


class Recorder:
    """Records the policy's pauses and jitter bounds instead of sleeping."""

    def __init__(self):
        self.sleeps: list[float] = []
        self.jitter_bounds: list[tuple[float, float]] = []

    def policy(self, **kw) -> RetryPolicy:
        def jitter(low, high):
            self.jitter_bounds.append((low, high))
            return high  # the top of the range: makes the cap visible
        return RetryPolicy(sleep=self.sleeps.append, jitter=jitter, **kw)


CALLS = {
    "send": lambda fake: fake.send(PAYLOAD),
    "withdraw": lambda fake: fake.withdraw("r_1"),
    "events": lambda fake: fake.events(None, 100),
}


def test_429_honours_retry_after_and_is_not_an_attempt():
    fake, rec = InMemoryOutreachClient(), Recorder()
    fake.fail_next("throttle", "throttle", "throttle", "error")
    answer = rec.policy(max_attempts=2).run(lambda: fake.send(PAYLOAD), what="a referral")
    assert answer.status == 201
    # three 429s waited their Retry-After (2 s); the one 503 backed off; 2 attempts sufficed
    assert rec.sleeps[:3] == [2.0, 2.0, 2.0] and len(rec.sleeps) == 4
    assert len(fake.requests) == 5


def test_retry_after_is_capped_and_throttling_is_bounded():
    fake, rec = InMemoryOutreachClient(), Recorder()
    fake.fail_next(*["throttle"] * 5)
    answer = rec.policy(max_throttled=3, max_retry_after_seconds=1.5).run(
        lambda: fake.send(PAYLOAD), what="a referral")
    assert answer.status == 429  # gave up: the caller keeps the referral queued
    assert rec.sleeps == [1.5, 1.5, 1.5] and len(fake.requests) == 4
    assert not fake.held


def test_unknown_outcomes_back_off_with_full_jitter_until_the_budget_is_spent():
    fake, rec = InMemoryOutreachClient(), Recorder()
    fake.fail_next("error", "drop", "error", "drop", "error")
    answer = rec.policy(max_attempts=4, backoff_seconds=0.5, max_backoff_seconds=1.5).run(
        lambda: fake.send(PAYLOAD), what="a referral")
    assert answer.unknown and answer.status is None  # the 4th answer: a dropped connection
    # tenacity also sizes the pause after the last attempt (then stops without sleeping)
    assert rec.jitter_bounds[:3] == [(0, 0.5), (0, 1.0), (0, 1.5)]  # doubling, capped
    assert rec.sleeps == [0.5, 1.0, 1.5] and len(fake.requests) == 4


def test_stored_then_500_is_resolved_by_a_replay():
    fake, rec = InMemoryOutreachClient(), Recorder()
    fake.fail_next("stored_then_error", "stored_then_drop")
    answer = rec.policy().run(lambda: fake.send(PAYLOAD), what="a referral")
    assert answer.status == 200  # the same key and payload: a replay, nothing new
    assert list(fake.held) == ["r_1"] and len(fake.requests) == 3


@pytest.mark.parametrize("call", sorted(CALLS))
@pytest.mark.parametrize("fault", ["unauthorized", "forbidden"])
def test_401_and_403_stop_every_call_at_once(call, fault):
    fake, rec = InMemoryOutreachClient(), Recorder()
    fake.fail_next(fault)
    with pytest.raises(OutreachAuthError, match="check the upstream_outreach connection"):
        rec.policy().run(lambda: CALLS[call](fake), what=call)
    assert len(fake.requests) == 1 and rec.sleeps == []


@pytest.mark.parametrize("call", sorted(CALLS))
def test_every_call_is_retried_the_same_way(call):
    fake, rec = InMemoryOutreachClient(), Recorder()
    fake.fail_next("throttle", "error", "drop")
    answer = rec.policy(max_attempts=3).run(lambda: CALLS[call](fake), what=call)
    assert answer.status in (200, 201, 404)
    assert rec.sleeps[0] == 2.0 and len(rec.sleeps) == 3 and len(fake.requests) == 4


def test_404_on_withdrawal_is_final():
    fake, rec = InMemoryOutreachClient(), Recorder()
    answer = rec.policy().run(lambda: fake.withdraw("r_unknown"), what="a withdrawal")
    assert answer.status == 404 and len(fake.requests) == 1 and rec.sleeps == []


def test_409_and_422_are_final_answers():
    fake, rec = InMemoryOutreachClient(), Recorder()
    fake.send(PAYLOAD)
    assert rec.policy().run(lambda: fake.send({**PAYLOAD, "call_type": "x"}),
                            what="a referral").status == 409
    fake.fail_next("reject")
    assert rec.policy().run(lambda: fake.send(PAYLOAD), what="a referral").status == 422
    assert rec.sleeps == []


def test_before_attempt_runs_before_every_request():
    fake, rec = InMemoryOutreachClient(), Recorder()
    fake.fail_next("throttle", "stored_then_error")
    seen: list[int] = []
    rec.policy().run(lambda: fake.send(PAYLOAD), what="a referral",
                     before_attempt=lambda: seen.append(len(fake.requests)))
    assert seen == [0, 1, 2]  # recorded before each of the three requests left


def test_withdrawal_deletes_what_the_fake_holds():
    fake = InMemoryOutreachClient()
    fake.send(PAYLOAD)
    assert fake.holds_contact("r_1")
    assert fake.withdraw("r_1").status == 200 and not fake.holds_contact("r_1")
    assert fake.withdraw("r_1").status == 200  # repeat calls are harmless
    page = fake.events(None, 10).body
    assert [e["type"] for e in page["events"]] == ["received", "withdrawn"]
    assert fake.events(page["next_cursor"], 10).body["events"] == []
