"""Routing against the reference outreach service over real HTTP, on real PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from support.rows import load, route_strict, row

from upstream import ingest, routing
from upstream.dev import generate

pytestmark = pytest.mark.integration

TZ = ZoneInfo("America/Toronto")
CONTRACT_KEYS = {"referral_id", "agency_code", "incident_ref", "call_received_at", "call_type",
                 "contact", "triage", "consent"}
CONTACT_KEYS = {"given_name", "family_name", "phone", "email", "preferred_contact",
                "safe_contact_notes", "language"}


def _eligible_referrals(url) -> set[str]:
    with psycopg.connect(url) as conn:
        return {r[0] for r in conn.execute(
            "SELECT r.referral_id FROM routing.referral r JOIN core.eligible_case e"
            " USING (agency_code, incident_id)")}


def _disclosures(url) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    with psycopg.connect(url) as conn:
        for rid, outcome in conn.execute(
                "SELECT referral_id, outcome FROM routing.disclosure_audit"
                " WHERE action = 'disclosure' ORDER BY audit_id"):
            out.setdefault(rid, []).append(outcome)
    return out


def test_generated_weeks_route_exactly_the_eligible_once(upstream_env, outreach, warehouse_url):
    from upstream.settings import load_settings

    settings = load_settings()
    days = generate.generate(settings.landing.dir, date(2024, 6, 1), date(2024, 6, 14), ["WPS"],
                             seed=21)
    for d in days:
        ingest.load_extract("WPS", d.extract_date, settings)
    report = route_strict(settings)
    eligible = _eligible_referrals(warehouse_url)
    assert eligible, "the generator should produce consented non-charge cases"
    held = {r["referral_id"]: r for r in outreach.referrals()}
    assert set(held) == eligible | {r for r in held if held[r]["status"] == "withdrawn"}
    for rid in eligible:
        payload = held[rid]["payload"]  # the service keeps contact details apart
        assert set(payload) | {"contact"} == CONTRACT_KEYS
        assert set(held[rid]["contact"]) == CONTACT_KEYS
        assert payload["triage"]["priority"] in ("urgent", "standard")
    assert report.delivered == len(held)
    assert all(v == ["201 received"] for v in _disclosures(warehouse_url).values())

    # a second run (reprocessed day, redelivered file) sends nothing new
    ingest.load_extract("WPS", days[3].extract_date, settings)
    before = outreach.stats()["counters"]
    again = route_strict(settings)
    assert again.delivered == 0 and again.attempts == 0
    assert outreach.stats()["counters"] == before


def test_corrections_change_eligibility(upstream_env, outreach, warehouse_url):
    from upstream.settings import load_settings

    settings = load_settings()
    d1, d2, d3 = date(2024, 6, 1), date(2024, 6, 2), date(2024, 6, 3)
    withdrawn_later = row(1, d1)
    charged_before_delivery = row(2, d1)
    # contact fields may be present on any row; the declined version must not be stored
    consent_later = {**row(3, d1), "consent_status": "declined"}
    charged_after_delivery = row(4, d1)
    load(settings, d1, [withdrawn_later, consent_later, charged_after_delivery])
    route_strict(settings)
    # incident 2 arrives and is charged in a correction before routing ever sees it eligible
    load(settings, d2, [charged_before_delivery])
    routing.plan_referrals()  # planned as pending, not yet delivered
    charge = {"clearance_status": "cleared_by_charge", "charges_laid": 1,
              "consent_status": "not_applicable", "record_version": 2}
    withdraw = {"consent_status": "withdrawn", "record_version": 2,
                "consent_recorded_at": datetime(2024, 6, 3, 12, 0, tzinfo=TZ)}
    load(settings, d3, [
        {**withdrawn_later, **withdraw},
        {**charged_before_delivery, **charge},
        {**consent_later, "consent_status": "given", "record_version": 2,
         "consent_recorded_at": datetime(2024, 6, 3, 9, 0, tzinfo=TZ)},
        {**charged_after_delivery, **charge},
    ])
    route_strict(settings)

    with psycopg.connect(warehouse_url) as conn:
        status = {r[0]: r[1:] for r in conn.execute(
            "SELECT incident_id, status, status_reason, charged_after_delivery, referral_id"
            " FROM routing.referral")}
        contacts = {r[0] for r in conn.execute("SELECT incident_id FROM contact.victim_contact")}
        withdrawals = conn.execute(
            "SELECT count(*) FROM routing.disclosure_audit WHERE action = 'withdrawal'").fetchone()[0]
    held = {r["referral_id"]: r for r in outreach.referrals()}
    w = status["WPS-2024-000001"]
    assert w[0] == "withdrawn" and withdrawals == 1
    assert held[w[3]]["contact_present"] is False
    assert "WPS-2024-000001" not in contacts
    c = status["WPS-2024-000002"]
    assert c[0] == "cancelled" and c[1] == "charged before delivery" and c[3] not in held
    assert status["WPS-2024-000003"][0] == "delivered" and status["WPS-2024-000003"][3] in held
    a = status["WPS-2024-000004"]
    assert a[0] == "delivered" and a[2] is True and a[3] in held


def test_faults_retries_and_throttling_deliver_each_once(upstream_env, outreach, warehouse_url,
                                                         monkeypatch):
    from upstream.settings import load_settings

    monkeypatch.setenv("UPSTREAM_OUTREACH_MAX_ATTEMPTS", "15")
    settings = load_settings()
    rows = [row(n, date(2024, 6, 1)) for n in range(1, 41)]
    load(settings, date(2024, 6, 1), rows)
    # 30% 5xx, dropped connections, lost answers, timeouts (held 4 s > client's 3 s), 429 bursts
    outreach.set_faults(error_rate=0.3, drop_connection_rate=0.05, error_after_commit_rate=0.05,
                        slow_rate=0.05, slow_ms=4000, rate_limit_per_second=20, seed=5)
    report = route_strict(settings)
    outreach.set_faults(error_rate=0, drop_connection_rate=0, error_after_commit_rate=0,
                        slow_rate=0, rate_limit_per_second=None)
    eligible = _eligible_referrals(warehouse_url)
    held = {r["referral_id"] for r in outreach.referrals()}
    assert held == eligible and len(held) == 40
    assert report.attempts > 40  # faults really happened
    disclosures = _disclosures(warehouse_url)
    assert set(disclosures) == eligible
    assert all(len(v) == 1 and v[0] in ("201 received", "200 replay") for v in disclosures.values())
    counters = outreach.stats()["counters"]
    assert counters, "the server counted its injected faults"


def test_server_restarted_mid_batch(upstream_env, outreach, warehouse_url):
    from upstream.settings import load_settings

    settings = load_settings()
    rows = [row(n, date(2024, 6, 1)) for n in range(1, 31)]
    load(settings, date(2024, 6, 1), rows)
    routing.plan_referrals()
    outreach.set_faults(latency_ms=100)
    import threading

    def restart():
        time.sleep(0.8)
        outreach.restart(hard=True)

    t = threading.Thread(target=restart)
    t.start()
    try:
        routing.deliver_referrals(settings)
    except routing.TransientDeliveryError:
        pass  # the next run finishes the job
    t.join()
    outreach.set_faults(latency_ms=0)
    routing.deliver_referrals(settings)
    assert {r["referral_id"] for r in outreach.referrals()} == _eligible_referrals(warehouse_url)
    assert all(len(v) == 1 for v in _disclosures(warehouse_url).values())


def test_worker_killed_between_send_and_commit(upstream_env, outreach, warehouse_url):
    """The server stores the referral, the sender dies before recording: no duplicate."""
    from upstream.settings import load_settings

    settings = load_settings()
    load(settings, date(2024, 6, 1), [row(n, date(2024, 6, 1)) for n in (1, 2, 3)])
    routing.plan_referrals()
    outreach.set_faults(slow_rate=1.0, slow_ms=20000)  # stored, answer held back
    code = "from upstream import routing; routing.deliver_referrals()"
    worker = subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ),
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not outreach.referrals() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert outreach.referrals(), "the first referral reached the server"
        os.killpg(worker.pid, signal.SIGKILL)
    finally:
        worker.wait(10)
    with psycopg.connect(warehouse_url) as conn:
        assert conn.execute("SELECT count(*) FROM routing.referral WHERE status = 'delivered'"
                            ).fetchone()[0] == 0
    outreach.set_faults(slow_rate=0)
    report = routing.deliver_referrals(settings)
    assert report.delivered == 3 and report.replayed == 1
    held = outreach.referrals()
    assert len(held) == len({r["referral_id"] for r in held}) == 3
    disclosures = _disclosures(warehouse_url)
    assert sorted(v[0] for v in disclosures.values()) == ["200 replay", "201 received", "201 received"]


def test_422_and_409_are_parked_visibly_and_retriable(upstream_env, outreach, warehouse_url):
    from upstream.settings import load_settings

    settings = load_settings()
    bad_language = row(1, date(2024, 6, 1), victim_language="zz")
    load(settings, date(2024, 6, 1), [bad_language, row(2, date(2024, 6, 1))])
    routing.plan_referrals()
    with psycopg.connect(warehouse_url) as conn:
        conflict_id = conn.execute("SELECT referral_id FROM routing.referral"
                                   " WHERE incident_id = 'WPS-2024-000002'").fetchone()[0]
    # someone used our second referral id with another payload first
    with httpx.Client(base_url=str(outreach),
                      headers={"Authorization": f"Bearer {outreach.token}"}) as client:
        body = {"referral_id": conflict_id, "agency_code": "WPS", "incident_ref": "WPS-X-1",
                "call_received_at": "2024-06-01T09:00:00-04:00", "call_type": "ipv_other",
                "contact": {"given_name": "A", "family_name": "B", "phone": "+15195550100",
                            "email": None, "preferred_contact": "phone",
                            "safe_contact_notes": None, "language": "en"},
                "triage": {"priority": "standard", "flags": [], "prior_ipv_calls_365d": 0},
                "consent": {"recorded_at": "2024-06-01T09:30:00-04:00", "officer_id": "W1"}}
        assert client.post("/v1/referrals", json=body,
                           headers={"Idempotency-Key": conflict_id}).status_code == 201
    report = routing.deliver_referrals(settings)
    assert report.parked == 2 and report.delivered == 0
    with psycopg.connect(warehouse_url) as conn:
        reasons = dict(conn.execute(
            "SELECT incident_id, status_reason FROM routing.referral WHERE status = 'parked'"))
    assert "contact.language" in reasons["WPS-2024-000001"]
    assert "zz" not in reasons["WPS-2024-000001"]
    assert reasons["WPS-2024-000002"].startswith("409")
    # the data team re-tries (UI-triggered DAG param): parked again, never retried forever
    assert routing.retry_parked(None) == 2
    again = routing.deliver_referrals(settings)
    assert again.parked == 2
    assert routing.deliver_referrals(settings).attempts == 0


def test_audit_log_refuses_update_and_delete(upstream_env, outreach, warehouse_url):
    from upstream.settings import load_settings

    settings = load_settings()
    load(settings, date(2024, 6, 1), [row(1, date(2024, 6, 1))])
    route_strict(settings)
    with psycopg.connect(warehouse_url) as conn:
        for statement in ("UPDATE routing.disclosure_audit SET outcome = 'x'",
                          "DELETE FROM routing.disclosure_audit",
                          "TRUNCATE routing.disclosure_audit"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(statement)
            conn.rollback()
        rows = conn.execute("SELECT action, fields_disclosed, recipient, legal_basis,"
                            " consent_officer_id, outcome FROM routing.disclosure_audit"
                            " ORDER BY audit_id").fetchall()
    assert [r[0] for r in rows] == ["disclosure_attempt", "disclosure"]
    assert "contact.given_name" in rows[1][1] and rows[1][2] == "outreach-api-v1"
    assert rows[1][3] == "consent" and rows[1][4] and rows[1][5] == "201 received"


def test_event_sync_is_idempotent_and_keeps_its_cursor(upstream_env, outreach, warehouse_url):
    from upstream.settings import load_settings

    settings = load_settings()
    load(settings, date(2024, 6, 1), [row(n, date(2024, 6, 1)) for n in range(1, 9)])
    route_strict(settings)
    outreach.simulate(datetime.now(TZ) + timedelta(days=30))
    outreach.set_faults(event_redelivery_rate=0.5)
    first = routing.sync_events(settings)
    second = routing.sync_events(settings)
    outreach.set_faults(event_redelivery_rate=0)
    with httpx.Client(base_url=str(outreach),
                      headers={"Authorization": f"Bearer {outreach.token}"}) as client:
        server_events, cursor = set(), None
        while True:
            page = client.get("/v1/referral-events",
                              params={"limit": 1000, **({"after": cursor} if cursor else {})}).json()
            if not page["events"]:
                break
            server_events |= {e["event_id"] for e in page["events"]}
            cursor = page["next_cursor"]
    with psycopg.connect(warehouse_url) as conn:
        stored = {r[0] for r in conn.execute("SELECT event_id FROM routing.referral_event")}
        types = {r[0] for r in conn.execute("SELECT DISTINCT event_type FROM routing.referral_event")}
    assert first == len(stored) and second == 0
    assert stored == server_events
    assert {"received", "contact_attempted"} <= types
