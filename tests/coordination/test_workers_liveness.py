"""Real processes: a SIGKILLed worker's jobs are adopted, polled and recorded by another."""

from __future__ import annotations

import asyncio
from typing import Any

from _redis_server import free_port

NEVER = ("--job-duration", "3600")
# Beats every half second, dead after four silent beats: a loaded machine's pauses are
# well inside that, and an adoption still takes only seconds of real time.
LIVENESS = {"heartbeat": 0.5, "dead_after": 4}


def _hook(port: int) -> str:
    return f"http://127.0.0.1:{port}/ttapi-hook"


async def test_a_killed_workers_jobs_are_adopted_polled_and_recorded(
    fake_server: Any, start_worker: Any, make_coordinator: Any
) -> None:
    """SIGKILL a worker awaiting 3 jobs: another adopts them, polls them and records the ends."""
    fake = await fake_server(*NEVER)
    port_v, port_w = free_port(), free_port()
    victim = await start_worker("V", fake, listen=port_v, hook_url=_hook(port_v), **LIVENESS)
    adopter = await start_worker(
        "W", fake, listen=port_w, hook_url=_hook(port_w), first_poll=0.2, poll_every=0.2,
        **LIVENESS,
    )  # fmt: skip
    await asyncio.gather(victim.ready(), adopter.ready())
    jobs = await victim.submit(3, "mole", hook=False)  # no callbacks: only polls can end them
    await victim.kill()
    adopted = await adopter.wait(lambda e: bool(e.get("adopted")))
    assert sorted(adopted[0]["adopted"]) == sorted(jobs)
    for job in jobs:
        await fake.finish(job)
    settles = await adopter.wait(lambda e: e.get("settle") in jobs and e["won"], count=3)
    assert {e["settle"] for e in settles} == set(jobs)
    probe = await make_coordinator()
    for job in jobs:
        record = await probe.get_record(job)
        assert record is not None and record.status == "SUCCESS"
        assert record.owner == adopter.worker_id and record.adopted_from == victim.worker_id
    assert sum((await fake.stats())["submissions_by_prompt"].values()) == 3  # none again
