"""Pieces of upstream.outcomes without a database: the Wilson interval and the settings.

The SQL pieces (the Wilson interval in SQL, complementary suppression) are tested in
tests/db/test_outcomes_sql.py.
"""

from __future__ import annotations

import math
from datetime import date

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
