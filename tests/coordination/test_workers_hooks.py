"""Real processes: a callback that reaches another worker resolves the owner's await."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
from _redis_server import free_port

# Jobs at the fake last an hour of its time: only the test ends them (``finish``).
NEVER = ("--job-duration", "3600")


def _hook(port: int) -> str:
    return f"http://127.0.0.1:{port}/ttapi-hook"


async def test_a_callback_on_worker_b_resolves_worker_a_after_one_fetch(
    fake_server: Any, start_worker: Any
) -> None:
    """A's jobs call back to B: B makes the one confirming fetch each, A resolves, never polls."""
    fake = await fake_server(*NEVER)
    port_a, port_b = free_port(), free_port()
    # A never polls within the test (first poll after an hour): only B's news can resolve it.
    a = await start_worker("A", fake, listen=port_a, hook_url=_hook(port_b))
    b = await start_worker("B", fake, listen=port_b, hook_url=_hook(port_a))
    await asyncio.gather(a.ready(), b.ready())
    jobs = await a.submit(3, "fox")
    for job in jobs:
        await fake.finish(job)
    resolved = await a.resolved(jobs)
    assert all("url" in event for event in resolved.values()), resolved
    fetches = await fake.fetches()
    assert {job: fetches[job] for job in jobs} == dict.fromkeys(jobs, 1)
    # B's own lines may reach the test after A's: wait for them, then compare.
    claimed = await b.wait(lambda e: e.get("got") is True, count=len(jobs))
    assert {e["claim"] for e in claimed} == set(jobs)  # the fetches were B's confirming ones
    won = await b.wait(lambda e: e.get("won") is True, count=len(jobs))
    assert {e["settle"] for e in won} == set(jobs)
    assert (await a.stats())["fetches"] == 0
    delivered = (await fake.stats())["hooks_delivered"]
    assert {job: delivered.get(job) for job in jobs} == dict.fromkeys(jobs, 1)


async def test_replayed_callbacks_on_every_worker_cost_no_more_fetches(
    fake_server: Any, start_worker: Any
) -> None:
    """A settled job's callback replayed to both workers is accepted and costs no fetch."""
    fake = await fake_server(*NEVER)
    port_a, port_b = free_port(), free_port()
    a = await start_worker("A", fake, listen=port_a, hook_url=_hook(port_b))
    b = await start_worker("B", fake, listen=port_b, hook_url=_hook(port_a))
    await asyncio.gather(a.ready(), b.ready())
    [job] = await a.submit(1, "owl")
    # The hook URL the fake holds carries the token every worker shares.
    view = await fake.job(job)
    token = parse_qs(urlsplit(view["hook_url"]).query)["token"][0]
    await fake.finish(job)
    await a.resolved([job])
    body = {"jobId": job, "status": "SUCCESS", "data": {"imageUrl": "http://127.0.0.1/x.png"}}
    async with aiohttp.ClientSession(trust_env=False) as http:

        async def replay(port: int) -> int:
            url = _hook(port)
            async with http.post(url, params={"token": token}, json=body) as resp:
                return resp.status

        statuses = await asyncio.gather(*(replay(p) for p in (port_a, port_b) * 3))
    assert statuses == [200] * 6  # known and settled: accepted, and nothing more
    assert (await fake.fetches())[job] == 1
    assert len(a.seen(lambda e: e.get("resolved") == job)) == 1
