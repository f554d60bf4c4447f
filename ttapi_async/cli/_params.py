"""What lets ``generate``, ``edit`` and ``submit`` reach every API parameter, and the wait line.

Named options cover the common parameters; ``--param KEY=VALUE`` covers all: a key the
library's method takes goes in as that argument (checked as usual), any other into
``extra_body`` (sent as is).
"""

from __future__ import annotations

import asyncio
import inspect
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TextIO, TypeVar

import click

from .._job import Job
from .._models import JobResult
from ._batch import _parse_param

__all__ = ["PARAM", "call_params", "named", "progress_text", "wait_with_progress"]

F = TypeVar("F", bound=Callable[..., Any])

PARAM = click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="Any API parameter (VALUE read as JSON if it parses); keys the library does not "
    "name go in the request body as they are. Repeatable.",
)

# The common parameters' options, by name; each command takes the ones its endpoint has.
_OPTIONS: Mapping[str, Callable[[F], F]] = {
    "background": click.option("--background", help="transparent, opaque or auto (GPT Image)."),
    "moderation": click.option("--moderation", help="low or auto (GPT Image)."),
    "output_compression": click.option(
        "--output-compression", type=click.IntRange(0, 100), help="0-100 (jpeg, webp)."
    ),
    "output_format": click.option("--output-format", type=click.Choice(["png", "jpeg", "webp"])),
    "style": click.option("--style", help="vivid or natural (DALL-E 3)."),
    "response_format": click.option(
        "--response-format", type=click.Choice(["url", "b64_json"]), help="(DALL-E models)."
    ),
    "user": click.option("--user", help="An id of your end user, passed to the service."),
    "input_fidelity": click.option("--input-fidelity", help="high or low (gpt-image-1 edits)."),
    "hook_url": click.option("--hook-url", help="A URL the service calls when the job ends."),
}


def named(*names: str) -> Callable[[F], F]:
    """Return a decorator adding the named options ``names`` (in that order in --help)."""

    def apply(func: F) -> F:
        for name in reversed(names):
            func = _OPTIONS[name](func)
        return func

    return apply


def call_params(
    method: Callable[..., Any], raw: Sequence[str], given: Mapping[str, Any]
) -> dict[str, Any]:
    """Return the keyword arguments for ``method``: ``--param`` pairs, then the named options.

    A named option given wins over a ``--param`` of the same key; a key ``method`` does not
    take (``--background`` for DALL-E 3, say) goes into ``extra_body``.
    """
    accepted = set(inspect.signature(method).parameters) - {"extra_body"}
    kwargs: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    merged = {**_parse_param(raw), **{k: v for k, v in given.items() if v is not None}}
    for key, value in merged.items():
        (kwargs if key in accepted else extra)[key] = value
    if extra:
        kwargs["extra_body"] = extra
    return kwargs


_SPINNER = "|/-\\"


def progress_text(job_id: str, elapsed: float, eta: float | None, tick: int) -> str:
    """Return the wait line: the expected time left where the watcher knows it, else a spinner."""
    if eta is None:
        return f"{_SPINNER[tick % len(_SPINNER)]} job {job_id}: {elapsed:.0f}s elapsed"
    return f"job {job_id}: {elapsed:.0f}s elapsed, about {eta:.0f}s left"


async def wait_with_progress(
    job: Job, *, stream: TextIO | None = None, interval: float = 0.5
) -> JobResult:
    """Await ``job``, redrawing one progress line on ``stream`` (stderr) if it is a terminal."""
    out = sys.stderr if stream is None else stream
    if not out.isatty():
        return await job
    task = asyncio.ensure_future(job.wait())
    started = time.monotonic()
    tick = 0
    try:
        while not task.done():
            line = progress_text(job.id, time.monotonic() - started, job.eta, tick)
            out.write(f"\r{line}\x1b[K")
            out.flush()
            tick += 1
            await asyncio.wait({task}, timeout=interval)
    finally:
        out.write("\r\x1b[K")
        out.flush()
        if not task.done():
            task.cancel()
    return task.result()
