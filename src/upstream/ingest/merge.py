"""The set-based merge of a validated file into core (include/sql/load/): supersede an older
extract of the day, add this file's versions, re-derive the current calls and the contact
details of the incidents involved, check the references it must leave intact. One transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

from upstream.ingest.manifest import Delivery
from upstream.ingest.outcome import LoadResult
from upstream.warehouse.sql import read_sql
from upstream.warehouse.staging import typed_table


@dataclass(frozen=True)
class JoinPolicy:
    """How a merge joins the incidents it touches to core; the planner decides by default.

    large: a large segment into a core.call the planner thinks (nearly) empty: nested loops
    off for the insert of new calls. index_probes: a segment small beside what core stores:
    index probes only, and core's statistics wait for the caller (analyze_core_tables after
    its commit)."""

    large: bool = False
    index_probes: bool = False


def stored_call_estimate(conn: psycopg.Connection) -> float:
    """The planner's idea of core.call's size (-1: never analysed)."""
    return conn.execute(read_sql("load/current_call_estimate.sql")).fetchone()["n"]


def join_policy(affected: int, stored: float) -> JoinPolicy:
    """The history import's choice for a segment of `affected` incidents into a core.call of
    (the planner's estimate) `stored` calls. Hash joins only while core.call is small beside
    the segment (the planner's nested loop then was quadratic); into millions of stored calls,
    index probes only: the planner hashed all of core.call_version
    and core.call in four statements of every segment (20 agencies: 362 s -> 304 s). With the
    joins fixed, core's statistics wait for the end of the import: analysed after every merge
    they cost 2.4 s an agency at 4M calls."""
    return JoinPolicy(large=affected > 10_000 and stored < 4 * affected,
                      index_probes=stored >= 4 * affected)


def rederive_current_calls(conn: psycopg.Connection, policy: JoinPolicy = JoinPolicy()) -> None:
    """core.call and core.contact for the incidents in pg_temp.affected_incident (shared by the
    nightly merge and the history import's segment merge)."""
    analyze_core = not policy.index_probes  # else the caller's, after its commit
    if policy.index_probes:
        conn.execute(read_sql("load/index_joins_only.sql"))
    # Temp tables are never auto-analysed and a fresh warehouse looks empty to the
    # planner: without statistics the next statements pick nested loops.
    conn.execute(read_sql("load/analyze_affected_incidents.sql"))
    if analyze_core:
        conn.execute(read_sql("load/analyze_call_versions.sql"))
    conn.execute(read_sql("load/current_winners.sql"))
    conn.execute(read_sql("load/analyze_current_winners.sql"))
    conn.execute(read_sql("load/update_current_calls.sql"))
    if policy.large:
        # A large segment into a core.call the planner thinks (nearly) empty: it probed
        # core.call by an index of rows this very statement inserts, quadratic (78 s for
        # 30k calls, 1 s as a hash anti-join). Small segments keep their index probes.
        conn.execute(read_sql("load/nestloop_off.sql"))
    conn.execute(read_sql("load/insert_current_calls.sql"))
    if policy.large:
        conn.execute(read_sql("load/nestloop_on.sql"))
    # The contact and stale-row statements join core.call, just rewritten: with the old
    # statistics a large first load was planned as a nested loop (minutes at 1M rows).
    if analyze_core:
        conn.execute(read_sql("load/analyze_calls.sql"))
    conn.execute(read_sql("load/drop_orphaned_current_calls.sql"))
    conn.execute(read_sql("load/refresh_contacts.sql"))


def analyze_core_tables(conn: psycopg.Connection) -> None:
    """core.call_version and core.call statistics (when enough changed, migration 008), each in
    its own short transaction: ANALYZE holds its lock until commit (inside a history merge it
    made the import's other worker wait for the whole rest of that merge)."""
    for statement in ("load/analyze_call_versions.sql", "load/analyze_calls.sql"):
        conn.execute(read_sql(statement))
        conn.commit()


def supersede_day(conn: psycopg.Connection, file_id: int, delivery: Delivery) -> list[int]:
    """Mark the loaded extracts of the day this file replaces superseded; drop their versions
    (their incidents join pg_temp.affected_incident). Returns their file ids."""
    superseded = [r["file_id"] for r in conn.execute(read_sql("load/supersede_day.sql"), {
        "file_id": file_id, "agency": delivery.agency_code,
        "extract_date": delivery.extract_date})]
    if superseded:
        conn.execute(read_sql("load/affected_from_superseded.sql"), {"superseded": superseded})
        conn.execute(read_sql("load/delete_superseded_versions.sql"), {"superseded": superseded})
    return superseded


def check_integrity(conn: psycopg.Connection, file_id: int, what: str) -> None:
    broken = conn.execute(read_sql("load/check_integrity.sql"), {"file_id": file_id}).fetchone()
    broken = {name: n for name, n in broken.items() if n}
    if broken:  # a bug, not bad data: nothing of this merge may stay
        raise RuntimeError(f"{what} left broken references {broken}; rolled back")


def merge(conn: psycopg.Connection, file_id: int, delivery: Delivery, result: LoadResult) -> None:
    """One transaction: supersede an older extract of the day, add this file's versions,
    re-derive the current calls and the contact details of the incidents involved."""
    typed = typed_table(file_id)
    params = {"file_ids": [file_id]}
    with conn.transaction():
        conn.execute(read_sql("load/create_affected_incidents.sql"))
        conn.execute(sql.SQL(read_sql("load/affected_from_files.sql")).format(typed=typed), params)
        supersede_day(conn, file_id, delivery)
        cur = conn.execute(sql.SQL(read_sql("load/insert_call_versions.sql")).format(typed=typed),
                           params)
        result.rows_loaded = cur.rowcount
        rederive_current_calls(conn)
        conn.execute(sql.SQL(read_sql("load/upsert_contacts.sql")).format(typed=typed), params)
        check_integrity(conn, file_id, f"{delivery.agency_code} {delivery.extract_date}: merge")
        result.rows_stale = conn.execute(read_sql("load/count_stale_rows.sql"),
                                         {"file_id": file_id}).fetchone()["n"]
    conn.commit()
