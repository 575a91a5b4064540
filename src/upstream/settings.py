"""The one place where Upstream reads its configuration.

Every setting is an environment variable with a safe local default; the README has the table.
Nothing here imports pandas, GX, psycopg or Airflow, so DAG files may import it at parse time.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

REPO_ROOT = Path(__file__).resolve().parents[2]
SQL_DIR = REPO_ROOT / "include" / "sql"


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _float(name: str, default: float) -> float:
    raw = _env(name)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"setting {name} must be a number, got {raw!r}") from exc


def int_setting(name: str, default: int) -> int:
    raw = _env(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"setting {name} must be a whole number, got {raw!r}") from exc


def _date(name: str, default: date) -> date:
    raw = _env(name)
    if raw is None:
        return default
    try:
        return date.fromisoformat(raw)
    except ValueError as exc:
        raise ValueError(f"setting {name} must be a date (YYYY-MM-DD), got {raw!r}") from exc


def _positive(name: str, default: int) -> int:
    value = int_setting(name, default)
    if value < 1:
        raise ValueError(f"setting {name} must be at least 1, got {value}")
    return value


def _choice(name: str, allowed: tuple[str, ...], default: str) -> str:
    value = (_env(name, default) or default).strip().lower()
    if value not in allowed:
        raise ValueError(f"setting {name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def home_dir() -> Path:
    """Local state (embedded database, landing area, Airflow home, keys); git-ignored."""
    return Path(_env("UPSTREAM_HOME", str(REPO_ROOT / ".upstream"))).resolve()


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str | None  # None: use the embedded PostgreSQL under home/pgdata
    landing_dir: Path
    agencies: tuple[str, ...]
    timezone: ZoneInfo
    quarantine_max_share: float
    quarantine_warn_share: float
    quarantine_max_rows: int
    manifest_poke_seconds: int
    manifest_deadline_seconds: int
    file_retention_days: int
    gx_dir: Path
    airflow_base_url: str
    alert_email_to: tuple[str, ...]
    alert_webhook_url: str | None
    smtp_conn_id: str
    outreach_url: str
    outreach_timeout_seconds: float
    outreach_max_attempts: int
    outreach_backoff_seconds: float
    outreach_batch_size: int
    program_launch_date: date
    referral_max_age_days: int
    routing_clock: str  # 'wall' (now) or 'extracts' (the day after the newest loaded extract)
    # Outcomes (upstream.outcomes) and retention (upstream.retention); validated below, except
    # the retention periods' "at least 1 day", which each purge checks when it runs.
    release_min_cell: int = 10
    outcomes_work_mem: str = "256MB"
    uncontacted_48h_alert: int = 10
    contact_retention_days: int = 90
    quarantine_retention_days: int = 365
    task_log_retention_days: int = 30
    gx_result_retention_days: int = 90
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def uses_embedded_database(self) -> bool:
        return self.database_url is None


def _database_url_from_env() -> str | None:
    url = _env("UPSTREAM_DATABASE_URL")
    if url:
        return url
    # The same setting as an Airflow connection URI, for deployments that keep secrets there.
    conn = _env("AIRFLOW_CONN_UPSTREAM_WAREHOUSE")
    if conn:
        return conn.replace("postgres://", "postgresql://", 1)
    return None


def _quarantine_max_rows() -> int:
    value = int_setting("UPSTREAM_QUARANTINE_MAX_ROWS", 5)
    if value < 0:
        raise ValueError("UPSTREAM_QUARANTINE_MAX_ROWS must be 0 or more")
    return value


def _release_min_cell() -> int:
    raw = (_env("UPSTREAM_RELEASE_MIN_CELL") or "").strip()
    if not raw:
        return 10
    if not raw.isdigit() or not 5 <= int(raw) <= 1000:
        raise ValueError(
            f"setting UPSTREAM_RELEASE_MIN_CELL must be a whole number from 5 to 1000, got {raw!r}"
        )
    return int(raw)


def _outcomes_work_mem() -> str:
    raw = (_env("UPSTREAM_OUTCOMES_WORK_MEM") or "256MB").strip()
    if not re.fullmatch(r"\d+(kB|MB|GB)?", raw):
        raise ValueError(f"setting UPSTREAM_OUTCOMES_WORK_MEM must look like 256MB, got {raw!r}")
    return raw


def _uncontacted_48h_alert() -> int:
    raw = (_env("UPSTREAM_UNCONTACTED_48H_ALERT") or "").strip()
    if not raw:
        return 10
    if not raw.isdigit():
        raise ValueError(
            f"setting UPSTREAM_UNCONTACTED_48H_ALERT must be a whole number (0 = off), got {raw!r}"
        )
    return int(raw)


def load_settings() -> Settings:
    home = home_dir()
    agencies = tuple(
        a.strip().upper() for a in (_env("UPSTREAM_AGENCIES", "WPS") or "").split(",") if a.strip()
    )
    for agency in agencies:
        if not (2 <= len(agency) <= 6 and agency.isascii() and agency.isalpha()):
            raise ValueError(f"UPSTREAM_AGENCIES: {agency!r} is not a 2-6 letter agency code")
    max_share = _float("UPSTREAM_QUARANTINE_MAX_SHARE", 0.05)
    warn_share = _float("UPSTREAM_QUARANTINE_WARN_SHARE", 0.01)
    if not 0 <= warn_share <= max_share <= 1:
        raise ValueError(
            "UPSTREAM_QUARANTINE_WARN_SHARE must be between 0 and UPSTREAM_QUARANTINE_MAX_SHARE (<= 1)"
        )
    return Settings(
        home=home,
        database_url=_database_url_from_env(),
        landing_dir=Path(_env("UPSTREAM_LANDING_DIR", str(home / "landing"))).resolve(),
        agencies=agencies,
        timezone=ZoneInfo(_env("UPSTREAM_TIMEZONE", "America/Toronto")),
        quarantine_max_share=max_share,
        quarantine_warn_share=warn_share,
        quarantine_max_rows=_quarantine_max_rows(),
        manifest_poke_seconds=int_setting("UPSTREAM_MANIFEST_POKE_SECONDS", 300),
        manifest_deadline_seconds=int_setting("UPSTREAM_MANIFEST_DEADLINE_SECONDS", 6 * 3600),
        file_retention_days=int_setting("UPSTREAM_FILE_RETENTION_DAYS", 30),
        gx_dir=Path(_env("UPSTREAM_GX_DIR", str(home / "gx"))).resolve(),
        airflow_base_url=(_env("UPSTREAM_AIRFLOW_BASE_URL", "http://localhost:8080") or "").rstrip("/"),
        alert_email_to=tuple(
            a.strip() for a in (_env("UPSTREAM_ALERT_EMAIL_TO", "") or "").split(",") if a.strip()
        ),
        alert_webhook_url=_env("UPSTREAM_ALERT_WEBHOOK_URL"),
        smtp_conn_id=_env("UPSTREAM_SMTP_CONN_ID", "smtp_default") or "smtp_default",
        outreach_url=(_env("UPSTREAM_OUTREACH_URL", "http://127.0.0.1:8765") or "").rstrip("/"),
        outreach_timeout_seconds=_float("UPSTREAM_OUTREACH_TIMEOUT_SECONDS", 10.0),
        outreach_max_attempts=int_setting("UPSTREAM_OUTREACH_MAX_ATTEMPTS", 6),
        outreach_backoff_seconds=_float("UPSTREAM_OUTREACH_BACKOFF_SECONDS", 0.5),
        outreach_batch_size=int_setting("UPSTREAM_OUTREACH_BATCH_SIZE", 500),
        program_launch_date=_date("UPSTREAM_PROGRAM_LAUNCH_DATE", date(2024, 5, 6)),
        referral_max_age_days=_positive("UPSTREAM_REFERRAL_MAX_AGE_DAYS", 30),
        routing_clock=_choice("UPSTREAM_ROUTING_CLOCK", ("wall", "extracts"), "wall"),
        release_min_cell=_release_min_cell(),
        outcomes_work_mem=_outcomes_work_mem(),
        uncontacted_48h_alert=_uncontacted_48h_alert(),
        contact_retention_days=int_setting("UPSTREAM_CONTACT_RETENTION_DAYS", 90),
        quarantine_retention_days=int_setting("UPSTREAM_QUARANTINE_RETENTION_DAYS", 365),
        task_log_retention_days=int_setting("UPSTREAM_TASK_LOG_RETENTION_DAYS", 30),
        gx_result_retention_days=int_setting("UPSTREAM_GX_RESULT_RETENTION_DAYS", 90),
    )


def _local_secret(env_name: str, file_name: str) -> str:
    """A secret from the environment, else a generated local file under home (0600)."""
    raw = _env(env_name)
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


def outreach_token() -> str:
    """Bearer token for the outreach API (UPSTREAM_OUTREACH_TOKEN, else a local generated one
    that `make run` also gives the reference outreach service)."""
    return _local_secret("UPSTREAM_OUTREACH_TOKEN", "outreach.token")


def pseudonym_key() -> bytes:
    """The HMAC key for pseudonyms. From UPSTREAM_PSEUDONYM_KEY, else a key file under home.

    The local file is generated once (0600) and reused, so pseudonyms stay stable between runs.
    """
    raw = _env("UPSTREAM_PSEUDONYM_KEY")
    if raw:
        return raw.encode("utf-8")
    key_file = Path(_env("UPSTREAM_PSEUDONYM_KEY_FILE", str(home_dir() / "secrets" / "pseudonym.key")))
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return key_file.read_text().strip().encode("utf-8")
