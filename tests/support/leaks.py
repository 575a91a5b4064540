"""The leak scan's searches: a value anywhere in the warehouse's tables or in a folder's files.

A canary (a made-up name or narrative) that must not be stored is searched for everywhere
after a run; an empty answer is the test.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
from psycopg import sql

SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")


def staging_tables(conn: psycopg.Connection) -> int:
    """How many staging tables exist (a finished or refused load leaves none)."""
    return conn.execute(
        "SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'staging'").fetchone()["n"]


def find_text(conn: psycopg.Connection, needle: str) -> list[str]:
    """Text-like columns (schema.table.column) of every table outside staging (core, ops,
    contact, routing, public, ...) holding `needle` anywhere, case-insensitively."""
    cols = conn.execute(
        "SELECT c.table_schema, c.table_name, c.column_name FROM information_schema.columns c"
        " JOIN information_schema.tables t USING (table_schema, table_name)"
        " WHERE t.table_type = 'BASE TABLE' AND c.table_schema <> ALL(%s)"
        " AND c.table_schema <> 'staging' AND c.table_schema NOT LIKE 'pg_temp%%'"
        " AND c.data_type IN ('text', 'character varying', 'character', 'ARRAY', 'json',"
        " 'jsonb', 'USER-DEFINED')", (list(SYSTEM_SCHEMAS),)).fetchall()
    assert {"core", "ops", "contact"} <= {c["table_schema"] for c in cols}
    hits = []
    for c in cols:
        query = sql.SQL("SELECT count(*) AS n FROM {} WHERE {}::text ILIKE %s").format(
            sql.Identifier(c["table_schema"], c["table_name"]), sql.Identifier(c["column_name"]))
        if conn.execute(query, (f"%{needle}%",)).fetchone()["n"]:
            hits.append(f"{c['table_schema']}.{c['table_name']}.{c['column_name']}")
    return hits


def files_containing(root: Path, needle: str) -> list[str]:
    """Files under root (GX project: results, Data Docs) whose bytes contain needle."""
    if not root.exists():
        return []
    return sorted(str(p) for p in root.rglob("*")
                  if p.is_file() and needle.encode() in p.read_bytes())
