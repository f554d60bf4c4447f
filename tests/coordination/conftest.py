"""Fixtures of the coordination tests: a real redis-server, coordinators on unique namespaces."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _factories import factory, fake_servers
from _redis_server import RedisServer, require_redis

from ttapi_async.coordination import Fallback, JobRecord

API_KEY = "tt-SECRET-0123456789abcdef-KEY"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """Run one redis-server for the session (tests use their own namespaces)."""
    binary = require_redis()
    server = RedisServer(binary, tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.kill()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """Run a redis-server for one test, which may stop and restart it."""
    binary = require_redis()
    server = RedisServer(binary, tmp_path, password="hunter2-SECRET-pw")
    server.start()
    yield server
    server.kill()


@pytest.fixture
def namespace() -> str:
    """Return a namespace no other test uses."""
    return "t" + secrets.token_hex(6)


class Recorder:
    """A CoordinatorListener that writes down what it was told."""

    def __init__(self) -> None:
        self.settled: list[JobRecord] = []
        self.adopted: list[JobRecord] = []
        self.lost: list[str] = []
        self.fallbacks: list[Fallback] = []
        self.resyncs = 0
        self.on_settled: Callable[[JobRecord], Any] | None = None

    def job_settled(self, record: JobRecord) -> None:
        self.settled.append(record)
        if self.on_settled is not None:
            self.on_settled(record)

    def jobs_adopted(self, records: list[JobRecord]) -> None:
        self.adopted.extend(records)

    def jobs_lost(self, job_ids: list[str]) -> None:
        self.lost.extend(job_ids)

    def fallback_started(self, fallback: Fallback) -> None:
        self.fallbacks.append(fallback)

    def resynced(self) -> None:
        self.resyncs += 1


@pytest.fixture
async def make_coordinator(
    redis_server: RedisServer, namespace: str
) -> AsyncIterator[Callable[..., Any]]:
    """Return an async factory of open RedisCoordinators (closed after the test)."""
    from ttapi_async.coordination import RedisCoordinator

    async def make(
        listener: Recorder | None = None, *, url: str | None = None, **kwargs: Any
    ) -> RedisCoordinator:
        kwargs.setdefault("heartbeat", 3600.0)  # tests beat by hand unless they ask
        coordinator = RedisCoordinator(url or redis_server.url, namespace=namespace, **kwargs)
        await coordinator.open(API_KEY, listener)
        await coordinator.wait_subscribed()
        return coordinator

    async with factory(make, RedisCoordinator.aclose) as start:
        yield start


# --- the multi-process client tests (test_workers_*): a fake-server process, worker processes


@pytest.fixture
async def fake_server() -> AsyncIterator[Callable[..., Any]]:
    """Return an async factory of ``ttapi fake-server`` processes (killed after the test)."""
    async with fake_servers(API_KEY) as start:
        yield start


@pytest.fixture
async def start_worker(
    redis_server: RedisServer, namespace: str
) -> AsyncIterator[Callable[..., Any]]:
    """Return an async factory of client worker processes (closed, then killed, after the test).

    ``start_worker(name, fake, listen=port, hook_url=url, **config)``; the Redis URL and
    the namespace default to the session's server and the test's namespace.
    """
    from _workers import ClientWorker

    async def start(name: str, fake: Any, **config: Any) -> ClientWorker:
        config.setdefault("redis", redis_server.url)
        config.setdefault("namespace", namespace)
        return await ClientWorker.start(name, base_url=fake.url, api_key=fake.api_key, **config)

    async with factory(start, ClientWorker.kill) as make:
        yield make
