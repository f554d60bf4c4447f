"""``ttapi batch``: every request of a file, resumably, with Ctrl-C that always works."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ..batch import KINDS, BatchRunner, file_fingerprint, read_requests
from ..batch._progress import JsonEvents, RichProgress, summary_lines, summary_record
from ._batch_shared import EXIT_STORE, coordinator_option, shared_of
from ._common import EXIT_INTERRUPTED, arun, echo, open_client
from ._demo import demo_input

__all__ = ["EXIT_CAPPED", "batch"]

#: The exit status of a run the spending cap (--max-quota / --max-tokens) stopped.
EXIT_CAPPED = 3


def _parse_param(values: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for text in values:
        key, sep, raw = text.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{text!r} is not KEY=VALUE", param_hint="--param")
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw
    return out


@click.command(short_help="Generate every request of a file, resumably.")
@click.argument(
    "file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--demo", is_flag=True, help="Use 20 built-in demo prompts instead of FILE.")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the images, manifest.jsonl and the journal (re-use it to resume).",
)
@click.option("--fake", is_flag=True, help="Run against a built-in FakeTTAPI: no key, no cost.")
@click.option(
    "--concurrency",
    type=click.IntRange(1, 10_000),
    default=100,
    show_default=True,
    help="Most requests (or jobs) in flight; below it the limit adapts to 429/499 answers.",
)
@click.option(
    "--kind",
    type=click.Choice(KINDS),
    default="gpt4o",
    show_default=True,
    help="Endpoint for plain-text prompts and JSONL lines without a kind.",
)
@click.option("--model", help="Default model (generate, edit, gpt, dalle3).")
@click.option("--size", help="Default size, e.g. 1024x1024.")
@click.option("--quality", help="Default quality (generate, edit, dalle3).")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="Another default parameter (VALUE read as JSON if it parses). Repeatable.",
)
@click.option("--retry-failed", is_flag=True, help="Submit the items that failed before again.")
@click.option(
    "--resubmit-unknown",
    is_flag=True,
    help="Submit again items whose earlier submission may have reached the service "
    "(they may be billed twice).",
)
@click.option(
    "--force", is_flag=True, help="Accept a changed input: redo changed items, forget removed ones."
)
@click.option(
    "--max-quota",
    type=click.IntRange(0),
    help="Spending cap in job quota units (gpt4o, gpt): stop submitting before passing it.",
)
@click.option(
    "--max-tokens",
    type=click.IntRange(0),
    help="Spending cap in usage tokens (generate, edit): stop submitting before passing it.",
)
@coordinator_option
@click.option(
    "--name",
    help="Share the batch through --coordinator's Redis: every runner given this name "
    "takes a part, each item is submitted once across them (docs/distributed-batch.md).",
)
@click.option(
    "--accept-redis-risk",
    is_flag=True,
    help="Run a shared batch on a Redis that does not fsync every write (after a Redis "
    "restart an item may be paid twice).",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no summary.")
@click.option("--jsonl", is_flag=True, help="Write machine-readable events to stdout.")
@click.pass_context
def batch(
    ctx: click.Context,
    file: Path | None,
    demo: bool,
    out_dir: Path,
    fake: bool,
    concurrency: int,
    kind: str,
    model: str | None,
    size: str | None,
    quality: str | None,
    params: tuple[str, ...],
    retry_failed: bool,
    resubmit_unknown: bool,
    force: bool,
    max_quota: int | None,
    max_tokens: int | None,
    coordinator_url: str | None,
    name: str | None,
    accept_redis_risk: bool,
    quiet: bool,
    jsonl: bool,
) -> int:
    """Generate an image for every request in FILE, resumably, into --out.

    FILE is JSONL (one request per line: {"id": ..., "kind": ..., "prompt": ..., other
    parameters}) or plain text (one prompt per line). Run the same command again to resume
    after a crash or Ctrl-C: finished items are skipped and submitted jobs are watched by
    id, never submitted twice. --max-quota / --max-tokens cap the spending: what is spent
    plus what is in flight (at the cost learned from finished items) never passes the cap;
    items not submitted stay pending for a later run. Exit status: 0 when every item is
    done, 1 when any failed, 3 when the spending cap stopped the run, 130 after Ctrl-C.

    With --name (and --coordinator or $TTAPI_COORDINATOR) the batch is shared: run the same
    command on every machine; the first records the batch, the others join, a dead
    runner's items are taken over. Redis must fsync every write (--accept-redis-risk
    otherwise). Exit status 0 then means every item of the batch is done, and 4 that Redis
    trouble stopped this runner (run it again once Redis is back).
    """
    client_kw: dict[str, Any] = {}
    if coordinator_url or name is not None:
        client_kw["coordinator"] = shared_of(coordinator_url, required=name is not None)
    defaults = {"model": model, "size": size, "quality": quality, **_parse_param(params)}
    code = arun(
        _batch(
            ctx,
            demo_input(file, demo),
            out_dir,
            fake=fake,
            concurrency=concurrency,
            kind=kind,
            defaults=defaults,
            retry_failed=retry_failed,
            resubmit_unknown=resubmit_unknown,
            force=force,
            caps=(max_quota, max_tokens),
            shared=(name, accept_redis_risk),
            client_kw=client_kw,
            quiet=quiet,
            jsonl=jsonl,
        )
    )
    ctx.exit(code)
    return code


async def _batch(
    ctx: click.Context,
    file: Path,
    out_dir: Path,
    *,
    fake: bool,
    concurrency: int,
    kind: str,
    defaults: dict[str, Any],
    retry_failed: bool,
    resubmit_unknown: bool,
    force: bool,
    caps: tuple[int | None, int | None] = (None, None),
    shared: tuple[str | None, bool] = (None, False),
    client_kw: dict[str, Any] | None = None,
    quiet: bool,
    jsonl: bool,
) -> int:
    events = JsonEvents(sys.stdout) if jsonl else None
    name, accept_risk = shared
    async with open_client(ctx, fake=fake, **(client_kw or {})) as client:
        options: dict[str, Any] = dict(
            concurrency=concurrency,
            retry_failed=retry_failed,
            resubmit_unknown=resubmit_unknown,
            force=force,
            max_quota=caps[0],
            max_tokens=caps[1],
        )
        requests = read_requests(file, kind=kind, defaults=defaults)
        runner: BatchRunner
        if name is None:
            runner = BatchRunner(client, out_dir, **options)
            report = runner.plan(requests, file_hash=file_fingerprint(file))
        else:
            from ..batch import SharedBatchRunner, SharedStoreError

            runner = SharedBatchRunner(
                client, out_dir, name=name, accept_risk=accept_risk, **options
            )
            try:
                report = await runner.aplan(requests, file_hash=file_fingerprint(file))
            except SharedStoreError as exc:
                echo(f"error: {exc}", err=True)
                return EXIT_STORE
        stats = runner.stats
        if events is not None:
            events.emit(
                "start",
                total=stats.total,
                already_done=stats.already_done,
                added=report.added,
                changed=len(report.changed),
                file_changed=report.file_changed,
                out=str(out_dir),
            )
        if not quiet and report.changed:
            echo(f"--force: {len(report.changed)} changed item(s) will be redone", err=True)
        elif not quiet and report.file_changed and not report.added:
            note = f"note: {file} changed since the last run, but none of its requests did"
            echo(note, err=True)
        progress = None if quiet else RichProgress(stats)
        with _sigint(runner, progress):
            display = progress.running() if progress else contextlib.nullcontext()
            async with display:
                async for outcome in runner.run():
                    if events is not None:
                        events.item(outcome)
                    if progress is not None and not outcome.ok:
                        progress.report(outcome)
    store_down = getattr(runner, "store_down", None)
    if store_down is not None:  # one line, and the hint: the batch resumes from Redis
        echo(f"error: {store_down}", err=True)
        return EXIT_STORE
    final = getattr(runner, "final_counts", None)
    if events is not None:
        record = summary_record(stats)
        if final is not None:
            record["batch"] = final
        events.emit("summary", **record)
    if not quiet:
        for line in summary_lines(stats, str(out_dir)):
            echo(line, err=True)
        if fake and stats.interrupted and not stats.stopped_reason:
            echo(
                "note: the --fake service ended with this run, and its jobs with it: the next "
                "run reports them failed, and --retry-failed submits them again",
                err=True,
            )
        if final is not None:
            left = sum(final.values()) - final["done"]
            echo(f"batch {name!r}: {final['done']} done, {left} not done, of "
                 f"{sum(final.values())} (every runner)", err=True)  # fmt: skip
    elif stats.stopped_reason:
        echo(f"error: {stats.stopped_reason}", err=True)
    elif stats.capped:
        echo(f"stopped: {stats.capped}", err=True)
    if stats.interrupted and not stats.stopped_reason:
        return EXIT_INTERRUPTED
    if stats.capped:
        return EXIT_CAPPED
    if final is not None:
        return 0 if final["done"] == sum(final.values()) else 1
    if stats.failed or stats.unknown or stats.remaining or stats.still_submitted:
        return 1
    return 0


@contextlib.contextmanager
def _sigint(runner: BatchRunner, progress: RichProgress | None) -> Any:
    """First Ctrl-C: stop submitting, keep the journal consistent. Second: abandon requests.

    The handler is a plain signal handler, not the loop's: it runs even while a coroutine
    holds the loop without yielding. It asks the loop to stop the runner; when the loop
    has not acted on the previous press (it is stuck), or on a third press, it raises
    KeyboardInterrupt there and then: the journal's commits are durable, so the next run
    resumes what this one submitted.
    """
    loop = asyncio.get_running_loop()
    presses = 0
    acted = 0  # presses the loop has acted on

    def say(text: str) -> None:
        if progress is not None:
            progress.console.print(text, highlight=False)
        else:
            echo(text, err=True)

    def on_loop(press: int) -> None:
        nonlocal acted
        if presses > 2 or acted < presses - 1:
            return  # a later press interrupted the stuck loop already
        acted = press
        if press == 1:
            say(
                "stopping: no new submissions; submitted jobs stay recorded for a resume "
                "(Ctrl-C again to abandon requests in flight)"
            )
            runner.stop()
        else:
            say("abandoning requests in flight (recorded as unknown)")
            runner.abort()

    def handler(signum: int, frame: object) -> None:
        nonlocal presses
        presses += 1
        if presses > 2 or acted < presses - 1:
            raise KeyboardInterrupt
        loop.call_soon_threadsafe(on_loop, presses)

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread: leave Ctrl-C as it is
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
