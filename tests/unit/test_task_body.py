"""The one task-body path (upstream.airflow.body): secrets masked first, known safe errors turn
into task failures carrying only their public message, anything else propagates unchanged."""

from __future__ import annotations

import importlib
import inspect

import pytest


def _safe(cls, message="WPS 2024-06-01: the safe reason", **kwargs):
    err = cls(message, **kwargs)
    err.args = (message + " and a value that must not show: Jane Doe 519-555-0123",)
    return err


def test_refused_files_and_auth_or_protocol_errors_fail_at_once():
    from airflow.sdk.exceptions import AirflowFailException

    from upstream import ingest, routing
    from upstream.airflow.body import task_failure

    for err in (_safe(ingest.RefusedFile), _safe(routing.OutreachAuthError),
                _safe(routing.OutreachProtocolError)):
        failure = task_failure(err)
        assert type(failure) is AirflowFailException, type(err).__name__
        assert str(failure) == failure.public_message == "WPS 2024-06-01: the safe reason"


def test_other_safe_errors_fail_with_retry():
    from airflow.sdk.exceptions import AirflowException

    from upstream import outcomes, retention, routing
    from upstream.airflow.body import task_failure

    for cls in (routing.TransientDeliveryError, retention.RetentionError,
                outcomes.OutcomesError):
        failure = task_failure(_safe(cls))
        assert type(failure) is RuntimeError and not isinstance(failure, AirflowException)
        assert str(failure) == failure.public_message == "WPS 2024-06-01: the safe reason"


def test_unknown_and_airflow_errors_are_not_touched():
    from airflow.sdk.exceptions import AirflowFailException

    from upstream.airflow.body import task_body, task_failure

    assert task_failure(ValueError("a bug")) is None
    assert task_failure(AirflowFailException("already a task failure")) is None

    @task_body
    def broken():
        raise KeyError("a bug")

    with pytest.raises(KeyError, match="a bug"):
        broken()


def test_the_wrapper_masks_secrets_before_the_body_and_hides_the_original(monkeypatch):
    from airflow.sdk._shared.secrets_masker.secrets_masker import redact

    from upstream import routing
    from upstream.airflow.body import task_body

    monkeypatch.setenv("UPSTREAM_OUTREACH_TOKEN", "token-seen-by-the-body-only-masked")
    seen = []

    @task_body
    def body(x, *, y):
        seen.append(redact("token-seen-by-the-body-only-masked"))
        raise _safe(routing.TransientDeliveryError)

    with pytest.raises(RuntimeError) as failed:
        body(1, y=2)
    assert seen == ["***"]
    assert str(failed.value) == "WPS 2024-06-01: the safe reason"
    assert failed.value.__cause__ is None and failed.value.__suppress_context__
    assert "Jane" not in repr(failed.value)


@pytest.mark.parametrize("dag", ["nightly", "routing", "outcomes", "retention", "history"])
def test_every_task_body_goes_through_the_wrapper(dag):
    module = importlib.import_module(f"upstream.airflow.tasks.{dag}")
    bodies = [fn for name, fn in inspect.getmembers(module, inspect.isfunction)
              if fn.__module__ == module.__name__ and not name.startswith("_")
              and name != "quiet_library_logs"]
    assert bodies
    for fn in bodies:
        assert getattr(fn, "__wrapped__", None), f"{dag}.{fn.__name__} is not a @task_body"
