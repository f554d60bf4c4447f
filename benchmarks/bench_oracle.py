"""Measure the JobWatcher against the oracle: the fewest polls any schedule could make (issue 14).

Run: ``python benchmarks/bench_oracle.py [--quick] [--out benchmarks/results/oracle.md]``

For each duration shape, the oracle (``_oracle.py``) knows the true distribution and makes
the fewest polls per job with detection lag p50 <= 5% and p99 <= 15% of the job's
duration. The JobWatcher runs on a virtual clock (``ManualClock``: simulated time, exact,
independent of machine load) against an in-process service; jobs arrive over time
(Poisson, 20 a second), not all at once. "learned" starts from 512 durations of the same
shape restored with ``record_duration`` (what ``durations()`` saves from an earlier run);
"cold" starts with nothing learned. The drift shape doubles the durations of the jobs
submitted in the second half (a queue backing up); its oracle knows each job's regime.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _oracle import Mixture, solve

from ttapi_async import JobStatus, JobWatcher, PollSchedule
from ttapi_async._models import JobData
from ttapi_async.testing import ManualClock

KEY = "gpt4o"
RATE = 20.0  # jobs submitted per second
Modes = list[tuple[float, float, float]]

SHAPES: list[tuple[str, Modes]] = [
    *[
        (f"lognormal {median:g} s, sigma {sigma:g}", [(1.0, median, sigma)])
        for sigma in (0.35, 0.7)
        for median in (5.0, 10.0, 40.0, 120.0)
    ],
    ("bimodal: 30% 15 s + 70% 90 s, sigma 0.25", [(0.3, 15.0, 0.25), (0.7, 90.0, 0.25)]),
]
DRIFT: tuple[str, Modes] = ("drift: 40 s -> 80 s halfway, sigma 0.35", [(1.0, 40.0, 0.35)])


def sample(rng: random.Random, modes: Modes) -> float:
    u = rng.random()
    mode = modes[-1]
    for candidate in modes:
        u -= candidate[0]
        if u < 0:
            mode = candidate
            break
    return rng.lognormvariate(math.log(mode[1]), mode[2])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Service:
    """Answer fetches from job end times on the manual clock; record when each is seen done."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.ends: dict[str, float] = {}
        self.detected: dict[str, float] = {}
        self.fetches: dict[str, int] = {}
        self._running: dict[str, JobStatus] = {}
        self._done = JobData(image_url="https://cdn.example/x.png", quota=2)

    async def fetch(self, job_id: str) -> JobStatus:
        self.fetches[job_id] = self.fetches.get(job_id, 0) + 1
        now = self.clock()
        if now < self.ends[job_id]:
            status = self._running.get(job_id)
            if status is None:
                status = self._running[job_id] = JobStatus(job_id=job_id, status="ON_QUEUE")
            return status
        self._running.pop(job_id, None)
        self.detected[job_id] = now
        return JobStatus(job_id=job_id, status="SUCCESS", data=self._done)


class Run:
    """One watcher run: per-job fetches and relative lag, in submission order."""

    def __init__(self, ids: list[str], durations: list[float], service: Service) -> None:
        self.durations = durations
        self.fetches = [service.fetches[i] for i in ids]
        self.lag = [
            (service.detected[i] - service.ends[i]) / d for i, d in zip(ids, durations, strict=True)
        ]
        self.relearned: int | None = None

    def fetches_per_job(self, lo: int = 0, hi: int | None = None) -> float:
        return statistics.fmean(self.fetches[lo:hi])


async def simulate(
    durations: list[float],
    *,
    seed: int,
    learned: list[float] | None,
    schedule: PollSchedule | None = None,
    watch_median: tuple[int, float] | None = None,
) -> Run:
    """Submit jobs at RATE per second on a virtual clock and watch them all to the end.

    ``watch_median`` = (first index, true quantile): count the jobs from that index on
    that finished before the watcher's estimate of its ``dense_from`` quantile came
    within 10% of the true one.
    """
    rng = random.Random(seed)
    clock = ManualClock()
    service = Service(clock)
    watcher = JobWatcher(
        fetch=service.fetch,
        clock=clock,
        schedule=schedule,
        max_per_second=None,
        max_in_flight=512,
        rng=random.Random(seed + 1),
    )
    ids = [f"j{i}" for i in range(len(durations))]
    relearned: int | None = None
    async with watcher:
        for d in learned or []:
            watcher.record_duration(KEY, d)
        arrivals = []
        t = 0.0
        for _ in ids:
            t += rng.expovariate(RATE)
            arrivals.append(t)
        submitted = 0
        while submitted < len(ids) or len(watcher):
            due = watcher.next_due()
            nxt = arrivals[submitted] if submitted < len(ids) else math.inf
            target = min(due if due is not None else math.inf, nxt)
            clock.advance(max(target - clock(), 0.002))
            now = clock()
            while submitted < len(ids) and arrivals[submitted] <= now:
                job_id = ids[submitted]
                service.ends[job_id] = now + durations[submitted]
                watcher.watch(job_id, key=KEY)
                submitted += 1
            await watcher.idle()
            if watch_median is not None and relearned is None:
                first, median = watch_median
                wait = watcher._waits.get(KEY)
                if wait is not None and abs(wait._dense_from / median - 1) < 0.1:
                    relearned = sum(1 for i in ids[first:] if i in service.detected)
    run = Run(ids, durations, service)
    run.relearned = relearned
    return run


class Shape:
    def __init__(self, label: str, modes: Modes, n: int, drift: bool = False) -> None:
        self.label = label
        self.modes = modes
        self.n = n
        self.drift = drift
        rng = random.Random(hash(label) & 0xFFFF)
        self.durations = [sample(rng, modes) for _ in range(n)]
        if drift:
            half = n // 2
            self.durations[half:] = [d * 2 for d in self.durations[half:]]
        self.seed_durations = [sample(rng, modes) for _ in range(512)]


_SOLVED: dict[str, float] = {}


def oracle_of(modes: Modes) -> float:
    key = repr(modes)
    if key not in _SOLVED:
        _SOLVED[key] = solve(Mixture(modes)).polls
    return _SOLVED[key]


def oracle_polls(shape: Shape) -> float:
    if not shape.drift:
        return oracle_of(shape.modes)
    doubled = [(s, m * 2, sig) for s, m, sig in shape.modes]
    return (oracle_of(shape.modes) + oracle_of(doubled)) / 2


HEADER = (
    "| shape | oracle polls/job | learned: polls/job | learned: x oracle | learned: lag p50 "
    "/ p99 | cold: polls/job | cold: x oracle | cold: lag p50 / p99 |\n"
    "|---|---|---|---|---|---|---|---|"
)


def row(label: str, oracle: float, learned: Run, cold: Run) -> str:
    def cells(run: Run) -> str:
        f = run.fetches_per_job()
        return f"{f:.2f} | {f / oracle:.2f}x | {pct(run.lag, 0.5):.1%} / {pct(run.lag, 0.99):.1%}"

    return f"| {label} | {oracle:.2f} | {cells(learned)} | {cells(cold)} |"


async def main(quick: bool, only: str | None) -> list[str]:
    started = time.perf_counter()
    n = 600 if quick else 2000
    lines: list[str] = []

    def emit(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    emit(
        f"Python {sys.version.split()[0]}; {n:,} jobs per shape arriving at {RATE:g}/s "
        "(Poisson), virtual clock; oracle exact (dynamic programming on the true distribution)."
    )
    emit()
    emit(HEADER)
    for label, modes in SHAPES:
        if only and only not in label:
            continue
        shape = Shape(label, modes, n)
        oracle = oracle_polls(shape)
        learned = await simulate(shape.durations, seed=1, learned=shape.seed_durations)
        cold = await simulate(shape.durations, seed=1, learned=None)
        emit(row(label, oracle, learned, cold))
    if not only or only in DRIFT[0]:
        label, modes = DRIFT
        shape = Shape(label, modes, 2 * n, drift=True)
        oracle = oracle_polls(shape)
        half = n
        doubled = Mixture([(s, m * 2, sig) for s, m, sig in modes])
        true_median = doubled.quantile(PollSchedule().dense_from)
        learned = await simulate(
            shape.durations,
            seed=1,
            learned=shape.seed_durations,
            watch_median=(half, true_median),
        )
        cold = await simulate(shape.durations, seed=1, learned=None)
        emit(row(label, oracle, learned, cold))
        emit()
        emit(
            f"Drift: the learned `dense_from` quantile came within 10% of the new one after "
            f"{learned.relearned} jobs of the new regime had finished; second half alone: "
            f"{learned.fetches_per_job(half):.2f} polls/job, lag p50 "
            f"{pct(learned.lag[half:], 0.5):.1%} / p99 {pct(learned.lag[half:], 0.99):.1%}."
        )
    emit()
    emit(f"Total run time: {time.perf_counter() - started:.0f} s.")
    return lines


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer jobs per shape (a smoke run)")
    parser.add_argument("--only", help="run only the shapes whose label contains this")
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    args = parser.parse_args()
    table = asyncio.run(main(args.quick, args.only))
    if args.out is not None:
        args.out.write_text("\n".join(table) + "\n")
