"""Secrets registered with Airflow's masker never reach a log line."""

from __future__ import annotations

import logging


def test_secrets_are_masked_in_task_logs(monkeypatch, caplog):
    monkeypatch.setenv("UPSTREAM_PSEUDONYM_KEY", "pseudonym-key-that-must-never-be-logged")
    monkeypatch.setenv("UPSTREAM_OUTREACH_TOKEN", "outreach-token-that-must-never-be-logged")
    monkeypatch.setenv("UPSTREAM_DATABASE_URL",
                       "postgresql://upstream:db-password-never-logged@db.example.org/upstream")
    from airflow.sdk._shared.secrets_masker.secrets_masker import redact

    from upstream.airflow.tasks import mask_runtime_secrets

    assert mask_runtime_secrets() == ["pseudonym_secret", "outreach_token", "warehouse_password"]
    line = ("key pseudonym-key-that-must-never-be-logged token "
            "outreach-token-that-must-never-be-logged pw db-password-never-logged")
    redacted = redact(line)
    assert "never-be-logged" not in redacted and "never-logged" not in redacted
    assert redacted.count("***") == 3
    logging.getLogger("upstream.test").warning("%s", line)
