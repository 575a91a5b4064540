"""Shared fixtures: a real PostgreSQL for every test that needs one.

By default an embedded PostgreSQL 18 (pip package) under /tmp/upstream-test-<uid>; with
UPSTREAM_TEST_SERVER_URL set (CI sets it to the machine's PostgreSQL 15), the same tests run
against that server instead. Each test session gets its own fresh database, migrated.

Tiers: tests/unit needs no database and no Airflow run (`make test-fast`; tests/unit/conftest.py
enforces it), tests/db tests SQL on PostgreSQL, tests/integration runs loads and DAGs,
tests/dags checks the DAG files, tests/outreach the reference outreach service. Builders and
helpers shared between test modules live in tests/support (importable as `support`).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from support import env as test_env

# With pytest-xdist (`make test` runs two workers), each worker gets a root of its own: its own
# embedded PostgreSQL, Airflow home and metadata database, so two workers never share a DAG
# run, a migration or a lock.
TEST_ROOT = Path(os.environ.get("UPSTREAM_TEST_ROOT", f"/tmp/upstream-test-{os.getuid()}"))
if os.environ.get("PYTEST_XDIST_WORKER"):
    TEST_ROOT = TEST_ROOT / os.environ["PYTEST_XDIST_WORKER"]


def _server_url() -> str:
    explicit = os.environ.get("UPSTREAM_TEST_SERVER_URL")
    if explicit:
        return explicit
    from upstream.warehouse.db import embedded_server

    TEST_ROOT.mkdir(parents=True, exist_ok=True)
    return embedded_server(TEST_ROOT).get_uri("postgres")


def _with_db(url: str, name: str) -> str:
    from upstream.warehouse.db import (
        with_database,  # imported late: conftest loads before the env is set
    )

    return with_database(url, name)


@pytest.fixture(scope="session")
def server_url() -> str:
    return _server_url()


@pytest.fixture(scope="session")
def warehouse_url(server_url: str):
    """A migrated warehouse database of its own for this test session."""
    from upstream.warehouse import db

    name = f"upstream_test_{uuid.uuid4().hex[:10]}"
    url = db.create_database(server_url, name, warehouse=True)
    db.migrate(url)
    yield url
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def reset_warehouse(warehouse_url: str):
    """Empty the warehouse again inside one test (hypothesis examples share the fixtures)."""
    return lambda: test_env.reset_warehouse(warehouse_url)


@pytest.fixture
def upstream_env(tmp_path: Path, warehouse_url: str, monkeypatch: pytest.MonkeyPatch):
    """Settings pointing at an empty landing area and the (emptied) session warehouse."""
    test_env.point_settings_at(monkeypatch, tmp_path / "home", warehouse_url,
                               key="test-pseudonym-key-" + uuid.uuid4().hex)
    test_env.reset_warehouse(warehouse_url)
    from upstream.settings import load_settings

    return load_settings()


@pytest.fixture(scope="module")
def module_env(warehouse_url: str, tmp_path_factory: pytest.TempPathFactory):
    """`upstream_env` for a module-scoped scenario: `with module_env("name", key=...) as
    settings:` (options: agencies, unset, reset; see support.env.settings_for)."""
    return lambda name, **kw: test_env.settings_for(tmp_path_factory.mktemp(name), warehouse_url,
                                                    **kw)


UNIT_TIER = Path(__file__).parent / "unit"
NO_DATABASE_URL = "postgresql+psycopg://unit-tests-have-no-database@127.0.0.1:9/none"


def _unit_tier_only(config) -> bool:
    """Whether every path this run collects lies in tests/unit (`pytest tests/unit ...`)."""
    paths = [Path(str(a).split("::", 1)[0]) for a in config.args]
    return bool(paths) and all(
        UNIT_TIER in (p := (config.invocation_params.dir / q).resolve()).parents or p == UNIT_TIER
        for q in paths)


def pytest_configure(config):
    """Point Airflow at a test home on the embedded server before anything imports airflow."""
    if getattr(config.option, "numprocesses", None) and not os.environ.get("PYTEST_XDIST_WORKER"):
        return  # the xdist controller runs no test: each worker sets up its own below
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # Never reuse an Airflow set-up inherited from the parent process (devenv keeps
        # existing values): each worker has its own metadata database and home.
        for key in [k for k in os.environ if k.startswith("AIRFLOW__") or k == "AIRFLOW_HOME"]:
            del os.environ[key]
    home = TEST_ROOT / "airflow-home"
    os.environ["UPSTREAM_HOME"] = str(TEST_ROOT)
    os.environ.setdefault("UPSTREAM_PSEUDONYM_KEY", "session-default-test-key")
    # Test extracts are dated 2024: the referral window is measured from the newest loaded
    # call, as in the demo (test_referral_window.py tests the wall clock explicitly).
    os.environ.setdefault("UPSTREAM_ROUTING_CLOCK", "extracts")
    # A task that fails in a dag.test() run is retried after 1, 2, 4 s, not 2, 4, 8 minutes:
    # a failure shows as a failure instead of a suite that seems to hang.
    os.environ.setdefault("UPSTREAM_RETRY_DELAY_SECONDS", "1")
    from upstream.dev import env as devenv
    from upstream.settings import load_settings

    if _unit_tier_only(config):
        # `make test-fast`: no database at all, so Airflow's metadata URL must not be derived
        # (that starts the embedded server); one that cannot connect shows any attempt.
        os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = NO_DATABASE_URL
    env = devenv.airflow_env(load_settings())
    env["AIRFLOW_HOME"] = str(home)
    os.environ.update(env)
    os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"


# The second pass of `make test` (on the PostgreSQL server at TEST_SERVER_URL) runs the
# database tests of these modules: SQL functions and rules, loading and corrections, the
# outcome tables, the evaluation measures and the release tier, the roles and the backup round
# trip (routing's SQL is plain and runs in the first pass only).
SERVER_PASS_MODULES = {"test_rules_sql.py", "test_load_semantics.py", "test_outcomes.py",
                       "test_evaluation.py", "test_roles.py", "test_backup_restore.py",
                       "test_warehouse_database.py"}


# The longest modules start first, so the two xdist workers finish together instead of one
# waiting on a late seed check (measured: 135 s and 90 s alone on a quiet machine).
LONGEST_FIRST = ("test_celery_stack.py", "test_seed_check.py", "test_routing_properties.py",
                 "test_scheduler_runs.py", "test_monitoring_ui.py", "test_nightly_dag.py",
                 "test_load_semantics.py", "test_quarantined_rows.py", "test_refused_files.py",
                 "test_unusual_valid_files.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable otherwise
    for item in items:
        if (item.path.name in SERVER_PASS_MODULES
                and "warehouse_url" in getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.server)


@pytest.fixture(scope="session")
def airflow_db():
    """Migrated Airflow metadata database (once per session)."""
    from upstream.dev import env as devenv

    devenv.migrate_airflow()
    return os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]


OUTREACH_TEST_TOKEN = "routing-test-token-not-a-secret"


@pytest.fixture(scope="session")
def outreach_service():
    """The reference outreach service, a real HTTP server on loopback (subprocess)."""
    from outreach_ref import ServiceConfig
    from outreach_ref.testing import run_server

    with run_server(ServiceConfig(token=OUTREACH_TEST_TOKEN, seed=3, record_requests=True)) as server:
        yield server


@pytest.fixture
def outreach(outreach_service, upstream_env, monkeypatch):
    """The service emptied, faults off, and Upstream configured to talk to it."""
    if not outreach_service.is_running:
        outreach_service.start()
    outreach_service.reset()
    monkeypatch.setenv("UPSTREAM_OUTREACH_URL", str(outreach_service))
    monkeypatch.setenv("UPSTREAM_OUTREACH_TOKEN", OUTREACH_TEST_TOKEN)
    monkeypatch.setenv("UPSTREAM_OUTREACH_BACKOFF_SECONDS", "0.01")
    monkeypatch.setenv("UPSTREAM_OUTREACH_TIMEOUT_SECONDS", "3")
    return outreach_service
