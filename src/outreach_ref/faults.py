"""Fault injection: rate limiting, latency, injected errors and dropped connections.

One uniform draw from a seeded RNG is made per faultable request and partitioned between the
fault kinds (in the order of :data:`outreach_ref.config.FAULT_RATE_FIELDS`), so with a fixed
seed and a fixed request order the sequence of faults is reproducible, and the observed shares
converge on the configured rates.
"""

from __future__ import annotations

import enum
import math
import random
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .config import FAULT_RATE_FIELDS, FAULT_SETTING_FIELDS, ServiceConfig, validate_fault_values

__all__ = ["Fault", "FaultDecision", "FaultInjector", "RateLimiter", "ServiceConfig"]

PRE_ERROR_STATUSES = (500, 502, 503, 504)


class Fault(enum.Enum):
    NONE = "none"
    ERROR = "error"  # 5xx before doing anything
    DROP = "drop"  # connection aborted before doing anything
    ERROR_AFTER_COMMIT = "error_after_commit"  # work committed, then 500
    DROP_AFTER_COMMIT = "drop_after_commit"  # work committed, then connection aborted
    SLOW = "slow"  # processed normally, response held back by slow_ms


_RATE_TO_FAULT = {
    "error_rate": Fault.ERROR,
    "drop_connection_rate": Fault.DROP,
    "error_after_commit_rate": Fault.ERROR_AFTER_COMMIT,
    "drop_after_commit_rate": Fault.DROP_AFTER_COMMIT,
    "slow_rate": Fault.SLOW,
}


@dataclass(frozen=True)
class FaultDecision:
    fault: Fault
    status: int | None = None  # for Fault.ERROR
    delay_s: float = 0.0  # for Fault.SLOW


class RateLimiter:
    """A token bucket shared by all clients. Thread-safe."""

    def __init__(self, rate: float, burst: int | None = None, clock=time.monotonic) -> None:
        self.rate = float(rate)
        self.capacity = float(burst if burst is not None else max(1, math.ceil(rate)))
        self._clock = clock
        self._tokens = self.capacity
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float | None:
        """Take a token. Returns ``None`` when allowed, else the seconds to wait."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return None
            return (1.0 - self._tokens) / self.rate


class FaultInjector:
    """Runtime fault settings (changeable through ``POST /_admin/faults``) and their RNG."""

    def __init__(self, config: ServiceConfig) -> None:
        self._lock = threading.Lock()
        self._rng = random.Random(f"outreach-faults:{config.seed}")
        self._settings: dict[str, Any] = config.fault_settings()
        self._limiter = self._make_limiter()
        self.counters: Counter[str] = Counter()

    # ------------------------------------------------------------------ settings
    def settings(self) -> dict[str, Any]:
        with self._lock:
            out = dict(self._settings)
        out["fault_routes"] = list(out["fault_routes"])
        return out

    def update(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        unknown = set(changes) - set(FAULT_SETTING_FIELDS)
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(sorted(unknown))}")
        with self._lock:
            merged = dict(self._settings)
            merged.update(changes)
            if "fault_routes" in changes:
                merged["fault_routes"] = tuple(merged["fault_routes"])
            for name in (*FAULT_RATE_FIELDS, "event_redelivery_rate"):
                if isinstance(merged[name], int) and not isinstance(merged[name], bool):
                    merged[name] = float(merged[name])
            validate_fault_values(merged)
            self._settings = merged
            if {"rate_limit_per_second", "rate_limit_burst"} & set(changes):
                self._limiter = self._make_limiter()
        return self.settings()

    def reseed(self, seed: int) -> None:
        with self._lock:
            self._rng = random.Random(f"outreach-faults:{seed}")

    def _make_limiter(self) -> RateLimiter | None:
        rate = self._settings["rate_limit_per_second"]
        if rate is None:
            return None
        return RateLimiter(rate, self._settings["rate_limit_burst"])

    # ------------------------------------------------------------------ decisions
    def check_rate_limit(self) -> int | None:
        """``None`` when the request may proceed, else the Retry-After value in seconds."""
        with self._lock:
            limiter = self._limiter
        if limiter is None:
            return None
        wait = limiter.acquire()
        if wait is None:
            return None
        self.count("rate_limited")
        return max(1, math.ceil(wait))

    def latency_s(self) -> float:
        with self._lock:
            return self._settings["latency_ms"] / 1000.0

    def decide(self, route: str) -> FaultDecision:
        with self._lock:
            settings = self._settings
            if route not in settings["fault_routes"]:
                return FaultDecision(Fault.NONE)
            draw = self._rng.random()
            status_draw = self._rng.choice(PRE_ERROR_STATUSES)
            edge = 0.0
            chosen = Fault.NONE
            for name in FAULT_RATE_FIELDS:
                edge += settings[name]
                if draw < edge:
                    chosen = _RATE_TO_FAULT[name]
                    break
            slow_s = settings["slow_ms"] / 1000.0
        if chosen is not Fault.NONE:
            self.count(f"fault_{chosen.value}")
        if chosen is Fault.ERROR:
            return FaultDecision(chosen, status=status_draw)
        if chosen is Fault.SLOW:
            return FaultDecision(chosen, delay_s=slow_s)
        return FaultDecision(chosen)

    def redeliver(self) -> bool:
        with self._lock:
            rate = self._settings["event_redelivery_rate"]
            if rate <= 0:
                return False
            hit = self._rng.random() < rate
        if hit:
            self.count("events_redelivered")
        return hit

    # ------------------------------------------------------------------ counters
    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self.counters[name] += n

    def counters_snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counters)

    def reset_counters(self) -> None:
        with self._lock:
            self.counters.clear()
