"""pytest plugin (entry point ``ttapi_async``): a ``fake_ttapi`` fixture serving FakeTTAPI.

::

    @pytest.mark.fake_ttapi(clock=ManualClock(), job_duration=Duration.fixed(30))
    async def test_job(fake_ttapi):
        async with fake_ttapi.client() as client:
            job = await client.gpt4o.submit(prompt="a cat")
            fake_ttapi.clock.advance(30)
            ...

Settings come from the ``fake_ttapi`` marker's keyword arguments, or from an
indirect parametrisation with a dict (``indirect=["fake_ttapi"]``); the
parametrised values win. The fixture needs pytest-asyncio; without it the
plugin registers only the marker, so installing ttapi_async never breaks a
test suite that does not use the fixture.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from ._fake import FakeTTAPI

__all__ = ["fake_ttapi", "pytest_configure"]


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``fake_ttapi`` marker."""
    config.addinivalue_line(
        "markers",
        "fake_ttapi(**settings): FakeTTAPI keyword arguments for the fake_ttapi fixture",
    )


def _settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for marker in reversed(list(request.node.iter_markers("fake_ttapi"))):
        settings.update(marker.kwargs)
    param = getattr(request, "param", None)
    if isinstance(param, dict):
        settings.update(param)
    return settings


async def _serve(request: pytest.FixtureRequest) -> AsyncIterator[FakeTTAPI]:
    async with FakeTTAPI(**_settings(request)) as fake:
        yield fake


try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - exercised only without pytest-asyncio
    pass
else:

    @pytest_asyncio.fixture
    async def fake_ttapi(request: pytest.FixtureRequest) -> AsyncIterator[FakeTTAPI]:
        """Yield a started FakeTTAPI configured by the ``fake_ttapi`` marker or parameter."""
        async for fake in _serve(request):
            yield fake
