"""Tell the data team when the nightly pipeline is in trouble.

Two channels, each optional and configured through ``upstream.settings.load_settings()``:

* e-mail through the Airflow SMTP provider (``SmtpHook``, connection ``settings.alerts.smtp_conn_id``),
  sent when ``UPSTREAM_ALERT_EMAIL_TO`` lists at least one address;
* a generic webhook: the alert dict POSTed as JSON to ``UPSTREAM_ALERT_WEBHOOK_URL``.

An alert never carries personal data. Callers pass reasons that are already safe; ``scrub``
is the last line of defence (e-mail addresses, phone numbers and Canadian postal codes are
masked, and the text is cut to 500 characters).

DAG files import this module at parse time, so module scope imports only the standard library,
``upstream.settings`` and ``airflow.sdk``; the SMTP provider is imported when an e-mail is sent.

The SMTP connection is an ordinary Airflow connection. Without a metadata database it can be
given as an environment variable, for example::

    AIRFLOW_CONN_SMTP_DEFAULT='{"conn_type": "smtp", "host": "smtp.example.org", "port": 587,
        "login": "...", "password": "...",
        "extra": {"from_email": "upstream-alerts@example.org", "disable_ssl": true}}'

``from_email`` in the extra is required: the hook refuses to send without a sender. The hook
treats ``disable_tls`` / ``disable_ssl`` as true when they hold any non-empty value, so in the
URI form leave them out rather than writing ``disable_ssl=false``.
"""

from __future__ import annotations

import html
import json
import logging
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from airflow.sdk import BaseNotifier

from upstream.settings import Settings, load_settings

log = logging.getLogger(__name__)

SCRUB_MAX_CHARS = 500
WEBHOOK_TIMEOUT_SECONDS = 10
SEVERITIES = ("error", "warning", "info")
SENSOR_TIMEOUT_REASON = "the extract's manifest did not arrive by the deadline"

SENT = "sent"
SKIPPED = "skipped: not configured"

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
# Delivering alerts
# --------------------------------------------------------------------------------------------

_FIELD_LABELS = (
    ("severity", "Severity"),
    ("agency", "Agency"),
    ("extract_date", "Extract date"),
    ("step", "Step"),
    ("reason", "Reason"),
    ("dag_id", "DAG"),
    ("run_id", "Run"),
)


def _email_html(alert: Mapping[str, Any]) -> str:
    rows = "".join(
        f"<tr><th align='left'>{label}</th><td>{html.escape(str(alert.get(key) or '-'))}</td></tr>"
        for key, label in _FIELD_LABELS
    )
    run_url = alert.get("run_url")
    link = (
        f'<p><a href="{html.escape(run_url, quote=True)}">{html.escape(run_url)}</a></p>'
        if run_url
        else "<p>No Airflow run link is available.</p>"
    )
    return (
        f"<p>{html.escape(str(alert.get('summary', '')))}</p>"
        f"<table>{rows}</table>{link}"
        "<p>This alert contains no personal data; details are in the Airflow task log.</p>"
    )


def _send_email(alert: Mapping[str, Any], settings: Settings) -> None:
    # Imported here, not at module scope: DAG files import this module at parse time.
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    with SmtpHook(smtp_conn_id=settings.alerts.smtp_conn_id) as hook:
        hook.send_email_smtp(
            to=list(settings.alerts.email_to),
            subject=str(alert.get("summary", "[Upstream] alert")),
            html_content=_email_html(alert),
        )


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Treat a redirect as a failure: urllib would silently turn the POST into a bodiless GET."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class WebhookRejected(Exception):
    """The webhook answered, but not with a 2xx status."""


def _send_webhook(alert: Mapping[str, Any], url: str) -> None:
    if urlsplit(url).scheme not in ("http", "https"):
        raise ValueError("the alert webhook URL must be http or https")
    request = urllib.request.Request(
        url,
        data=json.dumps(alert).encode("utf-8"),
        headers={"Content-Type": "application/json", "User-Agent": "upstream-alerts"},
        method="POST",
    )
    # Non-2xx answers raise urllib.error.HTTPError; a 1xx/other oddity is caught below.
    opener = urllib.request.build_opener(_NoRedirect)  # per call: honours proxy env vars as set now
    with opener.open(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:
        status = response.status
    if not 200 <= status < 300:
        raise WebhookRejected(f"HTTP {status}")


def _attempt(channel: str, alert: Mapping[str, Any], send: Callable[[], None]) -> str:
    try:
        send()
    except Exception as exc:
        # Log the failure without the alert body or recipient list; the exception text is scrubbed.
        log.warning(
            "Upstream alert channel %s failed for %s/%s: %s: %s",
            channel,
            alert.get("agency") or "-",
            alert.get("step") or "-",
            type(exc).__name__,
            scrub(exc, limit=200),
        )
        return f"failed: {type(exc).__name__}"
    return SENT


def send_alert(alert: dict[str, Any], settings: Settings | None = None) -> dict[str, str]:
    """Deliver ``alert`` to every configured channel; never raises for a channel failure.

    Returns ``{"email": outcome, "webhook": outcome}`` where outcome is ``"sent"``,
    ``"skipped: not configured"`` or ``"failed: <exception class name>"``.
    """
    settings = settings or load_settings()
    outcomes: dict[str, str] = {}

    if settings.alerts.email_to:
        outcomes["email"] = _attempt("email", alert, lambda: _send_email(alert, settings))
    else:
        outcomes["email"] = SKIPPED

    webhook_url = settings.alerts.webhook_url
    if webhook_url:
        outcomes["webhook"] = _attempt("webhook", alert, lambda: _send_webhook(alert, webhook_url))
    else:
        outcomes["webhook"] = SKIPPED

    if SENT not in outcomes.values():
        log.warning(
            "Upstream alert for %s/%s reached no channel: %s",
            alert.get("agency") or "-",
            alert.get("step") or "-",
            outcomes,
        )
    return outcomes


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


class DataTeamNotifier(BaseNotifier):
    """Failure callback that alerts the data team (``on_failure_callback=DataTeamNotifier()``).

    Works both as a task callback (context has ``ti``, ``params`` and ``exception``) and as a DAG
    callback, whose context may hold only ``dag``, ``run_id`` and ``reason``.

    :param resolve_extract_date: ``callable(context) -> str | None`` giving the extract date the
        run is about; by default the run's ``extract_date`` param.
    """

    template_fields = ()

    def __init__(
        self,
        resolve_extract_date: Callable[[Mapping[str, Any]], str | None] | None = None,
    ) -> None:
        super().__init__()
        self.resolve_extract_date = resolve_extract_date or extract_date_from_params

    def build_alert_from_context(
        self, context: Mapping[str, Any], settings: Settings
    ) -> dict[str, Any]:
        ti = context.get("ti") or context.get("task_instance")
        dag = context.get("dag")
        dag_run = context.get("dag_run")
        task = context.get("task")

        task_id = getattr(ti, "task_id", None) or getattr(task, "task_id", None)
        dag_id = (
            getattr(ti, "dag_id", None)
            or getattr(dag, "dag_id", None)
            or getattr(dag_run, "dag_id", None)
        )
        run_id = (
            getattr(ti, "run_id", None) or context.get("run_id") or getattr(dag_run, "run_id", None)
        )
        agency, step = split_agency(task_id)

        try:
            extract_date = self.resolve_extract_date(context)
        except Exception as exc:
            log.warning("Could not resolve the extract date for an alert: %s", type(exc).__name__)
            extract_date = None

        return build_alert(
            agency=agency,
            extract_date=None if extract_date in (None, "") else str(extract_date),
            step=step or "dag run",
            reason=describe_failure(context.get("exception"), fallback=context.get("reason")),
            run_url=run_url_for(settings, dag_id, run_id),
            dag_id=dag_id,
            run_id=run_id,
            severity="error",
        )

    def notify(self, context: Mapping[str, Any]) -> None:
        settings = load_settings()
        alert = self.build_alert_from_context(context, settings)
        outcomes = send_alert(alert, settings)
        log.info("Upstream failure alert %s: %s", alert["step"], outcomes)


# --------------------------------------------------------------------------------------------
# Quarantine warning
# --------------------------------------------------------------------------------------------


def notify_quarantine_warning(
    *,
    agency: str | None,
    extract_date: str | None,
    share: float,
    rows_quarantined: int,
    rows_in_file: int,
    run_url: str | None,
    step: str = "validate_and_load",
    dag_id: str | None = None,
    run_id: str | None = None,
    settings: Settings | None = None,
) -> dict[str, str]:
    """Warn that a file was loaded but more rows than the warning level went to quarantine.

    ``share`` is a fraction (0.042 for 4.2%), like ``UPSTREAM_QUARANTINE_WARN_SHARE``.
    """
    reason = (
        f"{share:.1%} of rows quarantined ({int(rows_quarantined)} of {int(rows_in_file)}), "
        "above the warning level"
    )
    alert = build_alert(
        agency=agency,
        extract_date=extract_date,
        step=step,
        reason=reason,
        run_url=run_url,
        dag_id=dag_id,
        run_id=run_id,
        severity="warning",
    )
    return send_alert(alert, settings)
