"""What one reference server instance holds: its store, simulator, faults and clock.

Shared by the contract routes (routes_contract), the test-only admin routes (routes_admin)
and the middleware.
"""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import json
import threading
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from fastapi.responses import JSONResponse

from .config import ServiceConfig
from .faults import FaultInjector
from .simulator import Simulator, plan_events
from .store import Store

START_CURSOR = "0"


class Clock:
    """The server's notion of "now" (UTC): real, frozen, or real + offset.

    Set through ``POST /_admin/clock``; persisted in the store so a restart keeps it.
    """

    META_KEY = "clock"

    def __init__(self, store: Store | None = None) -> None:
        self._lock = threading.Lock()
        self._store = store
        self._frozen: datetime | None = None
        self._offset = timedelta(0)
        saved = store.get_meta(self.META_KEY) if store is not None else None
        if saved:
            state = json.loads(saved)
            frozen = state.get("frozen")
            self._frozen = datetime.fromisoformat(frozen) if frozen else None
            self._offset = timedelta(seconds=state.get("offset_seconds") or 0.0)

    def now(self) -> datetime:
        with self._lock:
            if self._frozen is not None:
                return self._frozen
            return datetime.now(UTC) + self._offset

    def set(self, now: datetime | None = None, offset_seconds: float | None = None) -> None:
        with self._lock:
            self._set(now, offset_seconds)

    def _set(self, now: datetime | None, offset_seconds: float | None) -> None:
        self._frozen = now.astimezone(UTC) if now is not None else None
        self._offset = timedelta(seconds=offset_seconds or 0.0)
        if self._store is not None:
            real = self._frozen is None and not self._offset
            state = {
                "frozen": self._frozen.isoformat() if self._frozen else None,
                "offset_seconds": self._offset.total_seconds(),
            }
            self._store.set_meta(self.META_KEY, None if real else json.dumps(state))

    def follow(self, moment: datetime) -> bool:
        """Freeze the clock at ``moment`` unless it is already frozen at or after it.

        A replayed calendar only moves forward: a request dated earlier than the clock (a
        retry, a slower worker) never takes back what has already happened. Returns whether
        the clock moved.
        """
        with self._lock:
            if self._frozen is not None and moment <= self._frozen:
                return False
            self._set(moment, None)
            return True

    def describe(self) -> dict[str, Any]:
        with self._lock:
            frozen, offset = self._frozen, self._offset
        return {
            "now": self.now().isoformat(),
            "frozen": frozen is not None,
            "offset_seconds": offset.total_seconds(),
        }


def client_date(headers: Any) -> datetime | None:
    """The request's HTTP ``Date`` (RFC 9110 IMF-fixdate, or the obsolete forms), or None when
    absent or unreadable (a bad ``Date`` is ignored, never an error: the contract does not
    require one)."""
    raw = headers.get("date")
    if not raw:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    return moment if moment.tzinfo is not None else None


class OutreachService:
    """Everything one server instance holds; ``app.state.outreach``."""

    def follow_client(self, headers: Any) -> None:
        """With ``clock_follows_client`` (replays such as the demo), a contract request's HTTP
        ``Date`` moves the clock forward to that time (see :meth:`Clock.follow`)."""
        if self.config.clock_follows_client:
            moment = client_date(headers)
            if moment is not None:
                self.clock.follow(moment)

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.store = Store(config.db_path, partial(plan_events, config.seed), config.timezone)
        self.simulator = Simulator(self.store)
        self.faults = FaultInjector(config)
        self.clock = Clock(self.store)
        self._token = config.token.encode()
        self._admin_token = config.effective_admin_token.encode()

    def now_epoch(self) -> int:
        return int(self.clock.now().timestamp())

    def authorized(self, header: bytes | None, admin: bool) -> bool:
        expected = self._admin_token if admin else self._token
        if not header:
            return False
        scheme, _, presented = header.partition(b" ")
        if scheme.lower() != b"bearer":
            return False
        return hmac.compare_digest(presented.strip(), expected)

    def reset(self) -> None:
        self.store.reset()
        self.faults = FaultInjector(self.config)
        self.clock.set(None, None)


def canonical_hash(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def error_response(status: int, loc: list[Any], msg: str, type_: str) -> JSONResponse:
    return JSONResponse({"detail": [{"loc": loc, "msg": msg, "type": type_}]}, status_code=status)
