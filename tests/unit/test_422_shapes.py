"""A 422 names its field(s) in many shapes; we read the names, never a value."""

from __future__ import annotations

import pytest

from upstream.routing.problems import describe_422, rejected_fields

SECRET = "Jane Canary +15195550100"


@pytest.mark.parametrize(("body", "fields"), [
    # FastAPI / pydantic
    ({"detail": [{"loc": ["body", "contact", "language"], "msg": "bad", "input": SECRET}]},
     ["contact.language"]),
    ({"detail": [{"loc": ["body", "triage", "flags", 0], "msg": "x"},
                 {"loc": ["body", "consent", "officer_id"], "msg": "y"}]},
     ["triage.flags.0", "consent.officer_id"]),
    # RFC 9457 problem details with JSON pointers
    ({"type": "about:blank", "title": "Unprocessable", "detail": SECRET,
      "errors": [{"pointer": "#/contact/phone", "detail": SECRET}]}, ["contact.phone"]),
    ({"errors": [{"pointer": "/contact/given_name"}]}, ["contact.given_name"]),
    # RFC 7807-era invalid-params
    ({"title": "Invalid", "invalid-params": [{"name": "contact.email", "reason": SECRET}]},
     ["contact.email"]),
    # plain shapes
    ({"field": "call_received_at", "message": SECRET}, ["call_received_at"]),
    ({"fields": ["incident_ref", "agency_code"]}, ["incident_ref", "agency_code"]),
    ({"errors": {"contact.language": [SECRET], "consent.recorded_at": ["missing"]}},
     ["contact.language", "consent.recorded_at"]),
])
def test_each_shape_names_its_fields_and_no_value(body, fields):
    assert rejected_fields(body) == fields
    text = describe_422(body)
    assert text.startswith("422 rejected field(s): ")
    assert "Canary" not in text and "555" not in text


@pytest.mark.parametrize("body", [
    None, "plain text", [], {"detail": "something went wrong"}, {"detail": [{"msg": "x"}]},
    {"field": SECRET},  # a value where a name should be: not a field path, so not stored
    {"errors": {SECRET: ["x"]}},
])
def test_unreadable_bodies_say_so_and_echo_nothing(body):
    assert describe_422(body) == "422 rejected field(s): field not named"


def test_at_most_five_distinct_names():
    body = {"errors": [{"pointer": f"/f{i}"} for i in range(9)] + [{"pointer": "/f0"}]}
    assert rejected_fields(body) == ["f0", "f1", "f2", "f3", "f4"]
