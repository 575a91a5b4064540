"""Outcome tables and the published program-monitoring views (docs/measuring.md).

`rebuild_outcomes()` recomputes every table in schema `outcomes` from the core tables and
replaces their contents in ONE transaction (REPEATABLE READ: every statement sees the same
snapshot of core/routing/ops). Heavy work goes into temporary tables first; the last step
deletes and re-inserts the outcome rows, so readers of the `published` views see the old build
until COMMIT and the new one after it, never a half-built table, and never wait on a lock.
The tables and views keep their OIDs, owner and grants (no DDL at rebuild time).

Deterministic: no now(). "Fully elapsed" windows are judged against a reference date, the local
date of the latest call in core.call unless one is given. Two rebuilds of the same data give
identical tables. Local days: the transaction's TimeZone is set to UPSTREAM_TIMEZONE.

Works as role upstream_outcomes (include/sql/migrations/004_roles.sql) unless
UPSTREAM_USE_DB_ROLES=false. Definitions, suppression and caveats: docs/measuring.md.

Settings (read by upstream.settings; docs/measuring.md lists them):

* ``UPSTREAM_PROGRAM_LAUNCH_DATE`` (default 2024-05-06): calls before it form the baseline
  cohort of the repeat-contact measure.
* ``UPSTREAM_OUTCOMES_WORK_MEM`` (default 256MB): work_mem of the rebuild transaction (sorts
  and hashes over core.call).
* ``UPSTREAM_RELEASE_MIN_CELL`` (default 10): the smallest count the release tier shows.

Besides the tables of 003_outcomes.sql the build fills those of 010_evaluation.sql: time to
repeat contact (Kaplan-Meier by cohort, log-rank against the baseline; 03b), repeat rates
standardised by prior-call history (03), first contact against service levels (03c), and the
release tier (09: counts randomly rounded to base 5 with a keyed hash, small counts withheld).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from datetime import date
from typing import Any

import psycopg
from psycopg import sql

from upstream.settings import load_settings
from upstream.warehouse import db

log = logging.getLogger(__name__)

WILSON_Z = 1.959963984540054  # two-sided 95% normal quantile

# One rebuild at a time (two concurrent DELETE + INSERT would both insert).
_REBUILD_LOCK = 728362
# Statements of the rebuild's own bookkeeping (the measures are the numbered files).
_SQL = "outcomes/rebuild/"

BUILD_FILES = (
    "outcomes/01_calls.sql",
    "outcomes/02_referrals.sql",
    "outcomes/03_repeat_contact.sql",
    "outcomes/03b_survival.sql",
    "outcomes/03c_service_level.sql",
    "outcomes/04_data_quality.sql",
    "outcomes/05_suppression_cells.sql",
    "outcomes/05b_suppression_cohorts.sql",
)
SUPPRESSION_STEP = "outcomes/06_suppression_step.sql"
PUBLISH_FILES = (
    "outcomes/07_publish.sql",
    "outcomes/08_publish_evaluation.sql",
    "outcomes/09_release.sql",
)
MAX_SUPPRESSION_ROUNDS = 200

OUTCOME_TABLES = (
    "calls_daily",
    "calls_monthly",
    "referral_funnel",
    "timeliness",
    "repeat_contact",
    "data_quality_daily",
    "quarantine_by_rule",
    "suppressed_cell",
    "repeat_by_prior",
    "repeat_survival",
    "repeat_survival_points",
    "repeat_logrank",
    "contact_service_level",
    "release_calls_quarterly",
    "release_service_level_quarterly",
    "release_repeat_contact",
    "release_repeat_survival",
    "release_logrank",
)

PUBLISHED_VIEWS = (
    "calls_monthly",
    "calls_daily",
    "referral_funnel",
    "timeliness",
    "repeat_contact",
    "data_quality_daily",
    "quarantine_by_rule",
    "repeat_survival",
    "repeat_logrank",
    "contact_service_level",
)

# The public release tier (010_evaluation.sql): role upstream_public reads these only.
RELEASE_VIEWS = (
    "calls_quarterly",
    "service_level_quarterly",
    "repeat_contact",
    "repeat_survival",
    "repeat_logrank",
    "build_info",
)


class OutcomesError(RuntimeError):
    """The rebuild cannot finish; the message names no data (safe for logs and alerts)."""

    def __init__(self, public_message: str):
        super().__init__(public_message)
        self.public_message = public_message


def launch_date() -> date:
    """The program's launch (UPSTREAM_PROGRAM_LAUNCH_DATE, read by upstream.settings): calls
    before it form the baseline here, and are never referred by routing."""
    return load_settings().program_launch_date


def release_min_cell() -> int:
    """UPSTREAM_RELEASE_MIN_CELL (5 to 1000, default 10; read by upstream.settings): the
    smallest count the release tier shows (zero aside)."""
    return load_settings().outcomes.release_min_cell


def chi_square_p_value(chi_square: float | None) -> float | None:
    """Upper tail of the chi-square distribution with 1 degree of freedom."""
    if chi_square is None or chi_square < 0 or not math.isfinite(chi_square):
        return None
    return math.erfc(math.sqrt(chi_square / 2.0))


def _logrank_p_values(conn: psycopg.Connection) -> None:
    """Complete t_logrank (03b) with the chi-square and its p-value (a handful of rows)."""
    conn.execute(db.read_sql(_SQL + "logrank_add_p_value.sql"))
    rows = conn.execute(db.read_sql(_SQL + "logrank_chi_square.sql")).fetchall()
    with conn.cursor() as cur:
        cur.executemany(
            db.read_sql(_SQL + "logrank_set_p_value.sql"),
            [{"p_value": chi_square_p_value(r["chi"]), "agency_code": r["agency_code"],
              "cohort": r["cohort"]} for r in rows])


def _require_release_key(conn: psycopg.Connection) -> None:
    """The release tier's rounding needs the key 010_evaluation.sql created: without it the
    release tables would silently come out empty, so the rebuild fails instead."""
    if conn.execute(db.read_sql(_SQL + "release_key_count.sql")).fetchone()["n"] != 1:
        raise OutcomesError("outcomes.release_key must hold one rounding key (see "
                            "010_evaluation.sql); the release tier cannot be built")


AFTER_STEP: dict[str, Callable[[psycopg.Connection], None]] = {
    "outcomes/03b_survival.sql": _logrank_p_values,
    "outcomes/08_publish_evaluation.sql": _require_release_key,
}


def _work_mem() -> str:
    """UPSTREAM_OUTCOMES_WORK_MEM (default 256MB; read and checked by upstream.settings)."""
    return load_settings().outcomes.work_mem


def wilson_interval(k: int, n: int, z: float = WILSON_Z) -> tuple[float, float] | None:
    """95% Wilson score interval for k successes in n trials (the SQL functions'
    reference implementation: outcomes.wilson_low / outcomes.wilson_high)."""
    if n <= 0 or k < 0 or k > n:
        return None
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return low, high


def _script(relative: str, params: dict[str, Any]) -> sql.Composed:
    return sql.SQL(db.read_sql(relative)).format(
        **{k: sql.Literal(v) for k, v in params.items()}
    )


def suppress_complementary(conn: psycopg.Connection, params: dict[str, Any]) -> int:
    """Run 06_suppression_step.sql round after round until it hides nothing; return rounds.

    Needs the temp tables sup_cell / sup_member of 05_suppression_cells.sql."""
    rounds = 0
    while True:
        rounds += 1
        if rounds > MAX_SUPPRESSION_ROUNDS:
            raise OutcomesError("complementary suppression did not converge")
        step = _script(SUPPRESSION_STEP, {**params, "round": rounds})
        if conn.execute(step).rowcount == 0:
            return rounds


def _session_settings(conn: psycopg.Connection, tz: str, work_mem: str) -> None:
    """Inside a transaction: local time zone and memory for this rebuild's statements."""
    conn.execute(db.read_sql(_SQL + "session.sql"), {"work_mem": work_mem, "tz": tz})


def _step_name(relative: str) -> str:
    return relative.rsplit("/", 1)[-1]


def rebuild_outcomes(
    url: str | None = None,
    reference_date: date | None = None,
    *,
    before_commit: Callable[[psycopg.Connection], None] | None = None,
) -> dict[str, Any]:
    """Rebuild every outcome table; return row counts, the dates used and step timings.

    reference_date: the day against which "fully elapsed" repeat-contact windows are judged
    (default: the local date of the latest call_received_at in core.call).
    before_commit: called with the rebuild's connection just before COMMIT (tests use it to
    look at the tables from another connection while the new build is still uncommitted).

    One transaction (REPEATABLE READ: every statement reads the same snapshot of the
    warehouse) computes everything into temporary tables, then replaces the outcome tables'
    contents; readers see the old build until it commits.
    """
    settings = load_settings()
    tz = str(settings.timezone)
    launch = launch_date()
    work_mem = _work_mem()
    min_cell = release_min_cell()
    url = url or db.warehouse_url(settings)
    started = time.monotonic()
    timings: dict[str, float] = {}
    # As upstream_outcomes (004_roles.sql): reads core/routing/ops, owns outcomes/published,
    # never sees contact details. UPSTREAM_USE_DB_ROLES=false keeps the login user.
    with db.connect(url, role=db.OUTCOMES) as conn:
        conn.execute(db.read_sql(_SQL + "lock.sql"), {"lock_id": _REBUILD_LOCK})
        conn.commit()
        try:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            with conn.transaction():
                _session_settings(conn, tz, work_mem)
                if reference_date is None:
                    reference_date = conn.execute(
                        db.read_sql(_SQL + "reference_date.sql")).fetchone()["d"]
                params: dict[str, Any] = {"tz": tz, "reference_date": reference_date,
                                          "launch_date": launch, "min_cell": min_cell}
                for relative in (*BUILD_FILES, SUPPRESSION_STEP, *PUBLISH_FILES):
                    t0 = time.monotonic()
                    if relative == SUPPRESSION_STEP:
                        rounds = suppress_complementary(conn, params)
                    else:
                        conn.execute(_script(relative, params))
                    if relative in AFTER_STEP:
                        AFTER_STEP[relative](conn)
                    timings[_step_name(relative)] = round(time.monotonic() - t0, 3)
                counts = {
                    name: conn.execute(
                        sql.SQL("SELECT count(*) AS n FROM {}").format(
                            sql.Identifier("outcomes", name))
                    ).fetchone()["n"]
                    for name in OUTCOME_TABLES
                }
                counts["suppression_rounds"] = rounds
                if before_commit is not None:
                    before_commit(conn)
            # The DELETE left the previous build as dead rows: reclaim them and refresh the
            # planner's statistics now rather than whenever autovacuum comes by.
            t0 = time.monotonic()
            conn.autocommit = True
            for name in (*OUTCOME_TABLES, "build_info"):
                conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(
                    sql.Identifier("outcomes", name)))
            timings["vacuum_analyze"] = round(time.monotonic() - t0, 3)
        finally:
            conn.autocommit = False
            conn.isolation_level = None
            conn.execute(db.read_sql(_SQL + "unlock.sql"), {"lock_id": _REBUILD_LOCK})
            conn.commit()
    result: dict[str, Any] = {
        "reference_date": reference_date.isoformat() if reference_date else None,
        "program_launch_date": launch.isoformat(),
        "rows": counts,
        "seconds": round(time.monotonic() - started, 3),
        "step_seconds": timings,
    }
    log.info("outcome tables rebuilt (reference date %s, launch %s): %s rows in %.1f s",
             result["reference_date"], result["program_launch_date"], counts, result["seconds"])
    return result
