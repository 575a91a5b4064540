"""Upstream's settings pointed at a test landing area and the session's warehouse.

One set-up for the function-scoped `upstream_env` and the module-scoped `module_env` fixtures
(tests/conftest.py), so a module-wide scenario starts from the same environment and the same
emptied tables as a single test.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

WAREHOUSE_TABLES = (
    "routing.disclosure_audit", "routing.referral_event", "routing.sync_cursor",
    "routing.referral", "ops.retention_log", "ops.quarantine_row", "contact.victim_contact",
    "core.call", "core.call_version", "ops.extract_file",
)  # fmt: skip


def reset_warehouse(url: str) -> None:
    """Empty the tables runs write to (the outcome tables are rebuilt whole by each build)."""
    with psycopg.connect(url, autocommit=True) as conn:
        # replica role: the audit log's append-only triggers do not fire for this test reset
        conn.execute("SET session_replication_role = replica")
        conn.execute("TRUNCATE " + ", ".join(WAREHOUSE_TABLES) + " RESTART IDENTITY CASCADE")


# Rows a migration inserts (configuration, not data): `empty_every_table` keeps them, or the next
# outcome build of the session fails ("outcomes.release_key must hold one rounding key").
SEEDED_TABLES = frozenset({"outcomes.release_key"})


def empty_every_table(url: str, *, must_include: Iterable[str] = WAREHOUSE_TABLES) -> None:
    """Empty every warehouse table outside staging and public (later migrations' tables too),
    except the seeded ones; for modules that check nothing else is left anywhere."""
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [f"{schema}.{name}" for schema, name in conn.execute(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_type = 'BASE TABLE' AND table_schema NOT IN"
            " ('pg_catalog', 'information_schema', 'pg_toast', 'staging', 'public')"
            " AND table_schema NOT LIKE 'pg_temp%' ORDER BY 1, 2")]
        assert set(must_include) <= set(tables)
        conn.execute("SET session_replication_role = replica")  # as in reset_warehouse
        conn.execute(sql.SQL("TRUNCATE {} RESTART IDENTITY CASCADE").format(sql.SQL(", ").join(
            sql.Identifier(*t.split(".")) for t in tables if t not in SEEDED_TABLES)))


def point_settings_at(mp: pytest.MonkeyPatch, home: Path, warehouse_url: str, *, key: str,
                      agencies: str = "WPS", unset: Iterable[str] = ()) -> None:
    """The environment of a test run: its own home, landing area and GX folder, this warehouse."""
    mp.setenv("UPSTREAM_HOME", str(home))
    mp.setenv("UPSTREAM_DATABASE_URL", warehouse_url)
    mp.setenv("UPSTREAM_LANDING_DIR", str(home / "landing"))
    mp.setenv("UPSTREAM_GX_DIR", str(home / "gx"))
    mp.setenv("UPSTREAM_PSEUDONYM_KEY", key)
    mp.setenv("UPSTREAM_AGENCIES", agencies)
    for name in unset:
        mp.delenv(name, raising=False)


@contextmanager
def settings_for(home: Path, warehouse_url: str, *, key: str, agencies: str = "WPS",
                 unset: Iterable[str] = (), reset: bool = True) -> Iterator:
    """`point_settings_at` for a `with` block (module-scoped set-ups), the warehouse emptied
    first unless reset=False; yields the loaded settings."""
    from upstream.settings import load_settings  # late: conftest sets the env first

    with pytest.MonkeyPatch.context() as mp:
        point_settings_at(mp, home, warehouse_url, key=key, agencies=agencies, unset=unset)
        if reset:
            reset_warehouse(warehouse_url)
        yield load_settings()
