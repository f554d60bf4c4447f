"""Fixtures of the shared-batch tests: real redis-servers (the coordination tests' helper),
FakeTTAPI clients with RedisCoordinators on a namespace of their own."""

from __future__ import annotations

import secrets
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# The coordination tests' redis-server and fake-server helpers, reused as they are (and
# tests/_factories.py, the factory fixtures' shape both folders share).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "coordination"))

from _factories import factory, fake_servers
from _redis_server import RedisServer, require_redis

API_KEY = "tt-SECRET-batch-0123456789-KEY"

#: The append-only file on, every write fsynced: what a shared batch asks of Redis.
DURABLE = ("--appendonly", "yes", "--appendfsync", "always", "--appenddirname", "aof")


@pytest.fixture(scope="session")
def batch_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """Run one redis-server (persistence off) for the session; tests use their own names."""
    binary = require_redis()
    server = RedisServer(binary, tmp_path_factory.mktemp("batch-redis"))
    server.start()
    yield server
    server.kill()


@pytest.fixture
def durable_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """Run a redis-server that fsyncs every write, for one test (which may restart it)."""
    binary = require_redis()
    folder = tmp_path / "redis"
    folder.mkdir()
    server = RedisServer(binary, folder, extra_args=DURABLE)
    server.start()
    yield server
    server.kill()


@pytest.fixture
def namespace() -> str:
    """Return a namespace no other test uses."""
    return "b" + secrets.token_hex(6)


@pytest.fixture
async def shared_clients(
    batch_redis: RedisServer, namespace: str
) -> AsyncIterator[Callable[..., Any]]:
    """Return a factory of FakeTTAPI clients, each with its own RedisCoordinator.

    The coordinator beats rarely (as in the coordination tests): a close that lands while
    its heartbeat is in a Redis call can lose the cancel and hang (reported with issue 11);
    the batch's own heartbeat is set per runner (``ttl``).
    """
    from ttapi_async._schedule import PollSchedule
    from ttapi_async.coordination import RedisCoordinator

    async def make(fake: Any, *, url: str | None = None, **coord: Any) -> Any:
        coord.setdefault("heartbeat", 3600.0)
        coordinator = RedisCoordinator(url or batch_redis.url, namespace=namespace, **coord)
        client = fake.client(coordinator=coordinator)
        await client.__aenter__()
        client.watcher.configure(
            schedule=PollSchedule().scaled(fake.time_scale), max_per_second=None
        )
        return client

    async with factory(make, lambda client: client.__aexit__(None, None, None)) as start:
        yield start


@pytest.fixture
async def fake_server() -> AsyncIterator[Callable[..., Any]]:
    """Return an async factory of ``ttapi fake-server`` processes (killed after the test)."""
    async with fake_servers(API_KEY) as start:
        yield start


@pytest.fixture
async def runner_procs() -> AsyncIterator[Callable[..., Any]]:
    """Return an async factory of shared-batch runner processes (killed after the test)."""
    from _procs import RunnerProcess

    async with factory(RunnerProcess.start, RunnerProcess.kill) as start:
        yield start


async def batch_states(url: str, namespace: str, name: str) -> dict[str, dict[str, str]]:
    """Return every item of a shared batch as Redis holds it (id -> its hash)."""
    import redis.asyncio as aioredis

    from ttapi_async.coordination import account_id

    base = f"ttapi:{{{namespace}.{account_id(API_KEY)}}}:batch:{name}"
    client = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        ids = await client.lrange(f"{base}:ids", 0, -1)
        pipe = client.pipeline(transaction=False)
        for item_id in ids:
            pipe.hgetall(f"{base}:item:{item_id}")
        return dict(zip(ids, await pipe.execute(), strict=True))
    finally:
        await client.aclose()
