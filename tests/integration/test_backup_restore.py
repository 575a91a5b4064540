"""The runbook's backup (docs/operations.md): pg_dump of the warehouse, pg_restore into an
empty database, and every table, owner and privilege is the same afterwards. Runs on the
embedded PostgreSQL 18 (its own pg_dump) and, in make test's second pass, on the PostgreSQL 15
server with the machine's client."""

from __future__ import annotations

import subprocess
import uuid
from datetime import date

import psycopg
import pytest
from psycopg import sql

from upstream import ingest
from upstream.dev import generate
from upstream.warehouse import db

pytestmark = pytest.mark.integration

SYSTEM = ("pg_catalog", "information_schema", "pg_toast")


def _snapshot(url: str) -> dict:
    """Every table's rows, plus owners and privileges of every relation, schema and function
    (no ACL and the explicit default ACL are the same grant: pg_dump writes only the first)."""
    out = {}
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_type = 'BASE TABLE' AND table_schema <> ALL(%s) ORDER BY 1, 2",
            (list(SYSTEM),)).fetchall()
        for schema, name in tables:
            rows = conn.execute(sql.SQL("SELECT to_jsonb(t)::text FROM {} t").format(
                sql.Identifier(schema, name))).fetchall()
            out[f"{schema}.{name}"] = sorted(r[0] for r in rows)
        out["relations"] = conn.execute(
            "SELECT n.nspname, c.relname, c.relkind, c.relowner::regrole::text,"
            " coalesce(c.relacl, acldefault((CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END)::\"char\", c.relowner))::text"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname <> ALL(%s) AND c.relkind IN ('r', 'v', 'm', 'S', 'p')"
            " ORDER BY 1, 2", (list(SYSTEM),)).fetchall()
        out["schemas"] = conn.execute(
            "SELECT nspname, nspowner::regrole::text, coalesce(nspacl, acldefault('n'::\"char\", nspowner))::text"
            " FROM pg_namespace"
            " WHERE nspname <> ALL(%s) AND nspname NOT LIKE 'pg_%%' ORDER BY 1",
            (list(SYSTEM),)).fetchall()
        out["functions"] = conn.execute(
            "SELECT p.oid::regprocedure::text, p.proowner::regrole::text,"
            " coalesce(p.proacl, acldefault('f'::\"char\", p.proowner))::text"
            " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
            " WHERE n.nspname <> ALL(%s) ORDER BY 1", (list(SYSTEM),)).fetchall()
    return out


def test_pg_dump_and_restore_round_trip(upstream_env, warehouse_url, server_url, tmp_path):
    generate.generate(upstream_env.landing.dir, date(2024, 6, 1), date(2024, 6, 2), ["WPS"],
                      seed=4)
    for day in (date(2024, 6, 1), date(2024, 6, 2)):
        assert ingest.load_extract("WPS", day, upstream_env).outcome == "loaded"
    before = _snapshot(warehouse_url)
    assert before["core.call"] and before["public.schema_migration"]

    backup = tmp_path / "warehouse.dump"
    # what the runbook runs (there inside the compose postgres container)
    subprocess.run([db.pg_tool("pg_dump", warehouse_url), "--format=custom",
                    f"--file={backup}", f"--dbname={warehouse_url}"], check=True, timeout=300)
    name = f"upstream_restored_{uuid.uuid4().hex[:8]}"
    restored = db.create_database(server_url, name, warehouse=True)  # as the runbook creates it
    try:
        subprocess.run([db.pg_tool("pg_restore", restored), "--exit-on-error",
                        f"--dbname={restored}", str(backup)], check=True, timeout=300)
        after = _snapshot(restored)
        assert after.keys() == before.keys()
        for key in before:  # one key at a time: a readable difference
            missing = [r for r in before[key] if r not in after[key]]
            extra = [r for r in after[key] if r not in before[key]]
            assert (missing, extra) == ([], []), key
        # the restored warehouse is a working one: migrations see nothing to do
        assert db.migrate(restored) == []
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))
