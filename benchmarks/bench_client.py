"""Client CPU per call: ttapi_async vs bare aiohttp (and the openai SDK), on the seeds' answers.

Run: ``python benchmarks/bench_client.py [--rounds 7] [--calls 3000] [--callgrind] [--no-pin]``
(a few minutes; the report goes to stdout and to benchmarks/results/client.md unless
``--write ''``).

One local aiohttp.web server runs in its own process (its CPU never counts as the client's),
pinned to one CPU while each client is pinned to the other. It answers with the vendor's own
examples, verbatim from the seeds:

- ``POST /v1/images/generations``: the generation example (a ``url``, a ``revised_prompt``
  of 380 characters, ``usage`` with its details);
- ``POST /openai/4o-image/fetch``: the ON_QUEUE example of a job fetch (what a poll sees
  until the job ends);
- ``POST /big/v1/images/generations``: one image of 2 MB of base64.

Each client runs in its own subprocess, so that its CPU time and its peak RSS are its own.
Phases, each run in ``--rounds`` interleaved rounds (every client once per round, so that a
noisy neighbour hurts them alike; ratios are taken per round, then the median):

1. generate: ``images.generate`` vs bare aiohttp ``post`` + ``json()`` vs the openai SDK;
2. fetch: ``gpt4o.fetch`` (one poll) vs bare aiohttp ``post`` + ``json()``;
3. big: 2 MB base64 answers: wall, CPU, peak RSS.

``--callgrind`` adds a second yardstick that does not move with the machine's load: the
instructions the client process executes per call, counted by ``valgrind --tool=callgrind``
as the difference between a run of ``2N`` calls and one of ``N`` (start-up cancels out).

Targets: client CPU per call <= 1.10x bare aiohttp's, on generate and on fetch (issue 14);
>= 8x the openai SDK's calls/s; on big answers >= 2.5x the openai SDK's throughput with peak
RSS within 20% of aiohttp's (issue 2). Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

PHASE_CLIENTS = {
    "generate": ("aiohttp", "ttapi_async", "openai"),
    "fetch": ("aiohttp", "ttapi_async"),
    "big": ("aiohttp", "ttapi_async", "openai"),
}
CLIENTS = PHASE_CLIENTS["generate"]
PROMPT = "a cute cat"
MODEL = "gpt-image-1"
SIZE = "1024x1024"
JOB_ID = "0ccf0606-3f32-4090-85bd-1786e4593be5"
API_KEY = "bench-key-0123456789abcdef"
GENERATIONS = "/v1/images/generations"
FETCH = "/openai/4o-image/fetch"

# The vendor's example answer of POST /v1/images/generations, verbatim (seed 001).
SEED_GENERATION = {
    "created": 1745818538,
    "data": [
        {
            "url": "https://filesystem.site/cdn/20250428/5LsFMT0Def02RVVUkwJ4v7IslleMzo.webp",
            "revised_prompt": (
                "A cute fluffy cat with big, bright eyes, soft fur, and a playful expression. "
                "It has a light gray coat with hints of white on its paws and tail. The cat is "
                "sitting in a cozy setting, surrounded by soft cushions, with its tail wrapped "
                "around its paws. Its ears are perked up, and it's looking directly at the "
                "viewer, exuding a sense of curiosity and warmth."
            ),
        }
    ],
    "usage": {
        "input_tokens": 9,
        "input_tokens_details": {"image_tokens": 0, "text_tokens": 9},
        "output_tokens": 4160,
        "total_tokens": 4169,
    },
}
# The vendor's example of a job fetch while the job runs, verbatim (seed 000, ON_QUEUE).
SEED_FETCH = {
    "status": "ON_QUEUE",
    "message": None,
    "jobId": JOB_ID,
    "data": {
        "prompt": (
            "画一张美女模特该衣服平面照拍摄照片,要求高像素,高逼真度,完美还原衣服所有细节,"
            "全身照专业姿势,身材性感,穿着潮流,面带微笑,欧美女性皮肤白皙"
        ),
        "referImages": ["https://cdn.ttapi.io/demo/2025-03-30/5d17dd5207daeeac86bcecd2d6405a0.jpg"],
        "imageUrl": None,
        "quota": "2",
        "finishTime": None,
        "hookUrl": "https://webhook-test.com/b129b43b6619f977b3227387fc290f7d",
    },
}
BIG_IMAGE_BYTES = 2 * 1024 * 1024 * 3 // 4  # decodes to 1.5 MiB: 2 MiB of base64


def big_body() -> bytes:
    # A PNG signature, then filler: the answer's shape is what matters, not the pixels.
    raw = b"\x89PNG\r\n\x1a\n" + os.urandom(BIG_IMAGE_BYTES - 8)
    body = {
        "created": 1745818538,
        "data": [{"b64_json": base64.b64encode(raw).decode()}],
        "usage": SEED_GENERATION["usage"],
        "output_format": "png",
    }
    return json.dumps(body).encode()


# --- the server (its own process) ------------------------------------------------------------


def serve() -> None:
    from aiohttp import web

    answers = {
        GENERATIONS: json.dumps(SEED_GENERATION, ensure_ascii=False).encode(),
        FETCH: json.dumps(SEED_FETCH, ensure_ascii=False).encode(),
        "/big" + GENERATIONS: big_body(),
    }

    async def handler(request: web.BaseRequest) -> web.Response:
        body = answers.get(request.path)
        if body is None or request.method != "POST":
            return web.Response(status=404)
        await request.read()
        return web.Response(body=body, content_type="application/json")

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


async def _run_aiohttp(
    phase: str, base: str, calls: int, concurrency: int, warmup: int
) -> dict[str, Any]:
    import aiohttp

    headers = {"TT-API-KEY": API_KEY}
    if phase == "fetch":
        url, body = base + FETCH, {"jobId": JOB_ID}
    else:
        url, body = base + GENERATIONS, {"prompt": PROMPT, "model": MODEL, "size": SIZE}
    async with aiohttp.ClientSession() as session:

        async def call() -> None:
            async with session.post(url, json=body, headers=headers) as resp:
                data = await resp.json()
                assert data["data"]

        return await _drive(call, calls, concurrency, warmup)


async def _run_ttapi(
    phase: str, base: str, calls: int, concurrency: int, warmup: int
) -> dict[str, Any]:
    from ttapi_async import AsyncTTAPI

    async with AsyncTTAPI(api_key=API_KEY, base_url=base) as client:
        if phase == "fetch":

            async def call() -> None:
                status = await client.gpt4o.fetch(JOB_ID)
                assert status.data is not None

        else:

            async def call() -> None:
                r = await client.images.generate(prompt=PROMPT, model=MODEL, size=SIZE)
                assert r.data[0]

        return await _drive(call, calls, concurrency, warmup)


async def _run_openai(
    phase: str, base: str, calls: int, concurrency: int, warmup: int
) -> dict[str, Any]:
    from openai import AsyncOpenAI

    assert phase != "fetch", "the openai SDK has no TTAPI job fetch"
    async with AsyncOpenAI(base_url=base + "/v1", api_key=API_KEY, max_retries=0) as client:

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


def client_main(
    name: str, phase: str, base: str, calls: int, concurrency: int, warmup: int
) -> None:
    _pin(1)
    result = asyncio.run(RUNNERS[name](phase, base, calls, concurrency, warmup))
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result), flush=True)


# --- the driver ------------------------------------------------------------------------------


def _client_argv(
    name: str, phase: str, base: str, calls: int, concurrency: int, warmup: int
) -> list[str]:
    return [
        sys.executable,
        __file__,
        "--client",
        name,
        "--phase",
        phase,
        "--base",
        base,
        "--calls",
        str(calls),
        "--concurrency",
        str(concurrency),
        "--warmup",
        str(warmup),
    ]


def run_client(
    name: str, phase: str, base: str, calls: int, concurrency: int, warmup: int
) -> dict[str, Any]:
    out = subprocess.run(
        _client_argv(name, phase, base, calls, concurrency, warmup),
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


def count_instructions(
    name: str, phase: str, base: str, calls: int, concurrency: int, warmup: int
) -> int:
    """Return the instructions callgrind counts in one client run (start-up included)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={tmp}/callgrind.out",
                *_client_argv(name, phase, base, calls, concurrency, warmup),
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=900,
            # The same hash seed in every run: set and dict layouts, and so the counts, repeat.
            env={**os.environ, "PYTHONHASHSEED": "0", "BENCH_NO_PIN": "1"},
        )
    found = _COLLECTED.findall(out.stderr)
    if not found:
        raise RuntimeError(f"callgrind printed no total:\n{out.stderr[-2000:]}")
    return int(found[-1])


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def _median_round(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the round with the median client CPU per call."""
    ordered = sorted(rounds, key=lambda r: r["cpu_ms_per_call"])
    return ordered[len(ordered) // 2]


def _per_round(
    rounds: dict[str, list[dict[str, Any]]], ours: str, theirs: str, key: str
) -> list[float]:
    # A ratio per round: the clients of one round ran under the same neighbours.
    pairs = zip(rounds[ours], rounds[theirs], strict=True)
    return [a[key] / b[key] for a, b in pairs]


def report(
    phases: dict[str, dict[str, list[dict[str, Any]]]],
    counts: dict[str, dict[str, float]],
    args: Any,
    load: tuple[float, float],
) -> str:
    tt, aio, oai = "ttapi_async", "aiohttp", "openai"
    cps, cpu, rss = "calls_per_s", "cpu_ms_per_call", "peak_rss_mb"
    lines = [
        "# Client benchmark: ttapi_async vs bare aiohttp vs the openai SDK",
        "",
        f"`python benchmarks/bench_client.py --rounds {args.rounds} --calls {args.calls}"
        f"{' --callgrind' if args.callgrind else ''}` on {platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} CPUs, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Server in its own process; "
        f"each client in its own process"
        f"{'; server and client pinned to one CPU each' if args.pin else ''}. "
        f"The server answers with the seeds' examples (see the module docstring).",
        "",
        f"**The machine was loaded**: load average {load[0]:.1f} at the start and "
        f"{load[1]:.1f} at the end, on {os.cpu_count()} CPUs shared with other work. CPU "
        "time per call is inflated by that load (cache and frequency effects) and moves "
        "from round to round; compare the per-round ratios, not the absolute figures"
        + (", and the instruction counts, which the load does not move." if counts else "."),
        "",
    ]
    titles = {
        "generate": f"`images.generate` on the seed's generation answer: {args.calls:,} calls "
        f"at concurrency {args.concurrency}",
        "fetch": f"`gpt4o.fetch` (one poll) on the seed's ON_QUEUE answer: {args.calls:,} "
        f"calls at concurrency {args.concurrency}",
        "big": f"2 MB base64 answers: {args.big_calls} calls at concurrency {args.big_concurrency}",
    }
    for phase, rounds in phases.items():
        lines += [
            f"## {titles[phase]} (median of {args.rounds} interleaved rounds)",
            "",
            "| client | CPU ms/call (median) | range | calls/s | peak RSS MB |",
            "|---|---:|---:|---:|---:|",
        ]
        for name, results in rounds.items():
            mid = _median_round(results)
            cpus = [r[cpu] for r in results]
            lines.append(
                f"| {name} | {_median(cpus):.3f} | {min(cpus):.3f} - {max(cpus):.3f} "
                f"| {_median([r[cps] for r in results]):,.0f} | {mid[rss]:.0f} |"
            )
        lines.append("")
    checks: list[tuple[str, list[float], float, str]] = []
    if "generate" in phases:
        g = phases["generate"]
        checks.append(
            ("generate: CPU per call, ours / aiohttp", _per_round(g, tt, aio, cpu), 1.10, "max")
        )
        if oai in g:
            checks.append(
                ("generate: calls/s, ours / openai", _per_round(g, tt, oai, cps), 8.0, "min")
            )
    if "fetch" in phases:
        f = phases["fetch"]
        checks.append(
            ("fetch: CPU per call, ours / aiohttp", _per_round(f, tt, aio, cpu), 1.10, "max")
        )
    if "big" in phases:
        b = phases["big"]
        if oai in b:
            checks.append(("big: calls/s, ours / openai", _per_round(b, tt, oai, cps), 2.5, "min"))
        checks.append(("big: peak RSS, ours / aiohttp", _per_round(b, tt, aio, rss), 1.2, "max"))
    lines += [
        "## Targets (a ratio per round: its median, and its range over the rounds)",
        "",
        "| check | median | range | target | met (median) |",
        "|---|---:|---:|---:|---|",
    ]
    for label, values, target, kind in checks:
        value = _median(values)
        met = value <= target if kind == "max" else value >= target
        want = f"{'<=' if kind == 'max' else '>='} {target:.2f}x"
        span = f"{min(values):.2f}x - {max(values):.2f}x"
        lines.append(f"| {label} | {value:.2f}x | {span} | {want} | {'yes' if met else 'NO'} |")
    if counts:
        lines += [
            "",
            f"## Instructions per call (callgrind; {args.cg_calls:,} more calls in one run "
            f"than in the other, concurrency {args.concurrency})",
            "",
            "| phase | aiohttp | ttapi_async | ours / aiohttp |",
            "|---|---:|---:|---:|",
        ]
        for phase, per in counts.items():
            lines.append(
                f"| {phase} | {per[aio]:,.0f} | {per[tt]:,.0f} | {per[tt] / per[aio]:.2f}x |"
            )
    lines += [
        "",
        "## Every round",
        "",
        "| phase | client | CPU ms/call per round | calls/s per round |",
        "|---|---|---|---|",
    ]
    for phase, rounds in phases.items():
        for name, results in rounds.items():
            cpus = ", ".join(f"{r[cpu]:.3f}" for r in results)
            rates = ", ".join(f"{r[cps]:,.0f}" for r in results)
            lines.append(f"| {phase} | {name} | {cpus} | {rates} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--client", choices=CLIENTS, help=argparse.SUPPRESS)
    parser.add_argument("--phase", choices=tuple(PHASE_CLIENTS), help=argparse.SUPPRESS)
    parser.add_argument("--base", help=argparse.SUPPRESS)
    parser.add_argument("--warmup", type=int, default=300, help=argparse.SUPPRESS)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=7, help="rounds per phase (median)")
    parser.add_argument("--big-calls", type=int, default=200)
    parser.add_argument("--big-concurrency", type=int, default=16)
    parser.add_argument(
        "--phases",
        default="generate,fetch,big",
        help="comma-separated phases to run (generate, fetch, big)",
    )
    parser.add_argument(
        "--no-openai", dest="openai", action="store_false", help="leave the openai SDK out"
    )
    parser.add_argument(
        "--callgrind",
        action="store_true",
        help="also count instructions per call with valgrind (generate and fetch)",
    )
    parser.add_argument(
        "--cg-calls", type=int, default=600, help="callgrind: the extra calls of the long run"
    )
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
        client_main(args.client, args.phase, args.base, args.calls, args.concurrency, args.warmup)
        return
    if args.callgrind and shutil.which("valgrind") is None:
        parser.error("--callgrind needs valgrind on PATH")

    load_start = os.getloadavg()[0]
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    phases: dict[str, dict[str, list[dict[str, Any]]]] = {}
    counts: dict[str, dict[str, float]] = {}
    try:
        assert server.stdout is not None
        base = f"http://127.0.0.1:{int(server.stdout.readline())}"
        for phase in args.phases.split(","):
            names = [n for n in PHASE_CLIENTS[phase] if args.openai or n != "openai"]
            big = phase == "big"
            where = base + "/big" if big else base
            calls = args.big_calls if big else args.calls
            conc = args.big_concurrency if big else args.concurrency
            warm = 16 if big else args.warmup
            rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
            for i in range(args.rounds):
                # Alternate who goes first: a neighbour's burst should not always hit one.
                order = names if i % 2 == 0 else names[::-1]
                for name in order:
                    r = run_client(name, phase, where, calls, conc, warm)
                    rounds[name].append(r)
                    print(f"{phase} {name}: {json.dumps(r)}", file=sys.stderr)
            phases[phase] = rounds
            if args.callgrind and not big:
                per: dict[str, float] = {}
                for name in ("aiohttp", "ttapi_async"):
                    short = count_instructions(name, phase, base, args.cg_calls, conc, warm)
                    long = count_instructions(name, phase, base, 2 * args.cg_calls, conc, warm)
                    per[name] = (long - short) / args.cg_calls
                    print(f"{phase} {name}: {per[name]:,.0f} instructions/call", file=sys.stderr)
                counts[phase] = per
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(timeout=30)
    text = report(phases, counts, args, (load_start, os.getloadavg()[0]))
    print(text)
    if args.write:
        with open(args.write, "w") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
