"""Factory fixtures' one shape: start things for a test, stop every one after it.

Shared by the coordination and the shared-batch tests (both folders have a module called
``conftest``, so the shared part lives here, under a name of its own). A fixture yields
from ``factory(start, stop)``; ``fake_servers(api_key)`` is the ``ttapi fake-server``
processes' factory both use.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


@contextlib.asynccontextmanager
async def factory(
    start: Callable[..., Awaitable[T]], stop: Callable[[T], Awaitable[Any]]
) -> AsyncIterator[Callable[..., Awaitable[T]]]:
    """Yield ``start`` that remembers what it made; on exit, ``stop`` each, in order."""
    made: list[T] = []

    async def make(*args: Any, **kwargs: Any) -> T:
        thing = await start(*args, **kwargs)
        made.append(thing)
        return thing

    try:
        yield make
    finally:
        for thing in made:
            await stop(thing)


def fake_servers(api_key: str) -> contextlib.AbstractAsyncContextManager[Callable[..., Any]]:
    """Return the factory of ``ttapi fake-server`` processes with ``api_key`` (killed after)."""
    from _fake_process import FakeProcess  # tests/coordination, on the path of both users

    async def start(*args: str) -> FakeProcess:
        return await FakeProcess.start("--api-key", api_key, *args)

    return factory(start, FakeProcess.stop)
