#!/usr/bin/env python
"""Benchmark: the whole `upstream.ingest.load_extract` path against a raw COPY of the same file.

    .venv/bin/python benchmarks/bench_ingest.py [--sizes 10000,100000,1000000]
                                                [--server-url URL] [--repeats N] [--json PATH]

For each size an extract is generated once (not timed) under benchmarks/.work/ (git-ignored).
Then, side by side in one run and on the same PostgreSQL server:

  (a) raw COPY: `COPY ... FROM STDIN WITH (FORMAT csv, HEADER true)` of the same file into a
      fresh plain table of 32 text columns (psycopg 3 `cursor.copy`, file streamed in 1 MiB
      blocks, commit included). The same into an UNLOGGED table is reported too (the staging
      table of the real load is UNLOGGED); the ratio uses the plain table, as specified.
  (b) `load_extract(agency, date, settings)` into a fresh migrated database (created and
      migrated outside the timing): sha256 + manifest checks, COPY to staging, typed table,
      Great Expectations (one UnexpectedRowsExpectation per rule), quarantine, merge, drop.

(b) runs in a child process per size, so that its peak RSS can be read from the kernel
(os.wait4 on that child; the same figure as getrusage(RUSAGE_CHILDREN).ru_maxrss, but per
child). The child imports GX and does a warm-up load of a 200-row file before any timing: the
~5 s GX import and GX's first project scaffolding are NOT in the figures (they are printed).

Phase breakdown without editing src/: the child wraps the module-level functions that
load_extract calls (verify_manifest, copy_to_staging, build_typed_table,
validation.validate_staged_file, _merge, ...), times every psycopg `Connection.execute`, every
SQL statement GX sends (SQLAlchemy engine events), and GX's own steps (get_context, suite and
checkpoint look-ups/updates, ValidationDefinition.run, Data Docs). The real load_extract runs
unchanged (only module/class attributes are replaced); the wrappers cost microseconds.

Median of N repeats: N=3 up to 100k rows, N=1 above (override with --repeats).
Goals checked: load_extract at 1M rows <= 3x raw COPY; worker peak RSS <= 2 GB.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from datetime import date
from pathlib import Path

from bench_common import REPO, WORK, machine_info, start_server

AGENCY = "WPS"
EXTRACT_DATE = date(2024, 6, 1)
WARMUP_DATE = date(2024, 5, 31)
WARMUP_ROWS = 200
BLOCK = 1 << 20
GOAL_RATIO = 3.0
INGEST_PG_SETTINGS = ("shared_buffers", "work_mem", "maintenance_work_mem", "max_wal_size",
                      "synchronous_commit", "max_parallel_workers_per_gather", "jit")
GOAL_RSS_BYTES = 2 * 1024**3
GOAL_SIZE = 1_000_000

# Column list of the contract (the header of every generated file), for the raw COPY table.
from upstream.dev.generate import COLUMNS  # noqa: E402  (stdlib-only module)

# ------------------------------------------------------------------------------------------
# helpers shared by parent and child


def _create_db(server_url: str, name: str, migrate: bool) -> str:

    from upstream.warehouse import db

    url = db.create_database(server_url, name, warehouse=True)
    if migrate:
        db.migrate(url)
    return url


def _drop_db(server_url: str, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _checkpoint(url: str) -> None:
    """Flush dirty buffers before a timed step, so one step does not pay for the previous."""
    import psycopg

    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CHECKPOINT")
    except psycopg.Error:
        pass  # not superuser: skip


def _fmt_rows(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


# ------------------------------------------------------------------------------------------
# (a) raw COPY


def raw_copy(url: str, csv_path: Path, unlogged: bool) -> float:
    import psycopg
    from psycopg import sql

    table = sql.Identifier(f"bench_raw_{uuid.uuid4().hex[:8]}")
    cols = sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(c)) for c in COLUMNS)
    with psycopg.connect(url) as conn:
        conn.execute(sql.SQL("CREATE {} TABLE {} ({})").format(
            sql.SQL("UNLOGGED") if unlogged else sql.SQL(""), table, cols))
        conn.commit()
        stmt = sql.SQL("COPY {} FROM STDIN WITH (FORMAT csv, HEADER true)").format(table)
        began = time.perf_counter()
        with conn.cursor() as cur:
            with cur.copy(stmt) as copy, csv_path.open("rb") as fh:
                while block := fh.read(BLOCK):
                    copy.write(block)
        conn.commit()
        elapsed = time.perf_counter() - began
        conn.execute(sql.SQL("DROP TABLE {}").format(table))
        conn.commit()
    return elapsed


# ------------------------------------------------------------------------------------------
# (c) the write floor


def write_floor(url: str, server_url: str) -> float:
    """Seconds to write the rows one load writes, already typed and pseudonymised, into empty
    copies of core.call_version and core.call (same columns, keys, indexes and checks; no
    foreign key, no validation, no ON CONFLICT). No load that keeps the version history and
    the current table can take less: it is the floor under load_extract's merge."""
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE public.floor_version (LIKE core.call_version INCLUDING ALL)")
        conn.execute("CREATE TABLE public.floor_call (LIKE core.call INCLUDING ALL)")
        conn.commit()
    _checkpoint(server_url)
    began = time.perf_counter()
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO public.floor_version SELECT * FROM core.call_version")
        conn.execute("INSERT INTO public.floor_call SELECT * FROM core.call")
        conn.commit()
    return time.perf_counter() - began


# ------------------------------------------------------------------------------------------
# child: instrumentation of the real load_extract


class Recorder:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.phase: str | None = None
        self.phases: dict[str, float] = defaultdict(float)
        self.stmts: list[tuple[str, str, float]] = []  # (phase, label, seconds)
        self.gx_sql: list[tuple[str, float]] = []  # (statement, seconds)


REC = Recorder()

_COMMENT = re.compile(r"--[^\n]*")
_SPACE = re.compile(r"\s+")


def _label(text: str, width: int = 90) -> str:
    text = _SPACE.sub(" ", _COMMENT.sub("", text)).strip()
    text = re.sub(r'"?load_\d+_(raw|typed)"?', r"load_N_\1", text)
    return text if len(text) <= width else text[: width - 3] + "..."


def _timed(phase: str, fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        prev = REC.phase
        REC.phase = phase
        began = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            REC.phases[phase] += time.perf_counter() - began
            REC.phase = prev

    return wrapper


def _wrap(owner, name: str, phase: str) -> None:
    """Time `owner.name` as `phase`; skip quietly when src/ no longer has it (src/ moves on)."""
    fn = getattr(owner, name, None)
    if fn is None:
        print(f"  (instrumentation: {getattr(owner, '__name__', owner)}.{name} not found, not timed)",
              flush=True)
        return
    setattr(owner, name, _timed(phase, fn))


def install_instrumentation() -> None:
    """Time the pieces of the real load_extract. Only module/class attributes are replaced: the
    code of src/ runs unchanged (it looks these names up at call time)."""
    import great_expectations as gx
    import psycopg
    from great_expectations.checkpoint import UpdateDataDocsAction
    from great_expectations.checkpoint.checkpoint import Checkpoint
    from great_expectations.core.factory.checkpoint_factory import CheckpointFactory
    from great_expectations.core.factory.suite_factory import SuiteFactory
    from great_expectations.core.factory.validation_definition_factory import (
        ValidationDefinitionFactory,
    )
    from great_expectations.core.validation_definition import ValidationDefinition
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from upstream.ingest import header, load, manifest, merge, staging
    from upstream.validate import suite as validation
    from upstream.warehouse import staging as staging_tables

    # upstream.ingest.load looks these up as module attributes at call time.
    for owner, name, phase in [
        (manifest, "verify_manifest", "verify_manifest (manifest + sha256 pass)"),
        (load, "_register_file", "register file (ops.extract_file)"),
        (header, "read_header", "read_header"),
        (staging_tables, "drop_staging", "drop_staging (before + finally)"),
        (staging, "copy_to_staging", "copy_to_staging (COPY + sha256)"),
        (staging, "build_typed_table", "build_typed_table (CTAS + PK + ANALYZE)"),
        (merge, "merge", "merge (include/sql/load)"),
        (load, "_finish", "finish (ops.extract_file)"),
    ]:
        _wrap(owner, name, phase)
    _wrap(validation, "validate_staged_file", "GX validate_staged_file")
    _wrap(validation, "quarantine_failing_rows", "quarantine")
    # GX internals: sub-phases of validate_staged_file (see _summarise_run for derived rows).
    # None of these call each other, so their times add up without double counting.
    _wrap(gx, "get_context", "gx: get_context")
    _wrap(validation, "build_suite", "gx: build_suite()")
    _wrap(SuiteFactory, "add_or_update", "gx: suites.add_or_update")
    _wrap(SuiteFactory, "get", "gx: suites.get")
    _wrap(ValidationDefinitionFactory, "add_or_update", "gx: validation_definitions.add_or_update")
    _wrap(CheckpointFactory, "add_or_update", "gx: checkpoints.add_or_update")
    _wrap(CheckpointFactory, "get", "gx: checkpoints.get")
    _wrap(Checkpoint, "run", "_gx_checkpoint_run")
    _wrap(ValidationDefinition, "run", "gx: run: ValidationDefinition.run")
    _wrap(UpdateDataDocsAction, "run", "gx: run: Data Docs (UpdateDataDocsAction)")

    # every statement the load sends through psycopg
    orig_execute = psycopg.Connection.execute
    orig_commit = psycopg.Connection.commit

    def execute(self, query, *args, **kwargs):
        began = time.perf_counter()
        try:
            return orig_execute(self, query, *args, **kwargs)
        finally:
            elapsed = time.perf_counter() - began
            try:
                text = query if isinstance(query, str) else query.as_string(self)
            except Exception:  # noqa: BLE001  (a label only)
                text = repr(query)
            REC.stmts.append((REC.phase or "other", _label(text), elapsed))

    def commit(self):
        began = time.perf_counter()
        try:
            return orig_commit(self)
        finally:
            REC.stmts.append((REC.phase or "other", "COMMIT", time.perf_counter() - began))

    psycopg.Connection.execute = execute
    psycopg.Connection.commit = commit

    # every statement GX sends (SQLAlchemy)
    @event.listens_for(Engine, "before_cursor_execute")
    def _before(conn, cursor, statement, parameters, context, executemany):
        conn.info.setdefault("bench_t0", []).append(time.perf_counter())

    @event.listens_for(Engine, "after_cursor_execute")
    def _after(conn, cursor, statement, parameters, context, executemany):
        began = conn.info["bench_t0"].pop()
        REC.gx_sql.append((statement, time.perf_counter() - began))


def _gx_sql_kind(statement: str) -> str:
    s = statement.lower()
    if "count(*)" in s and "row_number" in s:
        return "rule queries: unexpected row count"
    if "row_number" in s:
        return "rule queries: fetch unexpected rows"
    return "other (reflection, metadata)"


def _summarise_run(total: float) -> dict:
    phases = dict(REC.phases)
    ckpt = phases.pop("_gx_checkpoint_run", 0.0)
    phases["gx: run: rest of Checkpoint.run"] = max(
        0.0, ckpt - phases.get("gx: run: ValidationDefinition.run", 0.0)
        - phases.get("gx: run: Data Docs (UpdateDataDocsAction)", 0.0))
    gx_parts = sum(v for k, v in phases.items() if k.startswith("gx: "))
    phases["gx: rest (view, datasource/asset set-up, lock, results)"] = max(
        0.0, phases.get("GX validate_staged_file", 0.0) - gx_parts)
    accounted = sum(v for k, v in phases.items() if not k.startswith("gx: "))
    phases["other (connect, commits, DELETE quarantine, ...)"] = max(0.0, total - accounted)
    stmts: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(lambda: [0, 0.0]))
    for phase, label, secs in REC.stmts:
        entry = stmts[phase][label]
        entry[0] += 1
        entry[1] += secs
    gx_kinds: dict[str, list] = defaultdict(lambda: [0, 0.0])
    for statement, secs in REC.gx_sql:
        entry = gx_kinds[_gx_sql_kind(statement)]
        entry[0] += 1
        entry[1] += secs
    slowest = sorted(REC.gx_sql, key=lambda s: -s[1])[:5]
    return {
        "total": total,
        "phases": phases,
        "statements": {p: {lbl: {"n": n, "s": s} for lbl, (n, s) in d.items()} for p, d in stmts.items()},
        "gx_sql": {k: {"n": n, "s": s} for k, (n, s) in gx_kinds.items()},
        "gx_sql_slowest": [{"s": s, "sql": _label(q, 160)} for q, s in slowest],
    }


def child_main(spec_path: Path, out_path: Path) -> None:
    import logging

    logging.basicConfig(level=logging.WARNING)
    spec = json.loads(spec_path.read_text())
    work = Path(spec["work"])
    os.environ.update({
        "UPSTREAM_HOME": str(work / "home"),
        "UPSTREAM_GX_DIR": str(work / "gx"),
        "UPSTREAM_PSEUDONYM_KEY": "bench-pseudonym-key",
        "UPSTREAM_AGENCIES": AGENCY,
        "GX_ANALYTICS_ENABLED": "False",
    })
    server = spec["server_url"]
    out: dict = {"size": spec["size"]}

    began = time.perf_counter()
    import great_expectations  # noqa: F401

    from upstream import ingest  # noqa: F401
    from upstream import settings as config
    out["import_s"] = time.perf_counter() - began
    install_instrumentation()

    def load(landing: str, day: date, floor: bool = False) -> tuple[dict, object]:
        """load_extract into a fresh migrated database (created and dropped outside the timing).
        With floor=True, the write floor is measured afterwards in the same database."""
        name = f"upstream_bench_{uuid.uuid4().hex[:10]}"
        url = _create_db(server, name, migrate=True)
        try:
            os.environ["UPSTREAM_DATABASE_URL"] = url
            os.environ["UPSTREAM_LANDING_DIR"] = landing
            settings = config.load_settings()
            _checkpoint(server)
            REC.reset()
            t0 = time.perf_counter()
            result = ingest.load_extract(AGENCY, day, settings)
            run = _summarise_run(time.perf_counter() - t0)
            if floor:
                run["write_floor"] = write_floor(url, server)
            return run, result
        finally:
            _drop_db(server, name)

    began = time.perf_counter()
    _, warm = load(spec["warmup_landing"], WARMUP_DATE)
    out["warmup_s"] = time.perf_counter() - began
    assert warm.outcome == "loaded", warm

    csv_path = Path(spec["csv_path"])
    # reference: one sha256 pass over the file (load_extract makes two: manifest check + COPY)
    import hashlib

    t0 = time.perf_counter()
    digest = hashlib.sha256()
    with csv_path.open("rb") as fh:
        while block := fh.read(BLOCK):
            digest.update(block)
    out["sha256_pass_s"] = time.perf_counter() - t0

    out["raw"], out["raw_unlogged"], out["runs"] = [], [], []
    for i in range(spec["repeats"]):
        _checkpoint(server)
        out["raw"].append(raw_copy(spec["raw_url"], csv_path, unlogged=False))
        _checkpoint(server)
        out["raw_unlogged"].append(raw_copy(spec["raw_url"], csv_path, unlogged=True))
        run, result = load(spec["landing"], EXTRACT_DATE, floor=True)
        total = run["total"]
        if result.outcome != "loaded" or result.rows_loaded != spec["size"]:
            raise SystemExit(f"unexpected load result: {result}")
        run["rows_quarantined"] = result.rows_quarantined
        out["runs"].append(run)
        print(f"  [{_fmt_rows(spec['size'])}] repeat {i + 1}/{spec['repeats']}: raw COPY "
              f"{out['raw'][-1]:.2f} s (unlogged {out['raw_unlogged'][-1]:.2f} s), "
              f"load_extract {total:.2f} s, write floor {run['write_floor']:.2f} s", flush=True)
    out["self_maxrss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out_path.write_text(json.dumps(out))


# ------------------------------------------------------------------------------------------
# parent


def run_child(spec: dict, size_dir: Path) -> tuple[dict, int]:
    spec_path = size_dir / "spec.json"
    out_path = size_dir / "result.json"
    log_path = size_dir / "child.log"
    spec_path.write_text(json.dumps(spec))
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--child", str(spec_path), str(out_path)],
            stdout=None, stderr=log, cwd=str(REPO))
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0 or not out_path.exists():
        sys.stderr.write(log_path.read_text(errors="replace")[-6000:])
        raise SystemExit(f"benchmark worker for {spec['size']} rows failed (exit {proc.returncode})")
    return json.loads(out_path.read_text()), usage.ru_maxrss * 1024  # Linux: KiB


def _median_run(runs: list[dict]) -> dict:
    ordered = sorted(runs, key=lambda r: r["total"])
    return ordered[(len(ordered) - 1) // 2]


def _mib(nbytes: float) -> str:
    return f"{nbytes / 1024**2:,.0f} MiB"


def report(info: dict, results: list[dict], gen: dict, children_maxrss: int) -> str:
    out: list[str] = []
    p = out.append
    p("")
    p("Upstream ingest benchmark (benchmarks/bench_ingest.py)")
    p(f"machine: nproc={info['nproc']} (affinity {info.get('nproc_affinity', '?')}), "
      f"memory {info['mem_gib']:.1f} GiB, CPU {info['cpu']}, Python {info['python']}")
    p(f"server:  PostgreSQL {info['pg_version']} ({info['server']}); "
      + ", ".join(f"{k}={v}" for k, v in info["pg_settings"].items()))
    p("packages: " + ", ".join(f"{k} {v}" for k, v in info["packages"].items())
      + f"; load average at start {info['loadavg_start'][0]:.2f}, at end {info['loadavg_end'][0]:.2f}")
    r0 = results[0]
    p(f"not timed: GX + upstream import in the worker {r0['import_s']:.1f} s; warm-up load of a "
      f"{WARMUP_ROWS}-row file {r0['warmup_s']:.1f} s (first GX project scaffolding included)")
    p("")
    hdr = (f"{'rows':>6} {'file':>9} {'N':>2} {'raw COPY':>9} {'unlogged':>9} {'load_extract':>12} "
           f"{'ratio':>6} {'rows/s':>9} {'worker peak RSS':>16} {'write floor':>12} {'floor ratio':>11}")
    p(hdr)
    p("-" * len(hdr))
    for r in results:
        raw = statistics.median(r["raw"])
        raw_u = statistics.median(r["raw_unlogged"])
        whole = statistics.median(x["total"] for x in r["runs"])
        floor = statistics.median(x["write_floor"] for x in r["runs"])
        p(f"{_fmt_rows(r['size']):>6} {_mib(gen[r['size']]['bytes']):>9} {len(r['runs']):>2} "
          f"{raw:>8.2f}s {raw_u:>8.2f}s {whole:>11.2f}s {whole / raw:>5.1f}x "
          f"{r['size'] / whole:>9,.0f} {_mib(r['peak_rss']):>16} {floor:>11.2f}s {floor / raw:>10.1f}x")
    p("(times are medians of N; ratio = load_extract / raw COPY into a plain table; "
      "rows/s of load_extract;")
    p(" write floor = inserting the loaded rows, already typed and pseudonymised, into empty copies "
      "of core.call_version and core.call: no validation at all)")
    p("")
    # goals
    by_size = {r["size"]: r for r in results}
    if GOAL_SIZE in by_size:
        r = by_size[GOAL_SIZE]
        ratio = statistics.median(x["total"] for x in r["runs"]) / statistics.median(r["raw"])
        verdict = "PASS" if ratio <= GOAL_RATIO else "FAIL"
        floor = statistics.median(x["write_floor"] for x in r["runs"]) / statistics.median(r["raw"])
        p(f"goal  load_extract at 1M rows <= {GOAL_RATIO:.0f}x raw COPY: {verdict} ({ratio:.1f}x; "
          f"the write floor alone, without any validation, is {floor:.1f}x)")
    else:
        largest = results[-1]
        ratio = statistics.median(x["total"] for x in largest["runs"]) / statistics.median(largest["raw"])
        p(f"goal  load_extract at 1M rows <= {GOAL_RATIO:.0f}x raw COPY: NOT MEASURED (1M not in "
          f"--sizes; at {_fmt_rows(largest['size'])}: {ratio:.1f}x)")
    peak = max(r["peak_rss"] for r in results)
    verdict = "PASS" if peak <= GOAL_RSS_BYTES else "FAIL"
    p(f"goal  worker peak RSS <= 2 GB: {verdict} (max {_mib(peak)} over sizes; "
      f"getrusage(RUSAGE_CHILDREN).ru_maxrss {_mib(children_maxrss)}; PostgreSQL's own memory "
      f"is not included)")
    p("")
    # phase breakdown
    p("Phase breakdown of load_extract (the median run of each size), seconds and share:")
    phase_names: list[str] = []
    for r in results:
        for k in _median_run(r["runs"])["phases"]:
            if k not in phase_names:
                phase_names.append(k)
    order = [
        "verify_manifest (manifest + sha256 pass)", "register file (ops.extract_file)",
        "read_header", "drop_staging (before + finally)", "copy_to_staging (COPY + sha256)",
        "build_typed_table (CTAS + PK + ANALYZE)", "GX validate_staged_file", "gx: get_context",
        "gx: checkpoints.get", "gx: suites.get", "gx: build_suite()", "gx: suites.add_or_update",
        "gx: validation_definitions.add_or_update", "gx: checkpoints.add_or_update",
        "gx: run: ValidationDefinition.run",
        "gx: run: Data Docs (UpdateDataDocsAction)", "gx: run: rest of Checkpoint.run",
        "gx: rest (view, datasource/asset set-up, lock, results)", "quarantine",
        "merge (include/sql/load)", "finish (ops.extract_file)",
    ]
    phase_names = [n for n in order if n in phase_names] + [n for n in phase_names if n not in order]
    width = max(len(n) for n in phase_names) + 2
    p(f"{'phase':<{width}}" + "".join(f"{_fmt_rows(r['size']):>16}" for r in results))
    for name in phase_names:
        cells = []
        for r in results:
            run = _median_run(r["runs"])
            v = run["phases"].get(name)
            cells.append(f"{v:8.2f}s {100 * v / run['total']:4.0f}%" if v is not None else "-")
        label = ("  " + name) if name.startswith("gx: ") else name
        p(f"{label:<{width}}" + "".join(f"{c:>16}" for c in cells))
    p(f"{'total':<{width}}" + "".join(f"{_median_run(r['runs'])['total']:8.2f}s {'':>5}"
                                      for r in results))
    p("(indented gx: rows are parts of 'GX validate_staged_file'; 'gx: run:' rows together are "
      "checkpoint.run)")
    p("")
    big = results[-1]
    run = _median_run(big["runs"])
    p(f"Where the time goes at {_fmt_rows(big['size'])} rows (median run):")
    p(f"  one sha256 pass over the file: {big['sha256_pass_s']:.2f} s (load_extract makes two)")
    gx_total = sum(v["s"] for v in run["gx_sql"].values())
    gx_n = sum(v["n"] for v in run["gx_sql"].values())
    p(f"  GX sent {gx_n} SQL statements taking {gx_total:.2f} s of "
      f"{run['phases'].get('GX validate_staged_file', 0):.2f} s in validate_staged_file:")
    for kind, v in sorted(run["gx_sql"].items(), key=lambda kv: -kv[1]["s"]):
        p(f"    {v['n']:>4} x {kind:<40} {v['s']:8.2f} s")
    p("  slowest GX statements:")
    for s in run["gx_sql_slowest"]:
        p(f"    {s['s']:6.2f} s  {s['sql']}")
    p("  psycopg statements of the load, slowest first (phase: statement):")
    flat = [(v["s"], v["n"], ph, lbl) for ph, d in run["statements"].items() for lbl, v in d.items()]
    for secs, n, ph, lbl in sorted(flat, reverse=True)[:12]:
        p(f"    {secs:6.2f} s {('x' + str(n)) if n > 1 else '':>4}  [{ph.split(' (')[0]}] {lbl}")
    p("")
    p("extract generation (not timed in the comparison): "
      + ", ".join(f"{_fmt_rows(s)} {g['seconds']:.1f} s" for s, g in gen.items()))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000",
                    help="comma-separated row counts (default 10000,100000,1000000)")
    ap.add_argument("--server-url", help="use this PostgreSQL server (a database of its own is "
                    "created and dropped) instead of the embedded one under benchmarks/.work/pg")
    ap.add_argument("--repeats", type=int, help="repeats per size (default 3 up to 100k rows, 1 above)")
    ap.add_argument("--json", type=Path, help="also write the raw figures to this file")
    ap.add_argument("--keep-server", action="store_true",
                    help="leave the embedded server running (default: stop it if this run started it)")
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child_main(Path(args.child[0]), Path(args.child[1]))
        return 0

    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    if not sizes or min(sizes) <= 0:
        ap.error("--sizes must be positive row counts")
    from upstream.dev.generate import write_large_extract

    WORK.mkdir(parents=True, exist_ok=True)
    run_dir = WORK / f"run-{os.getpid()}"
    run_dir.mkdir()
    server_url, server_kind, stop_server = start_server(args.server_url, args.keep_server)
    raw_db = f"upstream_bench_raw_{uuid.uuid4().hex[:8]}"
    raw_url = None
    try:
        info = machine_info(server_url, server_kind, INGEST_PG_SETTINGS)
        from importlib.metadata import version

        info["packages"] = {p: version(p) for p in ("great_expectations", "psycopg", "sqlalchemy")}
        print(f"server: PostgreSQL {info['pg_version']} ({server_kind}); sizes "
              + ", ".join(_fmt_rows(s) for s in sizes), flush=True)
        raw_url = _create_db(server_url, raw_db, migrate=False)
        warm_landing = run_dir / "warmup-landing"
        write_large_extract(warm_landing / AGENCY / f"{AGENCY}_ipv_calls_{WARMUP_DATE}.csv",
                            WARMUP_ROWS, seed=2, agency_code=AGENCY, extract_date=WARMUP_DATE)
        gen: dict[int, dict] = {}
        results: list[dict] = []
        for size in sizes:
            size_dir = run_dir / f"size-{size}"
            landing = size_dir / "landing"
            csv_path = landing / AGENCY / f"{AGENCY}_ipv_calls_{EXTRACT_DATE}.csv"
            t0 = time.perf_counter()
            write_large_extract(csv_path, size, seed=1, agency_code=AGENCY, extract_date=EXTRACT_DATE)
            gen[size] = {"seconds": time.perf_counter() - t0, "bytes": csv_path.stat().st_size}
            repeats = args.repeats or (3 if size <= 100_000 else 1)
            print(f"{_fmt_rows(size)} rows: extract {_mib(gen[size]['bytes'])} generated in "
                  f"{gen[size]['seconds']:.1f} s; {repeats} repeat(s)", flush=True)
            spec = {"size": size, "repeats": repeats, "csv_path": str(csv_path),
                    "landing": str(landing), "warmup_landing": str(warm_landing),
                    "work": str(size_dir), "server_url": server_url, "raw_url": raw_url}
            result, peak = run_child(spec, size_dir)
            result["peak_rss"] = peak
            results.append(result)
            csv_path.unlink()  # the largest files are big: free the disk as soon as done
        children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        info["loadavg_end"] = os.getloadavg()
        text = report(info, results, gen, children)
        print(text)
        if args.json:
            args.json.write_text(json.dumps({"machine": info, "generation": gen,
                                             "results": results}, indent=1, default=str))
    finally:
        if raw_url:
            _drop_db(server_url, raw_db)
        shutil.rmtree(run_dir, ignore_errors=True)
        stop_server()
    return 0


if __name__ == "__main__":
    sys.exit(main())
