"""Staging a file: COPY it (after its BOM) into an all-text table, then build the typed table
with every rule's verdict per row and the keyed pseudonyms (include/sql/validate/typed_table.sql).
A COPY failure becomes a refusal that names the kind of breakage and the line, never a value.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import psycopg
from psycopg import sql

from upstream.contract import COLUMNS
from upstream.ingest.header import BOM, Header
from upstream.ingest.manifest import COPY_BLOCK, Delivery
from upstream.pseudonyms import set_pads
from upstream.warehouse.sql import read_sql
from upstream.warehouse.staging import batch_files_table, staging_names, suspect_table

_LINE_RE = re.compile(r"line (\d+)")


def copy_failure_message(exc: psycopg.Error) -> str:
    """A COPY error as a safe message: PostgreSQL's CONTEXT quotes the offending value, so
    only the primary message's kind and the line number are kept."""
    diag = exc.diag
    primary = diag.message_primary or type(exc).__name__
    line = None
    m = _LINE_RE.search(diag.context or "")
    if m:
        line = int(m.group(1))
    if isinstance(exc, psycopg.errors.CharacterNotInRepertoire) or "invalid byte sequence" in primary:
        kind = "is not valid UTF-8 (or contains a NUL byte)"
    elif "unterminated CSV quoted field" in primary:
        kind = "ends inside a quoted field (truncated file?)"
    elif "extra data after last expected column" in primary:
        kind = "has a row with more fields than the header"
    elif "missing data for column" in primary:
        kind = "has a row with fewer fields than the header"
    elif "carriage return" in primary or "newline" in primary:
        kind = "mixes line endings outside quoted fields"
    else:
        kind = "is not valid RFC 4180 CSV"
    where = f" at line {line}" if line else ""
    return f"data file {kind}{where}"


def copy_statement(raw: sql.Identifier, columns: list[str]) -> sql.Composed:
    """COPY into `raw` (FORCE_NULL: a quoted empty field is null too, as the contract says)."""
    return sql.SQL(read_sql("ingest/copy_csv.sql")).format(
        raw=raw, cols=sql.SQL(", ").join(map(sql.Identifier, columns)))


def copy_file(conn: psycopg.Connection, statement: sql.Composed, csv_path: Path,
              has_bom: bool) -> tuple[int, str]:
    """Stream the file into COPY in 1 MiB blocks (BOM dropped). Returns rows and sha256."""
    digest = hashlib.sha256()
    with conn.cursor() as cur:
        with cur.copy(statement) as copy, csv_path.open("rb") as fh:
            first = True
            for block in iter(lambda: fh.read(COPY_BLOCK), b""):
                digest.update(block)
                if first and has_bom:
                    block = block[len(BOM):]
                first = False
                copy.write(block)
        rows = cur.rowcount
    return rows, digest.hexdigest()


def copy_to_staging(conn: psycopg.Connection, file_id: int | str, csv_path: Path, header: Header,
                    refuse) -> tuple[int, str]:
    """COPY the file (after its BOM) into an all-text staging table. Returns rows and sha256."""
    raw, _ = staging_names(file_id)
    cols = [c if c in COLUMNS else f"extra_{i}" for i, c in enumerate(header.columns)]
    all_cols = cols + list(header.missing_optional)
    conn.execute(sql.SQL(read_sql("ingest/create_raw_table.sql")).format(
        raw=raw, cols=sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(c))
                                         for c in all_cols)))
    conn.execute(read_sql("ingest/set_copy_file.sql"), {"file_id": str(_row_file_id(file_id))})
    try:
        return copy_file(conn, copy_statement(raw, cols), csv_path, header.has_bom)
    except psycopg.errors.DataError as exc:
        conn.rollback()
        raise refuse(copy_failure_message(exc)) from None
    except psycopg.errors.InternalError_ as exc:  # e.g. COPY's "malformed" failures
        conn.rollback()
        raise refuse(copy_failure_message(exc)) from None


def _row_file_id(key: int | str) -> int:
    """The file_id the staged rows carry: the load's file id; 0 for a staging key that is not
    one (`upstream validate` checks a file without registering it)."""
    return int(key) if str(key).isdigit() else 0


def failed_rules_expression() -> sql.Composable:
    """ARRAY of the names of the rules a row breaks: every predicate of upstream.rules, once."""
    from upstream.rules import RULES

    cases = sql.SQL(", ").join(
        sql.SQL("CASE WHEN ({}) THEN {} END").format(sql.SQL(r.failing), sql.Literal(r.name))
        for r in RULES)
    return sql.SQL("array_remove(ARRAY[{}]::text[], NULL)").format(cases)


def build_typed_table(conn: psycopg.Connection, file_id: int | str, agency: str,
                      delivery: Delivery) -> None:
    raw, typed = staging_names(file_id)
    files = batch_files_table(file_id)
    conn.execute(sql.SQL(read_sql("validate/one_file_table.sql")).format(
        files=files, file_id=sql.Literal(_row_file_id(file_id)),
        extract_date=sql.Literal(delivery.extract_date),
        generated_at=sql.Literal(delivery.generated_at),
        extract_year=sql.Literal(delivery.extract_date.year)))
    pads = set_pads(conn)
    conn.execute(sql.SQL(read_sql("validate/typed_table.sql")).format(
        raw=raw, typed=typed, files=files,
        expected_agency=sql.Literal(agency),
        failed_rules=failed_rules_expression(),
        **pads,
    ))
    conn.execute(sql.SQL(read_sql("ingest/typed_primary_key.sql")).format(typed=typed))
    conn.execute(sql.SQL(read_sql("validate/suspect_rows.sql")).format(
        suspect=suspect_table(file_id), typed=typed))
