"""Local Airflow + PostgreSQL environment for `make run`, `make test` and the CLI.

Everything lives under UPSTREAM_HOME (default ./.upstream, git-ignored): the embedded
PostgreSQL data directory, Airflow's home and logs, generated secrets. Running twice resumes.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

from upstream.settings import REPO_ROOT, Settings, load_settings, pseudonym_key
from upstream.warehouse import db

AIRFLOW_USER = "datateam"
# Airflow's own metadata database is used through this login only (created by
# include/sql/airflow/metadata_owner.sql, as in migrations/004_roles.sql and the compose file).
AIRFLOW_DB_ROLE = "upstream_airflow"


def _secret_file(settings: Settings, name: str, make) -> str:
    path = settings.home / "secrets" / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(make())
    return path.read_text().strip()


def _fernet_key() -> str:
    import base64

    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def airflow_password(settings: Settings) -> str:
    return json.loads(_passwords_file(settings).read_text())[AIRFLOW_USER]


def _passwords_file(settings: Settings) -> Path:
    path = settings.home / "secrets" / "airflow_passwords.json"
    _secret_file(settings, "airflow_passwords.json",
                 lambda: json.dumps({AIRFLOW_USER: secrets.token_urlsafe(12)}))
    return path


def airflow_env(settings: Settings | None = None) -> dict[str, str]:
    """Environment variables that point Airflow at this project (existing values win)."""
    settings = settings or load_settings()
    airflow_home = settings.home / "airflow"
    airflow_home.mkdir(parents=True, exist_ok=True)
    env = {
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__FERNET_KEY": _secret_file(settings, "fernet.key", _fernet_key),
        "AIRFLOW__API_AUTH__JWT_SECRET": _secret_file(settings, "jwt.secret",
                                                      lambda: secrets.token_urlsafe(32)),
        "AIRFLOW__API__SECRET_KEY": _secret_file(settings, "api.secret",
                                                 lambda: secrets.token_urlsafe(32)),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{AIRFLOW_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(_passwords_file(settings)),
        "AIRFLOW__API__BASE_URL": settings.alerts.airflow_base_url,
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{settings.alerts.airflow_base_url}/execution/",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
        # The agencies' local time for naive dates (`airflow backfill create --from-date`) and
        # log timestamps. Airflow 3's UI has no server-side display default any more
        # (`default_ui_timezone` was removed, apache/airflow#49176): it shows the browser's
        # time zone, and each user can pick one under User > Timezone.
        "AIRFLOW__CORE__DEFAULT_TIMEZONE": str(settings.timezone),
        # A task that Ctrl-C interrupted is failed and retried 90 s into the next `make run`
        # (Airflow's default waits 300 s, so the run looks stuck to a newcomer).
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "90",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__CORE__MIN_SERIALIZED_DAG_UPDATE_INTERVAL": "5",
        "UPSTREAM_HOME": str(settings.home),
        "PYTHONWARNINGS": "ignore::DeprecationWarning",
    }
    if not os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = db.sqlalchemy_url(
            _airflow_metadata_url(settings))
    # The pseudonym key file is created here, once, outside the repository.
    pseudonym_key()
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    return {k: v for k, v in env.items() if k == "PATH" or not os.environ.get(k)}


def _airflow_metadata_url(settings: Settings) -> str:
    """Airflow's metadata database: on the embedded server unless configured explicitly,
    owned by and used through the least-privilege login upstream_airflow."""

    embedded = settings.with_changes(warehouse__url=None)
    return least_privilege_metadata(db.ensure_database(db.AIRFLOW_DB, embedded, warehouse=False))


def least_privilege_metadata(superuser_url: str) -> str:
    """Hand Airflow's metadata database (and all in it) to upstream_airflow; return its URL.

    Idempotent, and a no-op once done: a database that an earlier `make run` created as the
    superuser is migrated in place (ownership only; Airflow's data stays).
    """
    import psycopg

    with psycopg.connect(superuser_url, autocommit=True) as conn:
        behind = conn.execute(db.read_sql("airflow/metadata_not_owned.sql"),
                              {"role": AIRFLOW_DB_ROLE}).fetchone()[0]
        if behind:
            conn.execute(db.read_sql("airflow/metadata_owner.sql"))
    info = psycopg.conninfo.conninfo_to_dict(superuser_url)
    info["user"] = AIRFLOW_DB_ROLE
    info.pop("password", None)  # embedded server: local trust, like the other task roles
    return psycopg.conninfo.make_conninfo(**info)


def node_name() -> str:
    """Airflow's `hostname_callable` when several Celery workers share one machine: each
    worker process gets UPSTREAM_NODE_NAME (a task instance records which one ran it)."""
    import socket

    from upstream.settings import node_name as configured

    return configured() or socket.getfqdn()


def celery_env(broker_url: str, metadata_sqlalchemy_url: str, *,
               queue: str = "default") -> dict[str, str]:
    """The CeleryExecutor settings of docker-compose.yml, for the same topology natively:
    Redis as broker, the metadata database as Celery's result backend."""
    return {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + metadata_sqlalchemy_url,
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": queue,
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "upstream.dev.env.node_name",
    }


def celery_worker_command(name: str, *, concurrency: int = 2, queue: str = "default",
                          log_server_port: int | None = None) -> tuple[list[str], dict[str, str]]:
    """`airflow celery worker` as node `name` (command, extra environment). Workers on one
    machine need distinct node names and log-server ports; in compose each has its own host."""
    command = [str(Path(sys.executable).parent / "airflow"), "celery", "worker",
               "--celery-hostname", f"{name}@%h", "--concurrency", str(concurrency),
               "--queues", queue, "--without-mingle", "--without-gossip"]
    env = {"UPSTREAM_NODE_NAME": name}
    if log_server_port is None:
        command.append("--skip-serve-logs")
    else:
        env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(log_server_port)
    return command, env


def apply_airflow_env(settings: Settings | None = None) -> dict[str, str]:
    env = airflow_env(settings)
    os.environ.update(env)
    return env


def migrate_airflow(env: dict[str, str] | None = None) -> None:
    full_env = {**os.environ, **(env or {})}
    subprocess.run([str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
                   env=full_env, check=True, stdout=subprocess.DEVNULL)


def airflow_db_current() -> bool:
    """Airflow's metadata database is at the installed version's head (checked in-process:
    about 5 s less than `airflow db migrate` with nothing to do, measured 9.3 s here)."""
    try:
        from airflow.utils.db import check_migrations

        check_migrations(0)
    except Exception:  # not at head, not created yet, unreachable: `airflow db migrate` says
        return False
    return True


def bootstrap(settings: Settings | None = None, *, quick: bool = False) -> dict[str, str]:
    """Embedded PostgreSQL up, warehouse migrated, Airflow metadata migrated. Idempotent.

    `quick` (the CLI): skip `airflow db migrate` when the metadata database is current; this
    imports Airflow into the calling process, which the CLI needs anyway.
    """
    settings = settings or load_settings()
    db.migrate(db.warehouse_url(settings))
    env = apply_airflow_env(settings)
    if not (quick and airflow_db_current()):
        migrate_airflow(env)
    return env
