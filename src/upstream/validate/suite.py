"""Great Expectations validation of a staged extract, and the quarantine it leads to.

The suite has one expectation per contract rule (upstream.rules). GX runs it on the SQL
datasource over the typed staging table and builds Data Docs; rows of the rules GX reports as
failing are then quarantined in one set-based pass over the same predicates. Unexpected-row
queries select `row_number` only, so no value from the file reaches GX results or Data Docs.
"""

from __future__ import annotations

import fcntl
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import psycopg
from psycopg import sql

from upstream.rules import RULES, RULES_BY_NAME, Rule
from upstream.settings import Settings
from upstream.warehouse import db
from upstream.warehouse.sql import read_sql
from upstream.warehouse.staging import gx_view_name, suspect_table, typed_table

log = logging.getLogger(__name__)

SUITE_NAME = "ipv_call_extract_v1"
GX_CONNECTION_VAR = "UPSTREAM_GX_CONNECTION_STRING"


@dataclass
class ValidationReport:
    success: bool
    failures_by_rule: dict[str, int] = field(default_factory=dict)
    data_docs_path: str | None = None


def _gx_query(rule: Rule) -> str:
    # GX fills {batch} with str.format: double the braces the predicate itself may carry.
    predicate = rule.failing.replace("{", "{{").replace("}", "}}")
    # The predicate is a constant of upstream.rules, never data from a file.
    return f"SELECT row_number FROM {{batch}} WHERE {predicate}"  # noqa: S608


def rules_fingerprint() -> str:
    """Changes whenever a rule changes, so a stored suite is rebuilt exactly then."""
    import hashlib

    text = "\n".join(f"{r.name}|{r.column}|{r.description}|{r.failing}" for r in RULES)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def build_suite():
    import great_expectations as gx
    import great_expectations.expectations as gxe

    # Passing the expectations to the constructor: add_expectation() on a stored suite
    # re-serialises the whole suite each time (measured: 40 s for 91 rules).
    expectations = [
        gxe.UnexpectedRowsExpectation(
            unexpected_rows_query=_gx_query(rule),
            description=f"{rule.column}: {rule.description} ({rule.name})",
            meta={"rule": rule.name, "column": rule.column},
        )
        for rule in RULES
    ]
    return gx.ExpectationSuite(name=SUITE_NAME, expectations=expectations,
                               meta={"rules_fingerprint": rules_fingerprint()})


def _current_suite(context):
    try:
        stored = context.suites.get(SUITE_NAME)
        if (stored.meta or {}).get("rules_fingerprint") == rules_fingerprint():
            return stored
    except Exception:  # not stored yet (GX raises its own not-found errors)
        pass
    return context.suites.add_or_update(build_suite())


@contextmanager
def _project_lock(project_dir: Path):
    """GX's file context is not safe for concurrent writers: one validation per project."""
    project_dir.mkdir(parents=True, exist_ok=True)
    with (project_dir / ".upstream.lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def data_docs_index(settings: Settings, agency: str) -> Path:
    from upstream.validate import datadocs

    return datadocs.index_path(settings.validate.gx_dir, agency)


def _checkpoint(context, agency: str, view_name: str):
    import great_expectations as gx

    fingerprint = rules_fingerprint()
    # "_v2": checkpoints stored before had GX's UpdateDataDocsAction (see upstream.validate.datadocs).
    name = f"{agency}_nightly_{fingerprint}_v2"
    try:
        return context.checkpoints.get(name)
    except Exception:  # first run with this rule set
        pass
    datasource = context.data_sources.add_or_update_postgres(
        name="warehouse", connection_string="${" + GX_CONNECTION_VAR + "}")
    asset_name = f"extract_{agency}"
    if any(a.name == asset_name for a in datasource.assets):
        datasource.delete_asset(asset_name)
    asset = datasource.add_table_asset(name=asset_name, table_name=view_name)
    batch_definition = asset.add_batch_definition_whole_table("whole file")
    suite = _current_suite(context)
    definition = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=f"{agency}_extract_{fingerprint}", data=batch_definition,
                                suite=suite))
    return context.checkpoints.add_or_update(gx.Checkpoint(
        name=name,
        validation_definitions=[definition],
        # No UpdateDataDocsAction: it rebuilt the index from every stored result (cost grew
        # with history) and its pages need CDNs; upstream.validate.datadocs writes offline pages.
        actions=[],
        result_format={"result_format": "BASIC", "partial_unexpected_count": 0,
                       "exclude_unexpected_values": True},
    ))


def validate_staged_file(conn: psycopg.Connection, settings: Settings, *, file_id: int,
                         agency: str, extract_date: date, run_name: str,
                         db_url: str) -> ValidationReport:
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier

    project_dir = settings.validate.gx_dir / agency
    # The connection string (with any password) stays in the environment, never in GX's files.
    # search_path: GX 1.x deprecates a table asset's schema_name in favour of the connection's.
    os.environ[GX_CONNECTION_VAR] = db.sqlalchemy_url(db_url, role=db.LOADER,
                                                      search_path="staging")
    view = sql.Identifier("staging", gx_view_name(agency))
    suspect = suspect_table(file_id)
    with _project_lock(project_dir):
        # GX validates a stable view, so its datasource, suite and checkpoint are created once
        # per rule set instead of on every run (each add_or_update costs seconds). The view
        # shows the rows the one-pass evaluation flagged: GX re-applies every rule's own
        # predicate to them, and its counts must agree (checked below).
        with conn.transaction():
            conn.execute(sql.SQL(read_sql("validate/drop_gx_view.sql")).format(view=view))
            conn.execute(sql.SQL(read_sql("validate/create_gx_view.sql")).format(
                view=view, suspect=suspect))
        conn.commit()
        context = gx.get_context(mode="file", project_root_dir=str(project_dir))
        bars = context.variables.progress_bars
        if bars is None or (bars.get("globally") if isinstance(bars, dict) else bars.globally):
            from great_expectations.data_context.types.base import ProgressBarsConfig

            context.variables.progress_bars = ProgressBarsConfig(globally=False)
            context.variables.save()
        checkpoint = _checkpoint(context, agency, view_name=gx_view_name(agency))
        run = checkpoint.run(run_id=RunIdentifier(run_name=run_name))
        from upstream.validate import (
            datadocs,  # one page and a bounded index, under the project lock
        )

        docs = datadocs.write_validation(settings.validate.gx_dir, agency, run_name, run_name, run)
    failures: dict[str, int] = {}
    for validation_result in run.run_results.values():
        for r in validation_result.results:
            if not r.success:
                rule = r.expectation_config.meta.get("rule")
                observed = r.result.get("observed_value")
                failures[rule] = int(observed) if isinstance(observed, int) else -1
                if r.exception_info and r.exception_info.get("raised_exception"):
                    # A rule that cannot run is a defect of ours, not of the file.
                    raise RuntimeError(f"GX could not evaluate rule {rule}")
    one_pass = one_pass_counts(conn, file_id)
    if one_pass != failures:
        # Both come from the same predicates: a difference is a defect of ours, never the file's.
        raise RuntimeError(f"rule evaluation disagrees with GX for rules "
                           f"{sorted(set(one_pass) ^ set(failures) or one_pass)}")
    log.debug("GX validation of %s %s: %s; Data Docs at %s", agency, extract_date,
             "passed" if run.success else f"{len(failures)} rule(s) failed", docs)
    return ValidationReport(run.success, failures, str(docs))


def quarantine_failing_rows(conn: psycopg.Connection, file_id: int) -> int:
    """Record every row that broke any rule, in one pass. Returns distinct rows."""
    statement = sql.SQL(read_sql("validate/quarantine_rows.sql")).format(
        suspect=suspect_table(file_id))
    conn.execute(statement, {"file_id": file_id, "rule_names": [r.name for r in RULES],
                             "rule_columns": [r.column for r in RULES]})
    row = conn.execute(read_sql("validate/quarantined_row_count.sql"),
                       {"file_id": file_id}).fetchone()
    return int(row["n"])


def one_pass_counts(conn: psycopg.Connection, staging_key: int | str) -> dict[str, int]:
    return {r["rule"]: r["n"] for r in conn.execute(sql.SQL(
        read_sql("validate/rule_counts.sql")).format(suspect=suspect_table(staging_key)))}


def failing_rows(conn: psycopg.Connection, staging_key: int | str, rule_names: list[str],
                 limit: int = 10) -> dict[str, tuple[int, list[int]]]:
    """Per rule: how many rows fail and the first `limit` row numbers (for reports)."""
    typed = typed_table(staging_key)
    out = {}
    for name in rule_names:
        rule = RULES_BY_NAME[name]
        # The predicate is a constant of upstream.rules, never data from a file.
        q = sql.SQL(read_sql("validate/failing_rows.sql")).format(
            typed=typed, predicate=sql.SQL(rule.failing))
        rows = conn.execute(q, {"limit": limit}).fetchall()
        out[name] = (rows[0]["n"] if rows else 0, [r["row_number"] for r in rows])
    return out


def evaluate_rules_directly(conn: psycopg.Connection, file_id: int) -> dict[str, int]:
    """Failing-row counts per rule without GX (tests use it to check GX agrees)."""
    typed = typed_table(file_id)
    counts = {}
    for r in RULES:
        q = sql.SQL(read_sql("validate/count_failing.sql")).format(
            typed=typed, predicate=sql.SQL(r.failing))
        n = conn.execute(q).fetchone()["n"]
        if n:
            counts[r.name] = n
    return counts
