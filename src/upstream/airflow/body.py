"""The one path every DAG's task body takes: `@task_body`.

Before the body runs, Upstream's secrets are registered with Airflow's masker (a log line that
ever contains one shows *** instead). When the body raises a known safe error (one with a
``public_message``: a refused file, a routing error, a retention or outcomes error, a busy
agency lock), the task fails with that message only, never the original exception's text or
traceback; the data team's alert (``alerts.notify.describe_failure``) says the same:

* refused file (``ingest.RefusedFile``), 401/403 (``routing.OutreachAuthError``) or an answer
  outside the contract (``routing.OutreachProtocolError``): ``AirflowFailException``, no retry,
  since a retry fails the same way;
* any other safe error (``routing.TransientDeliveryError``, retention/outcomes errors, a busy
  lock): a plain failure that Airflow retries.

Anything else (a bug, a lost database) propagates unchanged. Airflow's own exceptions
(``AirflowFailException``, ``AirflowSkipException``...) pass through as they are.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from upstream.settings import load_settings

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


def mask_runtime_secrets() -> list[str]:
    """Register Upstream's secrets with Airflow's masker, so a log line that ever contains one
    shows *** instead (task process and supervisor). Returns which were registered (names)."""
    import psycopg
    from airflow.sdk.log import mask_secret

    from upstream.settings import outreach_token, pseudonym_key

    registered = []
    # names must look sensitive to Airflow (secret, token, password) or it will not mask them
    for name, value in (("pseudonym_secret", pseudonym_key().decode()),
                        ("outreach_token", outreach_token())):
        mask_secret(value, name)
        registered.append(name)
    url = load_settings().warehouse.url
    if url:
        password = psycopg.conninfo.conninfo_to_dict(url).get("password")
        if password:
            mask_secret(password, "warehouse_password")
            registered.append("warehouse_password")
    return registered


def _fails_at_once(exc: BaseException) -> bool:
    """Errors a retry cannot mend. Imported here, on the failure path only."""
    from upstream import ingest, routing

    return isinstance(exc, ingest.RefusedFile | routing.OutreachAuthError
                      | routing.OutreachProtocolError)


def task_failure(exc: BaseException) -> BaseException | None:
    """The task failure for a known safe error, carrying only its ``public_message`` (also as
    the attribute, for the alert); None when ``exc`` is not one (it then propagates as is)."""
    from airflow.sdk.exceptions import AirflowException, AirflowFailException

    message = getattr(exc, "public_message", None)
    if not isinstance(message, str) or not message or isinstance(exc, AirflowException):
        return None
    err: BaseException
    err = AirflowFailException(message) if _fails_at_once(exc) else RuntimeError(message)
    err.public_message = message  # type: ignore[attr-defined]
    return err


def task_body(fn: Callable[P, R]) -> Callable[P, R]:
    """Decorate a task body: secrets masked first, safe errors become safe task failures."""

    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        mask_runtime_secrets()
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            failure = task_failure(exc)
            if failure is None:
                raise
            raise failure from None  # the original's text and traceback stay out of the log

    return run
