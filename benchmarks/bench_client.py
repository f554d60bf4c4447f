"""Compare ttapi_async ``images.generate`` with bare aiohttp and the official openai SDK.

Run: ``python benchmarks/bench_client.py [--calls 5000] [--rounds 5] [--no-pin]`` (about two
minutes; the report goes to stdout and to benchmarks/results/client.md unless ``--write ''``).

One local aiohttp.web server runs in its own process (its CPU never counts as the client's)
and answers ``POST /v1/images/generations`` with the documented example body of a generation, and
``POST /big/v1/images/generations`` with one image of 2 MB of base64. Each client runs in
its own subprocess, so that its CPU time and its peak RSS (``ru_maxrss``) are its own:

1. small answers: ``--calls`` calls (5,000) at concurrency 64: calls/s, client CPU per call;
2. big answers: ``--big-calls`` calls (200) of 2 MB base64 at concurrency 16: wall, CPU,
   peak RSS.

Targets (issue 2): ttapi_async >= 85% of bare aiohttp's calls/s and >= 8x the openai SDK's;
on big answers >= 2.5x the openai SDK's throughput, with peak RSS within 20% of aiohttp's.
Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import time
from typing import Any

CLIENTS = ("aiohttp", "ttapi_async", "openai")
PROMPT = "a cute cat"
MODEL = "gpt-image-1"
SIZE = "1024x1024"
SMALL_BODY = {
    "created": 1745818538,
    "data": [{"url": "https://example.invalid/cat.webp", "revised_prompt": "a cute cat"}],
    "usage": {
        "input_tokens": 9,
        "input_tokens_details": {"image_tokens": 0, "text_tokens": 9},
        "output_tokens": 4160,
        "total_tokens": 4169,
    },
}
BIG_IMAGE_BYTES = 2 * 1024 * 1024 * 3 // 4  # decodes to 1.5 MiB: 2 MiB of base64


def big_body() -> bytes:
    # A PNG signature, then filler: the answer's shape is what matters, not the pixels.
    raw = b"\x89PNG\r\n\x1a\n" + os.urandom(BIG_IMAGE_BYTES - 8)
    body = {
        "created": 1745818538,
        "data": [{"b64_json": base64.b64encode(raw).decode()}],
        "usage": SMALL_BODY["usage"],
        "output_format": "png",
    }
    return json.dumps(body).encode()


# --- the server (its own process) ------------------------------------------------------------


def serve() -> None:
    from aiohttp import web

    small = json.dumps(SMALL_BODY).encode()
    big = big_body()

    async def small_handler(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=small, content_type="application/json")

    async def big_handler(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=big, content_type="application/json")

    routes = {"/v1/images/generations": small_handler, "/big/v1/images/generations": big_handler}

    async def handler(request: web.BaseRequest) -> web.Response:
        route = routes.get(request.path)
        if route is None or request.method != "POST":
            return web.Response(status=404)
        return await route(request)  # type: ignore[arg-type]

    async def main() -> None:
        _pin(0)
        # aiohttp.web's low-level server: no router or middleware, so the server, which
        # shares this machine with the client, caps the throughput as little as it can.
        runner = web.ServerRunner(web.Server(handler), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port = runner.addresses[0][1]
        print(port, flush=True)
        # Until the parent closes our stdin.
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)
        await runner.cleanup()

    asyncio.run(main())


# --- the clients (one process each) ----------------------------------------------------------


async def _run_aiohttp(base: str, calls: int, concurrency: int, warmup: int) -> dict[str, Any]:
    import aiohttp

    url = base + "/v1/images/generations"
    body = {"prompt": PROMPT, "model": MODEL, "size": SIZE}
    headers = {"TT-API-KEY": "bench-key"}
    async with aiohttp.ClientSession() as session:

        async def call() -> None:
            async with session.post(url, json=body, headers=headers) as resp:
                data = await resp.json()
                assert data["data"][0]

        return await _drive(call, calls, concurrency, warmup)


async def _run_ttapi(base: str, calls: int, concurrency: int, warmup: int) -> dict[str, Any]:
    from ttapi_async import AsyncTTAPI

    async with AsyncTTAPI(api_key="bench-key", base_url=base) as client:

        async def call() -> None:
            r = await client.images.generate(prompt=PROMPT, model=MODEL, size=SIZE)
            assert r.data[0]

        return await _drive(call, calls, concurrency, warmup)


async def _run_openai(base: str, calls: int, concurrency: int, warmup: int) -> dict[str, Any]:
    from openai import AsyncOpenAI

    async with AsyncOpenAI(base_url=base + "/v1", api_key="bench-key", max_retries=0) as client:

        async def call() -> None:
            r = await client.images.generate(prompt=PROMPT, model=MODEL, size=SIZE)
            assert r.data and r.data[0]

        return await _drive(call, calls, concurrency, warmup)


async def _drive(call: Any, calls: int, concurrency: int, warmup: int) -> dict[str, Any]:
    async def workers(total: int) -> None:
        left = total

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                await call()

        await asyncio.gather(*(worker() for _ in range(concurrency)))

    await workers(warmup)
    gc.collect()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await workers(calls)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return {
        "calls": calls,
        "wall_s": wall,
        "cpu_s": cpu,
        "calls_per_s": calls / wall,
        "cpu_ms_per_call": cpu / calls * 1000,
    }


RUNNERS = {"aiohttp": _run_aiohttp, "ttapi_async": _run_ttapi, "openai": _run_openai}


def _pin(index: int) -> None:
    # Server on one CPU, client on another (when there are two): neither steals the other's.
    if os.environ.get("BENCH_NO_PIN"):
        return
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) >= 2:
        os.sched_setaffinity(0, {cpus[index % len(cpus)]})


def client_main(name: str, base: str, calls: int, concurrency: int, warmup: int) -> None:
    _pin(1)
    result = asyncio.run(RUNNERS[name](base, calls, concurrency, warmup))
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result), flush=True)


# --- the driver ------------------------------------------------------------------------------


def run_client(name: str, base: str, calls: int, concurrency: int, warmup: int) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--client",
            name,
            "--base",
            base,
            "--calls",
            str(calls),
            "--concurrency",
            str(concurrency),
            "--warmup",
            str(warmup),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def _median(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the round with the median calls/s."""
    ordered = sorted(rounds, key=lambda r: r["calls_per_s"])
    return ordered[len(ordered) // 2]


def report(
    small_rounds: dict[str, list[dict[str, Any]]],
    big_rounds: dict[str, list[dict[str, Any]]],
    args: Any,
) -> str:
    small = {name: _median(r) for name, r in small_rounds.items()}
    big = {name: _median(r) for name, r in big_rounds.items()}
    lines = [
        "# Client benchmark: ttapi_async vs bare aiohttp vs the openai SDK",
        "",
        f"`python benchmarks/bench_client.py` on {platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} CPUs, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average "
        f"{os.getloadavg()[0]:.1f} at the end. Server in its own process; each client in its "
        f"own process{'; server and client pinned to one CPU each' if args.pin else ''}.",
        "",
        f"## Small answers: {args.calls:,} calls at concurrency {args.concurrency} "
        f"(median of {args.rounds} interleaved rounds)",
        "",
        "| client | calls/s | CPU ms/call | calls per client CPU-second | wall s |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in CLIENTS:
        r = small[name]
        lines.append(
            f"| {name} | {r['calls_per_s']:,.0f} | {r['cpu_ms_per_call']:.3f} "
            f"| {1000 / r['cpu_ms_per_call']:,.0f} | {r['wall_s']:.2f} |"
        )
    lines += [
        "",
        f"## 2 MB base64 answers: {args.big_calls} calls at concurrency {args.big_concurrency} "
        f"(median of {args.rounds} interleaved rounds)",
        "",
        "| client | calls/s | wall s | CPU s | peak RSS MB |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in CLIENTS:
        r = big[name]
        lines.append(
            f"| {name} | {r['calls_per_s']:,.1f} | {r['wall_s']:.2f} | {r['cpu_s']:.2f} "
            f"| {r['peak_rss_mb']:.0f} |"
        )

    def per_round(
        rounds: dict[str, list[dict[str, Any]]], ours: str, theirs: str, key: str, invert: bool
    ) -> list[float]:
        # A ratio per round: the clients of one round ran under the same neighbours.
        pairs = zip(rounds[ours], rounds[theirs], strict=True)
        return [(b[key] / a[key]) if invert else (a[key] / b[key]) for a, b in pairs]

    tt, aio, oai = "ttapi_async", "aiohttp", "openai"
    cps, cpu, rss = "calls_per_s", "cpu_ms_per_call", "peak_rss_mb"
    sr, br = small_rounds, big_rounds
    checks = [
        ("small: calls/s vs bare aiohttp", per_round(sr, tt, aio, cps, False), 0.85, "%"),
        ("small: calls/s vs openai SDK", per_round(sr, tt, oai, cps, False), 8.0, "x"),
        ("small: CPU per call, aiohttp / ours", per_round(sr, tt, aio, cpu, True), 0.85, "%"),
        ("small: CPU per call, openai / ours", per_round(sr, tt, oai, cpu, True), 8.0, "x"),
        ("big: calls/s vs openai SDK", per_round(br, tt, oai, cps, False), 2.5, "x"),
        ("big: CPU per call, openai / ours", per_round(br, tt, oai, cpu, True), 2.5, "x"),
        ("big: peak RSS vs bare aiohttp", per_round(br, tt, aio, rss, False), 1.2, "max"),
    ]
    lines += [
        "",
        "## Targets (ratio per round: median, and the range over the rounds)",
        "",
        "| check | median | range | target | met (median) |",
        "|---|---:|---:|---:|---|",
    ]
    for label, values, target, kind in checks:
        value = sorted(values)[len(values) // 2]
        met = value <= target if kind == "max" else value >= target

        def show(v: float, kind: str = kind) -> str:
            return f"{v:.0%}" if kind == "%" else f"{v:.2f}x"

        want = f"<= {target:.2f}x" if kind == "max" else f">= {show(target)}"
        span = f"{show(min(values))} - {show(max(values))}"
        lines.append(f"| {label} | {show(value)} | {span} | {want} | {'yes' if met else 'NO'} |")
    lines += [
        "",
        "## Every round",
        "",
        "| phase | client | calls/s per round | CPU ms/call per round |",
        "|---|---|---|---|",
    ]
    for phase, rounds in (("small", small_rounds), ("big", big_rounds)):
        for name in CLIENTS:
            rates = ", ".join(f"{r[cps]:,.0f}" for r in rounds[name])
            cpus = ", ".join(f"{r[cpu]:.3f}" for r in rounds[name])
            lines.append(f"| {phase} | {name} | {rates} | {cpus} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--client", choices=CLIENTS, help=argparse.SUPPRESS)
    parser.add_argument("--base", help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, default=200, help=argparse.SUPPRESS)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5, help="rounds per phase (median)")
    parser.add_argument("--big-calls", type=int, default=200)
    parser.add_argument("--big-concurrency", type=int, default=16)
    parser.add_argument("--only", choices=CLIENTS, action="append", help="run only these")
    parser.add_argument(
        "--write",
        default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "client.md"),
        help="also write the Markdown report here ('' to skip)",
    )
    parser.add_argument("--no-pin", dest="pin", action="store_false", help="do not pin CPUs")
    args = parser.parse_args()
    if args.serve:
        serve()
        return
    if not args.pin:
        os.environ["BENCH_NO_PIN"] = "1"  # inherited by the server and client processes
    if args.client:
        client_main(args.client, args.base, args.calls, args.concurrency, args.warmup)
        return

    server = subprocess.Popen(
        [sys.executable, __file__, "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        base = f"http://127.0.0.1:{int(server.stdout.readline())}"
        names = args.only or CLIENTS
        # Rounds interleave the clients, so that a noisy neighbour hurts them alike; each
        # client's median round is reported.
        rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
        for _ in range(args.rounds):
            for name in names:
                r = run_client(name, base, args.calls, args.concurrency, args.warmup)
                rounds[name].append(r)
                print(f"small {name}: {json.dumps(r)}", file=sys.stderr)
        big_rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
        for _ in range(args.rounds):
            for name in names:
                r = run_client(name, base + "/big", args.big_calls, args.big_concurrency, 16)
                big_rounds[name].append(r)
                print(f"big   {name}: {json.dumps(r)}", file=sys.stderr)
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=30)
    if set(names) == set(CLIENTS):
        text = report(rounds, big_rounds, args)
        print(text)
        if args.write:
            with open(args.write, "w") as fh:
                fh.write(text)


if __name__ == "__main__":
    main()
