"""A province of agencies: wall time of one nightly run for 1, 10 and 50 agencies (one day's
extract each), LocalExecutor vs CeleryExecutor with two workers, on this machine.

Each configuration gets its own Airflow stack (upstream.dev.stack: api-server, scheduler,
dag-processor, and for Celery two workers on the machine's Redis), its own metadata and
warehouse databases, and runs the nightly DAG for one extract day as a backfill. With 10 or
more agencies, one agency's file is truncated (refused) and one agency's delivery is missing:
the figures show the others finish regardless. Goal: 50 agencies within 5 minutes on two
Celery workers. Not a test: it prints figures (and --json writes them).

    .venv/bin/python benchmarks/bench_scale.py                       # 1,10,50 x local,celery
    .venv/bin/python benchmarks/bench_scale.py --agencies 1,10 --executors celery
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import string
import sys
import time
import uuid
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import WORK, machine_info, start_server  # noqa: E402

DAY = date(2024, 6, 3)
GOAL_SECONDS = 300
REDIS_URL = os.environ.get("UPSTREAM_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def agency_codes(n: int) -> list[str]:
    """n distinct 3-letter codes (A.. for the first 26, then AB..)."""
    letters = string.ascii_uppercase
    return [f"P{letters[i // 26]}{letters[i % 26]}" for i in range(n)]


def run_one(server_url: str, n: int, executor: str, concurrency: int) -> dict:
    import psycopg
    from psycopg import sql

    from upstream.airflow.dates import nightly_logical_date
    from upstream.dev import env as devenv
    from upstream.dev import generate
    from upstream.dev.stack import CeleryStack
    from upstream.settings import load_settings
    from upstream.warehouse import db

    tag = f"{executor}{n}-{uuid.uuid4().hex[:6]}"
    home = WORK / "scale" / tag
    landing = home / "landing"
    agencies = agency_codes(n)
    generate.generate(landing, DAY, DAY, agencies, seed=9)
    refused, missing = (agencies[1], agencies[2]) if n >= 10 else (None, None)
    if refused:
        csv_path = landing / refused / f"{refused}_ipv_calls_{DAY}.csv"
        csv_path.write_bytes(csv_path.read_bytes()[:-40])  # a truncated transfer
    if missing:
        shutil.rmtree(landing / missing)
    names = {k: f"bench_scale_{k}_{uuid.uuid4().hex[:6]}" for k in ("meta", "wh")}
    urls = {k: db.create_database(server_url, v, warehouse=k == "wh") for k, v in names.items()}
    db.migrate(urls["wh"])
    prefix = f"upstream-bench-{tag}:"
    result = {"agencies": n, "executor": executor}
    try:
        with CeleryStack(home, urls["meta"], REDIS_URL, {
            "UPSTREAM_AGENCIES": ",".join(agencies),
            "UPSTREAM_LANDING_DIR": str(landing),
            "UPSTREAM_HOME": str(home),
            "UPSTREAM_GX_DIR": str(home / "gx"),
            "UPSTREAM_DATABASE_URL": urls["wh"],
            "UPSTREAM_MANIFEST_POKE_SECONDS": "60",
        }, concurrency=concurrency, key_prefix=prefix, executor=executor) as stack:
            stack.start(devenv.AIRFLOW_USER, devenv.airflow_password(load_settings()),
                        ("upstream_nightly",))
            stack.unpause("upstream_nightly")
            started = time.time()
            stack.backfill("upstream_nightly", nightly_logical_date(DAY).isoformat(),
                           nightly_logical_date(DAY).isoformat())
            present = [a for a in agencies if a != missing]

            def finished():
                tis = [t for t in stack.task_instances()
                       if t["run_id"].startswith("backfill__") and t["dag_id"] == "upstream_nightly"]
                final = {}
                for t in tis:
                    group = t["task_id"].split(".")[0]
                    if group in present and t["state"] in ("success", "failed", "upstream_failed"):
                        final.setdefault(group, []).append(t)
                loaded = {g for g, ts in final.items()
                          if any(t["task_id"].endswith("validate_and_load") for t in ts)}
                failed = {g for g, ts in final.items()
                          if any(t["state"] in ("failed", "upstream_failed") for t in ts)}
                return (loaded | failed) >= set(present) and (tis, loaded, failed)

            tis, loaded, failed = stack.wait(finished, 3600, "every present agency", interval=2)
            ends = [t["end_date"] for t in tis if t["end_date"] is not None
                    and t["task_id"].split(".")[0] in present]
            result["wall_seconds"] = round(max(ends).timestamp() - started, 1)
            result["agencies_loaded"] = len(loaded - failed)
            result["agencies_failed"] = sorted(failed)
            if missing:
                waiting = [t["state"] for t in tis if t["task_id"] == f"{missing}.wait_for_manifest"]
                result["missing_agency_sensor"] = waiting
            hosts = {t["hostname"] for t in tis if t["hostname"]}
            result["hosts"] = sorted(hosts)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            for name in names.values():
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(name)))
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(match=prefix + "*"):
            client.delete(key)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agencies", default="1,10,50")
    parser.add_argument("--executors", default="local,celery")
    parser.add_argument("--concurrency", type=int, default=2, help="per Celery worker (x2)")
    parser.add_argument("--server-url", default=None)
    parser.add_argument("--keep-server", action="store_true")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so every stack, database and Redis key is cleaned up
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    os.environ.setdefault("UPSTREAM_HOME", str(WORK / "scale-home"))
    os.environ.setdefault("UPSTREAM_PSEUDONYM_KEY", "bench-scale-key-not-a-secret")
    from upstream.dev import env as devenv
    from upstream.settings import load_settings

    # each stack names its own metadata database; this keeps airflow_env from starting the
    # embedded server of UPSTREAM_HOME just to compute a default it would not use
    os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql+psycopg://unused@/x")
    os.environ.update(devenv.airflow_env(load_settings()))  # shared secrets, DAG folder
    url, kind, stop = start_server(args.server_url, args.keep_server)
    results = []
    try:
        info = machine_info(url, kind, ("max_connections",))
        print(json.dumps(info))
        for n in [int(x) for x in args.agencies.split(",")]:
            for executor in args.executors.split(","):
                r = run_one(url, n, executor, args.concurrency)
                results.append(r)
                print(json.dumps(r), flush=True)
    finally:
        stop()
    print("\n| agencies | executor | wall time | loaded | refused/missing | load average |")
    print("| ---: | --- | ---: | ---: | --- | --- |")
    for r in results:
        print(f"| {r['agencies']} | {r['executor']} | {r['wall_seconds']} s |"
              f" {r['agencies_loaded']} | {', '.join(r['agencies_failed']) or '-'}"
              f"{' / missing: sensor ' + ','.join(r['missing_agency_sensor']) if 'missing_agency_sensor' in r else ''} |"
              f" {os.getloadavg()[0]:.1f} |")
    goal = [r for r in results if r["agencies"] == 50 and r["executor"] == "celery"]
    if goal:
        verdict = "PASS" if goal[0]["wall_seconds"] <= GOAL_SECONDS else "FAIL"
        print(f"\n{verdict}: 50 agencies on two Celery workers in {goal[0]['wall_seconds']} s"
              f" (goal {GOAL_SECONDS} s)")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "results": results}, indent=2,
                                              default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
