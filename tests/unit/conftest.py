"""The unit tier needs neither Airflow's metadata database nor the warehouse: `make test-fast`
runs it without starting PostgreSQL. A unit test that asks for one of the database fixtures
fails before the fixture starts anything; such a test belongs in tests/db or tests/integration.
"""

from __future__ import annotations

import pytest

DATABASE_FIXTURES = frozenset({"server_url", "warehouse_url", "airflow_db", "upstream_env",
                               "outreach", "reset_warehouse", "module_env"})


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    wanted = sorted(DATABASE_FIXTURES.intersection(getattr(item, "fixturenames", ())))
    if wanted:
        pytest.fail(f"{item.nodeid}: unit tests run without a database, but this one asks for"
                    f" {', '.join(wanted)}; move it to tests/db or tests/integration",
                    pytrace=False)
