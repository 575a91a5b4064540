"""Alerts reach real local receivers: an aiosmtpd SMTP server and an http.server webhook.

No metadata database is needed. Outside a task runner (no SUPERVISOR_COMMS) and without
``_AIRFLOW_PROCESS_CONTEXT=server``, the task SDK resolves connections through the fallback
secrets chain, which is the environment-variables backend (plus any custom backend configured),
so ``AIRFLOW_CONN_SMTP_DEFAULT`` set with monkeypatch is what ``SmtpHook.get_connection`` reads.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

# Importing Airflow without AIRFLOW_HOME creates ~/airflow/logs; keep test runs self-contained.
# This must run before anything imports airflow (upstream.alerts.notify imports airflow.sdk).
if "AIRFLOW_HOME" not in os.environ:
    os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="upstream-test-airflow-home-")
    atexit.register(shutil.rmtree, os.environ["AIRFLOW_HOME"], ignore_errors=True)

import json  # noqa: E402
import socket  # noqa: E402
import threading  # noqa: E402
from email import message_from_bytes  # noqa: E402
from email.header import decode_header, make_header  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import pytest  # noqa: E402
from aiosmtpd.controller import Controller  # noqa: E402
from airflow.sdk.exceptions import AirflowSensorTimeout  # noqa: E402

from upstream.alerts import notify  # noqa: E402
from upstream.settings import load_settings  # noqa: E402

BASE_URL = "http://airflow.upstream.test:8080"
DAG_ID = "upstream_nightly"
RUN_ID = "scheduled__2024-06-02T06:00:00+00:00"
RUN_URL = f"{BASE_URL}/dags/{DAG_ID}/runs/scheduled__2024-06-02T06%3A00%3A00%2B00%3A00"


# --------------------------------------------------------------------------------------------
# Real receivers
# --------------------------------------------------------------------------------------------


class _CollectingHandler:
    def __init__(self) -> None:
        self.messages: list[dict] = []

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.content)
        html_parts = [
            part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
            for part in message.walk()
            if part.get_content_type() == "text/html"
        ]
        self.messages.append(
            {
                "mail_from": envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "subject": str(make_header(decode_header(message["Subject"]))),
                "html": "".join(html_parts),
            }
        )
        return "250 Message accepted for delivery"


def _free_port() -> int:
    # aiosmtpd's Controller cannot listen on port 0 (it connects to self.port to start up).
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """Start every test with no alert channel configured and a known Airflow base URL."""
    for name in (
        "UPSTREAM_ALERT_EMAIL_TO",
        "UPSTREAM_ALERT_WEBHOOK_URL",
        "UPSTREAM_SMTP_CONN_ID",
        "AIRFLOW_CONN_SMTP_DEFAULT",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("UPSTREAM_AIRFLOW_BASE_URL", BASE_URL + "/")
    monkeypatch.setenv("UPSTREAM_AGENCIES", "WPS")


def _smtp_conn_json(port: int) -> str:
    # The JSON form keeps real booleans: the hook tests `bool(extra.get("disable_tls"))`, so a
    # string "false" (as the URI form would give) would also disable TLS.
    return json.dumps(
        {
            "conn_type": "smtp",
            "host": "127.0.0.1",
            "port": port,
            "extra": {
                "from_email": "upstream-alerts@upstream.test",
                "disable_tls": True,  # no STARTTLS
                "disable_ssl": True,  # plain smtplib.SMTP, not SMTP_SSL
                "timeout": 5,
                "retry_limit": 0,
            },
        }
    )


@pytest.fixture
def smtp_server(monkeypatch):
    handler = _CollectingHandler()
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", _smtp_conn_json(port))
    monkeypatch.setenv("UPSTREAM_ALERT_EMAIL_TO", "data-team@upstream.test, oncall@upstream.test")
    try:
        yield handler
    finally:
        controller.stop()


class _Webhook:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.status = 204
        self.url = ""


@pytest.fixture
def webhook(monkeypatch):
    state = _Webhook()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.requests.append(
                {
                    "path": self.path,
                    "content_type": self.headers.get("Content-Type"),
                    "body": json.loads(body),
                }
            )
            self.send_response(state.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/upstream"
    monkeypatch.setenv("UPSTREAM_ALERT_WEBHOOK_URL", state.url)
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _sample_alert(**overrides):
    fields = {
        "agency": "WPS",
        "extract_date": "2024-06-01",
        "step": "validate_and_load",
        "reason": "12.0% of rows quarantined (120 of 1000), above the refusal level",
        "run_url": RUN_URL,
        "dag_id": DAG_ID,
        "run_id": RUN_ID,
    }
    fields.update(overrides)
    return notify.build_alert(**fields)


# --------------------------------------------------------------------------------------------
# scrub / build_alert
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("row for jane.doe+ipv@example.co.uk rejected", "row for [email] rejected"),
        ("call 519-555-0123 now", "call [phone] now"),
        ("call (519) 555 0123 now", "call [phone] now"),
        ("call 1-800-555-0199 now", "call [phone] now"),
        ("call 5195550123 now", "call [phone] now"),
        ("call +15195550123 now", "call [phone] now"),
        ("call +1 519 555 0123 now", "call [phone] now"),
        ("call +44 20 7946 0958 now", "call [phone] now"),
        ("lives at N9A 1A1 downtown", "lives at [postal code] downtown"),
        ("lives at n9a1a1", "lives at [postal code]"),
        ("lives at K1A-0B1.", "lives at [postal code]."),
    ],
)
def test_scrub_masks_contact_details(text, expected):
    assert notify.scrub(text) == expected


def test_scrub_leaves_safe_operational_text_alone():
    text = (
        "WPS 2024-06-01: 42 of 1000 rows quarantined (4.2%) in run "
        "scheduled__2024-06-02T06:00:00+00:00, batch 20240601"
    )
    assert notify.scrub(text) == text


def test_scrub_truncates_to_500_chars_after_masking_and_flattens_lines():
    assert len(notify.scrub("x" * 5000)) == 500
    # An address straddling the cut is masked first, so no prefix of it survives.
    text = "a" * 490 + " jane.doe@example.com"
    out = notify.scrub(text)
    assert len(out) <= 500 and "jane" not in out
    assert notify.scrub("first line\n  second\tline") == "first line second line"
    assert notify.scrub(None) == ""


def test_build_alert_fields_and_summary():
    alert = _sample_alert(reason="bad row for jane@example.com", outcome="refused")
    assert json.loads(json.dumps(alert)) == alert
    assert alert == {
        "summary": "[Upstream] WPS 2024-06-01 refused at validate_and_load: bad row for [email]",
        "severity": "error",
        "agency": "WPS",
        "extract_date": "2024-06-01",
        "step": "validate_and_load",
        "reason": "bad row for [email]",
        "run_url": RUN_URL,
        "dag_id": DAG_ID,
        "run_id": RUN_ID,
    }
    bare = notify.build_alert(
        agency=None, extract_date=None, step="cleanup", reason="disk full", run_url=None
    )
    assert bare["summary"] == "[Upstream] failed at cleanup: disk full"
    with pytest.raises(ValueError):
        _sample_alert(severity="panic")


# --------------------------------------------------------------------------------------------
# send_alert against real receivers
# --------------------------------------------------------------------------------------------


def test_send_alert_reaches_email_and_webhook(smtp_server, webhook):
    alert = _sample_alert()

    outcomes = notify.send_alert(alert)

    assert outcomes == {"email": "sent", "webhook": "sent"}
    [mail] = smtp_server.messages
    assert mail["mail_from"] == "upstream-alerts@upstream.test"
    assert sorted(mail["rcpt_tos"]) == ["data-team@upstream.test", "oncall@upstream.test"]
    assert mail["subject"] == alert["summary"]
    for needle in ("WPS", "2024-06-01", "validate_and_load", "120 of 1000"):
        assert needle in mail["html"]
    assert f'href="{RUN_URL}"' in mail["html"]

    [hook] = webhook.requests
    assert hook["path"] == "/hooks/upstream"
    assert hook["content_type"] == "application/json"
    assert hook["body"] == alert


def test_webhook_500_is_reported_and_email_still_sent(smtp_server, webhook):
    webhook.status = 500

    outcomes = notify.send_alert(_sample_alert())

    assert outcomes == {"email": "sent", "webhook": "failed: HTTPError"}
    assert len(webhook.requests) == 1
    assert len(smtp_server.messages) == 1


def test_smtp_down_is_reported_and_webhook_still_sent(monkeypatch, webhook, caplog):
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", _smtp_conn_json(_free_port()))  # nobody listens
    monkeypatch.setenv("UPSTREAM_ALERT_EMAIL_TO", "data-team@upstream.test")

    outcomes = notify.send_alert(_sample_alert())

    assert outcomes == {"email": "failed: ConnectionRefusedError", "webhook": "sent"}
    assert len(webhook.requests) == 1
    assert "email failed" in caplog.text
    assert "data-team@upstream.test" not in caplog.text


def test_webhook_redirect_is_a_failure_not_a_silent_get(webhook):
    webhook.status = 302  # no Location either way: a redirect is never followed

    assert notify.send_alert(_sample_alert())["webhook"] == "failed: HTTPError"


def test_nothing_configured_skips_both_channels():
    assert notify.send_alert(_sample_alert()) == {
        "email": "skipped: not configured",
        "webhook": "skipped: not configured",
    }


def test_explicit_settings_are_used(webhook, monkeypatch):
    settings = load_settings()
    monkeypatch.delenv("UPSTREAM_ALERT_WEBHOOK_URL")

    assert notify.send_alert(_sample_alert(), settings)["webhook"] == "sent"


# --------------------------------------------------------------------------------------------
# DataTeamNotifier
# --------------------------------------------------------------------------------------------


class ExtractRefused(Exception):
    """Stands in for the pipeline's own exceptions, which carry a safe public_message."""

    def __init__(self, detail: str, public_message: str) -> None:
        super().__init__(detail)
        self.public_message = public_message


def _context(task_id="WPS.validate_and_load", exception=None, params=None):
    ti = SimpleNamespace(task_id=task_id, dag_id=DAG_ID, run_id=RUN_ID, map_index=-1)
    return {
        "ti": ti,
        "task_instance": ti,
        "run_id": RUN_ID,
        "params": {"extract_date": "2024-06-01"} if params is None else params,
        "exception": exception,
    }


def test_notifier_sends_alert_built_from_context(smtp_server, webhook):
    exc = ExtractRefused(
        "row 17: client jane.doe@example.com, 519-555-0123",
        public_message="12.0% of rows quarantined (120 of 1000), above the refusal level",
    )

    notify.DataTeamNotifier()(_context(exception=exc))  # the way Airflow calls a callback

    [hook] = webhook.requests
    assert hook["body"] == {
        "summary": (
            "[Upstream] WPS 2024-06-01 failed at validate_and_load: "
            "12.0% of rows quarantined (120 of 1000), above the refusal level"
        ),
        "severity": "error",
        "agency": "WPS",
        "extract_date": "2024-06-01",
        "step": "validate_and_load",
        "reason": "12.0% of rows quarantined (120 of 1000), above the refusal level",
        "run_url": RUN_URL,
        "dag_id": DAG_ID,
        "run_id": RUN_ID,
    }
    [mail] = smtp_server.messages
    assert mail["subject"] == hook["body"]["summary"]
    assert "jane" not in mail["html"] and "555" not in mail["html"]


def test_notifier_scrubs_plain_exception_text(webhook):
    exc = ValueError("unparseable row for jane.doe@example.com at N9A 1A1, tel 519-555-0123")

    notify.DataTeamNotifier().notify(_context(exception=exc))

    body = webhook.requests[0]["body"]
    assert body["reason"] == (
        "ValueError: unparseable row for [email] at [postal code], tel [phone]"
    )


def test_sensor_timeout_gets_the_deadline_reason(webhook):
    exc = AirflowSensorTimeout(
        "Sensor has timed out; run duration of 21600.3 seconds exceeds 21600"
    )

    notify.DataTeamNotifier().notify(_context(task_id="WPS.wait_for_manifest", exception=exc))

    body = webhook.requests[0]["body"]
    assert body["reason"] == "the extract's manifest did not arrive by the deadline"
    assert body["step"] == "wait_for_manifest"
    assert body["agency"] == "WPS"


def test_custom_extract_date_resolver_and_task_outside_an_agency_group(webhook):
    notifier = notify.DataTeamNotifier(resolve_extract_date=lambda context: "2024-05-31")

    notifier.notify(_context(task_id="refresh_metrics", exception=RuntimeError(), params={}))

    body = webhook.requests[0]["body"]
    assert body["agency"] is None
    assert body["step"] == "refresh_metrics"
    assert body["extract_date"] == "2024-05-31"
    assert body["reason"] == "RuntimeError"
    assert body["summary"] == "[Upstream] 2024-05-31 failed at refresh_metrics: RuntimeError"


def test_resolver_errors_do_not_stop_the_alert(webhook):
    def broken(context):
        raise KeyError("extract_date")

    notify.DataTeamNotifier(resolve_extract_date=broken).notify(_context(exception=RuntimeError()))

    assert webhook.requests[0]["body"]["extract_date"] is None


def test_dag_level_callback_context_without_task_instance(webhook):
    # A DAG on_failure_callback run by the DAG processor may get only dag, run_id and reason.
    context = {"dag": SimpleNamespace(dag_id=DAG_ID), "run_id": RUN_ID, "reason": "task_failure"}

    notify.DataTeamNotifier().notify(context)

    body = webhook.requests[0]["body"]
    assert body["step"] == "dag run"
    assert body["reason"] == "run failed (task_failure)"
    assert body["run_url"] == RUN_URL


@pytest.mark.parametrize(
    ("task_id", "agency", "step"),
    [
        ("WPS.validate_and_load", "WPS", "validate_and_load"),
        ("OPP.load.validate", "OPP", "load.validate"),
        ("wps.validate_and_load", None, "wps.validate_and_load"),
        ("TOOLONG.validate", None, "TOOLONG.validate"),
        ("W.validate", None, "W.validate"),
        ("validate_and_load", None, "validate_and_load"),
    ],
)
def test_split_agency(task_id, agency, step):
    assert notify.split_agency(task_id) == (agency, step)


def test_notifier_attaches_to_a_real_dag_with_agency_task_groups():
    from airflow.sdk import DAG, TaskGroup, task

    with DAG(
        "upstream_notify_probe",
        schedule=None,
        params={"extract_date": "2024-06-01"},
        default_args={"on_failure_callback": notify.DataTeamNotifier()},
    ) as dag:
        with TaskGroup("WPS"):

            @task
            def validate_and_load():
                pass

            validate_and_load()

    [t] = dag.tasks
    assert t.task_id == "WPS.validate_and_load"
    assert notify.split_agency(t.task_id) == ("WPS", "validate_and_load")
    assert any(isinstance(cb, notify.DataTeamNotifier) for cb in t.on_failure_callback)


# --------------------------------------------------------------------------------------------
# Quarantine warning
# --------------------------------------------------------------------------------------------


def test_quarantine_warning(webhook, smtp_server):
    outcomes = notify.notify_quarantine_warning(
        agency="WPS",
        extract_date="2024-06-01",
        share=0.042,
        rows_quarantined=42,
        rows_in_file=1000,
        run_url=RUN_URL,
    )

    assert outcomes == {"email": "sent", "webhook": "sent"}
    body = webhook.requests[0]["body"]
    assert body["severity"] == "warning"
    assert body["reason"] == "4.2% of rows quarantined (42 of 1000), above the warning level"
    assert body["summary"] == (
        "[Upstream] WPS 2024-06-01 warning at validate_and_load: "
        "4.2% of rows quarantined (42 of 1000), above the warning level"
    )
    assert smtp_server.messages[0]["subject"] == body["summary"]
