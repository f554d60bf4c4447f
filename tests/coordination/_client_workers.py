"""Two clients of one fake and one account, each with its own RedisCoordinator (two workers)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import tenacity
from _redis_server import RedisServer
from aiohttp import web

from ttapi_async import AsyncTTAPI, PollSchedule
from ttapi_async.testing import FakeTTAPI
from ttapi_async.webhooks import WebhookReceiver

#: A's own polls come only after ten minutes: whatever resolves its job sooner is B's doing.
SLOW = PollSchedule(first_delay=600.0, wait=tenacity.wait_fixed(600.0), learn=False)
#: The workers' beat period; tests move Redis's clock instead of waiting for beats.
PERIOD = 60.0


class Workers:
    """Two clients of one fake and one account, each with its own RedisCoordinator."""

    def __init__(
        self, a: AsyncTTAPI, b: AsyncTTAPI, hook_a: WebhookReceiver, hook_b: WebhookReceiver
    ) -> None:
        self.a, self.b = a, b
        self.hook_a, self.hook_b = hook_a, hook_b


@pytest.fixture
async def workers(
    fake_ttapi: FakeTTAPI, redis_server: RedisServer, namespace: str
) -> AsyncIterator[Workers]:
    """Two workers whose receivers share one URL, served by B's on a loopback port."""
    from ttapi_async.coordination import RedisCoordinator

    probe = web.AppRunner(web.Application(), access_log=None)
    await probe.setup()
    await web.TCPSite(probe, "127.0.0.1", 0).start()
    port = probe.addresses[0][1]
    await probe.cleanup()
    public = f"http://127.0.0.1:{port}/ttapi-hook"
    clients = []
    for _ in range(2):
        coordinator = RedisCoordinator(redis_server.url, namespace=namespace, heartbeat=PERIOD)
        client = fake_ttapi.client(coordinator=coordinator)
        client.watcher.configure(schedule=SLOW, max_per_second=None)
        clients.append(client)
    a, b = clients
    hook_a = WebhookReceiver(a, public_url=public)
    hook_b = WebhookReceiver(b, public_url=public)
    app = web.Application()
    hook_b.add_routes(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        for client in clients:
            await client.open_coordinator()
            await client.coordinator.wait_subscribed()  # type: ignore[attr-defined]
        yield Workers(a, b, hook_a, hook_b)
    finally:
        for client in clients:
            await client.aclose()
        await runner.cleanup()


async def advance_redis(client: AsyncTTAPI, seconds: float) -> None:
    """Move the namespace's Redis clock forward (every worker on it sees the same time)."""
    coordinator = client.coordinator
    await coordinator._redis().incrby(  # type: ignore[attr-defined]
        coordinator.keys.clock,  # type: ignore[attr-defined]
        round(seconds * 1000),
    )
