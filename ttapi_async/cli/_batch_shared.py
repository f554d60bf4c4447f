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

__all__ = ["EXIT_STORE", "batch_collect", "batch_status", "coordinator_option", "shared_of"]

#: The exit status of a run that Redis trouble stopped (re-run once it is back).
EXIT_STORE = 4


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


@click.command("batch-collect", short_help="Write one manifest for a shared batch.")
@coordinator_option
@click.option("--name", required=True, help="The shared batch's name.")
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write manifest.jsonl into.",
)
@click.pass_context
def batch_collect(ctx: click.Context, coordinator_url: str | None, name: str, out_dir: Path) -> int:
    """Write OUT/manifest.jsonl for the shared batch NAME: one line per item, saying which
    runner, host and folder hold its files. Exit status 0 when every item is done."""
    coordinator = shared_of(coordinator_url, required=True)
    code = arun(_collect(ctx, coordinator, name, out_dir))
    ctx.exit(code)
    return code


async def _collect(ctx: click.Context, coordinator: Any, name: str, out_dir: Path) -> int:
    from ..batch._shared_status import batch_status as read_status
    from ..batch._shared_status import collect_manifest

    async with open_client(ctx, fake=False, coordinator=coordinator) as client:
        store = await _store(client, name)
        count = await collect_manifest(store, out_dir)
        status = await read_status(store, name)
    echo(f"{out_dir / 'manifest.jsonl'}: {count} item(s)", err=True)
    for line in status.lines()[:1]:
        echo(line, err=True)
    return 0 if status.finished else 1
