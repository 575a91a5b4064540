"""Delivering an alert: e-mail through Airflow's SMTP provider and a JSON webhook.

A channel failure is logged (without the alert body or recipients) and never raised.
"""

from __future__ import annotations

import html
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from upstream.alerts.build import scrub
from upstream.settings import Settings, load_settings

log = logging.getLogger("upstream.alerts.notify")

WEBHOOK_TIMEOUT_SECONDS = 10
SENT = "sent"
SKIPPED = "skipped: not configured"

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


