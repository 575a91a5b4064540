"""`upstream status`: what happened to each agency's extract, day by day.

A table for people (rich), or one JSON document for machines. Missing days are listed: every
configured agency on every day between the first and the last known day.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from upstream.settings import Settings, load_settings
from upstream.warehouse import db

STYLES = {"loaded": "green", "refused": "bold red", "missing": "yellow", "loading": "yellow",
          "superseded": "dim", "ignored_older": "dim"}


def day_status(settings: Settings | None = None, days: int = 31) -> list[dict[str, Any]]:
    """One dict per agency and day, newest day first (see include/sql/ops/day_status.sql)."""
    settings = settings or load_settings()
    if days < 1:
        raise ValueError("days must be at least 1")
    with db.connect(db.warehouse_url(settings)) as conn:
        return conn.execute(db.read_sql("ops/day_status.sql"),
                            {"agencies": list(settings.agencies), "days": days}).fetchall()


def as_json(rows: list[dict[str, Any]], settings: Settings) -> str:
    return json.dumps({
        "agencies": list(settings.agencies),
        "first_day": rows[-1]["extract_date"].isoformat() if rows else None,
        "last_day": rows[0]["extract_date"].isoformat() if rows else None,
        "counts": _counts(rows),
        "days": [{k: (v.isoformat() if isinstance(v, date) else v) for k, v in r.items()}
                 for r in rows],
    }, indent=2)


def print_table(rows: list[dict[str, Any]], console=None) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = console or Console()
    if not rows:
        console.print("No extract files recorded yet (run the nightly DAG or `upstream run-day`).")
        return
    table = Table(title="Extracts by agency and day (newest first)", title_justify="left")
    for name, justify in (("day", "left"), ("agency", "left"), ("status", "left"),
                          ("rows", "right"), ("loaded", "right"), ("quarantined", "right"),
                          ("reason", "left")):
        table.add_column(name, justify=justify, overflow="fold")
    for r in rows:
        # Text, not markup: a reason may hold brackets ("[email]") that rich would eat.
        table.add_row(
            r["extract_date"].isoformat(), r["agency_code"],
            Text(r["status"], style=STYLES.get(r["status"], "")),
            *("" if r[k] is None else str(r[k])
              for k in ("rows_in_file", "rows_loaded", "rows_quarantined")),
            Text((r["reason"] or "").removeprefix(f"{r['agency_code']} {r['extract_date']}: ")))
    console.print(table)
    console.print(Text(", ".join(f"{n} {s}" for s, n in sorted(_counts(rows).items()))))


def _counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    return counts
