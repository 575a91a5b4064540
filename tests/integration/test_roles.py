"""Least-privilege roles: connect as each one and try what it may and may not do."""

from __future__ import annotations

import time

import psycopg
import pytest

pytestmark = pytest.mark.integration

CAN, CANNOT = True, False

# (role, statement, allowed). Statements run in a transaction that is rolled back.
MATRIX = [
    # the loader writes calls and contact details but cannot read the details back
    ("upstream_loader", "SELECT count(*) FROM core.call", CAN),
    ("upstream_loader", "SELECT count(*) FROM ops.extract_file", CAN),
    ("upstream_loader", "SELECT incident_id, file_id FROM contact.victim_contact", CAN),
    ("upstream_loader", "SELECT given_name FROM contact.victim_contact", CANNOT),
    ("upstream_loader", "SELECT phone FROM contact.victim_contact", CANNOT),
    ("upstream_loader", "DELETE FROM contact.victim_contact WHERE incident_id = 'none'", CAN),
    ("upstream_loader", "SELECT count(*) FROM routing.referral", CANNOT),
    ("upstream_loader", "SELECT count(*) FROM routing.disclosure_audit", CANNOT),
    ("upstream_loader", "SELECT count(*) FROM outcomes.calls_monthly", CANNOT),
    # ... and may refresh the statistics of the two core tables it rewrites, nothing more
    ("upstream_loader", "SELECT core.analyze_for_load('call')", CAN),
    ("upstream_loader", "SELECT core.analyze_for_load('call_version')", CAN),
    ("upstream_router", "SELECT core.analyze_for_load('call')", CANNOT),
    ("upstream_analyst", "SELECT core.analyze_for_load('call')", CANNOT),
    # the router is the only reader of contact details; it cannot rewrite calls or the audit
    ("upstream_router", "SELECT given_name, phone, email FROM contact.victim_contact", CAN),
    ("upstream_router", "SELECT count(*) FROM core.eligible_case", CAN),
    ("upstream_router", "INSERT INTO routing.disclosure_audit (referral_id, action, recipient,"
                        " legal_basis, outcome) VALUES ('r', 'withdrawal', 'x', 'consent', 'y')", CAN),
    ("upstream_router", "UPDATE routing.disclosure_audit SET outcome = 'x'", CANNOT),
    ("upstream_router", "DELETE FROM routing.disclosure_audit", CANNOT),
    ("upstream_router", "UPDATE core.call SET consent_status = 'given'", CANNOT),
    ("upstream_router", "SELECT count(*) FROM ops.extract_file", CANNOT),
    ("upstream_router", "CREATE TABLE staging.x (a int)", CANNOT),
    # the outcomes builder reads calls and referrals, never contact details
    ("upstream_outcomes", "SELECT count(*) FROM core.call", CAN),
    ("upstream_outcomes", "SELECT count(*) FROM routing.referral_event", CAN),
    ("upstream_outcomes", "SELECT count(*) FROM contact.victim_contact", CANNOT),
    ("upstream_outcomes", "DELETE FROM core.call", CANNOT),
    ("upstream_outcomes", "SELECT count(*) FROM published.calls_monthly", CAN),
    # analysts: published views only
    ("upstream_analyst", "SELECT count(*) FROM published.calls_monthly", CAN),
    ("upstream_analyst", "SELECT count(*) FROM published.repeat_contact", CAN),
    ("upstream_analyst", "SELECT count(*) FROM core.call", CANNOT),
    ("upstream_analyst", "SELECT count(*) FROM contact.victim_contact", CANNOT),
    ("upstream_analyst", "SELECT count(*) FROM outcomes.calls_monthly", CANNOT),
    ("upstream_analyst", "SELECT count(*) FROM routing.referral", CANNOT),
    # the public release tier: its views and nothing else (010_evaluation.sql)
    ("upstream_public", "SELECT count(*) FROM release.calls_quarterly", CAN),
    ("upstream_public", "SELECT count(*) FROM release.repeat_survival", CAN),
    ("upstream_public", "SELECT count(*) FROM published.calls_monthly", CANNOT),
    ("upstream_public", "SELECT count(*) FROM outcomes.release_key", CANNOT),
    ("upstream_public", "SELECT count(*) FROM core.call", CANNOT),
    ("upstream_analyst", "SELECT count(*) FROM release.calls_quarterly", CANNOT),
    # Airflow's metadata role has nothing in the warehouse
    ("upstream_airflow", "SELECT count(*) FROM core.call", CANNOT),
    ("upstream_airflow", "SELECT count(*) FROM contact.victim_contact", CANNOT),
    ("upstream_airflow", "SELECT count(*) FROM ops.extract_file", CANNOT),
    ("upstream_airflow", "SELECT count(*) FROM public.schema_migration", CANNOT),
    ("upstream_airflow", "SELECT count(*) FROM published.calls_monthly", CANNOT),
]


def _as(url: str, role: str) -> psycopg.Connection:
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["user"] = role
    info.pop("password", None)
    return psycopg.connect(psycopg.conninfo.make_conninfo(**info))


@pytest.mark.parametrize(("role", "statement", "allowed"), MATRIX,
                         ids=[f"{r}:{s[:40]}" for r, s, _ in MATRIX])
def test_role_privileges(warehouse_url, upstream_env, role, statement, allowed):
    with _as(warehouse_url, role) as conn:
        assert conn.execute("SELECT current_user").fetchone()[0] == role
        if allowed:
            conn.execute(statement)
        else:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
        conn.rollback()


def test_tasks_work_as_their_roles(upstream_env, monkeypatch):
    """db.connect(role=...) really switches: the loader's session cannot read names."""
    from upstream.warehouse import db

    with db.connect(role=db.LOADER) as conn:
        assert conn.execute("SELECT current_user AS u").fetchone()["u"] == "upstream_loader"
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT given_name FROM contact.victim_contact")


def test_loader_really_refreshes_core_statistics(warehouse_url, upstream_env):
    """As a non-owner the loader's own ANALYZE would be skipped with a warning: the function
    must really analyse, and refuse any other table."""
    with _as(warehouse_url, "upstream_loader") as conn:
        conn.autocommit = True
        before = conn.execute("SELECT coalesce(analyze_count, 0) FROM pg_stat_user_tables"
                              " WHERE schemaname = 'core' AND relname = 'call'").fetchone()[0]
        conn.execute("SELECT core.analyze_for_load('call')")
        with pytest.raises(psycopg.errors.RaiseException, match="no such load table"):
            conn.execute("SELECT core.analyze_for_load('contact.victim_contact')")
    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        after = before
        for _ in range(50):  # the statistics collector reports asynchronously
            conn.execute("SELECT pg_stat_clear_snapshot()")
            after = conn.execute("SELECT coalesce(analyze_count, 0) FROM pg_stat_user_tables"
                                 " WHERE schemaname = 'core' AND relname = 'call'").fetchone()[0]
            if after > before:
                break
            time.sleep(0.1)
    assert after == before + 1
