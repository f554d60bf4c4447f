"""Real processes: contention for one limit, a SIGKILLed worker's adoption, skewed clocks."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
from _factories import factory

from ttapi_async.coordination import LeaseTimeoutError, LimitSettings

WORKER = str(Path(__file__).with_name("_coord_worker.py"))
PERIOD = 5.0  # seconds per heartbeat; the tests move Redis's clock instead of waiting


class Worker:
    """One worker process, talked to through JSON lines on its stdout."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, **config: Any) -> Worker:
        process = await asyncio.create_subprocess_exec(
            sys.executable, WORKER, json.dumps(config), stdout=asyncio.subprocess.PIPE
        )
        return cls(process)

    async def line(self, timeout: float = 60.0) -> dict[str, Any]:
        assert self.process.stdout is not None
        raw = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        assert raw, f"worker exited with {await self.process.wait()}"
        result: dict[str, Any] = json.loads(raw)
        return result

    async def kill(self) -> None:
        if self.process.returncode is None:
            os.kill(self.process.pid, signal.SIGKILL)
        await asyncio.wait_for(self.process.wait(), 30)


@pytest.fixture
async def workers() -> Any:
    async with factory(Worker.start, Worker.kill) as start:
        yield start


async def _advance(coordinator: Any, seconds: float) -> None:
    await coordinator._redis().incrby(coordinator.keys.clock, round(seconds * 1000))


async def test_four_processes_never_exceed_the_shared_limit(
    redis_server: Any, namespace: str, workers: Any, make_coordinator: Any
) -> None:
    """Four processes of four tasks, 40 leases each, under a limit of 3 never hold more than 3."""
    config = {"url": redis_server.url, "namespace": namespace, "mode": "contend", "cap": 3}
    procs = [await workers(**config, rounds=10, tasks=4) for _ in range(4)]
    results = await asyncio.gather(*(p.line(timeout=120) for p in procs))
    assert results == [{"done": 40}] * 4
    probe = await make_coordinator()
    client = probe._redis()
    peak = int(await client.get(f"test:{namespace}:peak"))
    assert 1 <= peak <= 3
    assert await client.get(f"test:{namespace}:cur") == "0"
    assert await client.zcard(probe.keys("leases", "4o")) == 0  # nothing leaked


async def test_killed_workers_leases_move_to_the_adopter_within_three_beats(
    redis_server: Any, namespace: str, workers: Any, make_coordinator: Any
) -> None:
    """SIGKILL a worker holding 3 job leases: by 3 periods they are the adopter's, never freed."""
    victim = await workers(
        url=redis_server.url, namespace=namespace, mode="hold", cap=5, jobs=3, unbound=1,
        name="victim", heartbeat=PERIOD,
    )  # fmt: skip
    ready = await victim.line()
    adopter = await make_coordinator(limits=LimitSettings(cap=5, initial=5), heartbeat=PERIOD)
    client = adopter._redis()
    leases, owners = adopter.keys("leases", "4o"), adopter.keys("lease-owner", "4o")
    await victim.kill()
    adopted: list[Any] = []
    beats = 0
    while not adopted and beats < 3:
        await _advance(adopter, PERIOD)
        beats += 1
        await adopter.heartbeat()
        adopted = await adopter.sweep()
        # The service still runs those jobs: their capacity is never given away meanwhile.
        assert await client.zcard(leases) >= 3
    assert sorted(r.job_id for r in adopted) == sorted(ready["jobs"])
    assert {r.adopted_from for r in adopted} == {ready["worker"]}
    assert all(r.age is not None and r.age >= 2 * PERIOD for r in adopted)  # its true age
    for job in ready["jobs"]:
        assert await client.hget(owners, job) == adopter.worker_id
        record = await adopter.get_record(job)
        assert record is not None and record.owner == adopter.worker_id
    # Past the lease lifetime the unrenewed unbound lease expires; the adopted ones do not.
    for _ in range(12):
        await _advance(adopter, PERIOD)
        await adopter.heartbeat()
    lease = await adopter.acquire_lease("4o", timeout=0)
    assert sorted(await client.zrange(leases, 0, -1)) == sorted([*ready["jobs"], lease.token])
    await adopter.settle(ready["jobs"][0], status="SUCCESS", answer="{}")
    assert await client.zcard(leases) == 3  # the settled job's lease is free


async def test_clock_skew_between_processes_changes_nothing(
    redis_server: Any, namespace: str, workers: Any, make_coordinator: Any
) -> None:
    """A worker an hour fast and one an hour slow agree on records, liveness and leases."""
    before = None
    fast = await workers(
        url=redis_server.url, namespace=namespace, mode="hold", cap=3, jobs=2, name="fast",
        heartbeat=PERIOD, skew=3600.0,
    )  # fmt: skip
    slow = await make_coordinator(
        limits=LimitSettings(cap=3, initial=3), heartbeat=PERIOD, clock=lambda: -3600.0
    )
    before = await slow.server_time() - 60
    ready = await fast.line()
    after = await slow.server_time()
    for job in ready["jobs"]:
        record = await slow.get_record(job)
        assert record is not None and before <= record.submitted_at <= after
    assert await slow.sweep() == []  # the fast worker is alive, whatever its clock says
    await slow.acquire_lease("4o", timeout=0)
    with pytest.raises(LeaseTimeoutError):
        await slow.acquire_lease("4o", timeout=0)
    await fast.kill()
    await _advance(slow, 3 * PERIOD)
    adopted = await slow.sweep()
    assert sorted(r.job_id for r in adopted) == sorted(ready["jobs"])
    assert all(before <= r.submitted_at <= after for r in adopted)  # true age kept
