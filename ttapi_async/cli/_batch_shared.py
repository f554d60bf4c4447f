"""``ttapi batch-status`` and ``ttapi batch-collect``: a shared batch seen from anywhere.

Both read the batch ``--name`` from the Redis of ``--coordinator`` (default
``$TTAPI_COORDINATOR``), on the account of the API key (keys are namespaced by its hash).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from ._common import UsageError, arun, echo, open_client
from ._coordinator import ENV_NAMESPACE, ENV_URL, coordinator_from_env

__all__ = [
    "EXIT_NOT_COLLECTED",
    "EXIT_STORE",
    "batch_collect",
    "batch_status",
    "coordinator_option",
    "shared_of",
]

#: The exit status of a run that Redis trouble stopped (re-run once it is back).
EXIT_STORE = 4
#: ``batch-collect``: files missing, refused or in conflict (with ``--require-all``: any
#: file not in the collect folder).
EXIT_NOT_COLLECTED = 5


def coordinator_option(fn: Any) -> Any:
    """Add ``--coordinator URL`` (default ``$TTAPI_COORDINATOR``)."""
    return click.option(
        "--coordinator",
        "coordinator_url",
        metavar="URL",
        help=f"Redis URL of the shared batch and the account's shared limits "
        f"(default ${ENV_URL}; namespace ${ENV_NAMESPACE}).",
    )(fn)


def shared_of(url: str | None, *, required: bool) -> Any:
    """Return a ``RedisCoordinator`` for ``url`` (or ``$TTAPI_COORDINATOR``), or None."""
    env = dict(os.environ)
    if url:
        env[ENV_URL] = url
    try:
        coordinator = coordinator_from_env(env)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if coordinator is None and required:
        raise UsageError(f"a shared batch (--name) needs --coordinator URL (or ${ENV_URL})")
    return coordinator


async def _store(client: Any, name: str) -> Any:
    from ..batch._shared import Store
    from ..batch._shared_runner import check_batch_name

    check_batch_name(name)
    coordinator = await client.open_coordinator()
    return Store(coordinator.redis, coordinator.keys("batch", name))


@click.command("batch-status", short_help="Show a shared batch: done, failed, in flight.")
@coordinator_option
@click.option("--name", required=True, help="The shared batch's name.")
@click.option("--json", "as_json", is_flag=True, help="One JSON record instead of text.")
@click.pass_context
def batch_status(ctx: click.Context, coordinator_url: str | None, name: str, as_json: bool) -> int:
    """Show the shared batch NAME: items done, failed, unknown and in flight, per runner.

    Exit status 0 when every item is done, 1 otherwise.
    """
    coordinator = shared_of(coordinator_url, required=True)
    code = arun(_status(ctx, coordinator, name, as_json))
    ctx.exit(code)
    return code


async def _status(ctx: click.Context, coordinator: Any, name: str, as_json: bool) -> int:
    from ..batch._shared_status import batch_status as read_status

    async with open_client(ctx, fake=False, coordinator=coordinator) as client:
        status = await read_status(await _store(client, name), name)
    if status.total == 0:
        echo(f"no shared batch named {name!r} on this account and namespace", err=True)
        return 1
    if as_json:
        echo(json.dumps(status.record()))
    else:
        for line in status.lines():
            echo(line)
    return 0 if status.finished else 1


@click.command("batch-collect", short_help="Gather a shared batch: one manifest, its images.")
@coordinator_option
@click.option("--name", required=True, help="The shared batch's name.")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="A folder of its own (not a runner's) for manifest.jsonl, the images, index.html.",
)
@click.option(
    "--gallery/--no-gallery",
    default=True,
    show_default=True,
    help="Write OUT/index.html over the collected images, as a local batch does.",
)
@click.option(
    "--require-all",
    is_flag=True,
    help=f"Exit {EXIT_NOT_COLLECTED} unless every file is in OUT (none left on other hosts).",
)
@click.pass_context
def batch_collect(
    ctx: click.Context,
    coordinator_url: str | None,
    name: str,
    out_dir: Path,
    gallery: bool,
    require_all: bool,
) -> int:
    """Gather the shared batch NAME into OUT: manifest.jsonl (one line per item), a copy
    of every image this machine can read (its runner's folder is here or on a shared
    mount), and index.html. Images on other hosts are listed where they are.

    Exit status 0 when every item is done and each file is in OUT or on another host;
    1 when some item is not done; 4 on Redis trouble; 5 when files are missing, refused
    or in conflict (or, with --require-all, left on another host). Run it again to pick
    up more: files already collected are skipped.
    """
    coordinator = shared_of(coordinator_url, required=True)
    code = arun(_collect(ctx, coordinator, name, out_dir, gallery, require_all))
    ctx.exit(code)
    return code


async def _collect(
    ctx: click.Context,
    coordinator: Any,
    name: str,
    out_dir: Path,
    gallery: bool,
    require_all: bool,
) -> int:
    from ..batch._shared_collect import check_collect_folder, collect_batch
    from ..batch._shared_errors import SharedStoreError
    from ..batch._shared_status import batch_status as read_status

    check_collect_folder(out_dir)  # before Redis: a usage error
    async with open_client(ctx, fake=False, coordinator=coordinator) as client:
        try:
            store = await _store(client, name)
            status = await read_status(store, name)
            if status.total == 0:
                echo(f"no shared batch named {name!r} on this account and namespace", err=True)
                return 1
            report = await collect_batch(store, out_dir, gallery=gallery)
        except SharedStoreError as exc:
            echo(f"error: {exc}", err=True)
            return EXIT_STORE
    echo(status.lines()[0], err=True)
    for line in report.lines():
        echo(line, err=True)
    if not status.finished:
        return 1
    if report.broken or (require_all and report.not_here):
        return EXIT_NOT_COLLECTED
    return 0
