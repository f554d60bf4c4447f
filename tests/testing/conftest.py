"""Fixtures of the fake's tests; the ``fake_ttapi`` fixture itself comes from our pytest plugin."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from ttapi_async.testing import FakeTTAPI


@pytest.fixture
async def session(fake_ttapi: FakeTTAPI) -> AsyncIterator[aiohttp.ClientSession]:
    """Yield a bare aiohttp session that sends the fake's key as TT-API-KEY."""
    async with aiohttp.ClientSession(headers={"TT-API-KEY": fake_ttapi.api_key}) as s:
        yield s


@pytest.fixture
async def anon() -> AsyncIterator[aiohttp.ClientSession]:
    """Yield a bare aiohttp session that sends no key."""
    async with aiohttp.ClientSession() as s:
        yield s
