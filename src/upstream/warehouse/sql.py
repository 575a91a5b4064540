"""The one statement loader: SQL files under include/sql/, read once per process."""

from __future__ import annotations

import functools

from upstream.settings import SQL_DIR


@functools.cache
def read_sql(relative: str) -> str:
    """A statement file under include/sql/ (one statement per file), read once per process."""
    return (SQL_DIR / relative).read_text(encoding="utf-8")


def statement_folder(relative: str) -> list[str]:
    """The statements of a numbered folder (01_x.sql, 02_y.sql, ...), in order."""
    folder = SQL_DIR / relative
    return [read_sql(f"{relative}/{p.name}") for p in sorted(folder.glob("*.sql"))]
