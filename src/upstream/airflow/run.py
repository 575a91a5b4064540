"""Run the nightly DAG for extract days with `dag.test()` (CLI `run-day` / `run-range`, tests).

Run history is a record, so every run added here is NEW and no other run is touched:

* its logical date is the moment it starts (unique to the microsecond) and the extract day
  travels in the run's conf (`extract_date`); the run gets the note `extract <day>`, shown in
  the UI's run list and details. Not `logical_date=None`: `dag.test()` first deletes the run
  whose logical date equals the one it is given, and for None that is every run triggered
  without one (UI and REST triggers). Not the nightly 03:00 logical date either: that would
  replace the scheduled or backfilled run of that night.
* `run_days` (the CLI) runs the days in a child process and stops it on Ctrl-C or SIGTERM
  (SIGINT, then SIGKILL after a grace period), then marks the run `failed` with its unfinished
  task instances, so nothing is left `running`. A child because Airflow's in-process task
  runner installs its own SIGTERM handler and never restores it: in the same process, SIGTERM
  would be swallowed after the first task (measured: ignored for minutes).

Needs the Airflow environment from upstream.dev.env (bootstrap) to be applied first.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime

from upstream.settings import REPO_ROOT, load_settings

NIGHTLY_DAG_ID = "upstream_nightly"
STEPS = ("wait_for_manifest", "verify_manifest", "validate_and_load")

log = logging.getLogger(__name__)


class Interrupted(BaseException):  # noqa: N818 (like KeyboardInterrupt: not an error)
    """Ctrl-C or SIGTERM while runs were in progress."""


def load_dag(dag_id: str = NIGHTLY_DAG_ID):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO_ROOT / "dags"))
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {sorted(bag.import_errors)}")
    return bag.get_dag(dag_id)


def run_note(extract_date: date) -> str:
    return f"extract {extract_date.isoformat()}"


@dataclass
class AgencyOutcome:
    agency: str
    status: str  # loaded | already loaded | ignored | refused | no file | failed | stopped
    detail: str = ""

    def text(self) -> str:
        return f"{self.agency}: {self.status}" + (f": {self.detail}" if self.detail else "")


@dataclass
class DayResult:
    extract_date: date
    run_id: str
    state: str  # success | failed
    agencies: list[AgencyOutcome] = field(default_factory=list)

    def line(self) -> str:
        """One line per day, e.g. `2024-05-10 WPS: loaded 8 rows, quarantined 0`."""
        parts = "; ".join(a.text() for a in self.agencies) or "no task ran"
        return f"{self.extract_date.isoformat()} {parts}"


# ------------------------------------------------------------------------------- the run


class _NoteWriter(threading.Thread):
    """Puts the run note on the run as soon as `dag.test()` has created it."""

    def __init__(self, dag_id: str, run_id: str, note: str):
        super().__init__(daemon=True, name="run-note")
        self.dag_id, self.run_id, self.note = dag_id, run_id, note
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                if _set_note(self.dag_id, self.run_id, self.note):
                    return
            except Exception as exc:  # the run itself must not suffer from a note
                log.debug("run note not written yet: %s", type(exc).__name__)
            self.done.wait(0.2)


def _set_note(dag_id: str, run_id: str, note: str) -> bool:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session(scoped=False) as session:
        dag_run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id,
                                                      DagRun.run_id == run_id))
        if dag_run is None:
            return False
        if dag_run.note != note:
            dag_run.note = note
        return True


def mark_run_failed(dag_id: str, run_id: str) -> None:
    """An interrupted run ends `failed`, its unfinished task instances too (never `running`)."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, State, TaskInstanceState
    from sqlalchemy import select

    now = datetime.now(UTC)
    with create_session(scoped=False) as session:
        dag_run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id,
                                                      DagRun.run_id == run_id))
        if dag_run is None or dag_run.state in State.finished_dr_states:
            return
        for ti in session.scalars(select(TaskInstance).where(
                TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id)):
            if ti.state not in State.finished:
                ti.state = TaskInstanceState.FAILED
                ti.end_date = now
        dag_run.state = DagRunState.FAILED
        dag_run.end_date = now


def _run_id_for(started: datetime) -> str:
    """The run id dag.test() gives a run with this logical date (so the note finds it)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.types import DagRunType

    return DagRun.generate_run_id(run_type=DagRunType.MANUAL, logical_date=started,
                                  run_after=started)


def run_day(extract_date: date, dag=None, on_start: Callable[[str], None] | None = None,
            *, mark_failed_on_error: bool = True) -> DayResult:
    """One new run of the nightly DAG for `extract_date`, in this process (tests); see the
    module docstring. `on_start(run_id)` is called before the run is created. An exception
    (Ctrl-C) marks the run failed unless the caller does that itself (`run_days`' parent)."""
    dag = dag or load_dag()
    started = datetime.now(UTC)
    run_id = _run_id_for(started)
    if on_start:
        on_start(run_id)
    note = _NoteWriter(dag.dag_id, run_id, run_note(extract_date))
    note.start()
    try:
        dag_run = dag.test(run_after=started, logical_date=started,
                           run_conf={"extract_date": extract_date.isoformat()})
    except BaseException:
        note.done.set()
        if mark_failed_on_error:
            mark_run_failed(dag.dag_id, run_id)
        raise
    finally:
        note.done.set()
        note.join(timeout=5)
    _set_note(dag.dag_id, run_id, run_note(extract_date))
    state = str(getattr(dag_run.state, "value", dag_run.state))
    agencies = outcomes(dag.dag_id, run_id, extract_date, since=started)
    # A run that ran no task processed nothing: never report it as a success.
    return DayResult(extract_date, run_id, state if agencies else "failed", agencies)


def run_nightly_for(extract_date: date, dag=None) -> str:
    """The run's final state (`success` / `failed`)."""
    return run_day(extract_date, dag).state


# ---------------------------------------------------------------------------- what happened


def outcomes(dag_id: str, run_id: str, extract_date: date,
             since: datetime | None = None) -> list[AgencyOutcome]:
    """Per agency: what the run did, from its task instances, the load's XCom and, for a
    refused file, the reason recorded in ops.extract_file (safe: never a value from a file)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session(scoped=False) as session:
        tis = {ti.task_id: ti.state for ti in session.scalars(select(TaskInstance).where(
            TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id))}
        loads = {}
        for task_id in tis:
            if task_id.endswith(".validate_and_load"):
                row = session.scalar(XComModel.get_many(run_id=run_id, key="return_value",
                                                        dag_ids=dag_id, task_ids=task_id))
                if row is not None:
                    loads[task_id.split(".")[0]] = XComModel.deserialize_value(row)
    agencies = sorted({task_id.split(".")[0] for task_id in tis})
    return [_agency_outcome(a, {s: tis.get(f"{a}.{s}") for s in STEPS}, loads.get(a),
                            extract_date, since) for a in agencies]


def _agency_outcome(agency: str, states: dict, load: dict | None, day: date,
                    since: datetime | None) -> AgencyOutcome:
    from upstream import ingest

    def state(step):
        return str(getattr(states[step], "value", states[step]))

    if load:
        if load.get("outcome") == "already_loaded":
            return AgencyOutcome(agency, "already loaded",
                                 f"{load.get('rows_loaded', 0)} rows, quarantined "
                                 f"{load.get('rows_quarantined', 0)}; nothing changed")
        if load.get("outcome") == "ignored_older":
            return AgencyOutcome(agency, "ignored", load.get("reason") or "older extract")
        return AgencyOutcome(agency, f"loaded {load.get('rows_loaded', 0)} rows, quarantined "
                                     f"{load.get('rows_quarantined', 0)}")
    if state("wait_for_manifest") in ("failed", "upstream_failed"):
        folder = ingest.delivery_paths(load_settings().landing.dir, agency, day)[1].parent
        return AgencyOutcome(agency, "no file", f"no manifest in {folder}")
    if "failed" in (state("verify_manifest"), state("validate_and_load")):
        reason = _refusal_reason(agency, day, since)
        if reason:
            return AgencyOutcome(agency, "refused", reason.removeprefix(f"{agency} {day}: "))
        failed = next(s for s in STEPS if state(s) == "failed")
        return AgencyOutcome(agency, "failed", f"at {failed} (--verbose shows its log)")
    pending = next((s for s in STEPS if state(s) not in ("success", "skipped")), None)
    return AgencyOutcome(agency, "stopped" if pending else "done",
                         f"at {pending}" if pending else "")


def _refusal_reason(agency: str, day: date, since: datetime | None) -> str | None:
    from upstream.warehouse import db

    with db.connect(role=db.LOADER) as conn:
        row = conn.execute(db.read_sql("ops/latest_refusal.sql"),
                           {"agency": agency, "extract_date": day,
                            "since": since or datetime.min.replace(tzinfo=UTC)}).fetchone()
    return row["reason"] if row else None


# ------------------------------------------------------------------- CLI: a supervised child

GRACE_SECONDS = 2  # after SIGINT, before SIGKILL: lets a load drop its staging table


def run_days(days: list[date], emit: Callable[[DayResult], None]) -> list[DayResult]:
    """Run the days one after another in a child process; `emit` each result as it comes.

    Raises Interrupted on SIGINT / SIGTERM, after stopping the child and marking its current
    run failed (within GRACE_SECONDS plus a second or two).
    """
    read_fd, write_fd = os.pipe()
    child = subprocess.Popen(
        [sys.executable, "-m", "upstream.airflow.run", "--result-fd", str(write_fd),
         *(d.isoformat() for d in days)],
        pass_fds=(write_fd,), start_new_session=True)  # Ctrl-C reaches the parent only
    os.close(write_fd)
    # Airflow's ORM, loaded now (about 2.5 s) while the child starts, not after a Ctrl-C
    from airflow.models.dagrun import DagRun  # noqa: F401

    def stop(signum, frame):
        raise Interrupted(signal.Signals(signum).name)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    current_run: str | None = None
    results: list[DayResult] = []
    try:
        with os.fdopen(read_fd, encoding="utf-8") as pipe:
            for line in pipe:
                record = json.loads(line)
                if record["event"] == "start":
                    current_run = record["run_id"]
                else:
                    result = DayResult(date.fromisoformat(record["extract_date"]),
                                       record["run_id"], record["state"],
                                       [AgencyOutcome(**a) for a in record["agencies"]])
                    current_run = None
                    results.append(result)
                    emit(result)
        child.wait()
    except Interrupted:
        _stop_child(child)
        if current_run:
            mark_run_failed(NIGHTLY_DAG_ID, current_run)
        raise
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if child.poll() is None:
            _stop_child(child)
    if child.returncode != 0 and len(results) < len(days):
        raise RuntimeError(f"run-day worker exited with {child.returncode}")
    return results


def _stop_child(child: subprocess.Popen) -> None:
    if child.poll() is not None:
        return
    child.send_signal(signal.SIGINT)
    try:
        child.wait(timeout=GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def _child_main(argv: list[str]) -> int:
    """`python -m upstream.airflow.run --result-fd N DAY...`: JSON lines to fd N."""
    fd, days = int(argv[1]), [date.fromisoformat(a) for a in argv[2:]]
    out = os.fdopen(fd, "w", encoding="utf-8")

    def send(record: dict) -> None:
        out.write(json.dumps(record) + "\n")
        out.flush()

    try:
        dag = load_dag()
        for day in days:
            result = run_day(day, dag, on_start=lambda run_id: send(
                {"event": "start", "run_id": run_id}), mark_failed_on_error=False)
            send({"event": "done", **asdict(result), "extract_date": day.isoformat()})
    except (KeyboardInterrupt, BrokenPipeError):
        # The parent stops us (SIGINT) and marks the run failed once we are gone: exit fast.
        os._exit(130)
    out.close()
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
