"""The click application behind ``ttapi``: batch, generate, edit, submit, fetch, fake-server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import AsyncIterator, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from .._errors import TTAPIError
from .._redact import RedactingFilter, redact
from ..batch import (
    KINDS,
    BatchInputError,
    BatchRunner,
    InputChangedError,
    OutputFolderError,
    file_fingerprint,
    read_requests,
)
from ..batch._outputs import save_b64, save_url
from ..batch._progress import JsonEvents, RichProgress, summary_lines, summary_record
from ..resources._base import compact
from ._demo import demo_input
from ._gallery import gallery

__all__ = ["cli", "run"]

T = TypeVar("T")

#: Exit status after Ctrl-C, as shells report a process ended by SIGINT.
EXIT_INTERRUPTED = 130

# The --fake service: realistic shapes and limits, jobs of ~1-2 s instead of ~40 s.
FAKE_SETTINGS: dict[str, Any] = {
    "time_scale": 0.035,
    "max_jobs_in_progress": 10,
    "seed": 7,
}


def echo(message: str = "", *, err: bool = False) -> None:
    """Print one line through the client's redaction (server text may quote the key)."""
    click.echo(redact(message), err=err)


class CliError(click.ClickException):
    """A failure reported as one line on stderr, exit status 1."""

    def show(self, file: Any = None) -> None:
        echo(f"error: {self.format_message()}", err=True)


class UsageError(CliError):
    """A command that cannot start as given: one line on stderr, exit status 2."""

    exit_code = 2


def run(argv: list[str] | None) -> int:
    """Run the click app without letting it exit; return the status."""
    try:
        result = cli.main(args=argv, prog_name="ttapi", standalone_mode=False)
    except click.exceptions.Abort:
        echo("interrupted", err=True)
        return EXIT_INTERRUPTED
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        echo("interrupted", err=True)
        return EXIT_INTERRUPTED
    return int(result or 0)


def _arun(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine; turn the library's errors into one clear line."""
    try:
        return asyncio.run(coro)
    except (OutputFolderError, BatchInputError) as exc:
        # The folder or the input cannot be used as they are; nothing was sent.
        raise UsageError(str(exc)) from None
    except (TTAPIError, InputChangedError) as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        text = f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc)
        raise CliError(text) from None


@contextlib.asynccontextmanager
async def _client(ctx: click.Context, *, fake: bool, **client_kw: Any) -> AsyncIterator[Any]:
    """Yield a client: the configured service, or a FakeTTAPI started in this process."""
    from .._client import AsyncTTAPI
    from .._schedule import PollSchedule

    options = ctx.find_root().obj or {}
    if fake:
        from ..testing import FakeTTAPI

        async with FakeTTAPI(**FAKE_SETTINGS) as server, server.client(**client_kw) as client:
            # The fake's jobs run time_scale times faster: so must the polls.
            client.watcher.configure(
                schedule=PollSchedule().scaled(FAKE_SETTINGS["time_scale"]), max_per_second=None
            )
            yield client
        return
    async with AsyncTTAPI(
        api_key=options.get("api_key"), base_url=options.get("base_url"), **client_kw
    ) as client:
        scale = options.get("poll_scale")
        if scale is not None:
            client.watcher.configure(schedule=PollSchedule().scaled(scale), max_per_second=None)
        yield client


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--api-key",
    envvar="TTAPI_API_KEY",
    show_envvar=True,
    help="Your TTAPI key (never printed).",
)
@click.option(
    "--base-url",
    envvar="TTAPI_BASE_URL",
    show_envvar=True,
    help="Service address (default https://api.ttapi.io).",
)
@click.option(
    "--poll-scale",
    type=click.FloatRange(min=0.0001, max=1.0),
    envvar="TTAPI_POLL_SCALE",
    help="Poll jobs this many times sooner than usual (for a time-scaled fake server).",
)
@click.option("-v", "--verbose", count=True, help="Log requests and retries to stderr (-vv: all).")
@click.version_option(package_name="ttapi_async", prog_name="ttapi")
@click.pass_context
def cli(
    ctx: click.Context,
    api_key: str | None,
    base_url: str | None,
    poll_scale: float | None,
    verbose: int,
) -> None:
    """Generate images with TTAPI's OpenAI image models, one or thousands at a time.

    Try it with no key: ttapi batch --demo --out out/demo --fake
    """
    ctx.obj = {"api_key": api_key, "base_url": base_url, "poll_scale": poll_scale}
    if verbose:
        logging.basicConfig(
            level=logging.DEBUG if verbose > 1 else logging.INFO,
            format="%(asctime)s %(name)s %(levelname)s %(message)s",
            stream=sys.stderr,
        )
        # On the handler: it sees every logger's records (aiohttp's, asyncio's), not only ours.
        for handler in logging.getLogger().handlers:
            handler.addFilter(RedactingFilter())


# --- batch -------------------------------------------------------------------------------------


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


@cli.command(short_help="Generate every request of a file, resumably.")
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
    quiet: bool,
    jsonl: bool,
) -> int:
    """Generate an image for every request in FILE, resumably, into --out.

    FILE is JSONL (one request per line: {"id": ..., "kind": ..., "prompt": ..., other
    parameters}) or plain text (one prompt per line). Run the same command again to resume
    after a crash or Ctrl-C: finished items are skipped and submitted jobs are watched by
    id, never submitted twice. Exit status: 0 when every item is done, 1 when any failed,
    130 after Ctrl-C.
    """
    defaults = {"model": model, "size": size, "quality": quality, **_parse_param(params)}
    code = _arun(
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
    quiet: bool,
    jsonl: bool,
) -> int:
    events = JsonEvents(sys.stdout) if jsonl else None
    async with _client(ctx, fake=fake) as client:
        runner = BatchRunner(
            client,
            out_dir,
            concurrency=concurrency,
            retry_failed=retry_failed,
            resubmit_unknown=resubmit_unknown,
            force=force,
        )
        report = runner.plan(
            read_requests(file, kind=kind, defaults=defaults), file_hash=file_fingerprint(file)
        )
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
    if events is not None:
        events.emit("summary", **summary_record(stats))
    if not quiet:
        for line in summary_lines(stats, str(out_dir)):
            echo(line, err=True)
        if fake and stats.interrupted and not stats.stopped_reason:
            echo(
                "note: the --fake service ended with this run, and its jobs with it: the next "
                "run reports them failed, and --retry-failed submits them again",
                err=True,
            )
    elif stats.stopped_reason:
        echo(f"error: {stats.stopped_reason}", err=True)
    if stats.interrupted and not stats.stopped_reason:
        return EXIT_INTERRUPTED
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


# --- one-shot commands ---------------------------------------------------------------------------

_FAKE_FLAG = click.option("--fake", is_flag=True, help="Use a built-in FakeTTAPI (no key).")
_OUT_DIR = click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Folder to save images in.",
)
_NAME = click.option("--name", default="image", show_default=True, help="File name stem.")


async def _save_response(response: Any, out_dir: Path, name: str) -> list[Path]:
    from ..batch._names import safe_stem

    stem = safe_stem(name)
    images = list(response.data)
    paths = []
    for index, image in enumerate(images):
        if image.b64_json is not None:
            fmt = getattr(response, "output_format", None)
            paths.append(await save_b64(image.b64_json, out_dir, stem, index, len(images), fmt))
        elif image.url:
            paths.append(await save_url(image, image.url, out_dir, stem, index, len(images)))
    return paths


@cli.command(short_help="Generate images from a prompt and save them.")
@click.argument("prompt")
@click.option("--model", help="gpt-image-2, gpt-image-1.5, gpt-image-1, dall-e-2 or dall-e-3.")
@click.option("--size", help="e.g. 1024x1024.")
@click.option("--quality", help="auto, high, medium, low (GPT Image); hd, standard (DALL-E).")
@click.option("-n", "n", type=click.IntRange(1, 10), help="How many images.")
@click.option("--output-format", type=click.Choice(["png", "jpeg", "webp"]))
@click.option("--dalle3", is_flag=True, help="Use the legacy DALL-E 3 endpoint.")
@_OUT_DIR
@_NAME
@_FAKE_FLAG
@click.pass_context
def generate(
    ctx: click.Context,
    prompt: str,
    model: str | None,
    size: str | None,
    quality: str | None,
    n: int | None,
    output_format: str | None,
    dalle3: bool,
    out_dir: Path,
    name: str,
    fake: bool,
) -> int:
    """Generate images from PROMPT and save them (prints the paths)."""

    async def go() -> list[Path]:
        async with _client(ctx, fake=fake) as client:
            if dalle3:
                params = compact(prompt=prompt, size=size or "1024x1024", quality=quality)
                response = await client.dalle3.generate(**params)
            else:
                params = compact(
                    prompt=prompt,
                    model=model,
                    size=size,
                    quality=quality,
                    n=n,
                    output_format=output_format,
                )
                response = await client.images.generate(**params)
            return await _save_response(response, out_dir, name)

    for path in _arun(go()):
        echo(str(path))
    return 0


@cli.command(short_help="Edit images following a prompt.")
@click.argument("prompt")
@click.option(
    "-i",
    "--image",
    "images",
    multiple=True,
    required=True,
    help="An image to edit (a path or an https:// URL). Repeatable.",
)
@click.option("--mask", help="PNG whose transparent pixels mark where to edit.")
@click.option("--model", help="gpt-image-1 (and newer) or dall-e-2.")
@click.option("--size", help="e.g. 1024x1024.")
@click.option("--quality")
@click.option("-n", "n", type=click.IntRange(1, 10))
@_OUT_DIR
@_NAME
@_FAKE_FLAG
@click.pass_context
def edit(
    ctx: click.Context,
    prompt: str,
    images: tuple[str, ...],
    mask: str | None,
    model: str | None,
    size: str | None,
    quality: str | None,
    n: int | None,
    out_dir: Path,
    name: str,
    fake: bool,
) -> int:
    """Edit or extend one or more images following PROMPT (prints the saved paths)."""

    async def go() -> list[Path]:
        async with _client(ctx, fake=fake) as client:
            params = compact(mask=mask, model=model, size=size, quality=quality, n=n)
            response = await client.images.edit(prompt=prompt, image=list(images), **params)
            return await _save_response(response, out_dir, name)

    for path in _arun(go()):
        echo(str(path))
    return 0


def _family(client: Any, family: str) -> Any:
    resource = getattr(client, family, None)
    if resource is None:
        raise CliError(f"this version of ttapi_async has no {family} job API")
    return resource


def _status_json(status: Any) -> str:
    from .._models import converter

    data = converter.unstructure(status)
    return json.dumps(data, default=str, ensure_ascii=False)


_FAMILY = click.option(
    "--family",
    type=click.Choice(["gpt4o", "gpt"]),
    default="gpt4o",
    show_default=True,
    help="Job family: GPT-4o (/openai/4o-image) or the gpt family (/openai/gpt).",
)


@cli.command(short_help="Submit an image job; print its id.")
@click.argument("prompt")
@_FAMILY
@click.option("--model", help="gpt family: gpt-image-2 (default), gpt-image-1, ...")
@click.option("--aspect-ratio", help="gpt-image-2: 1:1, 3:4, 4:3, 16:9, 9:16.")
@click.option("--size", help="gpt-image-2-plus: WxH.")
@click.option("--refer", "refer_images", multiple=True, help="A reference image URL. Repeatable.")
@click.option("--wait", is_flag=True, help="Wait for the job and save its image.")
@_OUT_DIR
@_NAME
@_FAKE_FLAG
@click.pass_context
def submit(
    ctx: click.Context,
    prompt: str,
    family: str,
    model: str | None,
    aspect_ratio: str | None,
    size: str | None,
    refer_images: tuple[str, ...],
    wait: bool,
    out_dir: Path,
    name: str,
    fake: bool,
) -> int:
    """Submit an image job for PROMPT; print its id (and, with --wait, the saved path)."""

    async def go() -> None:
        async with _client(ctx, fake=fake) as client:
            params: dict[str, Any] = {"prompt": prompt}
            if refer_images:
                params["refer_images"] = list(refer_images)
            if family == "gpt":
                params.update(compact(model=model, aspect_ratio=aspect_ratio, size=size))
            job = await _family(client, family).submit(**params)
            echo(job.id)
            if wait:
                result = await job
                path = await save_url(
                    result, result.image_url, out_dir, _safe(name or job.id), 0, 1
                )
                echo(str(path))

    _arun(go())
    return 0


def _safe(name: str) -> str:
    from ..batch._names import safe_stem

    return safe_stem(name)


@cli.command(short_help="Print a job's status, or wait and save it.")
@click.argument("job_id")
@_FAMILY
@click.option("--wait", is_flag=True, help="Wait until the job ends, then save its image.")
@_OUT_DIR
@click.option("--name", help="File name stem (default: the job id).")
@click.pass_context
def fetch(
    ctx: click.Context,
    job_id: str,
    family: str,
    wait: bool,
    out_dir: Path,
    name: str | None,
) -> int:
    """Print a job's status as JSON (with --wait: wait for it and save its image)."""

    async def go() -> None:
        async with _client(ctx, fake=False) as client:
            resource = _family(client, family)
            if not wait:
                echo(_status_json(await resource.fetch(job_id)))
                return
            result = await resource.resume(job_id)
            path = await save_url(result, result.image_url, out_dir, _safe(name or job_id), 0, 1)
            echo(str(path))

    _arun(go())
    return 0


@cli.command(
    "fake-server",
    short_help="Run FakeTTAPI, the local emulator.",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    add_help_option=False,
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def fake_server(args: tuple[str, ...]) -> int:
    """Run FakeTTAPI, the local emulator, until Ctrl-C (--help lists its options)."""
    from ..testing._server_main import main as server_main

    return server_main(list(args), prog="ttapi fake-server")


cli.add_command(gallery)
