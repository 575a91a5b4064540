"""`upstream` command line for the data team (see README, "Command line")."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import date, timedelta
from pathlib import Path

DEMO_START = date(2024, 5, 6)  # the program's launch
DEMO_DAYS = 21


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date like 2024-06-01: {text!r}") from None


def cmd_generate(args) -> int:
    from upstream import generate
    from upstream.config import load_settings

    settings = load_settings()
    landing = Path(args.landing) if args.landing else settings.landing_dir
    agencies = args.agencies.split(",") if args.agencies else list(settings.agencies)
    days = generate.generate(landing, args.start, args.end, agencies, seed=args.seed,
                             bad_rows_share=args.bad_rows_share, bad_files=args.bad_files)
    rows = sum(d.rows for d in days)
    print(f"wrote {len(days)} extract(s), {rows} rows, under {landing}")
    return 0


def cmd_validate(args) -> int:
    from upstream import check

    report = check.check_file(Path(args.file))
    print(report.render())
    return 0 if report.clean else 1


def _run_days(days: list[date]) -> int:
    from upstream import devenv

    devenv.bootstrap()
    from upstream import run_dag

    failures = 0
    for day in days:
        state = run_dag.run_nightly_for(day)
        print(f"{day.isoformat()}: {state}")
        failures += state != "success"
    return 1 if failures else 0


def cmd_run_day(args) -> int:
    return _run_days([args.date])


def cmd_run_range(args) -> int:
    days = [args.start + timedelta(days=i) for i in range((args.end - args.start).days + 1)]
    return _run_days(days)


def cmd_import_history(args) -> int:
    """Bulk import with a rich progress bar (files, rows, rate, ETA) and a summary."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from upstream import history

    agencies = [a.strip() for a in args.agencies.split(",") if a.strip()] if args.agencies else None
    columns = (TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TextColumn("files"),
               TextColumn("{task.fields[rows]} rows"), TextColumn("{task.fields[rate]}"),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, console=_stderr_console(), transient=False) as bar:
        task = bar.add_task("history", total=None, rows=0, rate="")

        def show(p: history.Progress) -> None:
            elapsed = max(bar.tasks[0].elapsed or 0.0, 1e-9)
            bar.update(task, total=p.total_files or None, completed=p.files, rows=p.rows,
                       rate=f"{p.rows / elapsed:,.0f} rows/s")

        summary = history.import_history(
            args.start, args.end, agencies, landing=Path(args.landing) if args.landing else None,
            progress=history.Progress(show), batch_files=args.batch_files)
    print(summary.render())
    if summary.nothing_found or summary.refused:
        return 1
    return 0


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True)


def cmd_db(args) -> int:
    from upstream import db

    if args.action == "migrate":
        applied = db.migrate()
        print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))
    elif args.action == "url":
        print(db.warehouse_url())
    elif args.action == "stop":
        from upstream import devserver

        devserver.stop_embedded()
    return 0


def cmd_serve(args) -> int:
    from upstream import devserver

    return devserver.run_local_stack(demo=not args.no_demo)


def cmd_status(args) -> int:
    from upstream import db

    with db.connect() as conn:
        rows = conn.execute(
            "SELECT agency_code, extract_date, status, rows_in_file, rows_loaded,"
            " rows_quarantined, rows_stale, reason FROM ops.extract_file"
            " ORDER BY extract_date DESC, agency_code, file_id DESC LIMIT %s", (args.limit,)).fetchall()
    for r in rows:
        print(json.dumps({k: (v.isoformat() if isinstance(v, date) else v) for k, v in r.items()}))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="upstream", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="write demo extracts + manifests into the landing area")
    g.add_argument("--start", type=_date, default=DEMO_START)
    g.add_argument("--end", type=_date, default=DEMO_START + timedelta(days=DEMO_DAYS - 1))
    g.add_argument("--agencies", help="comma separated, default UPSTREAM_AGENCIES")
    g.add_argument("--seed", type=int, default=7)
    g.add_argument("--landing", help="default UPSTREAM_LANDING_DIR")
    g.add_argument("--bad-rows-share", type=float, default=0.0)
    g.add_argument("--bad-files", action="store_true")
    g.set_defaults(func=cmd_generate)

    v = sub.add_parser("validate", help="check one extract against the contract without loading")
    v.add_argument("file", help="path to <AGENCY>_ipv_calls_<DATE>.csv (manifest beside it)")
    v.set_defaults(func=cmd_validate)

    r = sub.add_parser("run-day", help="run the nightly DAG for one extract day (dag.test)")
    r.add_argument("date", type=_date)
    r.set_defaults(func=cmd_run_day)

    rr = sub.add_parser("run-range", help="run the nightly DAG for every day in a range")
    rr.add_argument("start", type=_date)
    rr.add_argument("end", type=_date)
    rr.set_defaults(func=cmd_run_range)

    h = sub.add_parser("import-history",
                       help="bulk-import an agency's past extracts (resumable; see README)")
    h.add_argument("--from", dest="start", type=_date, required=True)
    h.add_argument("--to", dest="end", type=_date, required=True)
    h.add_argument("--agencies", help="comma separated, default UPSTREAM_AGENCIES")
    h.add_argument("--landing", help="folder with <AGENCY>/ extracts, default UPSTREAM_LANDING_DIR")
    h.add_argument("--batch-files", type=int, default=1000,
                   help="files per batch (one GX checkpoint and at least one commit each)")
    h.set_defaults(func=cmd_import_history)

    d = sub.add_parser("db", help="warehouse database: migrate | url | stop (embedded)")
    d.add_argument("action", choices=["migrate", "url", "stop"])
    d.set_defaults(func=cmd_db)

    s = sub.add_parser("serve", help="bootstrap, load the demo nights, serve Airflow (make run)")
    s.add_argument("--no-demo", action="store_true")
    s.set_defaults(func=cmd_serve)

    st = sub.add_parser("status", help="recent files and what happened to them")
    st.add_argument("--limit", type=int, default=20)
    st.set_defaults(func=cmd_status)
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a clear message, not a traceback, for expected failures
        message = getattr(exc, "public_message", None)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
