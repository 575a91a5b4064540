"""PostgreSQL advisory locks: the one registry of lock ids, and the per-agency load lock.

Lock ids in use (one place, so two features never pick the same number):

* ``728361``: migrations (``db.migrate``)
* ``728362``: the outcome rebuild (``outcomes``)
* ``(4711, file_id)``: one loader per extract file (``ingest.LOAD_LOCK_NAMESPACE``; retention
  takes it too before deleting a file)
* ``(4712, agency)``: one load at a time per agency (``agency_load_lock`` below), so the nightly
  DAG can run several days at once (a reprocess never queues behind a run waiting for its
  manifest) while the days of one agency still merge one after another. Any order of days is
  safe: the current version of a call is the highest ``record_version``, ties to the earliest
  extract day (``include/sql/load/current_winners.sql``), whatever order the files load in.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from upstream import db

log = logging.getLogger(__name__)

AGENCY_LOAD_NAMESPACE = 4712


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
    with db.connect(url or db.warehouse_url(), role=db.LOADER, autocommit=True) as conn:
        key = (AGENCY_LOAD_NAMESPACE, agency_key(agency))
        if not conn.execute("SELECT pg_try_advisory_lock(%s, %s) AS ok", key).fetchone()["ok"]:
            if not wait:
                raise AgencyBusy(f"{agency}: another load of this agency is running right now")
            log.info("%s: another load of this agency is running; waiting for it to finish", agency)
            conn.execute("SELECT pg_advisory_lock(%s, %s)", key)
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s, %s)", key)


class AgencyBusy(RuntimeError):
    def __init__(self, public_message: str):
        super().__init__(public_message)
        self.public_message = public_message
