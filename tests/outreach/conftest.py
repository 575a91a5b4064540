"""Fixtures for the reference Outreach server's own tests (real HTTP on loopback)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from outreach_helpers import SEED, TOKEN

from outreach_ref import ServiceConfig
from outreach_ref.testing import OutreachServer, run_server


@pytest.fixture(scope="session")
def outreach_session() -> Iterator[OutreachServer]:
    with run_server(ServiceConfig(token=TOKEN, seed=SEED)) as server:
        yield server


@pytest.fixture
def outreach(outreach_session: OutreachServer) -> OutreachServer:
    """The shared server, emptied and back to its configured faults and clock."""
    if not outreach_session.is_running:  # a test may have stopped it
        outreach_session.start()
    outreach_session.reset()
    return outreach_session


@pytest.fixture
def api(outreach: OutreachServer) -> Iterator[httpx.Client]:
    with outreach.client() as c:
        yield c
