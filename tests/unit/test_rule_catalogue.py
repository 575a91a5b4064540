"""The row-rule catalogue (upstream.rules), pure Python. Its SQL (the predicates on a typed
table, the parsing and HMAC functions) is tested in tests/db/test_rules_sql.py.
"""

from __future__ import annotations

import re

import pytest

from upstream.contract import COLUMNS, ENUMS, REQUIRED_COLUMNS
from upstream.rules import RULES, RULES_BY_NAME

# ---------------------------------------------------------------------------------------------
# The catalogue


def test_rule_names_are_unique_and_indexed() -> None:
    names = [r.name for r in RULES]
    assert len(names) == len(set(names))
    assert set(RULES_BY_NAME) == set(names)
    assert all(RULES_BY_NAME[r.name] is r for r in RULES)


def test_rule_names_follow_column_dot_check() -> None:
    for r in RULES:
        assert re.fullmatch(r"[a-z_0-9]+\.[a-z_0-9]+", r.name), r.name
        assert r.name.split(".")[0] == r.column, r.name
        assert r.column in COLUMNS, r.name
        assert r.description and r.failing


@pytest.mark.parametrize("column", list(COLUMNS))
def test_every_contract_column_has_a_max_length_rule(column: str) -> None:
    rule = RULES_BY_NAME[f"{column}.max_length"]
    assert rule.column == column
    assert rule.failing == f"length({column}) > {COLUMNS[column][1]}"


@pytest.mark.parametrize("column", list(ENUMS))
def test_every_enum_column_has_an_enum_rule(column: str) -> None:
    rule = RULES_BY_NAME[f"{column}.enum"]
    assert rule.column == column
    listed = re.findall(r"'([^']*)'", rule.failing)
    assert listed == list(ENUMS[column])
    assert rule.failing.startswith(f"{column} IS NOT NULL AND {column} NOT IN (")


def test_enum_columns_are_contract_columns() -> None:
    assert set(ENUMS) <= set(COLUMNS)


@pytest.mark.parametrize("column", REQUIRED_COLUMNS)
def test_every_required_column_has_a_required_rule(column: str) -> None:
    assert RULES_BY_NAME[f"{column}.required"].failing == f"{column} IS NULL"


def test_only_required_columns_have_required_rules() -> None:
    assert {r.column for r in RULES if r.name.endswith(".required")} == set(REQUIRED_COLUMNS)


def test_predicates_carry_no_file_values() -> None:
    """Predicates are code: the only file-specific values are typed-table columns."""
    for r in RULES:
        assert "%" not in r.failing and ";" not in r.failing, r.name
        assert "{" not in r.failing, r.name
