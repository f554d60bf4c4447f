"""Real processes: four workers on one account stay within one shared jobs-in-progress limit."""

from __future__ import annotations

import asyncio
from typing import Any

from _redis_server import free_port

CAP = 3
PER_WORKER = 10


async def test_four_workers_never_run_more_jobs_than_the_shared_limit(
    fake_server: Any, start_worker: Any, make_coordinator: Any
) -> None:
    """4 workers x 10 jobs under a shared limit of 3: the fake never runs 4, refuses none."""
    # 50 ms jobs; the fake itself would accept twice the limit, so its peak shows ours.
    fake = await fake_server(
        "--job-duration", "1", "--time-scale", "0.05", "--max-jobs-in-progress", str(2 * CAP)
    )
    ports = [free_port() for _ in range(4)]
    workers = [
        await start_worker(
            f"W{i}", fake, listen=port, cap=CAP,
            # Callbacks end the jobs; polls are only a slow safety net.
            hook_url=f"http://127.0.0.1:{port}/ttapi-hook",
            first_poll=2.0, poll_every=1.0,
        )
        for i, port in enumerate(ports)
    ]  # fmt: skip
    await asyncio.gather(*(w.ready() for w in workers))
    jobs = await asyncio.gather(*(w.submit(PER_WORKER, f"w{i}") for i, w in enumerate(workers)))
    results = await asyncio.gather(*(w.resolved(ids) for w, ids in zip(workers, jobs, strict=True)))
    assert all("url" in e for found in results for e in found.values())
    stats = await fake.stats()
    assert 1 <= stats["peak_in_progress"]["4o-image"] <= CAP
    assert stats["queue_full"].get("4o-image", 0) == 0  # no 499: nobody went over
    assert sum(stats["submissions_by_prompt"].values()) == 4 * PER_WORKER  # none twice
    probe = await make_coordinator()
    client = probe._redis()
    held = [key async for key in client.scan_iter(match=probe.keys.prefix + "leases:*")]
    assert [await client.zcard(key) for key in held] == [0] * len(held)  # none leaked
