"""Real processes: a SIGKILLed worker's jobs are finished by another; skewed clocks agree."""

from __future__ import annotations

import asyncio
from typing import Any

from _redis_server import free_port

NEVER = ("--job-duration", "3600")
# Beats every half second, dead after four silent beats: a loaded machine's pauses are
# well inside that, and an adoption still takes only seconds of real time.
LIVENESS = {"heartbeat": 0.5, "dead_after": 4}
HOUR = 3600.0


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


async def test_clock_skew_between_workers_changes_nothing(
    fake_server: Any, start_worker: Any, make_coordinator: Any
) -> None:
    """Workers an hour fast and an hour slow: callbacks resolve, nobody is declared dead early."""
    fake = await fake_server(*NEVER)
    port_f, port_s = free_port(), free_port()
    fast = await start_worker(
        "fast", fake, listen=port_f, hook_url=_hook(port_s), skew=HOUR, **LIVENESS
    )
    slow = await start_worker(
        "slow", fake, listen=port_s, hook_url=_hook(port_f), skew=-HOUR, first_poll=0.2,
        poll_every=0.2, **LIVENESS,
    )  # fmt: skip
    await asyncio.gather(fast.ready(), slow.ready())
    probe = await make_coordinator()
    before = await probe.server_time()
    first = await fast.submit(2, "lynx")
    for job in first:
        await fake.finish(job)
    await fast.resolved(first)  # through the slow worker's confirming fetch
    assert {e["claim"] for e in slow.seen(lambda e: e.get("got") is True)} == set(first)
    kept = await fast.submit(2, "hare")
    # Three of the slow worker's sweeps see the fast one alive, whatever its clock says.
    swept = len(slow.seen(lambda e: "swept" in e))
    await slow.wait(lambda e: "swept" in e, count=swept + 3)
    assert not [e for e in slow.seen(lambda e: bool(e.get("adopted")))]
    after = await probe.server_time()
    for job in first + kept:
        record = await probe.get_record(job)
        assert record is not None and before <= record.submitted_at <= after
    await fast.kill()
    adopted = (await slow.wait(lambda e: bool(e.get("adopted"))))[0]
    assert sorted(adopted["adopted"]) == sorted(kept)
    # Their true age, on Redis's clock: seconds, not the hours the two clocks disagree by.
    assert all(0 <= age < 600 for age in adopted["ages"])
