"""The bodies of the nightly DAG's tasks: Airflow context in, plain domain calls out.

Imported by task code at run time only (the DAG file imports it lazily inside tasks), so
pandas, GX and psycopg never load while the scheduler parses DAGs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC, datetime

from upstream import ingest
from upstream.airflow.dates import extract_date_from_context, manifest_deadline
from upstream.settings import load_settings

log = logging.getLogger(__name__)


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


def manifest_arrived(agency: str, context: Mapping, now: datetime | None = None) -> bool:
    """The sensor's poke: True once the manifest is there; fails at once (no retry) when the
    day's deadline has passed without it, naming the folder it looked in."""
    settings = load_settings()
    day = extract_date_from_context(context)
    if ingest.manifest_present(settings.landing.dir, agency, day):
        log.info("%s %s: manifest present", agency, day)
        return True
    deadline = manifest_deadline(day, settings.timezone, settings.landing.manifest_deadline_seconds)
    folder = ingest.delivery_paths(settings.landing.dir, agency, day)[1].parent
    if (now or datetime.now(UTC)) >= deadline:
        raise _fail(ingest.RefusedFile(
            f"{agency} {day}: the manifest did not arrive by the deadline "
            f"({deadline:%Y-%m-%d %H:%M %Z}); looked in {folder}", agency=agency, extract_date=day))
    log.info("%s %s: manifest not in %s yet; waiting until %s", agency, day, folder,
             f"{deadline:%Y-%m-%d %H:%M %Z}")
    return False


def _fail(exc: ingest.RefusedFile):
    from airflow.sdk.exceptions import AirflowFailException

    # A refused file fails the same way on every retry: fail now, with the safe reason.
    err = AirflowFailException(exc.public_message)
    err.public_message = exc.public_message
    return err


def verify_manifest(agency: str, context: Mapping) -> dict:
    mask_runtime_secrets()
    settings = load_settings()
    day = extract_date_from_context(context)
    try:
        delivery = ingest.verify_manifest(settings.landing.dir, agency, day)
    except ingest.RefusedFile as exc:
        _record_refusal(agency, day, exc)
        raise _fail(exc) from None
    log.info("%s %s: manifest verified (%s rows, sha256 %s...)", agency, day, delivery.rows,
             delivery.sha256[:12])
    return {"agency": agency, "extract_date": day.isoformat(), "rows": delivery.rows,
            "sha256": delivery.sha256}


def _record_refusal(agency, day, exc) -> None:
    """Refusals before a file is registered still belong in the data-quality history."""
    from upstream.warehouse import db

    csv_path, _ = ingest.delivery_paths(load_settings().landing.dir, agency, day)
    if not csv_path.is_file():
        return
    with db.connect(role=db.LOADER) as conn:
        conn.execute(
            "INSERT INTO ops.extract_file (agency_code, extract_date, file_name, sha256, status,"
            " reason, finished_at) VALUES (%s, %s, %s, %s, 'refused', %s, now())"
            " ON CONFLICT (agency_code, extract_date, sha256) DO UPDATE SET reason = EXCLUDED.reason,"
            " finished_at = EXCLUDED.finished_at",
            (agency, day, csv_path.name, ingest.file_sha256(csv_path), exc.public_message))
        conn.commit()


# Libraries whose INFO lines drowned the load task's log (GX: 214 of 232 lines, most at import).
NOISY_LOGGERS = ("great_expectations", "sqlalchemy", "urllib3", "httpx")


def quiet_library_logs() -> None:
    """Task logs carry our outcome and the libraries' warnings, not their INFO chatter.

    Call before GX is imported: it logs at import time. GX's own DeprecationWarnings (about
    its internals, e.g. sre_constants) are not actionable here and are hidden too.
    """
    import warnings

    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"great_expectations\.")


def validate_and_load(agency: str, context: Mapping) -> dict:
    quiet_library_logs()
    mask_runtime_secrets()
    from upstream.alerts import notify

    settings = load_settings()
    day = extract_date_from_context(context)
    ti = context.get("ti")
    dag_run = context.get("dag_run")
    dag_id = getattr(ti, "dag_id", None) or getattr(dag_run, "dag_id", None)
    run_id = getattr(ti, "run_id", None) or getattr(dag_run, "run_id", None)
    run_name = f"{agency}_{day.isoformat()}_{run_id or 'manual'}"
    from upstream.warehouse.locks import agency_load_lock

    try:
        # Runs of several days may be active at once; one agency's days merge one at a time.
        with agency_load_lock(agency):
            result = ingest.load_extract(agency, day, settings, run_name=run_name)
    except ingest.RefusedFile as exc:
        refused = exc.result or ingest.LoadResult(agency, day.isoformat(), "refused",
                                                  reason=exc.public_message)
        log.error("%s", refused.outcome_line())  # the outcome first; the traceback follows
        raise _fail(exc) from None
    log.info("%s", result.outcome_line())
    if result.outcome == "loaded" and result.quarantined_share > settings.validate.quarantine_warn_share:
        notify.notify_quarantine_warning(
            agency=agency, extract_date=day.isoformat(), share=result.quarantined_share,
            rows_quarantined=result.rows_quarantined, rows_in_file=result.rows_in_file,
            run_url=notify.run_url_for(settings, dag_id, run_id), dag_id=dag_id, run_id=run_id)
    return asdict(result)


def _public_failure(exc):
    """Fail the task with the routing error's safe message. Transient errors are retried by
    Airflow; a 401/403 or an answer outside the contract fails at once (retrying cannot help)
    and the data team's failure alert says why."""
    from upstream import routing

    if isinstance(exc, routing.OutreachAuthError | routing.OutreachProtocolError):
        from airflow.sdk.exceptions import AirflowFailException

        err = AirflowFailException(exc.public_message)
    else:
        err = RuntimeError(exc.public_message)
    err.public_message = exc.public_message
    return err


def plan_referrals(context: Mapping) -> dict:
    mask_runtime_secrets()
    from upstream import routing

    params = context.get("params") or {}
    retried = 0
    if params.get("retry_parked"):
        ids = params.get("referral_ids") or None
        retried = routing.retry_parked(ids)
        log.info("data team re-try: %s parked referral(s) back to pending", retried)
    counts = routing.plan_referrals()
    return {"outbox": counts, "retried_parked": retried}


def deliver_referrals(context: Mapping) -> dict:
    mask_runtime_secrets()
    from upstream import routing

    try:
        report = routing.deliver_referrals(use_airflow_connection=True)
    except routing.RoutingError as exc:
        raise _public_failure(exc) from None
    # referral ids are keyed hashes, not personal data; reasons name fields, never values
    return {"delivered": report.delivered, "replayed": report.replayed, "parked": report.parked,
            "attempts": report.attempts, "parked_reasons": report.parked_reasons}


def propagate_withdrawals(context: Mapping) -> dict:
    mask_runtime_secrets()
    from upstream import routing

    try:
        report = routing.propagate_withdrawals(use_airflow_connection=True)
    except routing.RoutingError as exc:
        raise _public_failure(exc) from None
    return asdict(report)


def sync_referral_events(context: Mapping) -> int:
    mask_runtime_secrets()
    from upstream import routing

    try:
        return routing.sync_events(use_airflow_connection=True)
    except routing.RoutingError as exc:
        raise _public_failure(exc) from None
