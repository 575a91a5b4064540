"""An in-memory outreach service behind the `OutreachClient` interface, for unit tests.

It follows shared/contracts/outreach-api-v1.md (idempotent create, 409 on a reused key with
another payload, withdrawal deletes the contact, 404 for an unknown referral, events with a
cursor) and can be told what goes wrong next, one request at a time:

    fake.fail_next("throttle", "stored_then_error", "drop")

Fault names: ``error`` (503, nothing done), ``drop`` (no answer, nothing done),
``stored_then_error`` (done, then 500), ``stored_then_drop`` (done, then no answer),
``throttle`` (429 with Retry-After 2), ``unauthorized`` (401), ``forbidden`` (403),
``reject`` (422 naming ``contact.language``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from upstream.routing.client import Answer

FAULTS = {"error", "drop", "stored_then_error", "stored_then_drop", "throttle", "unauthorized",
          "forbidden", "reject"}


@dataclass
class HeldReferral:
    payload: dict
    contact: dict | None
    status: str = "received"


@dataclass
class InMemoryOutreachClient:
    held: dict[str, HeldReferral] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (call, referral id)
    events_log: list[dict] = field(default_factory=list)
    _script: deque = field(default_factory=deque)

    def fail_next(self, *faults: str) -> None:
        unknown = set(faults) - FAULTS
        if unknown:
            raise ValueError(f"unknown fault(s): {sorted(unknown)}")
        self._script.extend(faults)

    def _fault(self) -> str | None:
        return self._script.popleft() if self._script else None

    def _event(self, referral_id: str, kind: str) -> None:
        self.events_log.append({"event_id": f"e_{len(self.events_log) + 1}",
                                "referral_id": referral_id, "type": kind,
                                "occurred_at": "2024-06-01T10:00:00+00:00"})

    @staticmethod
    def _before(fault: str | None) -> Answer | None:
        return {"error": Answer(503), "drop": Answer(None, error="RemoteProtocolError"),
                "throttle": Answer(429, retry_after=2.0), "unauthorized": Answer(401),
                "forbidden": Answer(403),
                "reject": Answer(422, {"detail": [{"loc": ["body", "contact", "language"]}]}),
                }.get(fault or "")

    @staticmethod
    def _after(fault: str | None, answer: Answer) -> Answer:
        if fault == "stored_then_error":
            return Answer(500)
        if fault == "stored_then_drop":
            return Answer(None, error="ReadTimeout")
        return answer

    def send(self, payload: dict) -> Answer:
        rid = payload["referral_id"]
        self.requests.append(("send", rid))
        fault = self._fault()
        early = self._before(fault)
        if early is not None:
            return early
        held = self.held.get(rid)
        if held is None:
            self.held[rid] = HeldReferral(payload, dict(payload["contact"]))
            self._event(rid, "received")
            answer = Answer(201, {"referral_id": rid, "status": "received"})
        elif held.payload == payload:
            answer = Answer(200, {"referral_id": rid, "status": held.status})
        else:
            answer = Answer(409, {"detail": "idempotency key reused with another payload"})
        return self._after(fault, answer)

    def withdraw(self, referral_id: str) -> Answer:
        self.requests.append(("withdraw", referral_id))
        fault = self._fault()
        early = self._before(fault)
        if early is not None:
            return early
        held = self.held.get(referral_id)
        if held is None:
            answer = Answer(404, {"detail": "unknown referral"})
        else:
            if held.status != "withdrawn":
                held.status, held.contact = "withdrawn", None
                self._event(referral_id, "withdrawn")
            answer = Answer(200, {"referral_id": referral_id, "status": "withdrawn"})
        return self._after(fault, answer)

    def events(self, cursor: str | None, limit: int) -> Answer:
        self.requests.append(("events", cursor or ""))
        fault = self._fault()
        early = self._before(fault)
        if early is not None:
            return early
        start = int(cursor or 0)
        page = self.events_log[start:start + limit]
        return self._after(fault, Answer(200, {"events": page,
                                                "next_cursor": str(start + len(page))}))

    def close(self) -> None:
        pass

    def holds_contact(self, referral_id: str) -> bool:
        held = self.held.get(referral_id)
        return held is not None and held.contact is not None
