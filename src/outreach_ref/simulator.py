"""What the outreach workers do with a referral, simulated.

The plan for a referral is a pure function of ``(seed, referral_id, priority)``: a list of
``(type, seconds after received)``. Shape of the plans:

* the first ``contact_attempted`` within hours (urgent: 15 min - 4 h, standard: 1 - 12 h);
* outcome drawn once: ~50 % ``engaged``, ~25 % ``declined``, ~25 % ``unreachable``;
* engaged / declined: possibly more attempts, then ``contacted`` (about 85 % within two days of
  receipt, the rest 2 - 7 days), then the outcome (engaged: 2 h - 4 days later, declined:
  10 min - 1 day later);
* unreachable: 3 - 6 ``contact_attempted`` spread over a week, never ``contacted``, then
  ``unreachable`` 1 - 3 days after the last attempt;
* ``closed`` 1 - 10 days after the outcome.

Offsets are whole seconds, strictly increasing, and at least 60 s after receipt.
:class:`Simulator` emits the planned events whose time has come into the store
(:meth:`outreach_ref.store.Store.advance_simulation`); withdrawn referrals get nothing more.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

MINUTE = 60
HOUR = 3600
DAY = 86400

OUTCOME_WEIGHTS = {"engaged": 0.50, "declined": 0.25, "unreachable": 0.25}
LATE_CONTACT_SHARE = 0.15


@dataclass(frozen=True)
class PlannedEvent:
    index: int  # position in the plan, 0-based
    type: str
    offset_s: int  # seconds after the referral was received (> 0)


def plan_events(seed: int, referral_id: str, priority: str = "standard") -> list[PlannedEvent]:
    """The deterministic life of one referral after it was received."""
    rng = random.Random(f"outreach-sim:{seed}:{referral_id}")
    urgent = priority == "urgent"
    steps: list[tuple[str, float]] = []

    first_attempt = rng.uniform(15 * MINUTE, 4 * HOUR) if urgent else rng.uniform(HOUR, 12 * HOUR)
    steps.append(("contact_attempted", first_attempt))

    u = rng.random()
    if u < OUTCOME_WEIGHTS["engaged"]:
        outcome = "engaged"
    elif u < OUTCOME_WEIGHTS["engaged"] + OUTCOME_WEIGHTS["declined"]:
        outcome = "declined"
    else:
        outcome = "unreachable"

    if outcome == "unreachable":
        more = rng.randint(2, 5)
        attempts = sorted(rng.uniform(first_attempt + HOUR, 7 * DAY) for _ in range(more))
        steps.extend(("contact_attempted", t) for t in attempts)
        final = attempts[-1] + rng.uniform(DAY, 3 * DAY)
    else:
        if rng.random() < LATE_CONTACT_SHARE:
            contacted = rng.uniform(2 * DAY + HOUR, 7 * DAY)
        else:
            # first_attempt <= 12 h, so this stays within two days of receipt
            contacted = first_attempt + rng.uniform(15 * MINUTE, 34 * HOUR)
        gap = contacted - first_attempt
        extra = rng.randint(0, 2) if gap > 2 * HOUR else 0
        attempts = sorted(
            rng.uniform(first_attempt + MINUTE, contacted - MINUTE) for _ in range(extra)
        )
        steps.extend(("contact_attempted", t) for t in attempts)
        steps.append(("contacted", contacted))
        if outcome == "engaged":
            final = contacted + rng.uniform(2 * HOUR, 4 * DAY)
        else:
            final = contacted + rng.uniform(10 * MINUTE, DAY)
    steps.append((outcome, final))
    steps.append(("closed", final + rng.uniform(DAY, 10 * DAY)))

    planned: list[PlannedEvent] = []
    previous = 0
    for index, (event_type, offset) in enumerate(steps):
        seconds = max(int(offset), previous + MINUTE)
        planned.append(PlannedEvent(index, event_type, seconds))
        previous = seconds
    return planned


def outcome_of(plan: list[PlannedEvent]) -> str:
    """The final state of a plan (``engaged``, ``declined`` or ``unreachable``)."""
    return plan[-2].type


class SimulatedStore(Protocol):
    """What the simulator needs of :class:`~outreach_ref.store.Store` (a protocol, so this
    module does not import the store, which imports :class:`PlannedEvent` from here)."""

    def advance_simulation(self, until_epoch: int) -> int: ...


class Simulator:
    """Moves referrals held in a :class:`~outreach_ref.store.Store` through their plans."""

    def __init__(self, store: SimulatedStore) -> None:
        self.store = store

    def advance(self, until: datetime) -> int:
        """Emit every planned event with ``occurred_at <= until`` not emitted yet.

        Idempotent; returns the number of events emitted by this call.
        """
        if until.tzinfo is None:
            raise ValueError("until must be timezone-aware")
        return self.store.advance_simulation(int(until.timestamp()))
