"""Formatting of values and the tables of the monitoring page (cells that say what they are).

Every number sits in a cell whose data-* attributes name its view, agency, keys and column:
``<td data-table="calls_monthly" data-agency="WPS" data-month="2024-05" data-zone="(all)"
data-col="calls" data-value="57">57</td>``; a suppressed count reads "<5" with
``data-value=""`` and ``data-suppressed="true"``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from upstream.monitoring.views import (
    ALL_MONTHS_KEY,
    ALL_MONTHS_LABEL,
    COUNT,
    DAY,
    FLAG,
    HOURS,
    KEY_ATTRIBUTES,
    MONTH,
    SHARE,
    SUPPRESSED_COUNT,
    SUPPRESSED_VALUE,
    TEXT,
    VIEWS,
    has_suppressed_count,
    is_total,
    month_key,
    null_text,
)

MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
LONG_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
               "September", "October", "November", "December")


def display(kind: str, value: Any, row_has_suppressed_count: bool = True) -> str:
    """How a value reads on the page. NULL is never shown as 0 (see views.null_text)."""
    if value is None:
        return null_text(kind, row_has_suppressed_count)
    if kind == COUNT:
        return f"{int(value):,}"
    if kind == SHARE:
        return f"{float(value) * 100:.1f}%"
    if kind == HOURS:
        return f"{float(value):,.1f}"
    if kind == MONTH and isinstance(value, date):
        return month_key(value)
    if kind == DAY and isinstance(value, date):
        return value.isoformat()
    return str(value)


def raw(kind: str, value: Any) -> str:
    """The machine-readable value (data-value / data-<key>)."""
    if value is None:
        return ""
    if kind == MONTH and isinstance(value, date):
        return month_key(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def month_label(d: date) -> str:
    return f"{LONG_MONTHS[d.month - 1]} {d.year}"


def axis_months(months: Sequence[date]) -> list[tuple[str, str]]:
    out = []
    for i, m in enumerate(months):
        out.append((MONTH_NAMES[m.month - 1], str(m.year) if i == 0 or m.month == 1 else ""))
    return out


def axis_days(days: Sequence[date]) -> list[tuple[str, str]]:
    out = []
    for i, d in enumerate(days):
        new_month = i == 0 or d.day == 1 or days[i - 1].month != d.month
        out.append((str(d.day), f"{MONTH_NAMES[d.month - 1]} {d.year}" if new_month else ""))
    return out


@dataclass
class Cell:
    text: str
    attrs: dict[str, str] = field(default_factory=dict)
    header: bool = False


@dataclass
class Table:
    view: str
    caption: str
    headers: list[str]
    rows: list[list[Cell]]
    csv_name: str = ""

    def __len__(self) -> int:
        return len(self.rows)


def table(view_name: str, rows: Iterable[Mapping[str, Any]], caption: str,
          hide: Sequence[str] = ("agency_code",)) -> Table:
    view = VIEWS[view_name]
    shown = [c for c in view.columns if c.name not in hide and c.kind != FLAG]
    out: list[list[Cell]] = []
    for row in rows:
        suppressed = has_suppressed_count(view, row)
        total = is_total(row)  # over all months: the month reads "All months"
        keys = {"table": view.name, "agency": raw(TEXT, row.get("agency_code"))}
        for k in view.keys:
            keys[KEY_ATTRIBUTES[k]] = raw(view.column(k).kind, row.get(k))
            if total and view.column(k).kind == MONTH:
                keys[KEY_ATTRIBUTES[k]] = ALL_MONTHS_KEY
        cells = []
        for c in shown:
            value = row.get(c.name)
            if c.name in view.keys:
                text = ALL_MONTHS_LABEL if total and c.kind == MONTH else display(c.kind, value)
                attrs = {"scope": "row", "class": "total"} if total else {"scope": "row"}
                cells.append(Cell(text, attrs, header=True))
                continue
            attrs = {f"data-{k}": v for k, v in keys.items()}
            attrs["data-col"] = c.name
            attrs["data-value"] = raw(c.kind, value)
            classes = ["num"] if c.kind not in (TEXT,) else []
            text = display(c.kind, value, suppressed)
            if value is None and c.kind not in (TEXT, MONTH, DAY):
                attrs["data-suppressed"] = "true"
                attrs["title"] = {
                    SUPPRESSED_COUNT: "suppressed: a count from 1 to 4 (or withheld with one)",
                    SUPPRESSED_VALUE: "suppressed: it rests on a suppressed count",
                }.get(text, "not published: does not apply, or its base was suppressed")
                classes.append("suppressed")
            if classes:
                attrs["class"] = " ".join(classes)
            cells.append(Cell(text, attrs))
        out.append(cells)
    return Table(view.name, caption, [c.label for c in shown], out, f"{view.name}.csv")
