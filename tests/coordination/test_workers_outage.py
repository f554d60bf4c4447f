"""Real processes: Redis SIGKILLed mid-run loses no job, submits nothing twice, and resyncs."""

from __future__ import annotations

import asyncio
from typing import Any

from _redis_server import free_port

NEVER = ("--job-duration", "3600")


def _unreachable(event: dict[str, Any]) -> bool:
    return event.get("log") == "WARNING" and "unreachable" in event.get("msg", "")


def _back(event: dict[str, Any]) -> bool:
    return "reachable again" in event.get("msg", "")


async def test_redis_killed_mid_run_every_job_settles_and_resyncs(
    fake_server: Any, start_worker: Any, own_redis: Any, make_coordinator: Any
) -> None:
    """Kill Redis with jobs pending: they settle by polls, one warning; its return resyncs."""
    fake = await fake_server(*NEVER)
    port_a, port_b = free_port(), free_port()
    common = {
        "redis": own_redis.url,
        # Beats often (Redis's return is found by a beat) but is never declared dead meanwhile.
        "heartbeat": 0.5,
        "dead_after": 40,
        "first_poll": 0.3,
        "poll_every": 0.3,
    }
    # A's callbacks reach B: while Redis is away B cannot route them, and A's polls do.
    worker = await start_worker(
        "A", fake, listen=port_a, hook_url=f"http://127.0.0.1:{port_b}/ttapi-hook", **common
    )
    other = await start_worker(
        "B", fake, listen=port_b, hook_url=f"http://127.0.0.1:{port_a}/ttapi-hook", **common
    )
    await asyncio.gather(worker.ready(), other.ready())
    before = await worker.submit(4, "seal")
    own_redis.kill()  # SIGKILL, persistence off: everything in it is gone
    await worker.wait(_unreachable)
    for job in before[:2]:
        await fake.finish(job)
    await worker.resolved(before[:2])
    during = await worker.submit(2, "crab")  # submits go on, within the local share
    own_redis.start()  # the same port and password, empty
    await worker.wait(_back)
    for job in before[2:] + during:
        await fake.finish(job)
    resolved = await worker.resolved(before + during)
    assert all("url" in event for event in resolved.values()), resolved
    assert len(worker.seen(_unreachable)) == 1  # one warning for the whole outage
    stats = await fake.stats()
    assert len(stats["submissions_by_prompt"]) == 6
    assert set(stats["submissions_by_prompt"].values()) == {1}  # nothing submitted twice
    # The returned Redis holds what happened during and after the outage (the outbox).
    probe = await make_coordinator(url=own_redis.url)
    for job in before[:2] + during:
        record = await probe.get_record(job)
        assert record is not None and record.status == "SUCCESS", (job, record)
    for job in during:
        record = await probe.get_record(job)
        assert record is not None and record.owner == worker.worker_id
    await other.wait(_back)
    for events in (worker.events, other.events):
        assert own_redis.password not in repr(events)  # never in a log line
