"""Pieces of upstream.outcomes: the Wilson interval (Python and SQL), the complementary
suppression step on hand-made tables, and the settings.

The SQL checks use the session's migrated warehouse inside a transaction that is rolled back.
"""

from __future__ import annotations

import math
from datetime import date

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from upstream import outcomes

# ---------------------------------------------------------------------------------------------
# Wilson interval


def _wilson_by_roots(k: int, n: int, z: float) -> tuple[float, float]:
    """Independent derivation: the bounds are the p solving (k/n - p)^2 = z^2 p (1 - p) / n,
    i.e. (1 + z^2/n) p^2 - (2 k/n + z^2/n) p + (k/n)^2 = 0."""
    phat = k / n
    a = 1 + z * z / n
    b = -(2 * phat + z * z / n)
    c = phat * phat
    disc = math.sqrt(max(0.0, b * b - 4 * a * c))
    return (-b - disc) / (2 * a), (-b + disc) / (2 * a)


def test_z_is_the_95_percent_normal_quantile():
    from scipy.stats import norm

    assert outcomes.WILSON_Z == pytest.approx(norm.ppf(0.975), abs=1e-12)


@pytest.mark.parametrize(("k", "n", "low", "high"), [
    # Newcombe (1998), Statistics in Medicine 17:857-872, table I, method 3 (Wilson score)
    (81, 263, 0.2553, 0.3662),
    (15, 148, 0.0624, 0.1605),
    (0, 20, 0.0000, 0.1611),
    (1, 29, 0.0061, 0.1718),
])
def test_wilson_matches_published_values(k, n, low, high):
    lo, hi = outcomes.wilson_interval(k, n)
    assert (round(lo, 4), round(hi, 4)) == (low, high)


@given(st.integers(min_value=1, max_value=100_000).flatmap(
    lambda n: st.tuples(st.integers(min_value=0, max_value=n), st.just(n))))
@settings(max_examples=300, deadline=None)
def test_wilson_agrees_with_the_quadratic_roots(kn):
    k, n = kn
    lo, hi = outcomes.wilson_interval(k, n)
    r_lo, r_hi = _wilson_by_roots(k, n, outcomes.WILSON_Z)
    assert lo == pytest.approx(max(0.0, r_lo), abs=1e-9)
    assert hi == pytest.approx(min(1.0, r_hi), abs=1e-9)
    assert 0.0 <= lo <= k / n <= hi <= 1.0


def test_wilson_edges():
    assert outcomes.wilson_interval(0, 0) is None
    assert outcomes.wilson_interval(3, 2) is None
    assert outcomes.wilson_interval(0, 10)[0] == 0.0
    assert outcomes.wilson_interval(10, 10)[1] == 1.0


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


# ---------------------------------------------------------------------------------------------
# Settings


def test_launch_date_setting(monkeypatch):
    monkeypatch.delenv("UPSTREAM_PROGRAM_LAUNCH_DATE", raising=False)
    assert outcomes.launch_date() == date(2024, 5, 6)
    monkeypatch.setenv("UPSTREAM_PROGRAM_LAUNCH_DATE", "2025-01-15")
    assert outcomes.launch_date() == date(2025, 1, 15)
    monkeypatch.setenv("UPSTREAM_PROGRAM_LAUNCH_DATE", "15/01/2025")
    with pytest.raises(ValueError, match="UPSTREAM_PROGRAM_LAUNCH_DATE"):
        outcomes.launch_date()


def test_work_mem_setting(monkeypatch):
    monkeypatch.delenv("UPSTREAM_OUTCOMES_WORK_MEM", raising=False)
    assert outcomes._work_mem() == "256MB"
    monkeypatch.setenv("UPSTREAM_OUTCOMES_WORK_MEM", "1GB")
    assert outcomes._work_mem() == "1GB"
    monkeypatch.setenv("UPSTREAM_OUTCOMES_WORK_MEM", "lots; DROP TABLE x")
    with pytest.raises(ValueError, match="UPSTREAM_OUTCOMES_WORK_MEM"):
        outcomes._work_mem()


def test_sql_files_have_no_stray_placeholders():
    params = {"tz": "America/Toronto", "reference_date": date(2024, 9, 30),
              "launch_date": date(2024, 5, 6), "min_cell": 10}
    for relative in (*outcomes.BUILD_FILES, outcomes.SUPPRESSION_STEP, *outcomes.PUBLISH_FILES):
        text = outcomes._script(relative, {**params, "round": 1}).as_string(None)
        assert "{" not in text and "}" not in text, relative
        assert "now()" not in text.lower() and "current_date" not in text.lower(), relative
