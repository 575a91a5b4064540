"""Fixtures of the bad-input catalogue: one warehouse state per module, one good baseline day."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.bad_inputs import (
    AGENCY,
    BASE_DAY,
    Env,
    assert_stored_exactly,
    baseline_rows,
    connect,
    load,
    truncate_warehouse,
    write_rows,
)

from upstream.ingest import LoadResult


@pytest.fixture(scope="module")
def env(module_env, warehouse_url: str) -> Iterator[Env]:
    """One warehouse state for the module (emptied once), an empty landing area, default limits."""
    with module_env("bad-inputs", key="bad-inputs-pseudonym-key", agencies=AGENCY, reset=False,
                    unset=("UPSTREAM_QUARANTINE_MAX_SHARE", "UPSTREAM_QUARANTINE_WARN_SHARE")
                    ) as settings:
        truncate_warehouse(warehouse_url)  # every table, later migrations' too
        assert settings.validate.quarantine_max_share == 0.05
        yield Env(settings, warehouse_url, settings.validate.gx_dir)


@pytest.fixture(scope="module")
def baseline(env: Env) -> LoadResult:
    rows = baseline_rows()
    write_rows(env.settings, BASE_DAY, rows)
    result = load(env, BASE_DAY)
    assert (result.outcome, result.rows_loaded, result.rows_quarantined) == ("loaded", 6, 0)
    with connect(env) as conn:
        assert_stored_exactly(conn, rows, result.file_id, BASE_DAY)
    return result

