"""Building an alert: scrub free text, one safe line per failure, the run's UI link.

Standard library only (DAG files import the alerts at parse time).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from upstream.settings import Settings

SCRUB_MAX_CHARS = 500
SEVERITIES = ("error", "warning", "info")
SENSOR_TIMEOUT_REASON = "the extract's manifest did not arrive by the deadline"

# --------------------------------------------------------------------------------------------
# Scrubbing
# --------------------------------------------------------------------------------------------

_EMAIL_RE = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
# International numbers written with a leading "+" (E.164, possibly with separators).
# Each digit may be followed by up to two separators; 7 to 15 digits (errs towards over-masking).
_INTL_PHONE_RE = re.compile(r"(?<![\w+])\+(?:\d[\s.\-()]{0,2}){6,14}\d")
# North-American numbers: 519-555-0123, (519) 555 0123, 519.555.0123, 5195550123, 1-519-555-0123.
_NANP_PHONE_RE = re.compile(
    r"(?<![\w+])(?:1[\s.\-]?)?(?:\(\d{3}\)\s?|\d{3}[\s.\-]?)\d{3}[\s.\-]?\d{4}(?!\w)"
)
# Canadian postal codes: A1A 1A1 (first letter from the letters Canada Post uses; no D F I O Q U).
_POSTAL_RE = re.compile(
    r"(?<![A-Za-z0-9])[ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z][\s\-]?\d[ABCEGHJ-NPRSTV-Z]\d(?![A-Za-z0-9])",
    re.IGNORECASE,
)
_WHITESPACE_RE = re.compile(r"\s+")


def scrub(text: object, limit: int = SCRUB_MAX_CHARS) -> str:
    """Make free text safe to put in an alert: mask contact details, one line, at most ``limit`` chars.

    Masks anything that looks like an e-mail address (``[email]``), an E.164 or North-American
    phone number (``[phone]``) or a Canadian postal code (``[postal code]``). Whitespace runs
    (newlines included) collapse to one space. Masking happens before truncation, so a cut can
    never expose the start of an address.
    """
    value = "" if text is None else str(text)
    value = value[: limit * 20]  # bound the regex work on pathological inputs
    value = _WHITESPACE_RE.sub(" ", value).strip()
    value = _EMAIL_RE.sub("[email]", value)
    value = _INTL_PHONE_RE.sub("[phone]", value)
    value = _NANP_PHONE_RE.sub("[phone]", value)
    value = _POSTAL_RE.sub("[postal code]", value)
    if len(value) > limit:
        value = value[: limit - 1].rstrip() + "…"
    return value


# --------------------------------------------------------------------------------------------
# Building alerts
# --------------------------------------------------------------------------------------------

_DEFAULT_OUTCOME = {"error": "failed", "warning": "warning", "info": "note"}


def build_alert(
    *,
    agency: str | None,
    extract_date: str | None,
    step: str,
    reason: str,
    run_url: str | None,
    dag_id: str | None = None,
    run_id: str | None = None,
    severity: str = "error",
    outcome: str | None = None,
) -> dict[str, Any]:
    """A JSON-serialisable alert with a one-line ``summary``.

    ``summary`` reads ``[Upstream] WPS 2024-06-01 failed at validate_and_load: <reason>``; the
    verb is ``failed`` for errors and ``warning`` for warnings unless ``outcome`` names another
    (``outcome="refused"`` for a file the pipeline turned away). The reason is scrubbed.
    """
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, got {severity!r}")
    safe_reason = scrub(reason) or "no reason given"
    safe_step = scrub(step, limit=200) or "unknown step"
    verb = scrub(outcome, limit=40) if outcome else _DEFAULT_OUTCOME[severity]
    subject = " ".join(str(part) for part in (agency, extract_date) if part)
    head = f"[Upstream] {subject} " if subject else "[Upstream] "
    return {
        "summary": f"{head}{verb} at {safe_step}: {safe_reason}",
        "severity": severity,
        "agency": agency,
        "extract_date": None if extract_date is None else str(extract_date),
        "step": safe_step,
        "reason": safe_reason,
        "run_url": run_url,
        "dag_id": dag_id,
        "run_id": run_id,
    }


def run_url_for(settings: Settings, dag_id: str | None, run_id: str | None) -> str | None:
    """The Airflow 3 UI page of a DAG run (same quoting as Airflow's own ``ti.log_url``)."""
    if not dag_id or not run_id:
        return None
    return f"{settings.alerts.airflow_base_url}/dags/{quote(dag_id)}/runs/{quote(run_id)}"


# --------------------------------------------------------------------------------------------
# Airflow callback
# --------------------------------------------------------------------------------------------

_AGENCY_TASK_RE = re.compile(r"^([A-Z]{2,6})\.(.+)$")


def split_agency(task_id: str | None) -> tuple[str | None, str | None]:
    """``"WPS.validate_and_load"`` -> ``("WPS", "validate_and_load")``; no agency group -> ``(None, task_id)``."""
    if not task_id:
        return None, task_id
    match = _AGENCY_TASK_RE.match(task_id)
    if match:
        return match.group(1), match.group(2)
    return None, task_id


def extract_date_from_params(context: Mapping[str, Any]) -> str | None:
    """Default resolver: the DAG run's ``extract_date`` param, if set."""
    params = context.get("params") or {}
    value = params.get("extract_date")
    return str(value) if value not in (None, "") else None


def _is_sensor_timeout(exc: object) -> bool:
    # AirflowSensorTimeout lives in airflow.sdk.exceptions in Airflow 3
    # (airflow.exceptions.AirflowSensorTimeout is a deprecated alias of the same class).
    from airflow.sdk.exceptions import AirflowSensorTimeout

    if isinstance(exc, AirflowSensorTimeout):
        return True
    if isinstance(exc, BaseException):
        return any(cls.__name__ == "AirflowSensorTimeout" for cls in type(exc).__mro__)
    return isinstance(exc, str) and exc.startswith("AirflowSensorTimeout")


def describe_failure(exc: object, fallback: object = None) -> str:
    """A safe one-line reason for a failure (exception, error string, or nothing)."""
    if exc is None:
        return f"run failed ({scrub(fallback, 200)})" if fallback else "failed (no error recorded)"
    if _is_sensor_timeout(exc):
        return SENSOR_TIMEOUT_REASON
    public_message = getattr(exc, "public_message", None)
    if public_message:
        return scrub(public_message)
    if isinstance(exc, BaseException):
        message = scrub(exc)
        name = type(exc).__name__
        return f"{name}: {message}" if message else name
    return scrub(exc)


