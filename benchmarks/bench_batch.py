"""Benchmark of ``ttapi_async.batch`` against FakeTTAPI running in another process.

1. Jobs near the limit: N gpt4o items, the fake allowing 200 jobs in progress per key,
   jobs of 2 s (``--time-scale`` < 1 shortens them; the ideal wall is
   items / 200 x 2 s x time scale). Reports wall / ideal, the share of requests
   answered 429/499 (submissions and polls), and the batch process's peak RSS.
2. Large base64 answers: M ``images.generate`` items whose answers are padded to about
   2 MB of image each; reports the peak RSS.

Each part runs in a fresh child process so its peak RSS is its own. Run:
``python benchmarks/bench_batch.py [--items 10000] [--time-scale 0.25] [--b64-items 1000]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

LIMIT = 200
JOB_SECONDS = 2.0


def start_fake(*args: str) -> tuple[subprocess.Popen[str], str, str]:
    """Start ``python -m ttapi_async.testing`` on a free port; return (process, url, key)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "ttapi_async.testing", "--port", "0", *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"(http://\S+) key=(\S+)", line)
    if not match:
        proc.kill()
        raise RuntimeError(f"the fake did not start: {line!r}")
    return proc, match.group(1), match.group(2)


def fake_stats(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/_fake/stats") as resp:
        return json.loads(resp.read())  # type: ignore[no-any-return]


async def run_jobs(url: str, key: str, items: int, time_scale: float, out: Path) -> dict[str, Any]:
    import tenacity

    from ttapi_async import AsyncTTAPI
    from ttapi_async._schedule import PollSchedule
    from ttapi_async.batch import BatchRequest, BatchRunner

    # 64 distinct prompts: the fake renders each image once and serves it from its cache;
    # a unique prompt per item would make the fake's PNG encoder (~25 ms of CPU per image
    # here) the bottleneck, and the batch is what is measured.
    requests = (
        BatchRequest(f"{i:06d}", "gpt4o", {"prompt": f"bench {i % 64}"}) for i in range(items)
    )
    async with AsyncTTAPI(api_key=key, base_url=url, max_connections=400) as client:
        # The watcher's defaults suit the service's ~40 s jobs (first poll at 8 s, polls at
        # least 1 s apart): for 2 s jobs they would add half a job to every detection. A
        # user with jobs this short tunes them the same way: first poll near the end,
        # then dense polls (every 4-5% of the job's age, at least 80 ms apart).
        schedule = PollSchedule(
            first_delay=1.8,
            wait=tenacity.wait_fixed(0.1),
            min_interval=0.08,
            min_first_delay=0.1,
            dense_ratio=0.04,
            sparse_ratio=0.05,
        ).scaled(time_scale)
        client.watcher.configure(schedule=schedule, max_per_second=None, max_in_flight=256)
        runner = BatchRunner(client, out, concurrency=2000)
        runner.plan(requests)
        started = time.monotonic()
        async for _ in runner.run():
            pass
        wall = time.monotonic() - started
        stats = runner.stats
        limiter = runner.limiters["gpt4o"]
    return {
        "wall": wall,
        "done": stats.done,
        "failed": stats.failed + stats.unknown,
        "submit_refused": stats.refused,
        "final_limit": round(limiter.limit, 1),
    }


async def run_b64(url: str, key: str, items: int, out: Path) -> dict[str, Any]:
    from ttapi_async import AsyncTTAPI
    from ttapi_async.batch import BatchRequest, BatchRunner

    requests = (
        BatchRequest(f"{i:06d}", "generate", {"prompt": f"big {i}", "model": "gpt-image-1"})
        for i in range(items)
    )
    async with AsyncTTAPI(api_key=key, base_url=url) as client:
        runner = BatchRunner(client, out, concurrency=16)
        runner.plan(requests)
        started = time.monotonic()
        sizes = 0
        async for outcome in runner.run():
            sizes += sum(p.stat().st_size for p in outcome.files)
        wall = time.monotonic() - started
    return {"wall": wall, "done": runner.stats.done, "mean_file_bytes": sizes // max(1, items)}


def child(args: argparse.Namespace) -> None:
    out = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    if args.part == "jobs":
        result = asyncio.run(run_jobs(args.url, args.key, args.items, args.time_scale, out))
    else:
        result = asyncio.run(run_b64(args.url, args.key, args.items, out))
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result))


def in_child(*argv: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", *argv], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def bench_jobs(items: int, time_scale: float) -> dict[str, Any]:
    proc, url, key = start_fake(
        "--job-duration",
        str(JOB_SECONDS),
        "--time-scale",
        str(time_scale),
        "--max-jobs-in-progress",
        str(LIMIT),
        "--seed",
        "1",
    )
    try:
        result = in_child(
            "--part", "jobs", "--url", url, "--key", key,
            "--items", str(items), "--time-scale", str(time_scale),
        )  # fmt: skip
        stats = fake_stats(url)
    finally:
        proc.terminate()
        proc.wait(10)
    total = refused = 0
    for counts in stats["by_endpoint"].values():
        for status, n in counts.items():
            total += n
            refused += n if status in ("429", "499") else 0
    ideal = items / LIMIT * JOB_SECONDS * time_scale
    result.update(
        items=items,
        time_scale=time_scale,
        ideal=ideal,
        ratio=result["wall"] / ideal,
        requests=total,
        refused=refused,
        refused_share=refused / total if total else 0.0,
    )
    return result


def bench_b64(items: int, image_bytes: int) -> dict[str, Any]:
    proc, url, key = start_fake("--image-bytes", str(image_bytes), "--seed", "1")
    try:
        result = in_child("--part", "b64", "--url", url, "--key", key, "--items", str(items))
    finally:
        proc.terminate()
        proc.wait(10)
    result.update(items=items, image_bytes=image_bytes)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--small-items", type=int, default=1_000)
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--b64-items", type=int, default=1_000)
    parser.add_argument("--b64-small-items", type=int, default=100)
    parser.add_argument("--image-bytes", type=int, default=2_000_000)
    parser.add_argument("--only", choices=("jobs", "b64"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--part", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    if args.only in (None, "jobs"):
        for n in (args.small_items, args.items):
            r = bench_jobs(n, args.time_scale)
            print(
                f"jobs: {r['items']} gpt4o items, limit {LIMIT}, {JOB_SECONDS:g} s jobs x "
                f"{r['time_scale']:g}: wall {r['wall']:.1f} s vs ideal {r['ideal']:.1f} s "
                f"= {r['ratio']:.3f}x; refused {r['refused']}/{r['requests']} requests "
                f"({100 * r['refused_share']:.2f}%); done {r['done']}, failed {r['failed']}; "
                f"peak RSS {r['peak_rss_mb']} MB; final limit {r['final_limit']}"
            )
    if args.only in (None, "b64"):
        for n in (args.b64_small_items, args.b64_items):
            r = bench_b64(n, args.image_bytes)
            print(
                f"b64: {r['items']} answers of ~{r['image_bytes'] / 1e6:g} MB "
                f"(files {r['mean_file_bytes'] / 1e6:.2f} MB): wall {r['wall']:.1f} s, "
                f"done {r['done']}; peak RSS {r['peak_rss_mb']} MB"
            )


if __name__ == "__main__":
    main()
