"""docker-compose.yml's topology natively: Airflow with the CeleryExecutor on this machine.

Redis (127.0.0.1:6379) as broker, PostgreSQL as metadata database (through the least-privilege
login upstream_airflow) and Celery result backend, scheduler, dag-processor, api-server and two
Celery workers, all configured by upstream.dev.env and started by upstream.dev.stack. The nightly DAG runs three days for three
agencies (a backfill through the REST API), then routing against the reference outreach
service. Meanwhile one worker is SIGKILLed while it loads a file, and the same files are loaded
with dag.test() (in-process, LocalExecutor semantics) into another warehouse. Proves: tasks
ran on both workers, the killed task was retried on the other one and every run succeeded, no
referral was sent twice, and both warehouses hold the same thing.

Skipped, saying so, when no Redis answers. Everything it starts is stopped at the end.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

pytestmark = pytest.mark.integration

TEST_ROOT = Path(os.environ.get("UPSTREAM_TEST_ROOT", f"/tmp/upstream-test-{os.getuid()}"))
OUTREACH_TEST_TOKEN = "celery-stack-test-token-not-a-secret"
REDIS_URL = os.environ.get("UPSTREAM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AGENCIES = ("WPS", "LPS", "OPP")
DAYS = [date(2024, 6, 3) + timedelta(days=i) for i in range(3)]
WORKERS = ("worker-a", "worker-b")
PSEUDONYM_KEY = "celery-stack-test-key-not-a-secret"
TIMEOUT = 420  # seconds for the whole backfill on a busy 2-core machine (it takes ~1-2 min)

# Columns that record when or in which order something happened, not what: left out of the
# comparison (file ids are replaced by the file's agency, day and checksum).
VOLATILE = {"file_id", "loaded_at", "stored_at", "first_seen_at", "finished_at",
            "data_docs_path", "superseded_by", "recorded_at", "next_attempt_at", "planned_at",
            "delivered_at", "audit_id", "occurred_at"}
COMPARED = ("ops.extract_file", "ops.quarantine_row", "core.call", "core.call_version",
            "contact.victim_contact", "routing.referral", "routing.disclosure_audit")


def _redis_or_skip():
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis answers at {REDIS_URL} ({type(exc).__name__}): "
                    "the Celery stack test is skipped")
    return client


def _drop_db(server_url: str, name: str) -> None:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))


def dump(url: str) -> dict[str, list[str]]:
    """Every compared table as sorted JSON rows, volatile columns out, files by identity."""
    out = {}
    with psycopg.connect(url) as conn:
        for table in COMPARED:
            schema, name = table.split(".")
            columns = [r[0] for r in conn.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = %s AND table_name = %s", (schema, name))]
            file_key = (sql.SQL("(SELECT f.agency_code || '/' || f.extract_date || '/' || f.sha256"
                                " FROM ops.extract_file f WHERE f.file_id = t.file_id)")
                        if "file_id" in columns else sql.SQL("NULL"))
            query = sql.SQL("SELECT (to_jsonb(t) - %s::text[]) || jsonb_build_object('file', {})"
                            " FROM {} t").format(file_key, sql.Identifier(schema, name))
            rows = conn.execute(query, (sorted(VOLATILE),)).fetchall()
            out[table] = sorted(json.dumps(r[0], sort_keys=True) for r in rows)
    return out


def _kill_a_worker_mid_load(stack, meta_url: str, done: threading.Event, out: dict):
    """Wait until worker-a runs a validate_and_load, let it get going, then SIGKILL it."""
    query = ("SELECT run_id, task_id, try_number FROM task_instance WHERE state = 'running'"
             " AND hostname = %s AND task_id LIKE %s ORDER BY start_date LIMIT 1")
    try:
        while not done.is_set():
            with psycopg.connect(meta_url) as conn:
                row = conn.execute(query, (WORKERS[0], "%.validate_and_load")).fetchone()
            if row:
                time.sleep(1.5)  # into the load (process started, reading and validating)
                stack.kill(WORKERS[0])
                out["killed"] = row
                return
            time.sleep(0.3)
    except Exception as exc:  # reported by the test
        out["error"] = repr(exc)


@pytest.fixture(scope="module")
def celery_run(server_url, airflow_db):
    """Run everything once for the module; yield what the tests check."""
    redis_client = _redis_or_skip()
    from outreach_ref import ServiceConfig
    from outreach_ref.testing import run_server
    from upstream.airflow.dates import nightly_logical_date
    from upstream.airflow.run import load_dag, run_nightly_for
    from upstream.dev import env as devenv
    from upstream.dev import generate
    from upstream.dev.stack import CeleryStack
    from upstream.settings import load_settings
    from upstream.warehouse import db

    tag = uuid.uuid4().hex[:8]
    home = TEST_ROOT / f"celery-{tag}"
    landing = home / "landing"
    generate.generate(landing, DAYS[0], DAYS[-1], list(AGENCIES), seed=5)
    names = {k: f"celery_{k}_{tag}" for k in ("meta", "celery_wh", "local_wh")}
    prefix = f"upstream-test-{tag}:"
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(lambda: [_drop_db(server_url, n) for n in names.values()])
        cleanup.callback(lambda: [redis_client.delete(k)
                                  for k in redis_client.scan_iter(match=prefix + "*")])
        urls = {k: db.create_database(server_url, n, warehouse=k != "meta")
                for k, n in names.items()}
        for key in ("celery_wh", "local_wh"):
            db.migrate(urls[key])
        celery_outreach = cleanup.enter_context(
            run_server(ServiceConfig(token=OUTREACH_TEST_TOKEN, seed=3)))
        local_outreach = cleanup.enter_context(
            run_server(ServiceConfig(token=OUTREACH_TEST_TOKEN, seed=3)))
        upstream_settings = {
            "UPSTREAM_AGENCIES": ",".join(AGENCIES),
            "UPSTREAM_LANDING_DIR": str(landing),
            "UPSTREAM_PSEUDONYM_KEY": PSEUDONYM_KEY,
            "UPSTREAM_OUTREACH_TOKEN": OUTREACH_TEST_TOKEN,
            "UPSTREAM_OUTREACH_BACKOFF_SECONDS": "0.01",
            "UPSTREAM_MANIFEST_POKE_SECONDS": "5",
        }
        # Airflow's metadata through upstream_airflow, exactly as make run does it
        stack = CeleryStack(home, urls["meta"], REDIS_URL, {
            **upstream_settings,
            # a SIGKILLed worker's task is failed (then retried) 15 s after its last heartbeat
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "15",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "3",
            # ... and a task the killed worker had prefetched (queued, never started) is
            # failed and retried after 30 s instead of Airflow's 600
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "30",
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "5",
            "UPSTREAM_RETRY_DELAY_SECONDS": "1",
            "UPSTREAM_HOME": str(home),
            "UPSTREAM_GX_DIR": str(home / "gx-celery"),
            "UPSTREAM_DATABASE_URL": urls["celery_wh"],
            "UPSTREAM_OUTREACH_URL": str(celery_outreach),
        }, workers=WORKERS, concurrency=2, key_prefix=prefix)
        cleanup.enter_context(stack)
        stack.start(devenv.AIRFLOW_USER, devenv.airflow_password(load_settings()),
                    ("upstream_nightly", "upstream_routing"))
        stack.unpause("upstream_nightly")
        stack.backfill("upstream_nightly", nightly_logical_date(DAYS[0]).isoformat(),
                       nightly_logical_date(DAYS[-1]).isoformat())

        done, killed = threading.Event(), {}
        killer = threading.Thread(target=_kill_a_worker_mid_load,
                                  args=(stack, urls["meta"], done, killed), daemon=True)
        killer.start()

        # Meanwhile: the same files with dag.test() in this process into the other warehouse.
        with pytest.MonkeyPatch.context() as mp:
            for key, value in {**upstream_settings, "UPSTREAM_DATABASE_URL": urls["local_wh"],
                               "UPSTREAM_GX_DIR": str(home / "gx-local"),
                               "UPSTREAM_OUTREACH_URL": str(local_outreach)}.items():
                mp.setenv(key, value)
            nightly = load_dag()
            local_states = [run_nightly_for(day, nightly) for day in DAYS]
            routing = load_dag("upstream_routing").test()
            local_states.append(str(getattr(routing.state, "value", routing.state)))

        def nightly_finished():
            runs = stack.runs("upstream_nightly")
            return len(runs) == len(DAYS) and all(s in ("success", "failed") for _, s in runs)

        stack.wait(nightly_finished, TIMEOUT, "the nightly backfill", interval=2)
        done.set()
        killer.join(timeout=30)
        # routing after the loads, so both warehouses route the same final state
        stack.unpause("upstream_routing")
        stack.trigger("upstream_routing")

        def routing_finished():
            runs = stack.runs("upstream_routing")
            return runs and all(s in ("success", "failed") for _, s in runs)

        stack.wait(routing_finished, 180, "the routing run", interval=2)
        yield {
            "nightly_runs": stack.runs("upstream_nightly"),
            "routing_runs": stack.runs("upstream_routing"),
            "task_instances": stack.task_instances(),
            "killed": killed,
            "local_states": local_states,
            "celery_dump": dump(urls["celery_wh"]),
            "local_dump": dump(urls["local_wh"]),
            "server_referrals": celery_outreach.referrals(),
            "server_counters": celery_outreach.stats()["counters"],
            "celery_wh": urls["celery_wh"],
            "logs": stack.log_tails,
        }


def test_every_run_succeeds(celery_run):
    runs = celery_run["nightly_runs"]
    assert [r[:10] for r, _ in runs] == ["backfill__"] * len(DAYS)  # no scheduled run
    assert {s for _, s in runs} == {"success"}, (runs, celery_run["logs"]())
    assert {s for _, s in celery_run["routing_runs"]} == {"success"}, celery_run["logs"]()
    assert celery_run["local_states"] == ["success"] * (len(DAYS) + 1)


def test_tasks_ran_on_both_workers(celery_run):
    hosts = {ti["hostname"] for ti in celery_run["task_instances"] if ti["hostname"]}
    assert set(WORKERS) <= hosts, hosts


def test_killed_worker_task_was_retried_on_the_other_worker(celery_run):
    assert "error" not in celery_run["killed"], celery_run["killed"]
    run_id, task_id, try_number = celery_run["killed"]["killed"]
    tries = sorted((ti["try_number"], ti["state"], ti["hostname"])
                   for ti in celery_run["task_instances"]
                   if ti["run_id"] == run_id and ti["task_id"] == task_id)
    killed_try = [t for t in tries if t[0] == try_number]
    assert killed_try and all(t[1] != "success" and t[2] == WORKERS[0] for t in killed_try), tries
    final = tries[-1]
    assert final[0] > try_number and final[1] == "success" and final[2] == WORKERS[1], tries


def test_no_referral_sent_twice(celery_run):
    server = celery_run["server_referrals"]
    ids = [r["referral_id"] for r in server]
    assert ids and len(ids) == len(set(ids))
    with psycopg.connect(celery_run["celery_wh"]) as conn:
        delivered = {r[0] for r in conn.execute(
            "SELECT referral_id FROM routing.referral WHERE status = 'delivered'")}
        per_referral = conn.execute(
            "SELECT max(n) FROM (SELECT count(*) AS n FROM routing.disclosure_audit"
            " WHERE action = 'disclosure' GROUP BY referral_id) d").fetchone()[0]
    assert set(ids) == delivered
    assert per_referral == 1
    # created once each on the server (a retried send would be a 200 replay, never a 201)
    assert celery_run["server_counters"].get("create:201") == len(ids)


def test_warehouse_equals_the_local_executor_result(celery_run):
    celery, local = celery_run["celery_dump"], celery_run["local_dump"]
    assert celery["core.call"] and celery["routing.referral"]
    for table in COMPARED:
        assert celery[table] == local[table], table
