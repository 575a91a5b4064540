"""The one place where Upstream reads its configuration: `load_settings()` -> `Settings`.

Every setting is an environment variable with a safe local default (README, "Configuration";
tests/unit/test_settings_readme.py checks the tables against `READS`). No other module of
`upstream` reads UPSTREAM_* variables. Settings form a frozen tree of sections, one per stage:
`settings.warehouse.url`, `settings.landing.dir`, `settings.outreach.batch_size`, ...

Nothing here imports pandas, GX, psycopg or Airflow at import time, so DAG files may import it
at parse time. Inside an Airflow task the warehouse resolves through the Airflow connection
`upstream_warehouse` first (any secrets backend), like routing does for `upstream_outreach`.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass, replace
from datetime import date
from functools import cached_property
from pathlib import Path
from zoneinfo import ZoneInfo

REPO_ROOT = Path(__file__).resolve().parents[2]
SQL_DIR = REPO_ROOT / "include" / "sql"
WAREHOUSE_CONN_ID = "upstream_warehouse"

# Every variable read here -> its default as the README shows it (filled as they are read).
READS: dict[str, str] = {}


def _env(name: str, default: str | None = None, *, doc: str | None = None) -> str | None:
    """The raw value of `name` (empty counts as unset); the only `os.environ` read."""
    READS[name] = doc if doc is not None else ("" if default is None else str(default))
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _float(name: str, default: float) -> float:
    raw = _env(name, _num(default))
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"setting {name} must be a number, got {raw!r}") from exc


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def int_setting(name: str, default: int) -> int:
    raw = _env(name, str(default))
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"setting {name} must be a whole number, got {raw!r}") from exc


def _date(name: str, default: date) -> date:
    raw = _env(name, default.isoformat())
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise ValueError(f"setting {name} must be a date (YYYY-MM-DD), got {raw!r}") from exc


def _positive(name: str, default: int) -> int:
    value = int_setting(name, default)
    if value < 1:
        raise ValueError(f"setting {name} must be at least 1, got {value}")
    return value


def _days(name: str, default: int) -> int:
    days = int_setting(name, default)
    if days < 1:
        raise ValueError(f"setting {name} must be at least 1 day, got {days}")
    return days


def _choice(name: str, allowed: tuple[str, ...], default: str) -> str:
    value = (_env(name, default) or default).strip().lower()
    if value not in allowed:
        raise ValueError(f"setting {name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _switch(name: str, default: bool) -> bool:
    raw = _env(name, "true" if default else "false")
    return raw.strip().lower() not in ("0", "false", "no")


def _list(name: str, default: str, *, doc: str | None = None) -> tuple[str, ...]:
    return tuple(a.strip() for a in (_env(name, default, doc=doc) or "").split(",") if a.strip())


def home_dir() -> Path:
    """Local state (embedded database, landing area, Airflow home, keys); git-ignored."""
    return Path(_env("UPSTREAM_HOME", str(REPO_ROOT / ".upstream"), doc="./.upstream")).resolve()


# --- sections -------------------------------------------------------------------------------


@dataclass(frozen=True)
class WarehouseSettings:
    url: str | None  # None: the embedded PostgreSQL under home/pgdata
    source: str  # where `url` came from (names only, never the URL: it may hold a password)
    use_db_roles: bool  # each task switches to its least-privilege role (SET ROLE)

    @property
    def embedded(self) -> bool:
        return self.url is None


@dataclass(frozen=True)
class LandingSettings:
    dir: Path
    manifest_poke_seconds: int
    manifest_deadline_seconds: int
    import_workers: int  # agencies a history import loads at the same time


@dataclass(frozen=True)
class ValidateSettings:
    gx_dir: Path
    quarantine_max_share: float
    quarantine_warn_share: float
    quarantine_max_rows: int


@dataclass(frozen=True)
class OutreachSettings:
    url: str
    timeout_seconds: float
    max_attempts: int
    backoff_seconds: float
    batch_size: int


@dataclass(frozen=True)
class RoutingSettings:
    referral_max_age_days: int
    clock: str  # 'wall' (now) or 'extracts' (the day after the newest loaded extract)


@dataclass(frozen=True)
class AlertSettings:
    email_to: tuple[str, ...]
    webhook_url: str | None
    smtp_conn_id: str
    airflow_base_url: str  # run links in alerts


@dataclass(frozen=True)
class AirflowSettings:
    retry_delay_seconds: int


class _LazySection:
    """A section whose values are each parsed on first read: a bad value fails only what
    reads it (one purge, one outcome step), not the parse of every DAG."""

    def with_values(self, **values: object):
        copy = type(self)()
        copy.__dict__.update({**self.__dict__, **values})
        return copy

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.__dict__})"


class RetentionSettings(_LazySection):
    file_days = cached_property(lambda self: _days("UPSTREAM_FILE_RETENTION_DAYS", 30))
    contact_days = cached_property(lambda self: _days("UPSTREAM_CONTACT_RETENTION_DAYS", 90))
    quarantine_days = cached_property(
        lambda self: _days("UPSTREAM_QUARANTINE_RETENTION_DAYS", 365))
    task_log_days = cached_property(lambda self: _days("UPSTREAM_TASK_LOG_RETENTION_DAYS", 30))
    gx_result_days = cached_property(lambda self: _days("UPSTREAM_GX_RESULT_RETENTION_DAYS", 90))


class OutcomesSettings(_LazySection):
    @cached_property
    def work_mem(self) -> str:
        raw = (_env("UPSTREAM_OUTCOMES_WORK_MEM", "256MB") or "").strip()
        if not re.fullmatch(r"\d+(kB|MB|GB)?", raw):
            raise ValueError(f"setting UPSTREAM_OUTCOMES_WORK_MEM must look like 256MB, got {raw!r}")
        return raw

    @cached_property
    def release_min_cell(self) -> int:
        raw = (_env("UPSTREAM_RELEASE_MIN_CELL", "10") or "").strip()
        if not raw.isdigit() or not 5 <= int(raw) <= 1000:
            raise ValueError("setting UPSTREAM_RELEASE_MIN_CELL must be a whole number from 5 "
                             f"to 1000, got {raw!r}")
        return int(raw)

    @cached_property
    def uncontacted_48h_alert(self) -> int:  # 0: off
        raw = (_env("UPSTREAM_UNCONTACTED_48H_ALERT", "10") or "").strip()
        if not raw.isdigit():
            raise ValueError("setting UPSTREAM_UNCONTACTED_48H_ALERT must be a whole number "
                             f"(0 = off), got {raw!r}")
        return int(raw)


class MonitoringSettings(_LazySection):
    @cached_property
    def database_url(self) -> str | None:  # None: the warehouse
        return _env("UPSTREAM_MONITORING_DATABASE_URL", doc="the warehouse")

    @cached_property
    def db_role(self) -> str | None:
        # unset: the analyst role; set but empty: no switch (so not _env, where empty = unset)
        READS["UPSTREAM_MONITORING_DB_ROLE"] = "upstream_analyst"
        raw = os.environ.get("UPSTREAM_MONITORING_DB_ROLE")
        return "upstream_analyst" if raw is None else (raw.strip() or None)


@dataclass(frozen=True)
class Settings:
    """Program-wide values at the top, one section per stage below.

    `retention`, `outcomes` and `monitoring` values are parsed when first read: a bad value
    there fails the tasks that use it, not the parse of every DAG.
    """

    home: Path
    agencies: tuple[str, ...]
    timezone: ZoneInfo
    program_launch_date: date
    warehouse: WarehouseSettings
    landing: LandingSettings
    validate: ValidateSettings
    outreach: OutreachSettings
    routing: RoutingSettings
    alerts: AlertSettings
    airflow: AirflowSettings

    def with_changes(self, **changes: object) -> Settings:
        """A copy with some values changed: top-level names as they are, section values as
        `section__field`, e.g. `settings.with_changes(landing__dir=path)` (tests, --landing)."""
        top: dict[str, object] = {}
        nested: dict[str, dict[str, object]] = {}
        for key, value in changes.items():
            section, _, name = key.partition("__")
            if name:
                nested.setdefault(section, {})[name] = value
            else:
                top[key] = value
        for section, values in nested.items():
            current = getattr(self, section)
            top[section] = (current.with_values(**values) if isinstance(current, _LazySection)
                            else replace(current, **values))
        lazy = {k: v for k, v in top.items() if k in ("retention", "outcomes", "monitoring")}
        copy = replace(self, **{k: v for k, v in top.items() if k not in lazy})
        copy.__dict__.update(lazy)  # cached_property values live in the instance dict
        return copy

    @cached_property
    def retention(self) -> RetentionSettings:
        return load_retention()

    @cached_property
    def outcomes(self) -> OutcomesSettings:
        return load_outcomes()

    @cached_property
    def monitoring(self) -> MonitoringSettings:
        return load_monitoring()


# --- loaders --------------------------------------------------------------------------------


# task key -> the connection's conninfo: one lookup per task try, not one per warehouse connect
_task_urls: dict[tuple, str | None] = {}


def load_warehouse() -> WarehouseSettings:
    """Inside a task: the Airflow connection `upstream_warehouse`, else UPSTREAM_DATABASE_URL,
    else the embedded server. Outside tasks (CLI, tests, DAG parsing) Airflow is not asked."""
    use_roles = _switch("UPSTREAM_USE_DB_ROLES", True)
    env_url = _env("UPSTREAM_DATABASE_URL", doc="(unset: embedded PostgreSQL)")
    from upstream.airflow.connections import connection_conninfo, current_task

    task = current_task()
    if task is not None:
        if task not in _task_urls:
            _task_urls[task] = connection_conninfo(WAREHOUSE_CONN_ID)
        url = _task_urls[task]
        if url:
            return WarehouseSettings(url, f"airflow connection {WAREHOUSE_CONN_ID}", use_roles)
    if env_url:
        return WarehouseSettings(env_url, "UPSTREAM_DATABASE_URL", use_roles)
    return WarehouseSettings(None, "embedded", use_roles)


def load_retention() -> RetentionSettings:
    return RetentionSettings()


def load_outcomes() -> OutcomesSettings:
    return OutcomesSettings()


def load_monitoring() -> MonitoringSettings:
    return MonitoringSettings()


def _agencies() -> tuple[str, ...]:
    agencies = tuple(a.upper() for a in _list("UPSTREAM_AGENCIES", "WPS"))
    for agency in agencies:
        if not (2 <= len(agency) <= 6 and agency.isascii() and agency.isalpha()):
            raise ValueError(f"UPSTREAM_AGENCIES: {agency!r} is not a 2-6 letter agency code")
    return agencies


def _validate(home: Path) -> ValidateSettings:
    max_share = _float("UPSTREAM_QUARANTINE_MAX_SHARE", 0.05)
    warn_share = _float("UPSTREAM_QUARANTINE_WARN_SHARE", 0.01)
    if not 0 <= warn_share <= max_share <= 1:
        raise ValueError("UPSTREAM_QUARANTINE_WARN_SHARE must be between 0 and "
                         "UPSTREAM_QUARANTINE_MAX_SHARE (<= 1)")
    max_rows = int_setting("UPSTREAM_QUARANTINE_MAX_ROWS", 5)
    if max_rows < 0:
        raise ValueError("UPSTREAM_QUARANTINE_MAX_ROWS must be 0 or more")
    gx_dir = Path(_env("UPSTREAM_GX_DIR", str(home / "gx"), doc="$UPSTREAM_HOME/gx")).resolve()
    return ValidateSettings(gx_dir, max_share, warn_share, max_rows)


def load_settings() -> Settings:
    home = home_dir()
    landing = _env("UPSTREAM_LANDING_DIR", str(home / "landing"), doc="$UPSTREAM_HOME/landing")
    return Settings(
        home=home,
        agencies=_agencies(),
        timezone=ZoneInfo(_env("UPSTREAM_TIMEZONE", "America/Toronto")),
        program_launch_date=_date("UPSTREAM_PROGRAM_LAUNCH_DATE", date(2024, 5, 6)),
        warehouse=load_warehouse(),
        landing=LandingSettings(
            dir=Path(landing).resolve(),
            manifest_poke_seconds=int_setting("UPSTREAM_MANIFEST_POKE_SECONDS", 300),
            manifest_deadline_seconds=int_setting("UPSTREAM_MANIFEST_DEADLINE_SECONDS", 6 * 3600),
            import_workers=_positive("UPSTREAM_IMPORT_WORKERS", 2),
        ),
        validate=_validate(home),
        outreach=OutreachSettings(
            url=(_env("UPSTREAM_OUTREACH_URL", "http://127.0.0.1:8765") or "").rstrip("/"),
            timeout_seconds=_float("UPSTREAM_OUTREACH_TIMEOUT_SECONDS", 10.0),
            max_attempts=int_setting("UPSTREAM_OUTREACH_MAX_ATTEMPTS", 6),
            backoff_seconds=_float("UPSTREAM_OUTREACH_BACKOFF_SECONDS", 0.5),
            batch_size=int_setting("UPSTREAM_OUTREACH_BATCH_SIZE", 500),
        ),
        routing=RoutingSettings(
            referral_max_age_days=_positive("UPSTREAM_REFERRAL_MAX_AGE_DAYS", 30),
            clock=_choice("UPSTREAM_ROUTING_CLOCK", ("wall", "extracts"), "wall"),
        ),
        alerts=AlertSettings(
            email_to=_list("UPSTREAM_ALERT_EMAIL_TO", "", doc="(unset: no e-mail)"),
            webhook_url=_env("UPSTREAM_ALERT_WEBHOOK_URL", doc="(unset: no webhook)"),
            smtp_conn_id=_env("UPSTREAM_SMTP_CONN_ID", "smtp_default") or "smtp_default",
            airflow_base_url=(_env("UPSTREAM_AIRFLOW_BASE_URL", "http://localhost:8080")
                              or "").rstrip("/"),
        ),
        airflow=AirflowSettings(
            retry_delay_seconds=int_setting("UPSTREAM_RETRY_DELAY_SECONDS", 120)),
    )


# --- secrets (read on use; local ones are generated files under home) -----------------------


def _local_secret(env_name: str, file_name: str) -> str:
    """A secret from the environment, else a generated local file under home (0600)."""
    raw = _env(env_name, doc=f"generated $UPSTREAM_HOME/secrets/{file_name}")
    if raw:
        return raw
    key_file = home_dir() / "secrets" / file_name
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process won the race
            return key_file.read_text().strip()
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return key_file.read_text().strip()


def node_name() -> str | None:
    """UPSTREAM_NODE_NAME: this Celery worker's name (several may share one machine); read on
    every call because Airflow's `hostname_callable` (upstream.dev.env.node_name) runs often."""
    return _env("UPSTREAM_NODE_NAME", doc="(unset: the host name)")


def outreach_token() -> str:
    """Bearer token for the outreach API (UPSTREAM_OUTREACH_TOKEN, else a local generated one
    that `make run` also gives the reference outreach service)."""
    return _local_secret("UPSTREAM_OUTREACH_TOKEN", "outreach.token")


def pseudonym_key() -> bytes:
    """The HMAC key for pseudonyms. From UPSTREAM_PSEUDONYM_KEY, else a key file under home.

    The local file is generated once (0600) and reused, so pseudonyms stay stable between runs.
    """
    doc = "generated file $UPSTREAM_HOME/secrets/pseudonym.key"
    raw = _env("UPSTREAM_PSEUDONYM_KEY", doc=doc)
    if raw:
        return raw.encode("utf-8")
    default_file = str(home_dir() / "secrets" / "pseudonym.key")
    key_file = Path(_env("UPSTREAM_PSEUDONYM_KEY_FILE", default_file, doc=doc))
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return key_file.read_text().strip().encode("utf-8")
