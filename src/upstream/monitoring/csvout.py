"""CSV downloads of the published views, safe to open in a spreadsheet.

* written with the csv module (quoting, embedded commas/quotes/newlines);
* a text cell that starts with = + - @ TAB or CR gets a leading ' so a spreadsheet shows it as
  text instead of running it as a formula (CSV/formula injection);
* a suppressed count is written "<5", a rate or time resting on one "suppressed", and one that
  does not apply "–": never 0, nor a blank that a spreadsheet would add up as 0;
* UTF-8 with a byte-order mark, so Excel reads accented agency or zone names correctly.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from upstream.monitoring.views import View, has_suppressed_count, null_text

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff"


def neutralise(text: str) -> str:
    """Prefix ' to a cell a spreadsheet would otherwise read as a formula."""
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def cell(kind: str, value: Any, row_has_suppressed_count: bool = True) -> str:
    if value is None:
        return null_text(kind, row_has_suppressed_count)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int | float | Decimal):
        return str(value)
    return neutralise(str(value))


def to_csv(view: View, rows: Iterable[Mapping[str, Any]], bom: bool = True) -> str:
    buf = io.StringIO()
    if bom:
        buf.write(BOM)
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(view.column_names)
    for row in rows:
        suppressed = has_suppressed_count(view, row)
        writer.writerow([cell(c.kind, row.get(c.name), suppressed) for c in view.columns])
    return buf.getvalue()
