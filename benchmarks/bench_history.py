"""Bulk history import (upstream.ingest.history): speed, memory, the cost against a raw COPY, and a
nightly load's cost after years of stored history. Not a test; prints one table.

    .venv/bin/python benchmarks/bench_history.py                   # scaled: 5 agencies x 10 years
    .venv/bin/python benchmarks/bench_history.py --agencies 50     # the full 10M calls
        [--server-url URL] [--years 10] [--calls-per-day 55] [--nightly-years 3] [--keep-server]

Measures, side by side:

1. one agency, 10 years of daily files (3,650 files, ~8 calls a day, about 30k calls), with
   the repository's generator: goal at most 2 minutes;
2. --agencies x --years of daily files at --calls-per-day (50 x 10 x 55 = 10M calls; default
   5 agencies = 1M, scaled because generating and loading 10M takes far longer than a run here
   may): wall time and the import process's peak RSS (a subprocess; the server's memory is
   not in it). Goal at 10M: at most 10 minutes, at most 2 GB. A scaled run reports its
   figure and the linear extrapolation, labelled as such;
3. the same rows as one raw COPY into an unindexed text table on the same server: the import's
   ratio to it, with the import's time by phase;
4. a nightly `load_extract` of one day: on a fresh warehouse (median of nights 2-3, night 1
   creates the agency's GX project) and after --nightly-years years of imported history plus
   as many stored GX validation results and Data Docs pages as a nightly load would have left
   (median of 3 nights). Goal: within 20%.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from datetime import date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path

import psycopg
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import WORK, machine_info, start_server  # noqa: E402

from upstream.contract import COLUMNS  # noqa: E402
from upstream.dev import generate  # noqa: E402
from upstream.dev.generate.files import fmt, manifest_doc  # noqa: E402
from upstream.warehouse.db import create_database, migrate  # noqa: E402

TZ = generate.TZ
BASE = date(2000, 1, 3)


def fresh_db(server: str) -> str:
    name = f"bench_history_{uuid.uuid4().hex[:8]}"
    url = create_database(server, name, warehouse=True)
    migrate(url)
    return url


def drop_db(server: str, url: str) -> None:
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def write_fast(landing: Path, agencies: list[str], start: date, days: int, per_day: int) -> int:
    """Valid contract files quickly: a pool of generator rows per agency, re-dated per day
    (the generator itself writes about 2,500 rows/s here: 10M rows would take an hour)."""
    total = 0
    for agency in agencies:
        rng = random.Random(f"bench:{agency}")
        pool = []
        for _ in range(512):
            call = datetime.combine(BASE, dtime(7, 0), TZ) + timedelta(minutes=rng.randrange(300))
            row = generate.make_row(rng, agency, "X", call)
            pool.append(",".join(_csv(fmt(row[c])) for c in list(COLUMNS)[2:]))
        folder = landing / agency
        folder.mkdir(parents=True, exist_ok=True)
        header = ",".join(COLUMNS) + "\n"
        for i in range(days):
            d = start + timedelta(days=i)
            iso = d.isoformat()
            lines = [f"{agency},{agency}-{d:%Y%m%d}-{k:05d},{pool[(i * 131 + k) % 512]}"
                     .replace(BASE.isoformat(), iso) for k in range(per_day)]
            data = (header + "\n".join(lines) + "\n").encode()
            name = generate.csv_name(agency, d)
            (folder / name).write_bytes(data)
            gen = datetime.combine(d + timedelta(days=1), dtime(1, 0), TZ)
            (folder / generate.manifest_name(agency, d)).write_bytes(manifest_doc(
                agency, d, name, per_day, hashlib.sha256(data).hexdigest(), gen, None))
            total += per_day
    return total


def _csv(value: str) -> str:
    if any(ch in value for ch in ',"\n\r'):
        return '"' + value.replace('"', '""') + '"'
    return value


def env_for(url: str, home: Path, agencies: list[str]) -> dict:
    return {**os.environ, "UPSTREAM_DATABASE_URL": url, "UPSTREAM_HOME": str(home),
            "UPSTREAM_LANDING_DIR": str(home / "landing"), "UPSTREAM_GX_DIR": str(home / "gx"),
            "UPSTREAM_PSEUDONYM_KEY": "bench-history-key", "UPSTREAM_AGENCIES": ",".join(agencies)}


IMPORT_CHILD = """
import json, resource, sys, time
from datetime import date
import great_expectations  # imported before the clock starts, as in a running worker
from upstream.ingest import history
t = time.perf_counter()
s = history.import_history(date.fromisoformat(sys.argv[1]), date.fromisoformat(sys.argv[2]))
print(json.dumps({"seconds": time.perf_counter() - t, "files": s.files_loaded,
                  "rows": s.rows_loaded, "refused": len(s.refused),
                  "phases": dict(s.seconds_by_phase),
                  "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_import(url: str, home: Path, agencies: list[str], start: date, end: date) -> dict:
    out = subprocess.run([sys.executable, "-c", IMPORT_CHILD, start.isoformat(), end.isoformat()],
                         env=env_for(url, home, agencies), capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def raw_copy(url: str, landing: Path) -> float:
    """Every row of every file in one COPY stream into an unindexed all-text table."""
    files = sorted(landing.glob("*/*.csv"))
    with psycopg.connect(url) as conn:
        conn.execute(sql.SQL("CREATE TABLE raw_copy ({})").format(
            sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(c)) for c in COLUMNS)))
        conn.commit()
        t = time.perf_counter()
        with conn.cursor().copy("COPY raw_copy FROM STDIN WITH (FORMAT csv)") as copy:
            for f in files:
                data = f.read_bytes()
                copy.write(data[data.index(b"\n") + 1:])
        conn.commit()
        return time.perf_counter() - t


NIGHTLY_CHILD = """
import dataclasses, json, sys, time
from datetime import date
from pathlib import Path
import great_expectations
from upstream import ingest
from upstream.settings import load_settings
url_fresh, gx_fresh, url_aged, gx_aged, *days = sys.argv[1:]
base = load_settings()
setups = {"fresh": (url_fresh, base.with_changes(validate__gx_dir=Path(gx_fresh))),
          "aged": (url_aged, base.with_changes(validate__gx_dir=Path(gx_aged)))}
times = {"fresh": [], "aged": []}
for d in days:  # alternate, so the shared machine's load drifts into both alike
    for name, (url, settings) in setups.items():
        t = time.perf_counter()
        r = ingest.load_extract("WPS", date.fromisoformat(d), settings, url=url)
        assert r.outcome == "loaded", r
        times[name].append(time.perf_counter() - t)
print(json.dumps(times))
"""


def nightly(home: Path, urls: dict[str, str], days: list[date]) -> dict[str, list[float]]:
    out = subprocess.run([sys.executable, "-c", NIGHTLY_CHILD, urls["fresh"],
                          str(home / "gx-fresh"), urls["aged"], str(home / "gx"),
                          *(d.isoformat() for d in days)],
                         env=env_for(urls["fresh"], home, ["WPS"]), capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def age_gx_store(home: Path, nights: int) -> int:
    """What `nights` nightly loads would have left: one stored GX result and one Data Docs
    page each (copies of the last real ones)."""
    from upstream.validate import datadocs

    gx = home / "gx" / "WPS"
    results = sorted((gx / "gx" / "uncommitted" / "validations").rglob("*.json"))
    pages = [p for p in (gx / "docs").glob("*.html") if p.name != "index.html"]
    src_result, src_page = results[-1], pages[0]
    for n in range(nights):
        dst = src_result.parent.parent / f"aged-{n:05d}" / src_result.name
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(src_result.read_bytes())
        (gx / "docs" / f"WPS_aged_{n:05d}.html").write_bytes(src_page.read_bytes())
    entries = json.loads((gx / "docs" / "index.json").read_text())
    entries += [{"page": f"WPS_aged_{n:05d}.html", "label": f"aged {n}", "at": "", "failed": 0,
                 "rules": 0} for n in range(min(nights, datadocs.INDEX_LIMIT))]
    (gx / "docs" / "index.json").write_text(json.dumps(entries[:datadocs.INDEX_LIMIT]))
    return nights


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--server-url")
    ap.add_argument("--agencies", type=int, default=5)
    ap.add_argument("--years", type=int, default=10)
    ap.add_argument("--calls-per-day", type=int, default=55)
    ap.add_argument("--nightly-years", type=int, default=3)
    ap.add_argument("--keep-server", action="store_true")
    args = ap.parse_args(argv)
    server, kind, stop = start_server(args.server_url, args.keep_server)
    info = machine_info(server, kind, ("shared_buffers", "work_mem", "max_wal_size", "jit"))
    rows: list[tuple[str, str, str, str]] = []
    try:
        # 1. one agency, 10 years, the generator's own files
        home = WORK / "history-one"
        if not (home / "landing" / "WPS").is_dir():
            generate.generate(home / "landing", date(2014, 5, 1), date(2024, 4, 29), ["WPS"], seed=3)
        url = fresh_db(server)
        one = run_import(url, home, ["WPS"], date(2014, 5, 1), date(2024, 4, 29))
        drop_db(server, url)
        rows.append(("10 years, 1 agency", f"{one['files']} files, {one['rows']:,} calls",
                     f"{one['seconds']:.1f} s", "PASS" if one["seconds"] <= 120 else "FAIL"))

        # 2. + 3. many agencies, and the same rows as one raw COPY
        n, years, per_day = args.agencies, args.years, args.calls_per_day
        days = 365 * years
        agencies = [f"A{chr(65 + i // 26)}{chr(65 + i % 26)}" for i in range(n)]
        home = WORK / f"history-{n}x{years}x{per_day}"
        start = date(2014, 5, 1)
        if not (home / "landing" / agencies[-1]).is_dir():
            write_fast(home / "landing", agencies, start, days, per_day)
        url = fresh_db(server)
        many = run_import(url, home, agencies, start, start + timedelta(days=days - 1))
        copy_s = raw_copy(url, home / "landing")
        drop_db(server, url)
        calls = many["rows"]
        full = 10_000_000
        scale = full / calls if calls else 0
        label = f"{n} agencies x {years} years"
        rows.append((label, f"{many['files']} files, {calls:,} calls", f"{many['seconds']:.1f} s",
                     ("PASS" if many["seconds"] <= 600 else "FAIL") if calls >= full else
                     f"scaled; x{scale:.0f} linear = {many['seconds'] * scale / 60:.1f} min"))
        rows.append(("  import peak RSS", "", f"{many['maxrss_mib']:.0f} MiB",
                     "PASS" if many["maxrss_mib"] <= 2048 else "FAIL"))
        rows.append(("  raw COPY of the same rows", "", f"{copy_s:.1f} s",
                     f"ratio {many['seconds'] / copy_s:.1f}x (stretch 3x)"))
        for phase, s in sorted(many["phases"].items(), key=lambda kv: -kv[1]):
            rows.append((f"    {phase}", "", f"{s:.1f} s", f"{s / copy_s:.2f}x COPY"))

        # 4. a nightly load on a new warehouse vs one with years of history, alternately
        home = WORK / "history-nightly"
        nights = [date(2024, 6, 1) + timedelta(days=i) for i in range(16)]  # medians of 15: nights vary 0.75-1.15 s here
        hist_start = nights[0] - timedelta(days=365 * args.nightly_years)
        if not (home / "landing" / "WPS" / generate.manifest_name("WPS", hist_start)).is_file():
            generate.generate(home / "landing", hist_start, nights[-1], ["WPS"], seed=5)
        for gx in ("gx", "gx-fresh"):  # the GX stores start empty each run
            shutil.rmtree(home / gx, ignore_errors=True)
        urls = {"fresh": fresh_db(server), "aged": fresh_db(server)}
        hist = run_import(urls["aged"], home, ["WPS"], hist_start, nights[0] - timedelta(days=1))
        age_gx_store(home, 365 * args.nightly_years)
        got = nightly(home, urls, nights)
        for u in urls.values():
            drop_db(server, u)
        # night 1 creates each warehouse's GX project: not counted
        t_first, t_after = statistics.median(got["fresh"][1:]), statistics.median(got["aged"][1:])
        rows.append(("nightly load, new warehouse", f"median of nights 2-{len(nights)}",
                     f"{t_first:.2f} s", f"(night 1: {got['fresh'][0]:.2f} s, creates the GX project)"))
        rows.append((f"nightly load after {args.nightly_years} years", f"{hist['rows']:,} calls and "
                     f"{365 * args.nightly_years} GX results behind", f"{t_after:.2f} s",
                     ("PASS" if t_after <= 1.2 * t_first else "FAIL")
                     + f" ({t_after / t_first - 1:+.0%})"))
    finally:
        stop()
    print(f"\nmachine: {info['cpu']}, {info['nproc']} cores, {info['mem_gib']} GiB, Python "
          f"{info['python']}, PostgreSQL {info['pg_version']} ({info['server']}), load average "
          f"at start {tuple(round(x, 1) for x in info['loadavg_start'])}, at end "
          f"{tuple(round(x, 1) for x in os.getloadavg())}")
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
