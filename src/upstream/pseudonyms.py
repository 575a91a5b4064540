"""Keyed pseudonyms (HMAC-SHA-256): the load computes them in SQL (core.hmac_sha256_hex) from
padded keys passed as transaction-local settings; routing and tests compute the same in Python.
"""

from __future__ import annotations

import hashlib
import hmac

import psycopg
from psycopg import sql

from upstream.settings import pseudonym_key
from upstream.warehouse.sql import read_sql

PAD_SETTING = "upstream.hmac_{}"


def hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """HMAC-SHA-256 inner/outer padded keys (RFC 2104), for core.hmac_sha256_hex."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def pseudonym(key: bytes, kind: str, agency: str, identifier: str) -> str:
    """The same pseudonym the load computes in SQL (for tests and routing)."""
    return hmac.new(key, f"{kind}:{agency}:{identifier}".encode(), hashlib.sha256).hexdigest()


def set_pads(conn: psycopg.Connection) -> dict[str, sql.Composable]:
    """Put the key's pads into transaction-local settings; return the SQL that reads them.

    The pads travel as bind parameters, never in statement text, and the parallel workers of a
    CREATE TABLE AS inherit the settings; they end with the transaction.
    """
    inner, outer = hmac_pads(pseudonym_key())
    names = PAD_SETTING.format("inner"), PAD_SETTING.format("outer")
    conn.execute(read_sql("ingest/set_pads.sql"), (names[0], inner.hex(), names[1], outer.hex()))
    pad = "(SELECT decode(current_setting({}), 'hex'))"
    return {"inner_key": sql.SQL(pad).format(sql.Literal(names[0])),
            "outer_key": sql.SQL(pad).format(sql.Literal(names[1]))}
