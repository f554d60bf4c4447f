"""A worker process for the multi-process coordination tests; one JSON config argument.

Modes: ``contend`` takes and gives back leases, counting how many it holds at once in a
shared Redis counter; ``hold`` takes leases, records jobs on them, prints ``ready`` and
waits to be killed. Every line it prints is one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from ttapi_async.coordination import LimitSettings, RedisCoordinator

API_KEY = "tt-SECRET-0123456789abcdef-KEY"

# Count leases held at once, and the highest count seen, atomically.
_ENTER = """
local now = redis.call('INCR', KEYS[1])
if now > tonumber(redis.call('GET', KEYS[2]) or '0') then redis.call('SET', KEYS[2], now) end
return now
"""


def say(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


async def contend(config: dict[str, Any], coordinator: RedisCoordinator) -> None:
    client = coordinator._redis()
    cur, peak = f"test:{config['namespace']}:cur", f"test:{config['namespace']}:peak"

    async def one_task(task: int) -> None:
        for i in range(config["rounds"]):
            lease = await coordinator.acquire_lease("4o", timeout=60)
            await client.eval(_ENTER, 2, cur, peak)
            await client.ping()  # hold the lease across a round trip, so holders overlap
            await client.decr(cur)
            if i % 2:
                job = f"{coordinator.worker_id}-{task}-{i}"
                await coordinator.record_submitted(job, kind="gpt4o", product="4o", lease=lease)
                await coordinator.settle(job, status="SUCCESS", answer="{}")
            else:
                await coordinator.release_lease(lease)

    await asyncio.gather(*(one_task(task) for task in range(config["tasks"])))
    say(done=config["rounds"] * config["tasks"])


async def hold(config: dict[str, Any], coordinator: RedisCoordinator) -> None:
    jobs = []
    for i in range(config["jobs"]):
        lease = await coordinator.acquire_lease("4o", timeout=10)
        job = f"{config['name']}-job-{i}"
        await coordinator.record_submitted(job, kind="gpt4o", product="4o", lease=lease)
        jobs.append(job)
    for _ in range(config.get("unbound", 0)):
        await coordinator.acquire_lease("4o", timeout=10)
    await coordinator.heartbeat()
    say(ready=True, worker=coordinator.worker_id, jobs=jobs)
    await asyncio.Event().wait()


async def main(config: dict[str, Any]) -> None:
    skew = float(config.get("skew", 0.0))
    coordinator = RedisCoordinator(
        config["url"],
        namespace=config["namespace"],
        limits=LimitSettings(cap=config["cap"], initial=config["cap"]),
        heartbeat=config.get("heartbeat", 3600.0),
        recheck=config.get("recheck", 0.05),
        # A machine whose wall clock is off by ``skew``: nothing shared may depend on it.
        clock=lambda: time.time() + skew,
    )
    await coordinator.open(API_KEY)
    await coordinator.wait_subscribed()
    try:
        if config["mode"] == "contend":
            await contend(config, coordinator)
        else:
            await hold(config, coordinator)
    finally:
        await coordinator.aclose()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
