"""Fixtures shared by the tests that drive jobs through FakeTTAPI on a manual clock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ttapi_async import AsyncTTAPI
from ttapi_async.testing import FakeTTAPI, ManualClock


@pytest.fixture
def clock(fake_ttapi: FakeTTAPI) -> ManualClock:
    """Return the fake's manual clock."""
    assert isinstance(fake_ttapi.clock, ManualClock)
    return fake_ttapi.clock


@pytest.fixture
async def client(fake_ttapi: FakeTTAPI, clock: ManualClock) -> AsyncIterator[AsyncTTAPI]:
    """Yield a client of the fake whose watcher runs on the fake's clock, uncapped."""
    async with fake_ttapi.client() as client:
        client.watcher.configure(clock=clock, max_per_second=None)
        yield client


def requests_to(fake: FakeTTAPI, endpoint: str) -> int:
    """Return how many requests the fake answered on ``endpoint`` ("METHOD /path")."""
    return sum(fake.stats().by_endpoint.get(endpoint, {}).values())
