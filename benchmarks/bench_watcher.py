"""Benchmark the JobWatcher against the peers' polling strategies (issue 4).

Run: ``python benchmarks/bench_watcher.py [--quick] [--out benchmarks/results/watcher.md]``

Three parts, one run (bounded to a few minutes):

1. **Virtual clock, 10,000 and 100,000 pending jobs.** The service is an in-process
   fetch function reading a ``ManualClock``; the benchmark jumps the clock to the next
   due poll (at least 10 ms at a time) and lets the watcher run. Job durations are
   lognormal, median 40 s, sigma 0.35 (FakeTTAPI's default), in service seconds: with a
   virtual clock no time scaling is needed and every figure is exact. The learned
   schedule starts from 512 durations restored with ``record_duration`` (what
   ``durations()`` saves from an earlier run); a "cold" row shows the same batch with
   nothing learned (and, for robustness, a cold start on other distributions: median
   10 s and 120 s, and a bimodal mix). Fixed 0.5 s and 6 s polling (replicate's and
   runwayml's intervals) are computed exactly on the same durations: polls at k x
   interval.
2. **Real loop, time-scaled (x0.2), 10,000 jobs.** Scheduler CPU per poll (process
   CPU time over polls, the in-process fetch included) for the watcher and for one
   asyncio task per job sleeping 0.5 s (scaled) between polls; memory per pending job
   with tracemalloc (job ids allocated beforehand: they are the caller's).
3. **Real sockets against FakeTTAPI** (time scale 0.25, 500 jobs): fetches per job and
   detection delay through HTTP.

Detection delay is the time from a job's end to its future resolving (in the virtual
run, the poll that saw SUCCESS resolves the future in the same step).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import math
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from ttapi_async import JobStatus, JobWatcher, PollSchedule
from ttapi_async._models import JobData
from ttapi_async.testing import Duration, FakeTTAPI, ManualClock

MEDIAN = 40.0
SIGMA = 0.35
KEY = "gpt4o"


#: Other duration distributions for the cold-start robustness rows: (label, modes), each
#: mode (share, median, sigma) of a lognormal mixture.
OTHER_DURATIONS: list[tuple[str, list[tuple[float, float, float]]]] = [
    ("lognormal, median 10 s", [(1.0, 10.0, SIGMA)]),
    ("lognormal, median 120 s", [(1.0, 120.0, SIGMA)]),
    (
        "bimodal: 30% median 15 s, 70% median 90 s (sigma 0.25)",
        [(0.3, 15.0, 0.25), (0.7, 90.0, 0.25)],
    ),
]


def durations(
    n: int, seed: int, modes: list[tuple[float, float, float]] | None = None
) -> list[float]:
    rng = random.Random(seed)
    if modes is None:
        return [rng.lognormvariate(math.log(MEDIAN), SIGMA) for _ in range(n)]
    out = []
    for _ in range(n):
        u = rng.random()
        for share, median, sigma in modes:
            u -= share
            if u < 0 or (share, median, sigma) == modes[-1]:
                out.append(rng.lognormvariate(math.log(median), sigma))
                break
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Row:
    def __init__(
        self,
        name: str,
        jobs: int,
        fetches: float,
        delays: list[float],
        rel: list[float],
        cpu_us: float | None = None,
        mem: float | None = None,
        note: str = "",
    ) -> None:
        self.name = name
        self.jobs = jobs
        self.fetches = fetches
        self.p50 = pct(delays, 0.5)
        self.p99 = pct(delays, 0.99)
        self.r50 = pct(rel, 0.5)
        self.r99 = pct(rel, 0.99)
        self.cpu_us = cpu_us
        self.mem = mem
        self.note = note

    def md(self, base: float | None) -> str:
        ratio = f"{base / self.fetches:.1f}x" if base else ""
        cpu = f"{self.cpu_us:.1f}" if self.cpu_us is not None else "-"
        mem = f"{self.mem:.0f}" if self.mem is not None else "-"
        return (
            f"| {self.name} | {self.jobs:,} | {self.fetches:.2f} | {ratio} | {self.p50:.2f} s | "
            f"{self.p99:.2f} s | {self.r50:.1%} | {self.r99:.1%} | {cpu} | {mem} | {self.note} |"
        )


HEADER = (
    "| strategy | jobs | fetches/job | fewer than 0.5 s | delay p50 | delay p99 | "
    "p50 / duration | p99 / duration | CPU us/poll | bytes/job | note |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|"
)


def fixed_row(name: str, interval: float, ds: list[float]) -> Row:
    fetches = [math.ceil(d / interval) for d in ds]
    delays = [k * interval - d for k, d in zip(fetches, ds, strict=True)]
    rel = [x / d for x, d in zip(delays, ds, strict=True)]
    return Row(name, len(ds), statistics.fmean(fetches), delays, rel, note="exact")


# --- part 1: virtual clock -----------------------------------------------------------------


class VirtualService:
    """Answer fetches from job end times on a manual clock; record detection times."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.ends: dict[str, float] = {}
        self.detected: dict[str, float] = {}
        self.fetches = 0
        self._pending: dict[str, JobStatus] = {}

    async def fetch(self, job_id: str) -> JobStatus:
        self.fetches += 1
        now = self.clock()
        if now < self.ends[job_id]:
            status = self._pending.get(job_id)
            if status is None:
                status = self._pending[job_id] = JobStatus(job_id=job_id, status="ON_QUEUE")
            return status
        self._pending.pop(job_id, None)
        self.detected[job_id] = now
        data = JobData(image_url="https://cdn.example/x.png", quota=2)
        return JobStatus(job_id=job_id, status="SUCCESS", data=data)


async def drive(watcher: JobWatcher, clock: ManualClock, until: Callable[[], bool]) -> None:
    """Jump the clock from due time to due time (10 ms at least) until ``until()``."""
    while not until():
        due = watcher.next_due()
        if due is None:
            await watcher.idle()
            if until():
                return
            due = clock() + 0.01
        clock.advance(max(due - clock(), 0.01))
        await watcher.idle()


async def virtual_run(
    n: int, *, warm: bool, seed: int, modes: list[tuple[float, float, float]] | None = None
) -> Row:
    clock = ManualClock()
    service = VirtualService(clock)
    watcher = JobWatcher(fetch=service.fetch, clock=clock, max_per_second=None, max_in_flight=256)
    async with watcher:
        if warm:
            # What an earlier run learned (saved with durations(), restored here).
            for d in durations(512, seed + 1):
                watcher.record_duration(KEY, d)
        ds = durations(n, seed, modes)
        start = clock()
        ids = [f"j{i}" for i in range(n)]
        for job_id, d in zip(ids, ds, strict=True):
            service.ends[job_id] = start + d
        service.fetches = 0
        cpu0 = time.process_time()
        jobs = [watcher.watch(job_id, key=KEY) for job_id in ids]
        await drive(watcher, clock, lambda: len(watcher) == 0)
        cpu = time.process_time() - cpu0
        errors = sum(1 for j in jobs if j.exception() is not None)
        assert errors == 0, f"{errors} jobs failed"
    delays = [service.detected[i] - service.ends[i] for i in ids]
    rel = [x / d for x, d in zip(delays, ds, strict=True)]
    return Row(
        "JobWatcher, learned" if warm else "JobWatcher, cold start",
        n,
        service.fetches / n,
        delays,
        rel,
        cpu_us=cpu / service.fetches * 1e6,
        note="virtual clock; CPU includes the simulated service and driver",
    )


# --- part 2: real loop, time-scaled ----------------------------------------------------------


def measure_memory(n: int, make: Callable[[list[str]], object]) -> float:
    ids = [f"{i:08d}-0000-4000-8000-000000000000" for i in range(n)]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    keep = make(ids)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    used = sum(s.size_diff for s in after.compare_to(before, "filename"))
    del keep
    return used / n


async def memory_rows(n: int) -> tuple[float, float, float]:
    async def never(job_id: str) -> JobStatus:
        raise AssertionError("not polled in this measurement")

    clock = ManualClock()
    watcher = JobWatcher(fetch=never, clock=clock)

    def watch_all(ids: list[str]) -> object:
        return [watcher.watch(i) for i in ids]

    plain = measure_memory(n, watch_all)
    await watcher.aclose()

    watcher2 = JobWatcher(fetch=never, clock=ManualClock())
    jobs2: list[asyncio.Task[object]] = []

    def watch_and_wait(ids: list[str]) -> object:
        loop = asyncio.get_running_loop()
        for i in ids:
            job = watcher2.watch(i)
            jobs2.append(loop.create_task(job.wait()))
        return jobs2

    # The awaiting task is the caller's; the future inside the job is ours.
    with_waiter = measure_memory(n, watch_and_wait)
    await asyncio.sleep(0)
    await watcher2.aclose()
    await asyncio.gather(*jobs2, return_exceptions=True)

    never_set = asyncio.Event()

    async def peer(job_id: str) -> None:
        # What a polling task holds while it sleeps: its frame, a timer, a future.
        await asyncio.sleep(3600)
        await never_set.wait()

    tasks: list[asyncio.Task[None]] = []

    def spawn(ids: list[str]) -> object:
        loop = asyncio.get_running_loop()
        tasks.extend(loop.create_task(peer(i)) for i in ids)
        return tasks

    per_task = measure_memory(n, spawn)
    await asyncio.sleep(0)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return plain, with_waiter, per_task


def service_cost_us(n: int = 50_000) -> float:
    """Return the CPU cost of one call of the simulated service alone, in microseconds."""
    service = RealService()
    service.ends = {"x": math.inf}
    started = time.process_time()
    for _ in range(n):
        coro = service.fetch("x")
        with contextlib.suppress(StopIteration):
            coro.send(None)
    return (time.process_time() - started) / n * 1e6


class RealService:
    """Answer fetches from end times on the real monotonic clock."""

    def __init__(self) -> None:
        self.ends: dict[str, float] = {}
        self.detected: dict[str, float] = {}
        self.fetches = 0

    async def fetch(self, job_id: str) -> JobStatus:
        self.fetches += 1
        now = time.monotonic()
        if now < self.ends[job_id]:
            return JobStatus(job_id=job_id, status="ON_QUEUE")
        self.detected.setdefault(job_id, now)
        data = JobData(image_url="https://cdn.example/x.png", quota=2)
        return JobStatus(job_id=job_id, status="SUCCESS", data=data)


async def real_watcher(n: int, scale: float, seed: int) -> Row:
    service = RealService()
    watcher = JobWatcher(
        fetch=service.fetch,
        schedule=PollSchedule().scaled(scale),
        max_per_second=None,
        max_in_flight=256,
    )
    for d in durations(1000, seed + 1):
        watcher.record_duration(KEY, d * scale)
    ds = [d * scale for d in durations(n, seed)]
    async with watcher:
        now = time.monotonic()
        ids = [f"r{i}" for i in range(n)]
        for job_id, d in zip(ids, ds, strict=True):
            service.ends[job_id] = now + d
        cpu0 = time.process_time()
        jobs = [watcher.watch(job_id, key=KEY) for job_id in ids]
        # The poll that sees SUCCESS resolves the job in the same step, so the service's
        # record of it is the resolution time; waiting this way adds no task per job.
        while len(watcher):  # noqa: ASYNC110 - a 50 ms check adds no task per job
            await asyncio.sleep(0.05)
        cpu = time.process_time() - cpu0
        assert all(job.exception() is None for job in jobs)
    resolved = service.detected
    delays = [resolved[i] - service.ends[i] for i in ids]
    rel = [x / d for x, d in zip(delays, ds, strict=True)]
    return Row(
        f"JobWatcher, real loop x{scale}",
        n,
        service.fetches / n,
        [x / scale for x in delays],
        rel,
        cpu_us=cpu / service.fetches * 1e6,
        note="delays in service seconds",
    )


async def real_task_per_job(n: int, scale: float, interval: float, seed: int) -> Row:
    service = RealService()
    ds = [d * scale for d in durations(n, seed)]
    resolved: dict[str, float] = {}

    async def poll(job_id: str) -> None:
        while True:
            await asyncio.sleep(interval * scale)
            status = await service.fetch(job_id)
            if status.terminal:
                resolved[job_id] = time.monotonic()
                return

    now = time.monotonic()
    ids = [f"t{i}" for i in range(n)]
    for job_id, d in zip(ids, ds, strict=True):
        service.ends[job_id] = now + d
    cpu0 = time.process_time()
    await asyncio.gather(*(poll(i) for i in ids))
    cpu = time.process_time() - cpu0
    delays = [resolved[i] - service.ends[i] for i in ids]
    rel = [x / d for x, d in zip(delays, ds, strict=True)]
    return Row(
        f"task per job, {interval:g} s, real loop x{scale}",
        n,
        service.fetches / n,
        [x / scale for x in delays],
        rel,
        cpu_us=cpu / service.fetches * 1e6,
        note="delays in service seconds",
    )


# --- part 3: real sockets against FakeTTAPI --------------------------------------------------


async def fake_run(n: int, scale: float, seed: int) -> Row:
    async with (
        FakeTTAPI(
            time_scale=scale, job_duration=Duration.lognormal(MEDIAN, SIGMA), seed=seed
        ) as fake,
        fake.client(max_connections=64) as client,
    ):
        client.watcher.configure(
            schedule=PollSchedule().scaled(scale), max_per_second=None, max_in_flight=64
        )
        for d in durations(1000, seed + 1):
            client.watcher.record_duration(KEY, d * scale)
        ids = [fake.create_job(f"p{i}") for i in range(n)]
        resolved: dict[str, float] = {}
        jobs = [client.gpt4o.resume(job_id, age=0.0) for job_id in ids]
        for job in jobs:
            job.on_update(lambda s: resolved.__setitem__(s.job_id, fake.clock()))
        await asyncio.gather(*jobs)
        fetches = client.watcher.fetches
        state = fake._state  # the fake's job schedule: when each job really ended
        ends = {i: state.jobs.get(i).end() for i in ids}  # type: ignore[union-attr]
        starts = {i: state.jobs.get(i).submitted_at for i in ids}  # type: ignore[union-attr]
    delays = [resolved[i] - ends[i] for i in ids]
    rel = [(resolved[i] - ends[i]) / (ends[i] - starts[i]) for i in ids]
    return Row(
        f"JobWatcher via HTTP to FakeTTAPI x{scale}",
        n,
        fetches / n,
        [x / scale for x in delays],
        rel,
        note="real sockets; delays in service seconds",
    )


async def main(quick: bool) -> list[str]:
    started = time.perf_counter()
    sizes = [2000, 10_000] if quick else [10_000, 100_000]
    lines: list[str] = []

    def emit(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    emit(
        f"Python {sys.version.split()[0]}, asyncio; lognormal durations median {MEDIAN:g} s, "
        f"sigma {SIGMA}."
    )
    emit()
    emit("### Virtual clock (exact), fetches per job and detection delay")
    emit()
    emit(HEADER)
    for n in sizes:
        ds = durations(n, 11)
        fixed05 = fixed_row("fixed 0.5 s (replicate)", 0.5, ds)
        fixed6 = fixed_row("fixed 6 s (runwayml)", 6.0, ds)
        learned = await virtual_run(n, warm=True, seed=11)
        rows = [fixed05, fixed6, learned]
        if n == sizes[0]:
            rows.append(await virtual_run(n, warm=False, seed=11))
        for row in rows:
            emit(row.md(fixed05.fetches))
    emit()
    emit("### Cold start on other durations (virtual clock, exact)")
    emit()
    emit(HEADER)
    n_other = sizes[0]
    for label, modes in OTHER_DURATIONS:
        ds = durations(n_other, 11, modes)
        fixed05 = fixed_row(f"fixed 0.5 s; {label}", 0.5, ds)
        cold = await virtual_run(n_other, warm=False, seed=11, modes=modes)
        cold.name = f"JobWatcher, cold start; {label}"
        emit(fixed05.md(fixed05.fetches))
        emit(cold.md(fixed05.fetches))
    emit()
    emit("### Real event loop (time-scaled x0.2): CPU per poll")
    emit()
    emit(HEADER)
    n_real = 2000 if quick else 10_000
    watcher_row = await real_watcher(n_real, 0.2, 21)
    emit(watcher_row.md(None))
    peer_row = await real_task_per_job(n_real, 0.2, 0.5, 21)
    emit(peer_row.md(None))
    cost = service_cost_us()
    assert watcher_row.cpu_us is not None and peer_row.cpu_us is not None
    emit()
    emit(
        f"The simulated service costs {cost:.1f} us per fetch; without it the scheduling "
        f"costs {watcher_row.cpu_us - cost:.1f} us per poll for the JobWatcher and "
        f"{peer_row.cpu_us - cost:.1f} us per poll for a task per job."
    )
    emit()
    emit("### Memory per pending job (tracemalloc)")
    emit()
    plain, waiter, per_task = await memory_rows(n_real)
    emit("| what | bytes per pending job |")
    emit("|---|---|")
    emit(f"| JobWatcher: Job + heap entry + index | {plain:.0f} |")
    emit(f"| JobWatcher: the same, with a future someone awaits | {waiter:.0f} |")
    emit(f"| one asyncio task per job sleeping between polls | {per_task:.0f} |")
    emit()
    emit("### Real sockets against FakeTTAPI")
    emit()
    emit(HEADER)
    emit((await fake_run(300 if quick else 500, 0.25, 31)).md(None))
    emit()
    emit(f"Total run time: {time.perf_counter() - started:.0f} s.")
    return lines


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    parser.add_argument("--out", type=Path, help="also write the tables to this file")
    args = parser.parse_args()
    tables = asyncio.run(main(args.quick))
    if args.out is not None:
        args.out.write_text("\n".join(tables) + "\n")
