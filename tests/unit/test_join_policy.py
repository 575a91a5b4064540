"""The history merge's join choice (upstream.ingest.merge.join_policy) at its boundaries."""

from __future__ import annotations

import pytest

from upstream.ingest.merge import JoinPolicy, join_policy


@pytest.mark.parametrize(("affected", "stored", "expected"), [
    # a first large segment into an empty or never-analysed core: hash anti-join for new calls
    (30_000, -1, JoinPolicy(large=True)),
    (30_000, 0, JoinPolicy(large=True)),
    (10_001, 40_003, JoinPolicy(large=True)),
    # small beside what is stored: index probes only, statistics after the import
    (10_001, 40_004, JoinPolicy(index_probes=True)),
    (200_000, 10_000_000, JoinPolicy(index_probes=True)),
    (55, 220, JoinPolicy(index_probes=True)),
    # small segments into a small core: the planner decides, statistics inside the merge
    (10_000, 0, JoinPolicy()),
    (55, 219, JoinPolicy()),
    (55, -1, JoinPolicy()),
])
def test_join_policy(affected: int, stored: float, expected: JoinPolicy) -> None:
    assert join_policy(affected, stored) == expected
