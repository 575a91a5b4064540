"""`upstream` command line for the data team (see README, "Command line")."""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import date, timedelta
from pathlib import Path

from upstream.dev.demo import DEMO_DAYS, DEMO_START

__all__ = ["DEMO_DAYS", "DEMO_START", "main"]


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date like 2024-06-01: {text!r}") from None


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a whole number of 1 or more: {text!r}")
    return int(text)


def cmd_generate(args) -> int:
    from upstream.dev import generate
    from upstream.settings import load_settings

    settings = load_settings()
    landing = Path(args.landing) if args.landing else settings.landing.dir
    agencies = args.agencies.split(",") if args.agencies else list(settings.agencies)
    days = generate.generate(landing, args.start, args.end, agencies, seed=args.seed,
                             bad_rows_share=args.bad_rows_share, bad_files=args.bad_files)
    rows = sum(d.rows for d in days)
    print(f"wrote {len(days)} extract(s), {rows} rows, under {landing}")
    return 0


def cmd_validate(args) -> int:
    from upstream.validate import check

    report = check.check_file(Path(args.file), require_manifest=not args.no_manifest)
    print(report.render())
    return 0 if report.clean else 1


def _run_days(days: list[date], verbose: bool = False) -> int:
    """One new nightly run per day (run history is never rewritten), one line per day, then
    a summary. Ctrl-C / SIGTERM stop within seconds; the interrupted run is marked failed."""
    import os

    from upstream.dev import env as devenv

    if not verbose:  # Airflow's scheduling chatter and task logs stay off the terminal
        os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "CRITICAL"

    devenv.bootstrap(quick=True)
    from upstream.airflow import run as run_dag

    failed: list[date] = []

    def emit(result) -> None:
        print(result.line(), flush=True)
        if result.state != "success":
            failed.append(result.extract_date)

    try:
        results = run_dag.run_days(days, emit)
    except run_dag.Interrupted:
        print("stopped; the run in progress is marked failed", flush=True)
        return 130
    assert len(results) == len(days)
    summary = f"{len(days)} day(s): {len(days) - len(failed)} succeeded, {len(failed)} failed"
    if failed:
        summary += " (" + ", ".join(d.isoformat() for d in failed) + ")"
    print(summary, flush=True)
    return 1 if failed else 0


def cmd_run_day(args) -> int:
    return _run_days([args.date], args.verbose)


def cmd_run_range(args) -> int:
    days = [args.start + timedelta(days=i) for i in range((args.end - args.start).days + 1)]
    return _run_days(days, args.verbose)


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

    from upstream.ingest import history

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
            progress=history.Progress(show),
            batch_files=args.batch_files or history.BATCH_FILES,
            workers=args.workers)
    print(summary.render())
    if summary.nothing_found or summary.refused:
        return 1
    return 0


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True)


def cmd_db(args) -> int:
    from upstream.warehouse import db

    if args.action == "migrate":
        applied = db.migrate()
        print("applied: " + (", ".join(applied) if applied else "nothing (up to date)"))
    elif args.action == "url":
        print(db.warehouse_url())
    elif args.action == "stop":
        from upstream.dev import server as devserver

        devserver.stop_embedded()
    return 0


def cmd_serve(args) -> int:
    from upstream.dev import server as devserver

    return devserver.run_local_stack(demo=not args.no_demo)


def cmd_status(args) -> int:
    from upstream.dev import status
    from upstream.settings import load_settings

    settings = load_settings()
    rows = status.day_status(settings, days=args.days)
    if args.json:
        print(status.as_json(rows, settings))
    else:
        status.print_table(rows)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="upstream", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser(
        "generate", help="write demo extracts + manifests into the landing area",
        description="Write contract-conformant demo extracts and their manifests, one per "
                    "agency and day, under <landing>/<AGENCY>/. Deterministic: the same seed "
                    "writes the same bytes. About 8 calls a day per agency.")
    g.add_argument("--start", type=_date, default=DEMO_START, metavar="DATE",
                   help="first extract day, YYYY-MM-DD (default: %(default)s, the program's launch)")
    g.add_argument("--end", type=_date, default=DEMO_START + timedelta(days=DEMO_DAYS - 1),
                   metavar="DATE", help="last extract day, inclusive (default: %(default)s)")
    g.add_argument("--agencies", metavar="CODES",
                   help="comma-separated agency codes, e.g. WPS,LPS "
                        "(default: the UPSTREAM_AGENCIES setting)")
    g.add_argument("--seed", type=int, default=7,
                   help="random seed: same seed, same files (default: %(default)s)")
    g.add_argument("--landing", metavar="DIR",
                   help="landing area to write into (default: the UPSTREAM_LANDING_DIR setting)")
    g.add_argument("--bad-rows-share", type=float, default=0.0, metavar="SHARE",
                   help="share of rows (0-1) that each break one contract rule, to exercise "
                        "quarantine (default: %(default)s, none)")
    g.add_argument("--bad-files", action="store_true",
                   help="make every tenth day per agency a broken delivery (bad manifest, "
                        "checksum, encoding, ...) that the load refuses (default: off)")
    g.set_defaults(func=cmd_generate)

    v = sub.add_parser("validate", help="check one extract against the contract without loading")
    v.add_argument("file", help="path to <AGENCY>_ipv_calls_<DATE>.csv (manifest beside it)")
    v.add_argument("--no-manifest", action="store_true",
                   help="check the data file alone, ignoring any manifest; without this a "
                        "missing manifest fails (the contract calls such a delivery incomplete)")
    v.set_defaults(func=cmd_validate)

    r = sub.add_parser("run-day", help="run the nightly DAG for one extract day in-process (a new run)")
    r.add_argument("date", type=_date)
    r.add_argument("--verbose", action="store_true", help="show Airflow's logs and task logs")
    r.set_defaults(func=cmd_run_day)

    rr = sub.add_parser("run-range", help="run the nightly DAG for every day in a range")
    rr.add_argument("start", type=_date)
    rr.add_argument("end", type=_date)
    rr.add_argument("--verbose", action="store_true", help="show Airflow's logs and task logs")
    rr.set_defaults(func=cmd_run_range)

    h = sub.add_parser("import-history",
                       help="bulk-import an agency's past extracts (resumable; see README)")
    h.add_argument("--from", dest="start", type=_date, required=True)
    h.add_argument("--to", dest="end", type=_date, required=True)
    h.add_argument("--agencies", help="comma separated, default UPSTREAM_AGENCIES")
    h.add_argument("--landing", help="folder with <AGENCY>/ extracts, default UPSTREAM_LANDING_DIR")
    h.add_argument("--batch-files", type=_positive_int, default=None,
                   help="files per batch (one GX checkpoint and at least one commit each); "
                        "default 4000")
    h.add_argument("--workers", type=_positive_int, default=None,
                   help="agencies loaded at the same time, default UPSTREAM_IMPORT_WORKERS (2)")
    h.set_defaults(func=cmd_import_history)

    d = sub.add_parser("db", help="warehouse database: migrate | url | stop (embedded)")
    d.add_argument("action", choices=["migrate", "url", "stop"])
    d.set_defaults(func=cmd_db)

    s = sub.add_parser("serve", help="bootstrap, load the demo nights, serve Airflow (make run)")
    s.add_argument("--no-demo", action="store_true")
    s.set_defaults(func=cmd_serve)

    st = sub.add_parser("status", help="each agency's extract per day: loaded, refused, missing")
    st.add_argument("--days", type=_positive_int, default=31,
                    help="how many days back from the last known day (default: %(default)s)")
    st.add_argument("--json", action="store_true", help="one JSON document instead of a table")
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
