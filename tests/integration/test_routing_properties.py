"""Property (issue 9): over random extracts with corrections and withdrawals, imported
history and random fault schedules (stored-then-500, dropped connections, 429 bursts, server
restarts, the worker SIGKILLed between send and commit), once routing has run to quiescence:

* the outreach server holds contact details for exactly the cases that are currently
  eligible and were delivered (plus those delivered before a charge: the referral stands),
  and for no withdrawn case;
* no case was ever sent twice under two referral ids;
* no ineligible case, and nothing from history outside the referral window, was ever sent:
  checked on the server's request log, not on the final state only.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from upstream import ingest, routing
from upstream.dev import generate

pytestmark = pytest.mark.integration

TZ = ZoneInfo("America/Toronto")
DAYS = [date(2024, 7, 1), date(2024, 7, 2), date(2024, 7, 3)]
CONTRACT = {"referral_id", "agency_code", "incident_ref", "call_received_at", "call_type",
            "contact", "triage", "consent"}
CONTACT = {"given_name", "family_name", "phone", "email", "preferred_contact",
           "safe_contact_notes", "language"}
TRIAGE = {"priority", "flags", "prior_ipv_calls_365d"}
CONSENT = {"recorded_at", "officer_id"}
STATES = ["charged", "given", "declined", "not_asked", "unable_to_ask"]
CHANGES = [None, "charge", "withdraw", "give", "decline"]


def _state_fields(state: str) -> dict:
    if state == "charged":
        return {"clearance_status": "cleared_by_charge", "charges_laid": 1,
                "consent_status": "not_applicable"}
    return {"clearance_status": "cleared_otherwise_complainant_request", "charges_laid": 0,
            "consent_status": state}


def _apply(state: str, change: str | None) -> str:
    return {None: state, "charge": "charged", "withdraw": "withdrawn" if state == "given" else state,
            "give": "given" if state != "charged" else state,
            "decline": "declined" if state != "charged" else state}[change]


def _row(n: int, version: int, state: str) -> dict:
    rng = random.Random(n)
    at = datetime(2024, 7, 1, 8, 0, tzinfo=TZ) + timedelta(minutes=7 * n)
    row = generate.make_row(rng, "WPS", f"WPS-2024-{n:06d}", at, consent_status="given",
                            clearance_status="not_cleared", charges_laid=0)
    # unique canaries: any leak of a non-eligible version is traceable to its row
    row.update(victim_given_name=f"Canary{n}v{version}", victim_family_name=f"Fam{n}v{version}",
               victim_email=f"c{n}v{version}@example.org", record_version=version,
               consent_recorded_at=at + timedelta(hours=version),
               **_state_fields("given" if state == "withdrawn" else state))
    if state == "withdrawn":
        row["consent_status"] = "withdrawn"
    return row


# Imported history in the first file (a call may reappear in a later day's file): consented,
# never charged, but before the program's launch or older than the referral window.
HISTORY = {901: datetime(2024, 4, 12, 10, 0, tzinfo=TZ), 902: datetime(2024, 5, 20, 10, 0, tzinfo=TZ)}
FAULTS = ["none", "stored_then_500", "drop", "throttle", "restart", "killed"]

incident_plans = st.lists(
    st.tuples(st.sampled_from(STATES), st.sampled_from(CHANGES), st.sampled_from(CHANGES),
              st.booleans()),
    min_size=2, max_size=6)
fault_schedules = st.lists(st.sampled_from(FAULTS), min_size=len(DAYS), max_size=len(DAYS))


def _history_row(n: int) -> dict:
    rng = random.Random(n)
    return generate.make_row(rng, "WPS", f"WPS-2024-{n:06d}", HISTORY[n],
                             consent_status="given", charges_laid=0,
                             clearance_status="cleared_otherwise_complainant_request",
                             victim_given_name=f"History{n}")


def _pending(url) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM routing.referral WHERE status = 'pending'"
                            " AND withdrawal_requested_at IS NULL").fetchone()[0]


def _faulty_routing_run(fault: str, outreach, s, seed: int, url: str) -> None:
    """One routing run (plan, deliver, withdraw) under one kind of trouble; whatever it leaves
    unfinished stays in the outbox for the next run, as in production."""
    quick = routing.RetryPolicy(max_attempts=2, backoff_seconds=0.01,
                                max_retry_after_seconds=0.05, max_throttled=3)
    routing.plan_referrals(settings=s)
    if fault == "stored_then_500":
        outreach.set_faults(error_after_commit_rate=0.6, seed=seed)
    elif fault == "drop":
        outreach.set_faults(drop_connection_rate=0.4, drop_after_commit_rate=0.3, seed=seed)
    elif fault == "throttle":
        outreach.set_faults(rate_limit_per_second=2, rate_limit_burst=1)
    restarter = None
    if fault == "restart":
        outreach.set_faults(latency_ms=150)
        restarter = threading.Thread(target=lambda: (time.sleep(0.2), outreach.restart(hard=True)))
        restarter.start()
    if fault == "killed" and _pending(url):
        outreach.set_faults(slow_rate=1.0, slow_ms=20000)
        before = len(outreach.requests_log())
        worker = subprocess.Popen(
            [sys.executable, "-c", "from upstream import routing; routing.deliver_referrals()"],
            env=dict(os.environ), start_new_session=True)
        try:
            deadline = time.monotonic() + 20
            while len(outreach.requests_log()) == before and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:  # killed between send and commit (or idle: nothing was due)
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)
        outreach.set_faults(slow_rate=0)
    else:
        for step in (routing.deliver_referrals, routing.propagate_withdrawals):
            try:
                step(s, policy=quick)
            except routing.TransientDeliveryError:
                pass  # retried by the next run
    if restarter is not None:
        restarter.join()
    outreach.set_faults(error_after_commit_rate=0, drop_connection_rate=0,
                        drop_after_commit_rate=0, rate_limit_per_second=None, latency_ms=0)


def _route_to_quiescence(s) -> None:
    for _ in range(3):
        routing.plan_referrals(settings=s)
        delivered = routing.deliver_referrals(s)
        withdrawn = routing.propagate_withdrawals(s)
        if delivered.attempts == 0 and withdrawn.confirmed == 0:
            return
    raise AssertionError("routing did not reach quiescence in three clean runs")


def _incident(body: dict) -> int:
    return int(body["incident_ref"].rsplit("-", 1)[1])


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(plans=incident_plans, faults=fault_schedules, seed=st.integers(0, 10_000))
def test_outreach_holds_exactly_the_eligible(plans, faults, seed, upstream_env, outreach,
                                              warehouse_url, reset_warehouse):
    import shutil

    from upstream.settings import load_settings

    reset_warehouse()
    outreach.reset()
    s = load_settings()
    shutil.rmtree(s.landing.dir, ignore_errors=True)

    states = {n: plan[0] for n, plan in enumerate(plans, start=1)}
    versions = dict.fromkeys(states, 1)
    was_given: set[int] = set()
    sendable_at_step: list[dict[int, int]] = []  # per step: incident -> its eligible version
    log_marks: list[int] = []
    for step, day in enumerate(DAYS):
        rows = [_history_row(n) for n in HISTORY] if step == 0 else []
        for n, (_, change1, change2, _late) in enumerate(plans, start=1):
            change = None if step == 0 else (change1 if step == 1 else change2)
            if step:
                if change == "give" and n in was_given:
                    change = None  # a withdrawal is final for an incident's referral
                if change is None:
                    continue
                states[n] = _apply(states[n], change)
                versions[n] += 1
            rows.append(_row(n, versions[n], states[n]))
            if states[n] == "given":
                was_given.add(n)
        generate.write_extract(s.landing.dir, "WPS", day, rows)
        ingest.load_extract("WPS", day, s)
        sendable_at_step.append({n: versions[n] for n, st_ in states.items() if st_ == "given"})
        log_marks.append(len(outreach.requests_log()))
        _faulty_routing_run(faults[step], outreach, s, seed + step, warehouse_url)
    log_marks.append(len(outreach.requests_log()))
    _route_to_quiescence(s)
    log = outreach.requests_log()

    # --- nothing ineligible was ever sent (the server's request log, step by step) ---
    for step in range(len(DAYS)):
        end = log_marks[step + 1] if step + 1 < len(DAYS) else len(log)
        for entry in log[log_marks[step]:end]:
            if entry["route"] != "create":
                continue
            payload = json.loads(entry["body"])
            n = _incident(payload)
            assert n not in HISTORY, "history outside the referral window was sent"
            assert n in sendable_at_step[min(step, len(DAYS) - 1)], f"ineligible case {n} sent"
            assert payload["contact"]["given_name"] == \
                f"Canary{n}v{sendable_at_step[min(step, len(DAYS) - 1)][n]}", "stale version sent"
    creates = [json.loads(e["body"]) for e in log if e["route"] == "create"]
    for payload in creates:
        assert set(payload) == CONTRACT and set(payload["contact"]) == CONTACT
        assert set(payload["triage"]) == TRIAGE and set(payload["consent"]) == CONSENT
    # --- no case under two referral ids ---
    ids_per_case: dict[int, set[str]] = {}
    for entry in log:
        if entry["route"] == "create":
            ids_per_case.setdefault(_incident(json.loads(entry["body"])), set()).add(entry["key"])
    assert all(len(ids) == 1 for ids in ids_per_case.values())
    assert all(e["body"] == "" for e in log if e["route"] == "withdraw")

    # --- the final state ---
    held = {_incident(r["payload"]): r for r in outreach.referrals()}
    with psycopg.connect(warehouse_url) as conn:
        outbox = {int(i.rsplit("-", 1)[1]): (st_, charged) for i, st_, charged in conn.execute(
            "SELECT incident_id, status, charged_after_delivery FROM routing.referral")}
    eligible_now = {n for n, st_ in states.items() if st_ == "given"}
    # delivered (confirmed) and charged since: the referral stands (the person consented)
    stands = {n for n, (st_, charged) in outbox.items() if st_ == "delivered" and charged}
    with_contact = {n for n, r in held.items() if r["contact_present"]}
    assert with_contact == eligible_now | stands
    assert not with_contact & {n for n, st_ in states.items() if st_ in ("withdrawn", "declined")}
    assert all(outbox[n][0] == "expired" for n in HISTORY)


def test_withdrawal_end_to_end_deletes_contact_everywhere(upstream_env, outreach, warehouse_url):
    from upstream.settings import load_settings

    s = load_settings()
    first = _row(1, 1, "given")
    generate.write_extract(s.landing.dir, "WPS", DAYS[0], [first])
    ingest.load_extract("WPS", DAYS[0], s)
    routing.plan_referrals()
    routing.deliver_referrals(s)
    generate.write_extract(s.landing.dir, "WPS", DAYS[1], [_row(1, 2, "withdrawn")])
    ingest.load_extract("WPS", DAYS[1], s)
    routing.plan_referrals()
    assert routing.propagate_withdrawals(s).withdrawn == 1
    assert routing.propagate_withdrawals(s).confirmed == 0  # nothing left to do
    with psycopg.connect(warehouse_url) as conn:
        assert conn.execute("SELECT count(*) FROM contact.victim_contact").fetchone()[0] == 0
        status, withdrawn_at = conn.execute(
            "SELECT status, withdrawn_at FROM routing.referral").fetchone()
        audit = conn.execute("SELECT outcome FROM routing.disclosure_audit"
                             " WHERE action = 'withdrawal'").fetchall()
    assert status == "withdrawn" and withdrawn_at is not None
    assert audit == [("200 withdrawn",)]
    (held,) = outreach.referrals()
    assert held["status"] == "withdrawn" and held["contact"] is None
    with httpx.Client(base_url=str(outreach),
                      headers={"Authorization": f"Bearer {outreach.token}"}) as client:
        assert client.post(f"/v1/referrals/{held['referral_id']}/withdrawal").status_code == 200
