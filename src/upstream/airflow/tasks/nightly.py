"""The nightly DAG's task bodies (upstream_nightly): wait for, verify, validate and load each
agency's extract. Airflow context in, plain domain calls out, through `@task_body`."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC, datetime

from upstream import ingest
from upstream.airflow.body import task_body
from upstream.airflow.dates import extract_date_from_context, manifest_deadline
from upstream.settings import load_settings

log = logging.getLogger(__name__)

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


@task_body
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
        raise ingest.RefusedFile(
            f"{agency} {day}: the manifest did not arrive by the deadline "
            f"({deadline:%Y-%m-%d %H:%M %Z}); looked in {folder}", agency=agency, extract_date=day)
    log.info("%s %s: manifest not in %s yet; waiting until %s", agency, day, folder,
             f"{deadline:%Y-%m-%d %H:%M %Z}")
    return False


@task_body
def verify_manifest(agency: str, context: Mapping) -> dict:
    settings = load_settings()
    day = extract_date_from_context(context)
    try:
        delivery = ingest.verify_manifest(settings.landing.dir, agency, day)
    except ingest.RefusedFile as exc:
        _record_refusal(agency, day, exc)
        raise
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
        conn.execute(db.read_sql("ops/record_refusal.sql"),
                     {"agency": agency, "extract_date": day, "file_name": csv_path.name,
                      "sha256": ingest.file_sha256(csv_path), "reason": exc.public_message})
        conn.commit()


@task_body
def validate_and_load(agency: str, context: Mapping) -> dict:
    quiet_library_logs()
    from upstream.alerts import notify
    from upstream.warehouse.locks import agency_load_lock

    settings = load_settings()
    day = extract_date_from_context(context)
    ti = context.get("ti")
    dag_run = context.get("dag_run")
    dag_id = getattr(ti, "dag_id", None) or getattr(dag_run, "dag_id", None)
    run_id = getattr(ti, "run_id", None) or getattr(dag_run, "run_id", None)
    run_name = f"{agency}_{day.isoformat()}_{run_id or 'manual'}"
    try:
        # Runs of several days may be active at once; one agency's days merge one at a time.
        with agency_load_lock(agency):
            result = ingest.load_extract(agency, day, settings, run_name=run_name)
    except ingest.RefusedFile as exc:
        refused = exc.result or ingest.LoadResult(agency, day.isoformat(), "refused",
                                                  reason=exc.public_message)
        log.error("%s", refused.outcome_line())  # the outcome first; the traceback follows
        raise
    log.info("%s", result.outcome_line())
    if result.outcome == "loaded" and result.quarantined_share > settings.validate.quarantine_warn_share:
        notify.notify_quarantine_warning(
            agency=agency, extract_date=day.isoformat(), share=result.quarantined_share,
            rows_quarantined=result.rows_quarantined, rows_in_file=result.rows_in_file,
            run_url=notify.run_url_for(settings, dag_id, run_id), dag_id=dag_id, run_id=run_id)
    return asdict(result)


@task_body
def publish_loaded_calls(load: Mapping) -> dict:
    """Announce new calls (the upstream_loaded_calls Asset: routing and outcomes follow) only
    when the load changed something. A reprocess of a day already loaded, or an older extract
    that was ignored, is skipped here: no Asset event, nothing triggered downstream."""
    if load.get("outcome") != "loaded":
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException(
            f"{load.get('agency')} {load.get('extract_date')}: nothing new "
            f"({load.get('outcome')}); routing and outcomes are not triggered")
    return {k: load.get(k) for k in ("agency", "extract_date", "rows_loaded",
                                     "rows_quarantined")}
