"""Contract routes of the reference Outreach server, over real HTTP."""

from __future__ import annotations

import json
import sqlite3
import string
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from outreach_helpers import TOKEN, all_events, make_referral, post_referral

# ---------------------------------------------------------------------- auth


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": "Bearer"},
    ],
    ids=["missing", "wrong", "wrong-scheme", "longer", "empty"],
)
@pytest.mark.parametrize(
    "method,path",
    [
        ("POST", "/v1/referrals"),
        ("POST", "/v1/referrals/r_x/withdrawal"),
        ("GET", "/v1/referral-events"),
        ("GET", "/_admin/referrals"),
        ("GET", "/no/such/route"),
    ],
)
def test_missing_or_wrong_token_is_401_and_nothing_else(outreach_session, headers, method, path):
    body = make_referral("r_auth")
    response = httpx.request(
        method,
        f"{outreach_session}{path}",
        headers={**headers, "Idempotency-Key": "r_auth"},
        json=body,
    )
    assert response.status_code == 401
    assert response.json() == {"detail": "unauthorized"}
    assert outreach_session.referral("r_auth") is None


# ---------------------------------------------------------------------- create / idempotency


def test_create_then_replay_then_conflict(outreach, api):
    body = make_referral("r_idem_1")
    first = post_referral(api, body)
    assert first.status_code == 201
    assert first.json() == {"referral_id": "r_idem_1", "status": "received"}

    # same payload, keys in another order: canonical JSON makes it the same payload
    reordered = json.loads(json.dumps(body))
    reordered = dict(reversed(list(reordered.items())))
    replay = api.post(
        "/v1/referrals",
        content=json.dumps(reordered, indent=2),
        headers={"Idempotency-Key": "r_idem_1", "Content-Type": "application/json"},
    )
    assert replay.status_code == 200
    assert replay.json() == {"referral_id": "r_idem_1", "status": "received"}

    changed_triage = make_referral("r_idem_1", triage={**body["triage"], "priority": "standard"})
    assert post_referral(api, changed_triage).status_code == 409
    changed_contact = make_referral(
        "r_idem_1", contact={**body["contact"], "phone": "+15195550199"}
    )
    assert post_referral(api, changed_contact).status_code == 409

    held = outreach.referrals()
    assert len(held) == 1
    assert held[0]["contact"]["phone"] == "+15195550100"  # the first payload stays
    assert held[0]["payload"]["triage"]["priority"] == "urgent"
    assert "contact" not in held[0]["payload"]
    events, _ = all_events(api)
    assert [(e["referral_id"], e["type"]) for e in events] == [("r_idem_1", "received")]


def test_idempotency_key_required_and_must_match(outreach, api):
    body = make_referral("r_key")
    missing = post_referral(api, body, key=None)
    assert missing.status_code in (400, 422)
    assert missing.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]

    mismatch = post_referral(api, body, key="r_other")
    assert mismatch.status_code == 422
    assert mismatch.json()["detail"][0]["loc"] == ["header", "Idempotency-Key"]
    assert outreach.referrals() == []


def test_json_content_type_required(shared_api):
    body = make_referral("r_ct")
    response = shared_api.post(
        "/v1/referrals",
        content=json.dumps(body),
        headers={"Idempotency-Key": "r_ct", "Content-Type": "text/plain"},
    )
    assert response.status_code == 415


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b'"x"', b"", b'{"referral_id": "r_1"'])
def test_body_that_is_not_a_json_object_is_422(shared_api, raw):
    response = shared_api.post(
        "/v1/referrals",
        content=raw,
        headers={"Idempotency-Key": "r_1", "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][0] == "body"


# ---------------------------------------------------------------------- validation

SECRET = "Zyxwvut-SENSITIVE-4711"


def _with(body: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    target = body
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return body


def _without(body: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    target = body
    for part in path[:-1]:
        target = target[part]
    del target[path[-1]]
    return body


EXTRA_FIELDS = [
    (("narrative",), SECRET),
    (("accused_person_id",), SECRET),
    (("contact", "address"), SECRET),
    (("contact", "victim_postal_code"), SECRET),
    (("triage", "note"), SECRET),
    (("consent", "witness"), SECRET),
]


@pytest.mark.parametrize("path,value", EXTRA_FIELDS, ids=[".".join(p) for p, _ in EXTRA_FIELDS])
def test_extra_field_anywhere_is_422_naming_it(outreach_session, shared_api, path, value):
    body = _with(make_referral("r_extra"), path, value)
    response = post_referral(shared_api, body)
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert {
        "loc": ["body", *path],
        "msg": "Extra inputs are not permitted",
        "type": "extra_forbidden",
    } in detail
    assert SECRET not in response.text
    assert outreach_session.referral("r_extra") is None


BAD_VALUES = [
    (("call_type",), "ipv_" + SECRET),
    (("call_type",), "IPV_ASSAULT"),
    (("triage", "priority"), SECRET),
    (("contact", "preferred_contact"), "carrier_pigeon-" + SECRET),
    (("call_received_at",), "2024-06-01T22:14:00"),  # no offset
    (("call_received_at",), "2024-06-01"),
    (("call_received_at",), SECRET),
    (("call_received_at",), 1717294440),
    (("consent", "recorded_at"), "2024-06-01 22:40"),
    (("contact", "phone"), "519-555-0100"),
    (("contact", "phone"), "+1 519 " + SECRET),
    (("contact", "email"), SECRET),
    (("contact", "language"), "english"),
    (("contact", "language"), "EN"),
    (("contact", "language"), "xx"),
    (("contact", "given_name"), "   "),
    (("contact", "given_name"), None),
    (("triage", "prior_ipv_calls_365d"), -1),
    (("triage", "prior_ipv_calls_365d"), "2"),
    (("triage", "prior_ipv_calls_365d"), 2.5),
    (("triage", "prior_ipv_calls_365d"), True),
    (("triage", "flags"), SECRET),
    (("triage", "flags", 1), 7),
    (("agency_code",), "wps"),
    (("referral_id",), "r/../" + SECRET),
    (("contact",), SECRET),
]


@pytest.mark.parametrize(
    "path,value", BAD_VALUES, ids=[f"{'.'.join(map(str, p))}={v!r}"[:60] for p, v in BAD_VALUES]
)
def test_bad_value_is_422_naming_the_field_without_echoing_it(
    outreach_session, shared_api, path, value
):
    body = _with(make_referral("r_bad"), path, value)
    key = body["referral_id"] if isinstance(body["referral_id"], str) else "r_bad"
    response = post_referral(shared_api, body, key=key)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    locs = [tuple(e["loc"]) for e in detail]
    assert any(loc[: len(path) + 1] == ("body", *path) for loc in locs), locs
    for error in detail:
        assert set(error) == {"loc", "msg", "type"}
    if isinstance(value, str) and value.strip():
        assert value not in response.text
    assert SECRET not in response.text
    assert outreach_session.referral("r_bad") is None


@pytest.mark.parametrize(
    "path",
    [
        ("referral_id",),
        ("call_received_at",),
        ("contact", "language"),
        ("contact", "email"),
        ("contact", "safe_contact_notes"),
        ("triage", "flags"),
        ("consent", "officer_id"),
        ("consent",),
    ],
)
def test_missing_field_is_422(shared_api, path):
    body = _without(make_referral("r_missing"), path)
    response = post_referral(shared_api, body, key="r_missing")
    assert response.status_code == 422
    assert ["body", *path] in [e["loc"] for e in response.json()["detail"]]


def test_nullable_fields_and_other_enum_values_are_accepted(outreach, api):
    for i, call_type in enumerate(
        [
            "ipv_assault",
            "ipv_sexual_assault",
            "ipv_threats",
            "ipv_criminal_harassment",
            "ipv_breach_of_order",
            "ipv_dispute_verbal",
            "ipv_other",
        ]
    ):
        body = make_referral(
            f"r_ok_{i}",
            call_type=call_type,
            call_received_at="2024-06-02T02:14:00Z",
            contact={
                "given_name": "Ana",
                "family_name": "Silva",
                "phone": None,
                "email": "ana@example.org",
                "preferred_contact": "email",
                "safe_contact_notes": None,
                "language": "pt",
            },
            triage={"priority": "standard", "flags": [], "prior_ipv_calls_365d": 0},
        )
        response = post_referral(api, body)
        assert response.status_code == 201, response.text
    assert len(outreach.referrals()) == 7


def test_cross_field_rules(api):
    no_channel = make_referral("r_cf1")
    no_channel["contact"].update(phone=None, email=None)
    response = post_referral(api, no_channel)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "contact", "phone"]

    consent_first = make_referral(
        "r_cf2", consent={"recorded_at": "2024-06-01T20:00:00-04:00", "officer_id": "W1"}
    )
    response = post_referral(api, consent_first)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "consent", "recorded_at"]


def test_personal_data_never_reaches_the_log(outreach, api):
    body = make_referral("r_log")
    body["contact"]["given_name"] = "Given" + SECRET
    body["contact"]["safe_contact_notes"] = "Notes" + SECRET
    assert post_referral(api, body).status_code == 201
    bad = make_referral("r_log2", narrative="Narrative" + SECRET)
    bad["contact"]["family_name"] = "Family" + SECRET
    bad["contact"]["phone"] = "Phone" + SECRET
    assert post_referral(api, bad).status_code == 422
    assert api.post("/v1/referrals/r_log/withdrawal").status_code == 200
    log = outreach.log_text()
    assert "POST /v1/referrals 201" in log
    assert "POST /v1/referrals 422" in log
    assert SECRET not in log
    assert "Avelina" not in log and "+15195550100" not in log


# ---------------------------------------------------------------------- withdrawal


def _db_rows(db_path: str, query: str, params: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return conn.execute(query, params).fetchall()
    finally:
        conn.close()


def _db_bytes(db_path: str) -> bytes:
    data = b""
    for suffix in ("", "-wal", "-journal"):
        path = Path(db_path + suffix)
        if path.exists():
            data += path.read_bytes()
    return data


def test_withdrawal_deletes_contact_and_is_idempotent(outreach, api):
    keep = make_referral("r_keep")
    gone = make_referral("r_gone")
    gone["contact"].update(
        given_name="Quillon",
        family_name="Marchetti-Oyelaran",
        phone="+15195557777",
        email="quillon.m@example.net",
        safe_contact_notes="call after 6pm only",
    )
    assert post_referral(api, keep).status_code == 201
    assert post_referral(api, gone).status_code == 201
    assert b"Marchetti-Oyelaran" in _db_bytes(outreach.db_path)

    response = api.post("/v1/referrals/r_gone/withdrawal")
    assert response.status_code == 200
    assert response.json() == {"referral_id": "r_gone", "status": "withdrawn"}

    held = {r["referral_id"]: r for r in outreach.referrals()}
    assert held["r_gone"]["contact_present"] is False
    assert held["r_gone"]["contact"] is None
    assert held["r_gone"]["status"] == "withdrawn"
    assert held["r_keep"]["contact_present"] is True

    # directly in the server's SQLite file: no contact row, no contact hash, no stray bytes
    assert _db_rows(outreach.db_path, "SELECT * FROM contacts WHERE referral_id = 'r_gone'") == []
    assert _db_rows(
        outreach.db_path, "SELECT contact_hash, status FROM referrals WHERE referral_id = 'r_gone'"
    ) == [(None, "withdrawn")]
    assert _db_rows(outreach.db_path, "SELECT COUNT(*) FROM contacts") == [(1,)]
    raw = _db_bytes(outreach.db_path)
    for value in (
        b"Quillon",
        b"Marchetti-Oyelaran",
        b"+15195557777",
        b"quillon.m@example.net",
        b"call after 6pm only",
    ):
        assert value not in raw

    again = api.post("/v1/referrals/r_gone/withdrawal")
    assert again.status_code == 200
    assert again.json() == {"referral_id": "r_gone", "status": "withdrawn"}
    events, _ = all_events(api)
    assert [e["type"] for e in events if e["referral_id"] == "r_gone"] == ["received", "withdrawn"]

    # a replay of the original POST does not bring the contact back
    replay = post_referral(api, gone)
    assert replay.status_code == 200
    assert replay.json() == {"referral_id": "r_gone", "status": "withdrawn"}
    assert outreach.referral("r_gone")["contact_present"] is False
    changed = make_referral("r_gone", incident_ref="WPS-2024-999999")
    assert post_referral(api, changed).status_code == 409


def test_withdrawal_of_unknown_referral_is_404(api):
    assert api.post("/v1/referrals/r_nobody/withdrawal").status_code == 404


# ---------------------------------------------------------------------- events


def test_events_paging_with_cursor(outreach, api):
    ids = [f"r_page_{i:02d}" for i in range(23)]
    for rid in ids:
        assert post_referral(api, make_referral(rid)).status_code == 201
    api.post("/v1/referrals/r_page_05/withdrawal")

    seen: list[dict] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 5} if cursor is None else {"limit": 5, "after": cursor}
        page = api.get("/v1/referral-events", params=params).json()
        assert len(page["events"]) <= 5
        if not page["events"]:
            assert page["next_cursor"] == cursor
            break
        seen.extend(page["events"])
        cursor = page["next_cursor"]
        pages += 1
    assert pages == 5
    assert len({e["event_id"] for e in seen}) == len(seen) == 24
    assert [e["referral_id"] for e in seen[:23]] == ids
    assert seen[-1]["type"] == "withdrawn"
    for event in seen:
        assert set(event) == {"event_id", "referral_id", "type", "occurred_at"}
        assert event["event_id"].startswith("e_")

    # caught up: empty page, cursor unchanged, repeatedly
    for _ in range(2):
        page = api.get("/v1/referral-events", params={"after": cursor}).json()
        assert page == {"events": [], "next_cursor": cursor}

    # new events appear after the kept cursor
    assert post_referral(api, make_referral("r_page_new")).status_code == 201
    page = api.get("/v1/referral-events", params={"after": cursor}).json()
    assert [e["referral_id"] for e in page["events"]] == ["r_page_new"]


def test_events_default_limit_and_empty_feed(api):
    page = api.get("/v1/referral-events").json()
    assert page["events"] == []
    start = page["next_cursor"]
    assert isinstance(start, str)
    assert api.get("/v1/referral-events", params={"after": start}).json()["events"] == []
    for i in range(105):
        post_referral(api, make_referral(f"r_lim_{i:03d}"))
    page = api.get("/v1/referral-events", params={"after": start}).json()
    assert len(page["events"]) == 100
    page = api.get("/v1/referral-events", params={"after": start, "limit": 1000}).json()
    assert len(page["events"]) == 105


@pytest.mark.parametrize(
    "params,field",
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": -3}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"after": "not-a-cursor"}, "after"),
        ({"after": "-1"}, "after"),
    ],
)
def test_events_bad_parameters_are_422(shared_api, params, field):
    response = shared_api.get("/v1/referral-events", params=params)
    assert response.status_code == 422
    assert ["query", field] in [e["loc"] for e in response.json()["detail"]]
    for error in response.json()["detail"]:
        assert set(error) == {"loc", "msg", "type"}


def test_limit_bounds_are_inclusive(shared_api):
    assert shared_api.get("/v1/referral-events", params={"limit": 1}).status_code == 200
    assert shared_api.get("/v1/referral-events", params={"limit": 1000}).status_code == 200


# ---------------------------------------------------------------------- property: no echo

_TOKENS = st.text(alphabet=string.ascii_letters + string.digits, min_size=6, max_size=40)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    where=st.sampled_from([(), ("contact",), ("triage",), ("consent",)]),
    key=_TOKENS,
    value=_TOKENS,
    phone=_TOKENS,
)
def test_no_error_body_echoes_a_submitted_value(shared_api, where, key, value, phone):
    body = make_referral("r_prop")
    target = body
    for part in where:
        target = target[part]
    target["x_" + key] = "V" + value
    body["contact"]["phone"] = "P" + phone
    response = post_referral(shared_api, body)
    assert response.status_code == 422
    assert "V" + value not in response.text
    assert "P" + phone not in response.text
    locs = [e["loc"] for e in response.json()["detail"]]
    assert ["body", *where, "x_" + key] in locs
    assert ["body", "contact", "phone"] in locs
