"""The reference server's own database (SQLite, stdlib ``sqlite3``).

Tables:

* ``referrals``: one row per accepted referral; ``payload_json`` is the accepted body
  *without* ``contact``; ``body_hash`` / ``contact_hash`` are the idempotency hashes
  (SHA-256 of the canonical JSON of the body without contact / of the contact object);
  ``sim_next_index`` / ``sim_next_epoch`` track the outcome simulator.
* ``contacts``: the contact details, one row per referral. Withdrawal deletes the row and
  clears ``contact_hash``; ``PRAGMA secure_delete`` zeroes the freed space and the WAL is
  checkpointed and truncated, so the values do not linger in the files.
* ``meta``: server settings that must survive a restart (the admin clock).
* ``events``: ``seq`` (the cursor), ``event_id`` (``e_<hex>``, unique), ``referral_id``,
  ``type``, ``occurred_at`` (ISO 8601 with offset), ``occurred_epoch``, ``sim_index``.

One connection guarded by a re-entrant lock: all writes are serialised, so a reader can never
see event ``n + 1`` committed before event ``n`` (no cursor gaps). WAL mode for file databases.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from .simulator import PlannedEvent

CONTACT_FIELDS = (
    "given_name",
    "family_name",
    "phone",
    "email",
    "preferred_contact",
    "safe_contact_notes",
    "language",
)

# The SQLite schema, a file beside this module (package data; executescript at start-up).
SCHEMA = (Path(__file__).with_name("schema.sql")).read_text(encoding="utf-8")

Planner = Callable[[str, str], Sequence[PlannedEvent]]


@dataclass(frozen=True)
class Event:
    seq: int
    event_id: str
    referral_id: str
    type: str
    occurred_at: str

    def as_api(self) -> dict[str, str]:
        return {
            "event_id": self.event_id,
            "referral_id": self.referral_id,
            "type": self.type,
            "occurred_at": self.occurred_at,
        }


class Store:
    def __init__(self, db_path: str | None, planner: Planner, timezone: str = "UTC") -> None:
        self.db_path = db_path
        self._planner = planner
        self._tz = ZoneInfo(timezone)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(
            db_path if db_path is not None else ":memory:",
            check_same_thread=False,
            isolation_level=None,  # autocommit; transactions are explicit
            timeout=10.0,
        )
        self._conn.row_factory = sqlite3.Row
        with self._lock:
            if db_path is not None:
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA secure_delete=ON")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._conn.executescript(SCHEMA)

    # ------------------------------------------------------------------ plumbing
    def close(self) -> None:
        with self._lock:
            try:
                if self.db_path is not None:
                    self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")

    def _render(self, epoch: int) -> str:
        return datetime.fromtimestamp(epoch, self._tz).isoformat(timespec="seconds")

    def _insert_event(
        self,
        conn: sqlite3.Connection,
        referral_id: str,
        event_type: str,
        epoch: int,
        sim_index: int | None,
    ) -> None:
        conn.execute(
            "INSERT OR IGNORE INTO events (event_id, referral_id, type, occurred_at,"
            " occurred_epoch, sim_index) VALUES (?, ?, ?, ?, ?, ?)",
            (
                "e_" + secrets.token_hex(12),
                referral_id,
                event_type,
                self._render(epoch),
                epoch,
                sim_index,
            ),
        )

    def _next_sim(
        self, referral_id: str, priority: str, received_epoch: int, index: int
    ) -> int | None:
        plan = self._planner(referral_id, priority)
        if index >= len(plan):
            return None
        return received_epoch + plan[index].offset_s

    # ------------------------------------------------------------------ referrals
    def create_referral(
        self,
        *,
        referral_id: str,
        payload: dict[str, Any],
        contact: dict[str, Any],
        body_hash: str,
        contact_hash: str,
        priority: str,
        now_epoch: int,
    ) -> str:
        """Store a referral. Returns ``created``, ``replay``, ``replay_withdrawn`` or ``conflict``.

        ``payload`` must not contain ``contact``; ``contact`` is stored in its own table.
        """
        if "contact" in payload:
            raise ValueError("payload must not include contact")
        with self._tx() as conn:
            row = conn.execute(
                "SELECT status, body_hash, contact_hash FROM referrals WHERE referral_id = ?",
                (referral_id,),
            ).fetchone()
            if row is not None:
                if row["body_hash"] != body_hash:
                    return "conflict"
                if row["status"] == "withdrawn":
                    # the contact was deleted on withdrawal and is never stored again
                    return "replay_withdrawn"
                if row["contact_hash"] != contact_hash:
                    return "conflict"
                return "replay"
            conn.execute(
                "INSERT INTO referrals (referral_id, status, received_epoch, received_at, priority,"
                " payload_json, body_hash, contact_hash, sim_next_index, sim_next_epoch)"
                " VALUES (?, 'received', ?, ?, ?, ?, ?, ?, 0, ?)",
                (
                    referral_id,
                    now_epoch,
                    self._render(now_epoch),
                    priority,
                    json.dumps(payload, sort_keys=True, ensure_ascii=False),
                    body_hash,
                    contact_hash,
                    self._next_sim(referral_id, priority, now_epoch, 0),
                ),
            )
            conn.execute(
                "INSERT INTO contacts (referral_id, given_name, family_name, phone, email,"
                " preferred_contact, safe_contact_notes, language) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (referral_id, *(contact[name] for name in CONTACT_FIELDS)),
            )
            self._insert_event(conn, referral_id, "received", now_epoch, None)
            return "created"

    def withdraw(self, referral_id: str, now_epoch: int) -> str | None:
        """Delete the contact, stop the simulator, append ``withdrawn``.

        Returns ``None`` for an unknown referral, ``withdrawn`` the first time and
        ``already_withdrawn`` afterwards (no second event).
        """
        with self._tx() as conn:
            row = conn.execute(
                "SELECT status FROM referrals WHERE referral_id = ?", (referral_id,)
            ).fetchone()
            if row is None:
                return None
            if row["status"] == "withdrawn":
                # belt and braces: make sure nothing is left even if an earlier run was cut off
                conn.execute("DELETE FROM contacts WHERE referral_id = ?", (referral_id,))
                return "already_withdrawn"
            last = conn.execute(
                "SELECT MAX(occurred_epoch) FROM events WHERE referral_id = ?", (referral_id,)
            ).fetchone()[0]
            epoch = max(now_epoch, (last or 0) + 1)
            conn.execute("DELETE FROM contacts WHERE referral_id = ?", (referral_id,))
            conn.execute(
                "UPDATE referrals SET status = 'withdrawn', withdrawn_at = ?, contact_hash = NULL,"
                " sim_next_epoch = NULL WHERE referral_id = ?",
                (self._render(epoch), referral_id),
            )
            self._insert_event(conn, referral_id, "withdrawn", epoch, None)
        self._purge_wal()
        return "withdrawn"

    def _purge_wal(self) -> None:
        """Copy the WAL back into the database file and truncate it (best effort)."""
        if self.db_path is None:
            return
        with self._lock:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    # ------------------------------------------------------------------ events
    def list_events(self, after_seq: int, limit: int) -> list[Event]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, event_id, referral_id, type, occurred_at FROM events"
                " WHERE seq > ? ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()
        return [Event(**dict(row)) for row in rows]

    def advance_simulation(self, until_epoch: int) -> int:
        """Emit all due simulated events (``occurred_epoch <= until_epoch``) in time order."""
        emitted = 0
        with self._tx() as conn:
            due = conn.execute(
                "SELECT referral_id, priority, received_epoch, sim_next_index FROM referrals"
                " WHERE status = 'received' AND sim_next_epoch IS NOT NULL AND sim_next_epoch <= ?",
                (until_epoch,),
            ).fetchall()
            pending: list[tuple[int, str, int, str]] = []
            updates: list[tuple[int, int | None, str]] = []
            for row in due:
                plan = self._planner(row["referral_id"], row["priority"])
                index = row["sim_next_index"]
                while (
                    index < len(plan)
                    and row["received_epoch"] + plan[index].offset_s <= until_epoch
                ):
                    step = plan[index]
                    pending.append(
                        (
                            row["received_epoch"] + step.offset_s,
                            row["referral_id"],
                            step.index,
                            step.type,
                        )
                    )
                    index += 1
                next_epoch = (
                    row["received_epoch"] + plan[index].offset_s if index < len(plan) else None
                )
                updates.append((index, next_epoch, row["referral_id"]))
            pending.sort()
            for epoch, referral_id, sim_index, event_type in pending:
                before = conn.total_changes
                self._insert_event(conn, referral_id, event_type, epoch, sim_index)
                emitted += conn.total_changes - before
            conn.executemany(
                "UPDATE referrals SET sim_next_index = ?, sim_next_epoch = ? WHERE referral_id = ?",
                updates,
            )
        return emitted

    # ------------------------------------------------------------------ server settings
    def get_meta(self, key: str) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_meta(self, key: str, value: str | None) -> None:
        with self._tx() as conn:
            if value is None:
                conn.execute("DELETE FROM meta WHERE key = ?", (key,))
            else:
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES (?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (key, value),
                )

    # ------------------------------------------------------------------ admin / inspection
    def list_referrals(self, referral_id: str | None = None) -> list[dict[str, Any]]:
        query = (
            "SELECT r.referral_id, r.status, r.received_at, r.withdrawn_at, r.payload_json,"
            " c.given_name, c.family_name, c.phone, c.email, c.preferred_contact,"
            " c.safe_contact_notes, c.language, c.referral_id AS contact_ref"
            " FROM referrals r LEFT JOIN contacts c ON c.referral_id = r.referral_id"
        )
        params: tuple[Any, ...] = ()
        if referral_id is not None:
            query += " WHERE r.referral_id = ?"
            params = (referral_id,)
        query += " ORDER BY r.received_epoch, r.referral_id"
        with self._lock:
            rows = self._conn.execute(query, params).fetchall()
        out = []
        for row in rows:
            contact = (
                {name: row[name] for name in CONTACT_FIELDS}
                if row["contact_ref"] is not None
                else None
            )
            out.append(
                {
                    "referral_id": row["referral_id"],
                    "status": row["status"],
                    "received_at": row["received_at"],
                    "withdrawn_at": row["withdrawn_at"],
                    "contact_present": contact is not None,
                    "contact": contact,
                    "payload": json.loads(row["payload_json"]),
                }
            )
        return out

    def counts(self) -> dict[str, Any]:
        with self._lock:
            referrals = dict(
                self._conn.execute(
                    "SELECT status, COUNT(*) FROM referrals GROUP BY status"
                ).fetchall()
            )
            events = dict(
                self._conn.execute("SELECT type, COUNT(*) FROM events GROUP BY type").fetchall()
            )
            last = self._conn.execute("SELECT MAX(seq) FROM events").fetchone()[0]
        return {"referrals": referrals, "events": events, "last_seq": last or 0}

    def log_request(self, route: str, path: str, key: str | None, body: str) -> None:
        """One authorised /v1 POST as received (before any fault): see ``record_requests``."""
        with self._tx() as conn:
            conn.execute("INSERT INTO request_log (route, path, key, body) VALUES (?, ?, ?, ?)",
                         (route, path, key, body))

    def request_log(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, route, path, key, body FROM request_log ORDER BY seq").fetchall()
        return [dict(r) for r in rows]

    def reset(self) -> None:
        """Delete everything (tests). Event sequence numbers keep growing."""
        with self._tx() as conn:
            conn.execute("DELETE FROM request_log")
            conn.execute("DELETE FROM contacts")
            conn.execute("DELETE FROM referrals")
            conn.execute("DELETE FROM events")
            conn.execute("DELETE FROM meta")
        self._purge_wal()


def utc_now_epoch() -> int:
    return int(datetime.now(UTC).timestamp())
