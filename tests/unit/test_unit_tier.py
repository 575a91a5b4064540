"""The unit tier stays database-free: its guard (tests/unit/conftest.py) fails a unit test that
asks for a database fixture before that fixture starts anything."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

GUARD = (Path(__file__).parent / "conftest.py").read_text()


def test_a_unit_test_asking_for_the_warehouse_fails_before_it_starts(pytester: pytest.Pytester):
    pytester.makeconftest(GUARD + '''

@pytest.fixture(scope="session")
def warehouse_url(tmp_path_factory):
    (tmp_path_factory.getbasetemp().parent / "started").touch()
    return "postgresql://never"


@pytest.fixture
def upstream_env(warehouse_url):
    return None
''')
    pytester.makepyfile(test_sample='''
def test_pure():
    assert 1 + 1 == 2


def test_wants_settings(upstream_env):
    pass


def test_nothing_was_started(tmp_path_factory):
    assert not (tmp_path_factory.getbasetemp().parent / "started").exists()
''')
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*unit tests run without a database, but this one asks for"
                                 " upstream_env, warehouse_url; move it to tests/db*"])
