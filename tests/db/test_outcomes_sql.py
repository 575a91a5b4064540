"""The outcome tables' SQL pieces on hand-made input: the Wilson interval in SQL equals the
Python one (tests/unit/test_outcomes_unit.py), and the complementary suppression step.

The checks use the session's migrated warehouse inside a transaction that is rolled back.
"""

from __future__ import annotations

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from upstream import outcomes


@pytest.fixture
def conn(warehouse_url):
    with psycopg.connect(warehouse_url) as c:
        yield c
        c.rollback()


def test_sql_wilson_equals_python(conn):
    pairs = [(k, n) for n in (1, 2, 3, 5, 7, 10, 13, 20, 50, 99, 263, 1000, 12345, 10_000_000)
             for k in sorted({0, 1, 2, n // 3, n // 2, n - 1, n} & set(range(n + 1)))]
    rows = conn.execute(
        "SELECT k, n, outcomes.wilson_low(k, n), outcomes.wilson_high(k, n)"
        " FROM unnest(%s::bigint[], %s::bigint[]) AS t(k, n)",
        ([k for k, _ in pairs], [n for _, n in pairs])).fetchall()
    assert len(rows) == len(pairs)
    for k, n, lo, hi in rows:
        p_lo, p_hi = outcomes.wilson_interval(k, n)
        assert lo == pytest.approx(p_lo, abs=1e-12), (k, n)
        assert hi == pytest.approx(p_hi, abs=1e-12), (k, n)
    none = conn.execute("SELECT outcomes.wilson_low(0, 0), outcomes.wilson_high(5, 4)").fetchone()
    assert none == (None, None)


# ---------------------------------------------------------------------------------------------
# Complementary suppression, on hand-made cells


def _suppress(conn, cells: dict[str, int], groups: dict[str, list[str]]) -> set[str]:
    """Run the rebuild's suppression step on the given cells/groups; return hidden cells."""
    conn.execute("CREATE TEMP TABLE sup_cell (cell_id integer PRIMARY KEY, grain text,"
                 " agency_code text, period date, patrol_zone text, measure text, ord integer,"
                 " value integer, sround integer) ON COMMIT DROP")
    conn.execute("CREATE TEMP TABLE sup_member (grp text, cell_id integer) ON COMMIT DROP")
    ids = {}
    for i, (name, value) in enumerate(cells.items(), start=1):
        ids[name] = i
        conn.execute(
            "INSERT INTO sup_cell VALUES (%s, 'month', 'WPS', '2024-06-01', %s, 'calls', %s, %s,"
            " CASE WHEN %s BETWEEN 1 AND 4 THEN 0 END)", (i, name, i, value, value))
    for grp, members in groups.items():
        for m in members:
            conn.execute("INSERT INTO sup_member VALUES (%s, %s)", (grp, ids[m]))
    rounds = outcomes.suppress_complementary(conn, {})
    assert rounds < 20
    return {r[0] for r in conn.execute(
        "SELECT patrol_zone FROM sup_cell WHERE sround IS NOT NULL")}


def test_one_small_cell_takes_the_next_smallest_with_it(conn):
    cells = {"total": 30, "a": 3, "b": 12, "c": 15}
    hidden = _suppress(conn, cells, {"g": ["total", "a", "b", "c"]})
    assert hidden == {"a", "b"}


def test_two_small_cells_need_no_complement(conn):
    cells = {"total": 20, "a": 3, "b": 2, "c": 15}
    assert _suppress(conn, cells, {"g": list(cells)}) == {"a", "b"}


def test_zero_is_never_the_complement_when_anything_else_is_there(conn):
    cells = {"total": 20, "a": 3, "z": 0, "c": 17}
    assert _suppress(conn, cells, {"g": list(cells)}) == {"a", "c"}


def test_two_way_table_is_protected_in_both_directions(conn):
    # rows r1, r2 with columns x, y and their totals; r1.x = 2 is small
    cells = {"r1x": 2, "r1y": 9, "r1": 11, "r2x": 7, "r2y": 8, "r2": 15,
             "x": 9, "y": 17, "all": 26}
    groups = {"row1": ["r1", "r1x", "r1y"], "row2": ["r2", "r2x", "r2y"],
              "colx": ["x", "r1x", "r2x"], "coly": ["y", "r1y", "r2y"],
              "tot": ["all", "r1", "r2"], "tot2": ["all", "x", "y"]}
    hidden = _suppress(conn, cells, groups)
    assert hidden == {"r1x", "r1y", "r2x", "r2y"}
    for members in groups.values():
        assert len(hidden & set(members)) != 1


@given(st.lists(st.integers(min_value=0, max_value=30), min_size=2, max_size=6))
@settings(max_examples=40, deadline=None)
def test_no_group_is_left_with_exactly_one_hidden_cell(warehouse_url, parts):
    with psycopg.connect(warehouse_url) as c:
        cells = {"total": sum(parts), **{f"p{i}": v for i, v in enumerate(parts)}}
        hidden = _suppress(c, cells, {"g": list(cells)})
        c.rollback()
    assert len(hidden) != 1
    assert {k for k, v in cells.items() if 1 <= v <= 4} <= hidden
