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

import logging
from collections.abc import Callable, Mapping
from typing import Any

from airflow.sdk import BaseNotifier

# Building (build.py) and delivering (channels.py) alerts; re-exported: callers use notify.*
from upstream.alerts.build import (  # noqa: F401
    SCRUB_MAX_CHARS,
    SENSOR_TIMEOUT_REASON,
    SEVERITIES,
    build_alert,
    describe_failure,
    extract_date_from_params,
    run_url_for,
    scrub,
    split_agency,
)
from upstream.alerts.channels import (  # noqa: F401
    SENT,
    SKIPPED,
    WEBHOOK_TIMEOUT_SECONDS,
    WebhookRejected,
    send_alert,
)
from upstream.settings import Settings, load_settings

log = logging.getLogger(__name__)


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
