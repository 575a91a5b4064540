"""PostgreSQL advisory locks: the one registry of lock ids, and the locks the loads take.

Lock ids in use (one place, so two features never pick the same number):

* ``MIGRATION_LOCK`` (728361): migrations (``warehouse.migrate``)
* ``OUTCOMES_REBUILD_LOCK`` (728362): the outcome rebuild (``outcomes._REBUILD_LOCK``, checked
  equal by tests/unit/test_architecture.py)
* ``(LOAD_LOCK_NAMESPACE, file_id)`` (4711): one loader per extract file (``ingest.load``;
  retention takes it too before deleting a file)
* ``(AGENCY_LOAD_NAMESPACE, agency_key(agency))`` (4712): one load at a time per agency
  (``agency_load_lock`` below), so the nightly DAG can run several days at once (a reprocess
  never queues behind a run waiting for its manifest) while the days of one agency still merge
  one after another. Any order of days is safe: the current version of a call is the highest
  ``record_version``, ties to the earliest extract day (``include/sql/load/current_winners.sql``),
  whatever order the files load in.
* ``(AGENCY_LOCK_NAMESPACE, hashtext(agency))`` (4712 too): nightly loads take it shared (they
  may run side by side), a history import exclusive (``lock_agency``), so the two never merge
  the same agency at once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

from upstream.warehouse.connect import LOADER, connect, warehouse_url
from upstream.warehouse.sql import read_sql

log = logging.getLogger(__name__)

MIGRATION_LOCK = 728361
OUTCOMES_REBUILD_LOCK = 728362
LOAD_LOCK_NAMESPACE = 4711
AGENCY_LOAD_NAMESPACE = 4712
AGENCY_LOCK_NAMESPACE = 4712


class AgencyBusy(RuntimeError):
    def __init__(self, public_message: str):
        super().__init__(public_message)
        self.public_message = public_message


def agency_key(agency: str) -> int:
    """A collision-free int4 for a 2-6 letter agency code (base 27: 27**6 < 2**31)."""
    code = agency.upper()
    if not (code.isascii() and code.isalpha() and 1 <= len(code) <= 6):
        raise ValueError(f"not an agency code: {agency!r}")
    key = 0
    for ch in code:
        key = key * 27 + (ord(ch) - ord("A") + 1)
    return key


@contextmanager
def agency_load_lock(agency: str, url: str | None = None, *, wait: bool = True) -> Iterator[None]:
    """Hold the agency's load lock for the block (a session lock on its own connection, so a
    killed worker releases it with its connection). ``wait=False`` raises at once if taken."""
    with connect(url or warehouse_url(), role=LOADER, autocommit=True) as conn:
        key = (AGENCY_LOAD_NAMESPACE, agency_key(agency))
        if not conn.execute(read_sql("warehouse/try_lock_pair.sql"), key).fetchone()["ok"]:
            if not wait:
                raise AgencyBusy(f"{agency}: another load of this agency is running right now")
            log.info("%s: another load of this agency is running; waiting for it to finish", agency)
            conn.execute(read_sql("warehouse/lock_pair.sql"), key)
        try:
            yield
        finally:
            conn.execute(read_sql("warehouse/unlock_pair.sql"), key)


def try_file_lock(conn: psycopg.Connection, file_id: int) -> bool:
    """One loader per file: a session-level lock, released when the connection closes."""
    return conn.execute(read_sql("warehouse/try_lock_pair.sql"),
                        (LOAD_LOCK_NAMESPACE, file_id)).fetchone()["ok"]


def lock_agency(conn: psycopg.Connection, agency: str, *, shared: bool) -> None:
    """Session-level advisory lock on the agency, released when the connection closes (or by
    unlock_agency). Fails at once with a message naming the agency."""
    fn = "pg_try_advisory_lock_shared" if shared else "pg_try_advisory_lock"
    ok = conn.execute(sql.SQL(read_sql("warehouse/agency_lock.sql")).format(
        function=sql.Identifier(fn)), (AGENCY_LOCK_NAMESPACE, agency)).fetchone()["ok"]
    conn.commit()
    if not ok:
        raise AgencyBusy(
            f"{agency}: a history import of this agency is running; the nightly load cannot "
            "run at the same time (it is retried)" if shared else
            f"{agency}: a nightly load of this agency is running; the history import cannot "
            "run at the same time (start it again when the load ends)")


def unlock_agency(conn: psycopg.Connection, agency: str, *, shared: bool) -> None:
    fn = "pg_advisory_unlock_shared" if shared else "pg_advisory_unlock"
    conn.execute(sql.SQL(read_sql("warehouse/agency_lock.sql")).format(
        function=sql.Identifier(fn)), (AGENCY_LOCK_NAMESPACE, agency))
    conn.commit()
