"""Configuration of the reference Outreach intake server.

Every field of :class:`ServiceConfig` can be set from an environment variable named
``OUTREACH_<FIELD NAME IN UPPER CASE>`` (``OUTREACH_TOKEN``, ``OUTREACH_DB_PATH``,
``OUTREACH_ERROR_RATE``, ...); see :func:`ServiceConfig.from_env`.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

ENV_PREFIX = "OUTREACH_"

#: Routes the probabilistic faults (error / drop / slow) can be applied to.
FAULT_ROUTES = ("create", "withdraw", "events")

#: The fault probabilities. One uniform draw per faultable request is partitioned between
#: them in this order, so their sum must not exceed 1.
FAULT_RATE_FIELDS = (
    "error_rate",
    "drop_connection_rate",
    "error_after_commit_rate",
    "drop_after_commit_rate",
    "slow_rate",
)


@dataclass
class ServiceConfig:
    """Settings of one server instance.

    ``token``                   bearer token the client must send (required).
    ``db_path``                 SQLite file; ``None`` = in-memory (lost when the process ends).
    ``rate_limit_per_second``   token-bucket rate over all ``/v1`` requests; ``None`` = off.
                                Over the limit: ``429`` with ``Retry-After`` (whole seconds).
    ``rate_limit_burst``        bucket size; ``None`` = ``max(1, ceil(rate_limit_per_second))``.
    ``error_rate``              share of faultable requests answered 500/502/503/504 before
                                anything is done.
    ``drop_connection_rate``    share whose TCP connection is aborted before anything is done
                                (the client sees a transport error, no HTTP response).
    ``error_after_commit_rate`` share answered 500 *after* the work was committed (lost
                                response: a retry with the same key gets the ``200`` replay).
    ``drop_after_commit_rate``  share whose connection is aborted after the work was committed.
    ``slow_rate`` / ``slow_ms`` share processed normally whose response is then held back for
                                ``slow_ms`` (with a shorter client timeout: a timeout although
                                the work was committed).
    ``latency_ms``              fixed delay added to every ``/v1`` request.
    ``fault_routes``            which routes the probabilistic faults above apply to:
                                ``create`` (POST /v1/referrals), ``withdraw``, ``events``.
    ``event_redelivery_rate``   share of non-empty event pages whose ``next_cursor`` points
                                into the middle of the page, so the next page re-delivers some
                                events (at-least-once delivery).
    ``seed``                    seed of the fault RNG and of the outcome simulator.
    ``admin_enabled``           serve the test-only ``/_admin`` routes.
    ``admin_token``             token for ``/_admin``; ``None`` = same as ``token``.
    ``simulate_on_read``        advance the simulator to the server clock's "now" on every
                                ``GET /v1/referral-events``.
    ``clock_follows_client``    replays (the demo): an authorised ``/v1`` request's HTTP
                                ``Date`` header moves the server clock forward to that time
                                (never back), so referrals are received, worked and withdrawn
                                on the client's calendar. Off by default: ``Date`` is ignored.
    ``timezone``                IANA zone used to render ``occurred_at`` (always with offset).
    ``max_body_bytes``          larger request bodies get ``413``.
    ``record_requests``         keep every authorised ``/v1`` POST (route, key, body) in the
                                store's request log, served at ``/_admin/requests``: tests
                                check what was ever *sent*, not only what is held at the end.
                                Off by default: the log holds contact details.
    """

    token: str
    db_path: str | None = None
    rate_limit_per_second: float | None = None
    rate_limit_burst: int | None = None
    error_rate: float = 0.0
    drop_connection_rate: float = 0.0
    error_after_commit_rate: float = 0.0
    drop_after_commit_rate: float = 0.0
    slow_rate: float = 0.0
    slow_ms: int = 0
    latency_ms: int = 0
    fault_routes: tuple[str, ...] = ("create",)
    event_redelivery_rate: float = 0.0
    seed: int = 0
    admin_enabled: bool = True
    admin_token: str | None = None
    simulate_on_read: bool = True
    clock_follows_client: bool = False
    timezone: str = "UTC"
    max_body_bytes: int = 64 * 1024
    record_requests: bool = False

    def __post_init__(self) -> None:
        if self.db_path is not None:
            self.db_path = os.fspath(self.db_path)
        self.fault_routes = tuple(self.fault_routes)
        self.validate()

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        if not isinstance(self.token, str) or not self.token:
            raise ValueError("token must be a non-empty string")
        if self.admin_token is not None and not self.admin_token:
            raise ValueError("admin_token must be None or a non-empty string")
        validate_fault_values({name: getattr(self, name) for name in FAULT_SETTING_FIELDS})
        ZoneInfo(self.timezone)  # raises for an unknown zone
        if self.max_body_bytes < 1024:
            raise ValueError("max_body_bytes must be at least 1024")

    @property
    def effective_admin_token(self) -> str:
        return self.admin_token or self.token

    def fault_settings(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in FAULT_SETTING_FIELDS}

    def replace(self, **changes: Any) -> ServiceConfig:
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ environment
    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ServiceConfig:
        """Build a config from ``OUTREACH_*`` variables (``OUTREACH_TOKEN`` is required)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(ENV_PREFIX + f.name.upper())
            if raw is None or raw == "":
                continue
            try:
                values[f.name] = _PARSERS[f.name](raw)
            except ValueError as exc:
                raise ValueError(f"{ENV_PREFIX}{f.name.upper()}: {exc}") from None
        values.update(overrides)
        if "token" not in values:
            raise ValueError(f"{ENV_PREFIX}TOKEN must be set")
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The ``OUTREACH_*`` variables that reproduce this config in another process."""
        env: dict[str, str] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            key = ENV_PREFIX + f.name.upper()
            if value is None:
                env[key] = ""
            elif isinstance(value, bool):
                env[key] = "true" if value else "false"
            elif isinstance(value, tuple):
                env[key] = ",".join(value)
            else:
                env[key] = str(value)
        return env


FAULT_SETTING_FIELDS = (
    "rate_limit_per_second",
    "rate_limit_burst",
    *FAULT_RATE_FIELDS,
    "slow_ms",
    "latency_ms",
    "fault_routes",
    "event_redelivery_rate",
)


def validate_fault_values(values: Mapping[str, Any]) -> None:
    """Check a complete set of fault settings; raises ``ValueError``."""
    for name in (*FAULT_RATE_FIELDS, "event_redelivery_rate"):
        rate = values[name]
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0.0 <= rate <= 1.0:
            raise ValueError(f"{name} must be a number between 0 and 1")
    total = sum(values[name] for name in FAULT_RATE_FIELDS)
    if total > 1.0 + 1e-9:
        raise ValueError(f"the fault rates {', '.join(FAULT_RATE_FIELDS)} must sum to at most 1")
    rate = values["rate_limit_per_second"]
    if rate is not None and (not math.isfinite(rate) or rate <= 0):
        raise ValueError("rate_limit_per_second must be None or a positive number")
    burst = values["rate_limit_burst"]
    if burst is not None and (isinstance(burst, bool) or not isinstance(burst, int) or burst < 1):
        raise ValueError("rate_limit_burst must be None or an integer >= 1")
    for name in ("slow_ms", "latency_ms"):
        ms = values[name]
        if isinstance(ms, bool) or not isinstance(ms, int) or ms < 0:
            raise ValueError(f"{name} must be an integer >= 0")
    routes = values["fault_routes"]
    unknown = set(routes) - set(FAULT_ROUTES)
    if unknown:
        raise ValueError(f"fault_routes may only contain {', '.join(FAULT_ROUTES)}")


def _parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {raw!r}")


def _parse_optional_float(raw: str) -> float | None:
    return None if raw.strip().lower() in ("none", "off", "null") else float(raw)


def _parse_optional_int(raw: str) -> int | None:
    return None if raw.strip().lower() in ("none", "off", "null") else int(raw)


def _parse_routes(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


_PARSERS: dict[str, Any] = {
    "token": str,
    "db_path": str,
    "rate_limit_per_second": _parse_optional_float,
    "rate_limit_burst": _parse_optional_int,
    "error_rate": float,
    "drop_connection_rate": float,
    "error_after_commit_rate": float,
    "drop_after_commit_rate": float,
    "slow_rate": float,
    "slow_ms": int,
    "latency_ms": int,
    "fault_routes": _parse_routes,
    "event_redelivery_rate": float,
    "seed": int,
    "admin_enabled": _parse_bool,
    "admin_token": str,
    "simulate_on_read": _parse_bool,
    "clock_follows_client": _parse_bool,
    "timezone": str,
    "max_body_bytes": int,
    "record_requests": _parse_bool,
}
