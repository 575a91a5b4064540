"""Staging tables of a load: their names (one place for ingest, history, validate and check)
and their removal. A load's raw file only ever lives in these tables, dropped in a `finally`."""

from __future__ import annotations

import psycopg
from psycopg import sql

from upstream.warehouse.sql import read_sql

SCHEMA = "staging"


def staging_names(key: int | str) -> tuple[sql.Identifier, sql.Identifier]:
    """The all-text COPY table and the typed table of a load (key: file id or batch key)."""
    return (sql.Identifier(SCHEMA, f"load_{key}_raw"), sql.Identifier(SCHEMA, f"load_{key}_typed"))


def typed_table(key: int | str) -> sql.Identifier:
    return staging_names(key)[1]


def suspect_table(key: int | str) -> sql.Identifier:
    """The rows that break a rule (validate/suspect_rows.sql), which GX validates."""
    return sql.Identifier(SCHEMA, f"load_{key}_suspect")


def batch_files_table(key: int | str) -> sql.Identifier:
    """A history batch's per-file constants, as a plain table: the typed pass joins it, and a
    query that reads a temp table gets no parallel workers."""
    return sql.Identifier(SCHEMA, f"load_{key}_files")


def gx_view_name(agency: str) -> str:
    """GX's stable view over the suspect rows of the agency's current load."""
    return f"gx_{agency.lower()}_current"


def drop_staging(conn: psycopg.Connection, key: int | str) -> None:
    raw, typed = staging_names(key)
    conn.execute(sql.SQL(read_sql("warehouse/drop_staging.sql")).format(
        raw=raw, typed=typed, suspect=suspect_table(key), files=batch_files_table(key)))


def drop_stale_staging(conn: psycopg.Connection) -> int:
    """Drop staging tables whose load is not running (a killed worker's leftovers)."""
    rows = conn.execute(read_sql("warehouse/staging_tables.sql")).fetchall()
    for r in rows:
        conn.execute(sql.SQL(read_sql("warehouse/drop_table.sql")).format(
            table=sql.Identifier(SCHEMA, r["relname"])))
    conn.commit()
    return len(rows)
