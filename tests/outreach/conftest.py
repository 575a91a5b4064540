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


@pytest.fixture
def shared_api(outreach_session: OutreachServer) -> Iterator[httpx.Client]:
    """A client of the shared server *without* a reset (only the faults go back to the
    config), for tests that store nothing."""
    if not outreach_session.is_running:
        outreach_session.start()
    settings = outreach_session.config.fault_settings()
    settings["fault_routes"] = list(settings["fault_routes"])
    outreach_session.set_faults(**settings)
    with outreach_session.client() as c:
        yield c
