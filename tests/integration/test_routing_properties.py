"""Property: over random extracts with corrections and withdrawals, the outreach side holds
exactly the eligible referrals, and no request body carries a field outside the contract or a
value from a row that was not eligible when it was sent."""

from __future__ import annotations

import json
import random
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from upstream import generate, ingest, routing

pytestmark = pytest.mark.integration

TZ = ZoneInfo("America/Toronto")
DAYS = [date(2024, 7, 1), date(2024, 7, 2), date(2024, 7, 3)]
CONTRACT = {"referral_id", "agency_code", "incident_ref", "call_received_at", "call_type",
            "contact", "triage", "consent"}
CONTACT = {"given_name", "family_name", "phone", "email", "preferred_contact",
           "safe_contact_notes", "language"}
TRIAGE = {"priority", "flags", "prior_ipv_calls_365d"}
CONSENT = {"recorded_at", "officer_id"}

ORIGINAL_CLIENT = routing._client
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


incident_plans = st.lists(
    st.tuples(st.sampled_from(STATES), st.sampled_from(CHANGES), st.sampled_from(CHANGES),
              st.booleans()),
    min_size=2, max_size=6)


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(plans=incident_plans)
def test_outreach_holds_exactly_the_eligible(plans, upstream_env, outreach, warehouse_url,
                                              monkeypatch, reset_warehouse):
    from upstream.config import load_settings

    reset_warehouse()
    outreach.reset()
    s = load_settings()
    import shutil

    shutil.rmtree(s.landing_dir, ignore_errors=True)

    bodies: list[dict] = []

    def capturing_client(settings):
        client = ORIGINAL_CLIENT(settings)
        client.event_hooks["request"].append(
            lambda request: bodies.append({"url": str(request.url), "body": request.content}))
        return client

    monkeypatch.setattr(routing, "_client", capturing_client)

    states = {n: plan[0] for n, plan in enumerate(plans, start=1)}
    versions = dict.fromkeys(states, 1)
    ever_delivered: set[int] = set()
    was_given: set[int] = set()
    withdrawn_ids: set[int] = set()
    ineligible_canaries: set[str] = set()
    for step, day in enumerate(DAYS):
        rows = []
        for n, (_, change1, change2, _late) in enumerate(plans, start=1):
            change = None if step == 0 else (change1 if step == 1 else change2)
            if step and change is None:
                continue
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
            if states[n] != "given":
                ineligible_canaries.add(f"Canary{n}v{versions[n]}")
        generate.write_extract(s.landing_dir, "WPS", day, rows)
        ingest.load_extract("WPS", day, s)
        before = len(bodies)
        routing.plan_referrals()
        routing.deliver_referrals(s)
        routing.propagate_withdrawals(s)
        for b in bodies[before:]:
            if b["url"].endswith("/v1/referrals"):
                payload = json.loads(b["body"])
                ever_delivered.add(int(payload["incident_ref"].rsplit("-", 1)[1]))
        for b in bodies:
            text = b["body"].decode()
            assert not any(c in text for c in ineligible_canaries), "ineligible value sent"
        withdrawn_ids |= {n for n in ever_delivered if states[n] in ("withdrawn", "declined")}

    for b in bodies:
        if b["url"].endswith("/v1/referrals"):
            payload = json.loads(b["body"])
            assert set(payload) == CONTRACT
            assert set(payload["contact"]) == CONTACT
            assert set(payload["triage"]) == TRIAGE
            assert set(payload["consent"]) == CONSENT
        else:
            assert b["body"] == b""  # withdrawals carry nothing

    held = {int(r["payload"]["incident_ref"].rsplit("-", 1)[1]): r for r in outreach.referrals()}
    eligible_now = {n for n, state in states.items() if state == "given"}
    # delivered earlier and charged since: the referral stands (the person consented)
    stands = {n for n in ever_delivered - withdrawn_ids if states[n] == "charged"}
    active = {n for n, r in held.items() if r["status"] != "withdrawn"}
    assert active == eligible_now | stands
    withdrawn = {n for n, r in held.items() if r["status"] == "withdrawn"}
    assert withdrawn == withdrawn_ids
    assert all(not held[n]["contact_present"] for n in withdrawn)
    assert set(held) == ever_delivered


def test_withdrawal_end_to_end_deletes_contact_everywhere(upstream_env, outreach, warehouse_url):
    from upstream.config import load_settings

    s = load_settings()
    first = _row(1, 1, "given")
    generate.write_extract(s.landing_dir, "WPS", DAYS[0], [first])
    ingest.load_extract("WPS", DAYS[0], s)
    routing.plan_referrals()
    routing.deliver_referrals(s)
    generate.write_extract(s.landing_dir, "WPS", DAYS[1], [_row(1, 2, "withdrawn")])
    ingest.load_extract("WPS", DAYS[1], s)
    routing.plan_referrals()
    assert routing.propagate_withdrawals(s) == 1
    assert routing.propagate_withdrawals(s) == 0  # nothing left to do
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
