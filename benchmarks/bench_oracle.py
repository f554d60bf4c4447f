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
import zlib
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
        #: after a drift: new-regime jobs finished when the sample restarted, when the
        #: learned first quantile and the dense_from quantile came within 10% of the truth
        self.relearned: dict[str, int] = {}

    def fetches_per_job(self, lo: int = 0, hi: int | None = None) -> float:
        return statistics.fmean(self.fetches[lo:hi])

    @staticmethod
    def pooled(runs: list[Run]) -> Run:
        """Return the runs as one (their jobs together), to read pooled quantiles."""
        out = Run.__new__(Run)
        out.durations = [d for r in runs for d in r.durations]
        out.fetches = [f for r in runs for f in r.fetches]
        out.lag = [x for r in runs for x in r.lag]
        out.relearned = {}
        return out


async def simulate(
    durations: list[float],
    *,
    seed: int,
    learned: list[float] | None,
    schedule: PollSchedule | None = None,
    watch_median: tuple[int, float, float] | None = None,
) -> Run:
    """Submit jobs at RATE per second on a virtual clock and watch them all to the end.

    ``watch_median`` = (first index, true first and dense_from quantiles): count the jobs
    from that index on that had finished when the sample restarted, and when the
    watcher's estimates of those quantiles came within 10% of the true ones.
    """
    rng = random.Random(seed)
    random.seed(seed)  # the default cold wait's spread draws from the global generator
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
    relearned: dict[str, int] = {}
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
                watcher.watch(job_id, key=KEY, deadline=1e6)  # the tails of sigma 0.7 run long
                submitted += 1
            await watcher.idle()
            wait = watcher._waits.get(KEY)
            if watch_median is not None and wait is not None and len(relearned) < 4:
                first, q_first, q_dense = watch_median
                checks = {
                    "restart": wait.stats.generation > 0,
                    "first": abs(wait._first / q_first - 1) < 0.1,
                    "dense": abs(wait._dense_from / q_dense - 1) < 0.1,
                    "both": abs(wait._first / q_first - 1) < 0.1
                    and abs(wait._dense_from / q_dense - 1) < 0.1,
                }
                for name, hit in checks.items():
                    if hit and name not in relearned:
                        relearned[name] = sum(1 for i in ids[first:] if i in service.detected)
    run = Run(ids, durations, service)
    run.relearned = relearned
    return run


class Shape:
    def __init__(self, label: str, modes: Modes, n: int, seed: int, drift: bool = False) -> None:
        self.label = label
        self.modes = modes
        self.n = n
        self.drift = drift
        rng = random.Random(zlib.crc32(label.encode()) + seed)
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


SEEDS = (1, 2, 3)


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
        f"Python {sys.version.split()[0]}; {len(SEEDS)} runs of {n:,} jobs per shape arriving "
        f"at {RATE:g}/s (Poisson), virtual clock, figures over the {len(SEEDS) * n:,} jobs; "
        "oracle exact (dynamic programming on the true distribution)."
    )
    emit()
    emit(HEADER)
    for label, modes in SHAPES:
        if only and only not in label:
            continue
        learned_runs, cold_runs = [], []
        for seed in SEEDS:
            shape = Shape(label, modes, n, seed)
            learned_runs.append(
                await simulate(shape.durations, seed=seed, learned=shape.seed_durations)
            )
            cold_runs.append(await simulate(shape.durations, seed=seed, learned=None))
        oracle = oracle_polls(shape)
        emit(row(label, oracle, Run.pooled(learned_runs), Run.pooled(cold_runs)))
    if not only or only in DRIFT[0]:
        label, modes = DRIFT
        half = n
        doubled_modes = [(s, m * 2, sig) for s, m, sig in modes]
        new = Mixture(doubled_modes)
        truth = (
            new.quantile(PollSchedule().first_quantile),
            new.quantile(PollSchedule().dense_from),
        )
        learned_runs, cold_runs = [], []
        for seed in SEEDS:
            shape = Shape(label, modes, 2 * n, seed, drift=True)
            learned_runs.append(
                await simulate(
                    shape.durations,
                    seed=seed,
                    learned=shape.seed_durations,
                    watch_median=(half, *truth),
                )
            )
            cold_runs.append(await simulate(shape.durations, seed=seed, learned=None))
        oracle = oracle_polls(shape)
        emit(row(label, oracle, Run.pooled(learned_runs), Run.pooled(cold_runs)))
        second = Run.pooled(learned_runs)
        second.fetches = [f for r in learned_runs for f in r.fetches[half:]]
        second.lag = [x for r in learned_runs for x in r.lag[half:]]
        emit()

        def when(name: str) -> str:
            return ", ".join(str(r.relearned.get(name, "never")) for r in learned_runs)

        emit(
            "Drift (learned runs, one figure per run): jobs of the new regime finished when the "
            f"sample restarted: {when('restart')}; when the learned first-poll quantile was "
            f"within 10% of the new one: {when('first')}; when the `dense_from` quantile was: "
            f"{when('dense')}; when both were (K, as in tests/test_watcher.py): "
            f"{when('both')}. Jobs submitted after the drift: "
            f"{second.fetches_per_job():.2f} polls/job (oracle {oracle_of(doubled_modes):.2f}), "
            f"lag p50 {pct(second.lag, 0.5):.1%} / p99 {pct(second.lag, 0.99):.1%}."
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
