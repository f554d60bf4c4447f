"""Run FakeTTAPI as a process (``python -m ttapi_async.testing``, ``ttapi fake-server``).

argparse, not click: the testing package must work without the CLI extra.
Options left out keep ``FakeTTAPI``'s defaults, which the help text shows.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from ._clock import ManualClock
from ._config import Duration, FaultRule
from ._fake import FakeTTAPI

__all__ = ["build_parser", "main"]

_METAVARS: dict[Callable[[str], Any], str] = {
    int: "N",
    float: "X",
    Duration.parse: "DURATION",
    FaultRule.parse: "RULE",
}
_DEFAULTS = {field.name: field.default for field in attrs.fields(FakeTTAPI) if field.init}


def _default(name: str) -> str:
    value = _DEFAULTS[name]
    if isinstance(value, Duration):
        return f"{value.kind}:{value.a},{value.b}" if value.kind != "fixed" else str(value.a)
    return repr(value) if isinstance(value, str) else str(value)


def build_parser(prog: str = "python -m ttapi_async.testing") -> argparse.ArgumentParser:
    """Return the parser of the fake server's options."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run FakeTTAPI, a local emulator of TTAPI's OpenAI image API.",
        argument_default=argparse.SUPPRESS,
    )

    def option(flag: str, name: str, kind: Callable[[str], Any], text: str, **kw: Any) -> None:
        shown = f" (default: {_default(name)})" if "action" not in kw else ""
        if "choices" not in kw:
            kw["metavar"] = _METAVARS.get(kind, "TEXT")
        parser.add_argument(flag, dest=name, type=kind, help=text + shown, **kw)

    server = parser.add_argument_group("server")
    server.add_argument("--host", dest="host", help="address to bind (default: 127.0.0.1)")
    server.add_argument(
        "--port", dest="port", type=int, metavar="N", help="port to bind; 0 picks a free one"
    )
    option("--api-key", "api_key", str, "the accepted key")
    option("--extra-key", "extra_keys", str, "another accepted key (repeatable)", action="append")
    option(
        "--quota-exhausted-key", "quota_exhausted_keys", str, "a key answered 402", action="append"
    )
    option("--blocked-key", "blocked_keys", str, "a key answered 403", action="append")
    option("--seed", "seed", int, "seed of every random draw")
    option("--time-scale", "time_scale", float, "clock seconds per service second")
    parser.add_argument(
        "--manual-clock",
        action="store_true",
        help='freeze time; move it with POST /_fake/clock/advance {"seconds": N}',
    )
    option("--epoch", "epoch", float, "Unix time the start stands for")
    option(
        "--image-payload",
        "image_payload",
        str,
        "small or realistic",
        choices=("small", "realistic"),
    )
    option("--image-bytes", "image_bytes", int, "pad images to about N bytes")
    option("--url-ttl", "url_ttl", float, "image URL lifetime, service seconds")
    option("--latency", "latency", Duration.parse, "added time of synchronous answers (DURATION)")
    option("--stream-interval", "stream_interval", float, "pause between SSE events")
    option(
        "--stream-partials",
        "stream_partials",
        str,
        "partial images streamed: varied (seeded, at most partial_images) or exact",
        choices=("varied", "exact"),
    )
    option(
        "--job-duration",
        "job_duration",
        Duration.parse,
        "job duration: N, fixed:N, uniform:A,B or lognormal:MEDIAN,SIGMA",
    )
    option("--queue-share", "queue_share", float, "share of a job spent PENDING_QUEUE")
    option("--job-failure-rate", "job_failure_rate", float, "probability a job FAILS")
    option("--job-failure-message", "job_failure_message", str, "message of a FAILED job")
    option("--job-quota", "job_quota", str, "quota of a job")
    option(
        "--submit-id-4o",
        "submit_id_4o",
        str,
        "jobId, job_id or both",
        choices=("jobId", "job_id", "both"),
    )
    option(
        "--submit-id-gpt",
        "submit_id_gpt",
        str,
        "jobId, job_id or both",
        choices=("jobId", "job_id", "both"),
    )
    option("--max-jobs-in-progress", "max_jobs_in_progress", int, "per key and product; then 499")
    option("--rate-limit", "rate_limit", float, "requests per second per key; then 429")
    option("--rate-burst", "rate_burst", int, "bucket size of the rate limit")
    option(
        "--fault",
        "faults",
        FaultRule.parse,
        "KIND:PATH[:PROB[:ARG]], e.g. status:/v1/*:0.1:500,503 (repeatable)",
        action="append",
    )
    option(
        "--business-failure-status",
        "business_failure_status",
        int,
        "HTTP status of FAILED envelopes outside /v1 (400; the vendor also uses 200)",
    )
    option(
        "--banned-word", "banned_words", str, "a prompt word refused (repeatable)", action="append"
    )
    option("--hook-retries", "hook_retries", int, "retries of a failed callback")
    option("--hook-backoff", "hook_backoff", float, "first callback retry delay, doubling")
    option("--hook-timeout", "hook_timeout", float, "seconds one callback may take")
    option("--request-log-limit", "request_log_limit", int, "request records kept")
    return parser


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    settings = dict(vars(args))
    if settings.pop("manual_clock", False):
        settings["clock"] = ManualClock()
    return settings


async def _serve(settings: dict[str, Any], out: Any) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    try:
        async with FakeTTAPI(**settings) as fake:
            print(f"FakeTTAPI listening on {fake.url} key={fake.api_key}", file=out, flush=True)
            await stop.wait()
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def main(argv: Sequence[str] | None = None, *, prog: str | None = None) -> int:
    """Run the fake until SIGINT or SIGTERM; return the exit status.

    ``prog`` names the command in help and errors (``ttapi fake-server`` passes its own).
    """
    parser = build_parser(prog) if prog else build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        settings = _settings(args)
        FakeTTAPI(**settings)  # validate the options before binding anything
    except (TypeError, ValueError) as exc:
        parser.error(str(exc))
    try:
        asyncio.run(_serve(settings, sys.stdout))
    except KeyboardInterrupt:
        # Platforms without loop signal handlers land here on Ctrl-C.
        pass
    except OSError as exc:
        print(f"FakeTTAPI could not start: {exc}", file=sys.stderr)
        return 1
    return 0
