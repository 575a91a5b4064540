"""`make run` (upstream.devenv) uses the least-privilege login upstream_airflow for Airflow's
metadata database, and hands an existing superuser-owned database over to it in place."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from upstream import db, devenv

pytestmark = pytest.mark.integration

NOT_OWNED = ("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
             " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'm', 'p', 'S')"
             " AND c.relowner::regrole::text <> 'upstream_airflow'")


def _airflow(env_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db.sqlalchemy_url(env_url)}
    return subprocess.run([str(Path(sys.executable).parent / "airflow"), *args], env=env,
                          capture_output=True, text=True, timeout=300)


def test_make_run_environment_uses_the_least_privilege_login(airflow_db):
    from upstream.config import load_settings

    conn_url = devenv.airflow_env(load_settings()).get(
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    assert conn_url.startswith("postgresql+psycopg://upstream_airflow@")
    libpq = conn_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(libpq) as conn:
        user, superuser = conn.execute(
            "SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
        assert (user, superuser) == ("upstream_airflow", False)
        assert conn.execute(NOT_OWNED).fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM alembic_version").fetchone()[0] == 1


def test_an_existing_superuser_database_is_handed_over(server_url, airflow_db):
    name = f"airflow_legacy_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    superuser_url = db.with_database(server_url, name)
    try:
        # how an earlier `make run` left it: migrated by the superuser, holding a variable
        done = _airflow(superuser_url, "db", "migrate")
        assert done.returncode == 0, done.stderr[-2000:]
        assert _airflow(superuser_url, "variables", "set", "kept", "yes").returncode == 0
        with psycopg.connect(superuser_url) as conn:
            assert conn.execute(NOT_OWNED).fetchone()[0] > 50

        role_url = devenv.least_privilege_metadata(superuser_url)
        assert devenv.least_privilege_metadata(superuser_url) == role_url  # idempotent

        with psycopg.connect(superuser_url) as conn:
            assert conn.execute(NOT_OWNED).fetchone()[0] == 0
            owner = conn.execute("SELECT datdba::regrole::text FROM pg_database"
                                 " WHERE datname = current_database()").fetchone()[0]
            assert owner == "upstream_airflow"
        # Airflow works through the role: migrations (a no-op now), reads and writes
        done = _airflow(role_url, "db", "migrate")
        assert done.returncode == 0, done.stderr[-2000:]
        done = _airflow(role_url, "variables", "set", "after", "1")
        assert done.returncode == 0, done.stderr[-2000:]
        with psycopg.connect(role_url) as conn:
            assert conn.execute("SELECT current_user").fetchone()[0] == "upstream_airflow"
            kept = conn.execute("SELECT key FROM variable ORDER BY key").fetchall()
        assert kept == [("after",), ("kept",)]  # Airflow's data survived the hand-over
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))
