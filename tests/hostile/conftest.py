"""Fixtures of the hostile-server tests: the server, and clients pointed at it.

``hostile`` is a started :class:`~hostile.server.HostileServer`; register what a path does
with ``hostile.on(path, behaviour)``, then assert on ``hostile.requests``. ``hostile_client``
is an ``AsyncTTAPI`` of it; ``make_hostile_client(**options)`` builds more (closed after the
test). Backoff is off for every test (``tests/conftest.py``), so retries never sleep.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from _support import API_KEY

from hostile.server import HostileServer
from ttapi_async import AsyncTTAPI

ClientFactory = Callable[..., AsyncTTAPI]


@pytest.fixture
async def hostile() -> AsyncIterator[HostileServer]:
    """Yield a started hostile server on 127.0.0.1; close it (and its connections) after."""
    server = HostileServer()
    await server.start()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
async def make_hostile_client(hostile: HostileServer) -> AsyncIterator[ClientFactory]:
    """Yield a factory of clients of the hostile server (``API_KEY``), each closed after."""
    made: list[AsyncTTAPI] = []

    def make(**options: Any) -> AsyncTTAPI:
        options.setdefault("api_key", API_KEY)
        options.setdefault("base_url", hostile.url)
        client = AsyncTTAPI(**options)
        made.append(client)
        return client

    try:
        yield make
    finally:
        for client in made:
            await client.aclose()


@pytest.fixture
def hostile_client(make_hostile_client: ClientFactory) -> AsyncTTAPI:
    """Return a client of the hostile server with default settings (and no backoff)."""
    return make_hostile_client()
