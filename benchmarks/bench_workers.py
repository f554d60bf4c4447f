"""Many workers on one account: RedisCoordinator vs uncoordinated processes vs one process.

FakeTTAPI (its own process) allows ``--limit`` jobs in progress per key (499 past it);
jobs take ``--job-seconds`` x ``--time-scale`` seconds. Every job is submitted with a
callback (``hook=True``) and awaited; polls are the safety net. Three runs of
``--workers`` x ``--jobs`` jobs, each with a fresh fake:

1. coordinated: W processes, each ``AsyncTTAPI(coordinator=RedisCoordinator(...))`` on one
   namespace; each job's callback goes to the *next* worker (a load balancer's choice),
   which confirms it with one fetch and wakes the owner through Redis;
2. uncoordinated: W processes, each with its own in-process limiter (today's behaviour),
   callbacks to themselves;
3. single: 1 process with all W x N jobs.

Reported: wall vs ideal (``jobs / limit x job time``), requests answered 429/499, fetches
per job, Redis commands per job (``INFO commandstats`` before/after, and the coordinators'
own round trips counted client-side), and callback-to-resolution latency across workers
(from the start of the confirming worker's ``settle`` to the owner's ``await job``
returning, both on this machine's clock). Then the adoption of a SIGKILLed worker's jobs,
in heartbeats. Every process talks to 127.0.0.1 only; every wait is bounded.

Run: ``python benchmarks/bench_workers.py --out benchmarks/results/workers.md``
(``--jobs 500`` for a quick run; ``--help`` for the knobs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import _processes
from _processes import KEY, Fake, Redis, free_port

PROMPTS = 64  # distinct prompts: the fake renders each image once (its PNG encoder is slow)
RUN_TIMEOUT = 900.0


# --- the parent: servers, children, figures ----------------------------------------------


class Child(_processes.Child):
    """One measured worker process: JSON config in, ``ready`` out, ``go`` in, result out."""

    script = __file__


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def run_load(args: argparse.Namespace, mode: str, redis: Redis | None) -> dict[str, Any]:
    """Run one of coordinated / uncoordinated / single; return its figures."""
    workers = 1 if mode == "single" else args.workers
    jobs = args.jobs * args.workers // workers
    fake = Fake(
        "--job-duration", str(args.job_seconds), "--time-scale", str(args.time_scale),
        "--max-jobs-in-progress", str(args.limit),
    )  # fmt: skip
    namespace = "bench" + secrets.token_hex(4)
    ports = [free_port() for _ in range(workers)]
    children: list[Child] = []
    try:
        for i in range(workers):
            hook_to = ports[(i + 1) % workers] if mode == "coordinated" else ports[i]
            config = {
                "mode": "load", "coordinated": mode == "coordinated", "key": KEY,
                "redis": redis.url if redis else None, "namespace": namespace,
                "base_url": fake.url, "listen": ports[i],
                "hook_url": f"http://127.0.0.1:{hook_to}/ttapi-hook",
                "jobs": jobs, "offset": i * jobs,
                # Twice the account's limit in flight over all processes: leases contend.
                "concurrency": max(1, 2 * args.limit // workers),
                "cap": args.cap, "job": args.job_seconds * args.time_scale,
                "heartbeat": args.heartbeat,
            }  # fmt: skip
            children.append(Child(config))
        for child in children:
            child.line()  # ready
        before = redis.commandstats() if redis else Counter()
        started = time.monotonic()
        for child in children:
            child.send("go")
        results = [child.line() for child in children]
        wall = time.monotonic() - started
        after = redis.commandstats() if redis else Counter()
        stats = fake.stats()
    finally:
        for child in children:
            child.kill()
        fake.stop()
    total = sum(r["done"] + r["failed"] for r in results)
    by_endpoint = stats["by_endpoint"]
    requests = sum(sum(c.values()) for c in by_endpoint.values())
    refused = sum(n for c in by_endpoint.values() for s, n in c.items() if s in ("429", "499"))
    fetches = sum(sum(c.values()) for e, c in by_endpoint.items() if e.endswith("/fetch"))
    commands = after - before
    commands.pop("info", None)
    round_trips: Counter[str] = Counter()
    for r in results:
        round_trips.update(r["redis_calls"])
    settled_at = {job: t for r in results for job, t in r["settled_for_others"].items()}
    latencies = [
        (t - settled_at[job]) * 1000
        for r in results
        for job, t in r["resolved_at"].items()
        if job in settled_at
    ]
    ideal = total / args.limit * args.job_seconds * args.time_scale
    return {
        "mode": mode,
        "workers": workers,
        "jobs": total,
        "done": sum(r["done"] for r in results),
        "failed": sum(r["failed"] for r in results),
        "wall": wall,
        "ideal": ideal,
        "ratio": wall / ideal,
        "requests": requests,
        "refused": refused,
        "refused_share": refused / requests if requests else 0.0,
        "queue_full": stats["queue_full"],
        "peak": stats["peak_in_progress"],
        "fetches_per_job": fetches / total,
        "redis_per_job": sum(commands.values()) / total if redis else None,
        "scripts_per_job": (commands["evalsha"] + commands["eval"]) / total if redis else None,
        "client_calls_per_job": sum(round_trips.values()) / total if redis else None,
        "round_trips_per_job": {k: round(n / total, 3) for k, n in round_trips.most_common()},
        "redis_commands": dict(commands.most_common()),
        "cross_resolved": len(latencies),
        "cross_p50_ms": _percentile(latencies, 0.5),
        "cross_p99_ms": _percentile(latencies, 0.99),
        "submit_retries": sum(r["resubmits"] for r in results),
        "cpu_s": sum(r["cpu"] for r in results),
    }


def run_adoption(args: argparse.Namespace, redis: Redis) -> dict[str, Any]:
    """SIGKILL a worker holding jobs; time until another adopts them, in heartbeats."""
    fake = Fake("--job-duration", "3600")
    namespace = "bench" + secrets.token_hex(4)
    base = {"redis": redis.url, "namespace": namespace, "base_url": fake.url, "key": KEY,
            "heartbeat": args.heartbeat, "coordinated": True, "cap": args.cap}  # fmt: skip
    # No more than its cap: jobs that never end would keep any further submit waiting.
    victim = Child({**base, "mode": "victim", "listen": free_port(), "jobs": min(100, args.cap)})
    adopter = Child({**base, "mode": "adopter", "listen": free_port()})
    try:
        victim.line()
        adopter.line()
        victim.send("go")
        held = victim.line()
        killed = time.time()
        victim.kill()
        adopter.send("go")
        adopted = adopter.line()
    finally:
        victim.kill()
        adopter.kill()
        fake.stop()
    seconds = adopted["at"] - killed
    return {
        "jobs": len(held["jobs"]),
        "adopted": adopted["count"],
        "seconds": seconds,
        "heartbeats": seconds / args.heartbeat,
        "heartbeat": args.heartbeat,
        "max_age": max(adopted["ages"]),
    }


# --- the children -------------------------------------------------------------------------


def _client(config: dict[str, Any]) -> tuple[Any, Any, dict[str, float]]:
    import tenacity

    from ttapi_async import AsyncTTAPI, PollSchedule
    from ttapi_async.coordination import LimitSettings, LocalCoordinator, RedisCoordinator

    limits = LimitSettings(cap=config["cap"], initial=16)
    settled_for_others: dict[str, float] = {}

    class Timed(RedisCoordinator):
        """Notes when it starts recording the end of another worker's job."""

        async def settle(self, job_id: str, *, status: str, answer: str) -> Any:
            began = time.time()
            settled = await super().settle(job_id, status=status, answer=answer)
            if settled.won and settled.record.owner not in ("", self.worker_id):
                settled_for_others[job_id] = began
            return settled

    if config["coordinated"]:
        coordinator: Any = Timed(
            config["redis"], namespace=config["namespace"], limits=limits,
            heartbeat=config["heartbeat"],
        )  # fmt: skip
    else:
        coordinator = LocalCoordinator(limits)
    client = AsyncTTAPI(
        api_key=config["key"],
        base_url=config["base_url"],
        coordinator=coordinator,
        max_connections=400,
    )
    # Tuned for short jobs as bench_batch.py is: the first poll near the end, then dense.
    scale = config.get("job", 2.0) / 2.0
    schedule = PollSchedule(
        first_delay=1.8, wait=tenacity.wait_fixed(0.1), min_interval=0.08,
        min_first_delay=0.1, dense_ratio=0.04, sparse_ratio=0.05,
    ).scaled(scale)  # fmt: skip
    client.watcher.configure(schedule=schedule, max_per_second=None, max_in_flight=256)
    return client, coordinator, settled_for_others


def _count_calls(coordinator: Any) -> Counter[str]:
    """Count the coordinator's round trips to Redis by command (scripts by name)."""
    calls: Counter[str] = Counter()
    from ttapi_async.coordination import _redis_base

    names = {script.sha: name for name, script in _redis_base._S.items()}
    # the pooled client, and the heartbeat's own connection
    for attribute in ("_client", "_beat_client"):
        redis = getattr(coordinator, attribute, None)
        if redis is None:
            continue
        original = redis.execute_command

        async def counted(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            command = str(args[0]).upper()
            if command == "EVALSHA":
                command = names.get(str(args[1]), "EVALSHA")
            calls[command] += 1
            return await _original(*args, **kwargs)

        redis.execute_command = counted
    return calls


async def _serve(client: Any, config: dict[str, Any]) -> Any:
    from aiohttp import web

    from ttapi_async.webhooks import WebhookReceiver

    receiver = WebhookReceiver(client, public_url=config["hook_url"])
    await receiver.start()
    app = web.Application()
    receiver.add_routes(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", config["listen"]).start()
    return runner


async def _stdin() -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


def _say(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


async def child_load(config: dict[str, Any]) -> None:
    from ttapi_async import QueueFullError

    client, coordinator, settled = _client(config)
    async with client:
        runner = await _serve(client, config)
        calls = _count_calls(coordinator)
        stdin = await _stdin()
        _say(ready=True)
        await stdin.readline()
        calls.clear()
        cpu = time.process_time()
        resolved_at: dict[str, float] = {}
        done = failed = resubmits = 0
        gate = asyncio.Semaphore(config["concurrency"])

        async def one(i: int) -> None:
            nonlocal done, failed, resubmits
            async with gate:
                prompt = f"bench {(config['offset'] + i) % PROMPTS}"
                for _ in range(1000):  # uncoordinated processes collect 499s: submit again
                    try:
                        job = await client.gpt4o.submit(prompt=prompt, hook=True)
                        break
                    except QueueFullError:
                        resubmits += 1
                else:
                    failed += 1
                    return
                try:
                    await job
                except Exception:
                    failed += 1
                    return
                resolved_at[job.id] = time.time()
                done += 1

        await asyncio.gather(*(one(i) for i in range(config["jobs"])))
        cpu = time.process_time() - cpu
        _say(
            done=done, failed=failed, resubmits=resubmits, resolved_at=resolved_at,
            settled_for_others=settled, redis_calls=dict(calls), cpu=cpu,
        )  # fmt: skip
        await stdin.readline()  # held open until the parent has read the fake's counters
        await runner.cleanup()


async def child_victim(config: dict[str, Any]) -> None:
    client, _, _ = _client(config)
    async with client:
        await client.open_coordinator()
        stdin = await _stdin()
        _say(ready=True)
        await stdin.readline()
        jobs = [await client.gpt4o.submit(prompt=f"victim {i}") for i in range(config["jobs"])]
        _say(jobs=[job.id for job in jobs])
        await asyncio.Event().wait()  # mid-wait, until SIGKILL


async def child_adopter(config: dict[str, Any]) -> None:
    client, coordinator, _ = _client(config)
    adopted: list[Any] = []
    found = asyncio.Event()
    sweep = coordinator.sweep

    async def noting() -> list[Any]:
        records: list[Any] = await sweep()
        if records:
            adopted.extend(records)
            found.set()
        return records

    coordinator.sweep = noting
    async with client:
        await client.open_coordinator()
        stdin = await _stdin()
        _say(ready=True)
        await stdin.readline()
        await asyncio.wait_for(found.wait(), 120)
        _say(at=time.time(), count=len(adopted), ages=[r.age for r in adopted])
        await stdin.readline()


# --- the report --------------------------------------------------------------------------


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def report(args: argparse.Namespace, runs: list[dict[str, Any]], adoption: dict[str, Any] | None,
           load: tuple[float, float, float]) -> str:  # fmt: skip
    import aiohttp
    import redis

    lines = [
        "# Many workers benchmark (`benchmarks/bench_workers.py`)",
        "",
        f"Run: `python benchmarks/bench_workers.py --workers {args.workers} --jobs {args.jobs} "
        f"--limit {args.limit} --job-seconds {args.job_seconds} --time-scale {args.time_scale} "
        f"--cap {args.cap} --heartbeat {args.heartbeat}`.",
        f"Machine: {os.cpu_count()} CPUs shared with other work (load average "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the start), Python "
        f"{platform.python_version()}, aiohttp {aiohttp.__version__}, redis-py "
        f"{redis.__version__}, redis-server with persistence off. Measured "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        f"FakeTTAPI allows {args.limit} jobs in progress per key; jobs take "
        f"{args.job_seconds * args.time_scale:g} s. Every job is submitted with `hook=True` and "
        f"awaited; `ideal` = jobs / {args.limit} x job time.",
        "",
        "| run | processes | jobs | wall | ideal | wall / ideal | 429/499 (share of requests) "
        "| fetches / job | Redis commands / job (scripts, client round trips) "
        "| cross-worker resolution p50 / p99 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        redis_cell = "-"
        if r["redis_per_job"] is not None:
            redis_cell = (
                f"{r['redis_per_job']:.1f} ({r['scripts_per_job']:.2f} scripts, "
                f"{r['client_calls_per_job']:.2f} round trips)"
            )
        cross = "-"
        if r["cross_resolved"]:
            cross = (
                f"{_fmt(r['cross_p50_ms'], '.1f')} / {_fmt(r['cross_p99_ms'], '.1f')} ms "
                f"({r['cross_resolved']} jobs)"
            )
        lines.append(
            f"| {r['mode']} | {r['workers']} | {r['done']:,}"
            + (f" (+{r['failed']} failed)" if r["failed"] else "")
            + f" | {r['wall']:.1f} s | {r['ideal']:.1f} s | {r['ratio']:.2f}x "
            f"| {r['refused']:,} / {r['requests']:,} ({r['refused_share']:.2%}) "
            f"| {r['fetches_per_job']:.2f} | {redis_cell} | {cross} |"
        )
    for r in runs:
        if r.get("round_trips_per_job"):
            parts = ", ".join(f"{k} {v:.2f}" for k, v in r["round_trips_per_job"].items())
            mode = r["mode"]
            lines += ["", f"Round trips to Redis per job ({mode}, counted client-side): {parts}."]
    if adoption is not None:
        lines += [
            "",
            f"Adoption: a worker holding {adoption['jobs']} jobs was SIGKILLed; another adopted "
            f"{adoption['adopted']} of them {adoption['seconds']:.2f} s later = "
            f"**{adoption['heartbeats']:.2f} heartbeats** of {adoption['heartbeat']:g} s "
            f"(target: within 3); the oldest adopted job's true age {adoption['max_age']:.1f} s.",
        ]
    lines += ["", "Raw figures:", "", "```json", json.dumps(runs, indent=1), "```", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=2500, help="jobs per worker")
    parser.add_argument("--limit", type=int, default=200, help="jobs in progress at the fake")
    parser.add_argument("--job-seconds", type=float, default=2.0, help="service seconds a job")
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--cap", type=int, default=400, help="the limiter's cap (above limit)")
    parser.add_argument("--heartbeat", type=float, default=1.0)
    parser.add_argument("--only", default="coordinated,uncoordinated,single,adoption")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        config = json.loads(args.child)
        run = {"load": child_load, "victim": child_victim, "adopter": child_adopter}
        asyncio.run(run[config["mode"]](config))
        return
    # A SIGTERM (a timeout) still runs the finally blocks: no server is left behind.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    load = os.getloadavg()
    wanted = args.only.split(",")
    redis = Redis()
    runs: list[dict[str, Any]] = []
    adoption = None
    try:
        for mode in ("coordinated", "uncoordinated", "single"):
            if mode in wanted:
                result = run_load(args, mode, redis if mode == "coordinated" else None)
                print(json.dumps(result), flush=True)
                runs.append(result)
        if "adoption" in wanted:
            adoption = run_adoption(args, redis)
            print(json.dumps(adoption), flush=True)
    finally:
        redis.stop()
    text = report(args, runs, adoption, load)
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
