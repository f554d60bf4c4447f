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
parametrised values win. The fixture needs pytest-asyncio; without it a test
that asks for the fixture fails with what to install, and a suite that does not
use it is untouched.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from ._fake import FakeTTAPI

__all__ = ["MISSING_PYTEST_ASYNCIO", "fake_ttapi", "pytest_configure"]


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


#: What a test that asks for the fixture is told when pytest-asyncio is missing.
MISSING_PYTEST_ASYNCIO = (
    "the fake_ttapi fixture needs pytest-asyncio: pip install pytest-asyncio, then set "
    'asyncio_mode = "auto" under [tool.pytest.ini_options] (or mark each test '
    "@pytest.mark.asyncio)"
)

try:
    import pytest_asyncio
except ImportError:  # exercised in a subprocess: tests/test_readme_project.py

    @pytest.fixture(name="fake_ttapi")
    def _fake_ttapi_needs_pytest_asyncio(request: pytest.FixtureRequest) -> FakeTTAPI:
        """Fail the test with what is missing (instead of "fixture 'fake_ttapi' not found")."""
        pytest.fail(MISSING_PYTEST_ASYNCIO, pytrace=False)
else:

    @pytest_asyncio.fixture
    async def fake_ttapi(request: pytest.FixtureRequest) -> AsyncIterator[FakeTTAPI]:
        """Yield a started FakeTTAPI configured by the ``fake_ttapi`` marker or parameter."""
        async for fake in _serve(request):
            yield fake
