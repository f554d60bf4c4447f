"""``run_batch``: the one entry point of a batch, local (a folder's journal) or shared (Redis)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._input import BatchRequest
from ._outcome import BatchOutcome
from ._runner import BatchRunner

if TYPE_CHECKING:
    from .._client import AsyncTTAPI
    from ..coordination import RedisCoordinator

__all__ = ["run_batch"]


async def run_batch(
    client: AsyncTTAPI,
    requests: Iterable[BatchRequest],
    *,
    out_dir: str | Path,
    concurrency: int = 100,
    retry_failed: bool = False,
    resubmit_unknown: bool = False,
    force: bool = False,
    max_quota: int | None = None,
    max_tokens: int | None = None,
    coordinator: RedisCoordinator | None = None,
    name: str | None = None,
    accept_risk: bool = False,
) -> AsyncIterator[BatchOutcome]:
    """Run a batch into ``out_dir`` and yield each item's outcome as it ends.

    A shortcut for ``BatchRunner(client, out_dir, ...).run(requests)``; see ``BatchRunner``.
    With ``name`` (and the client's ``RedisCoordinator``, which ``coordinator`` may repeat)
    the batch is shared: every process that runs it under that name takes a share, each
    item is submitted once across them all, and a dead runner's items are taken over (see
    ``SharedBatchRunner``; ``accept_risk`` runs on a Redis that does not fsync every write).
    """
    options: dict[str, Any] = dict(
        concurrency=concurrency,
        retry_failed=retry_failed,
        resubmit_unknown=resubmit_unknown,
        force=force,
        max_quota=max_quota,
        max_tokens=max_tokens,
    )
    runner: BatchRunner
    if name is None and coordinator is None:
        runner = BatchRunner(client, out_dir, **options)
    elif name is None:
        raise ValueError("a shared batch needs a name: run_batch(..., name='cats')")
    else:
        # Imported here: the shared runner imports redis, which a local batch never needs.
        from ._shared_runner import SharedBatchRunner

        runner = SharedBatchRunner(
            client, out_dir, name=name, coordinator=coordinator, accept_risk=accept_risk,
            **options,
        )  # fmt: skip
    async for outcome in runner.run(requests):
        yield outcome
