"""The warehouse database as create_database makes it: text in byte order, the
server's character classes kept (the contract rules' regular expressions depend on them)."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from upstream.warehouse import db

# a C1 control (NEL), a letter outside ASCII, a Unicode space: what LC_CTYPE decides
CLASS_PROBE = ("SELECT E'\\u0085' ~ '[[:cntrl:]]' AS cntrl, E'\\u00e9' ~ '[[:alpha:]]' AS alpha, "
               "E'\\u2003' ~ '\\s' AS space")


def _probe(url: str, query: str) -> dict:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(query).fetchone()


def test_warehouse_database_sorts_in_byte_order_and_keeps_character_classes(
        server_url, warehouse_url):
    template = _probe(server_url, "SELECT datctype FROM pg_database WHERE datname = 'template0'")
    mine = _probe(warehouse_url, "SELECT datcollate, datctype, datlocprovider FROM pg_database "
                                 "WHERE datname = current_database()")
    assert mine == {"datcollate": "C", "datctype": template["datctype"], "datlocprovider": "c"}
    assert _probe(warehouse_url, CLASS_PROBE) == _probe(server_url, CLASS_PROBE)
    # byte order: upper case before lower case, whatever a language would say
    order = _probe(warehouse_url, "SELECT array_agg(w ORDER BY w) AS w "
                                  "FROM unnest(ARRAY['b', 'B', 'a', 'A']) AS w")
    assert order["w"] == ["A", "B", "a", "b"]
    with db.connect(warehouse_url) as conn:
        assert db.collation_advice(conn) is None


@pytest.mark.server
def test_a_database_with_a_language_collation_gets_advice(server_url):
    name = f"upstream_collation_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0 LOCALE_PROVIDER libc "
                             "LC_COLLATE 'C.UTF-8'").format(sql.Identifier(name)))
    try:
        with db.connect(db.with_database(server_url, name)) as conn:
            advice = db.collation_advice(conn)
        assert advice is not None
        assert "'C.UTF-8'" in advice and "LC_COLLATE 'C'" in advice
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))
