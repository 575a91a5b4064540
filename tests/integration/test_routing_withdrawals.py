"""Withdrawal reaches the outreach server whenever it might hold the data (issue 9).

A referral sent at least once without a confirmed answer (stored-then-500, a worker killed
mid-send, a pre-commit 503, parked on 422) that stops being sendable gets the withdrawal call;
the answer (200 held / 404 never held) is recorded on the audit log. Real reference service
over HTTP, real PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date

import psycopg
import pytest
from support.rows import CHARGED, load, route, row

from upstream import routing

pytestmark = pytest.mark.integration

DAY1, DAY2 = date(2024, 6, 1), date(2024, 6, 2)


@pytest.fixture
def settings(upstream_env, outreach):
    """Settings read after the outreach fixture pointed Upstream at the reference service."""
    from upstream.settings import load_settings

    return load_settings()


def _referral(url, incident: str) -> dict:
    with psycopg.connect(url, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute("SELECT * FROM routing.referral WHERE incident_id = %s",
                            (incident,)).fetchone()


def _audit(url, rid: str) -> list[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        return [tuple(r) for r in conn.execute(
            "SELECT action, outcome FROM routing.disclosure_audit WHERE referral_id = %s"
            " ORDER BY audit_id", (rid,))]


def _send_unconfirmed(settings, outreach, how: str) -> None:
    """Incident 1 is sent and the answer is lost, in one of the ways the issue names."""
    routing.plan_referrals(settings=settings)
    if how == "stored_then_500":
        outreach.set_faults(error_after_commit_rate=1.0)
        with pytest.raises(routing.TransientDeliveryError):
            routing.deliver_referrals(settings, policy=routing.RetryPolicy(max_attempts=1))
    elif how == "killed_mid_send":
        outreach.set_faults(slow_rate=1.0, slow_ms=20000)  # stored, the answer held back
        worker = subprocess.Popen(
            [sys.executable, "-c", "from upstream import routing; routing.deliver_referrals()"],
            env=dict(os.environ), start_new_session=True)
        try:
            deadline = time.monotonic() + 30
            while not outreach.referrals() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert outreach.referrals(), "the referral reached the server"
        finally:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)
    elif how == "503_before_storing":
        outreach.set_faults(error_rate=1.0)
        with pytest.raises(routing.TransientDeliveryError):
            routing.deliver_referrals(settings, policy=routing.RetryPolicy(max_attempts=1))
    outreach.set_faults(error_after_commit_rate=0, slow_rate=0, error_rate=0)


@pytest.mark.parametrize("how", ["stored_then_500", "killed_mid_send"])
def test_withdrawn_after_a_lost_answer_is_withdrawn_at_the_server(settings, outreach,
                                                                  warehouse_url, how):
    load(settings, DAY1, [row(1, DAY1)])
    _send_unconfirmed(settings, outreach, how)
    ref = _referral(warehouse_url, "WPS-2024-000001")
    assert ref["status"] == "pending" and ref["attempts"] >= 1
    assert outreach.referrals()[0]["contact_present"]  # the server holds the contact details

    load(settings, DAY2, [row(1, DAY1, version=2, consent_status="withdrawn")])
    delivered, withdrawn = route(settings)
    assert delivered.attempts == 0, "nothing is sent for a withdrawn case"
    assert withdrawn.withdrawn == 1
    (held,) = outreach.referrals()
    assert held["status"] == "withdrawn" and not held["contact_present"]
    ref = _referral(warehouse_url, "WPS-2024-000001")
    assert ref["status"] == "withdrawn" and ref["withdrawn_at"] is not None
    steps = _audit(warehouse_url, ref["referral_id"])
    assert steps[0] == ("disclosure_attempt", "sending")
    assert steps[-1] == ("withdrawal", "200 withdrawn: the server held it after an unconfirmed send")
    # quiescent: a further run does nothing
    delivered, withdrawn = route(settings)
    assert delivered.attempts == 0 and withdrawn.confirmed == 0


def test_an_attempt_the_server_never_stored_is_recorded_as_never_held(settings, outreach,
                                                                      warehouse_url):
    load(settings, DAY1, [row(1, DAY1)])
    _send_unconfirmed(settings, outreach, "503_before_storing")
    assert outreach.referrals() == []
    load(settings, DAY2, [row(1, DAY1, version=2, consent_status="withdrawn")])
    _, withdrawn = route(settings)
    assert withdrawn.never_held == 1  # 404: recorded, not an error
    ref = _referral(warehouse_url, "WPS-2024-000001")
    assert ref["status"] == "cancelled" and ref["withdrawn_at"] is not None
    assert _audit(warehouse_url, ref["referral_id"])[-1] == (
        "withdrawal", "404 never held: the unconfirmed send had not reached the server")


def test_a_charge_after_a_lost_answer_is_resolved_without_sending_again(settings, outreach,
                                                                       warehouse_url):
    load(settings, DAY1, [row(1, DAY1)])
    _send_unconfirmed(settings, outreach, "stored_then_500")
    posts_before = len([r for r in outreach.requests_log() if r["route"] == "create"])
    load(settings, DAY2, [row(1, DAY1, version=2, **CHARGED)])
    _, withdrawn = route(settings)
    log = outreach.requests_log()
    # no replay of a case that is no longer eligible: the withdrawal call finds out instead
    assert len([r for r in log if r["route"] == "create"]) == posts_before
    assert [r["route"] for r in log][-1] == "withdraw"
    assert withdrawn.withdrawn == 1 and not outreach.referrals()[0]["contact_present"]
    ref = _referral(warehouse_url, "WPS-2024-000001")
    assert ref["status"] == "withdrawn" and ref["status_reason"] == "charged after an unconfirmed send"


def test_parked_on_422_then_withdrawn_gets_the_withdrawal_call(settings, outreach,
                                                              warehouse_url):
    load(settings, DAY1, [row(1, DAY1, victim_language="zz")])
    delivered, _ = route(settings)
    assert delivered.parked == 1
    load(settings, DAY2, [row(1, DAY1, version=2, victim_language="zz",
                              consent_status="withdrawn")])
    _, withdrawn = route(settings)
    assert withdrawn.never_held == 1
    assert [r["route"] for r in outreach.requests_log()] == ["create", "withdraw"]
    # final: the data team's re-try of parked referrals does not bring it back
    assert routing.retry_parked(None) == 0


def test_a_never_sent_referral_is_cancelled_without_any_call(settings, outreach,
                                                            warehouse_url):
    load(settings, DAY1, [row(1, DAY1)])
    routing.plan_referrals(settings=settings)  # planned, not sent
    load(settings, DAY2, [row(1, DAY1, version=2, consent_status="withdrawn")])
    route(settings)
    assert outreach.requests_log() == []
    assert _referral(warehouse_url, "WPS-2024-000001")["status"] == "cancelled"
