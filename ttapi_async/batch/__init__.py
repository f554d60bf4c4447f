"""Resumable bulk generation: thousands of requests, a durable journal, images to disk.

::

    from ttapi_async import AsyncTTAPI
    from ttapi_async.batch import BatchRequest, run_batch

    requests = [BatchRequest(f"cat-{i}", "gpt4o", {"prompt": f"cat #{i}"}) for i in range(500)]
    async with AsyncTTAPI() as client:
        async for outcome in run_batch(client, requests, out_dir="out/cats"):
            print(outcome.id, outcome.state, outcome.files, outcome.error)

Running it again over the same folder resumes where it stopped. ``read_requests`` reads a
JSONL or plain-text prompt file; the ``ttapi batch`` command wraps all of it.

One batch, many machines: give the client a ``RedisCoordinator`` and the batch a name
(``run_batch(client, requests, out_dir=..., name="cats")``); every runner of that name
takes a share, each item is submitted once across them, a dead runner's items are taken
over (``SharedBatchRunner``, docs/distributed-batch.md).
"""

from typing import TYPE_CHECKING, Any

from ._errors import (
    FolderLockedError,
    JournalCorruptError,
    JournalWriteError,
    OutputFolderError,
    UnjournaledOutputError,
)
from ._folder import LOCK_NAME, FolderLock
from ._input import KINDS, BatchInputError, BatchRequest, Kind, file_fingerprint, read_requests
from ._journal import JOURNAL_NAME, InputChangedError, ItemRow, Journal, SyncReport
from ._limiter import AdaptiveLimiter
from ._names import safe_stem
from ._outcome import BatchOutcome, BatchStats, OutcomeState
from ._outputs import MANIFEST_NAME
from ._runner import BatchRunner
from ._shared_entry import run_batch
from ._shared_errors import (
    RedisDurabilityError,
    SharedInputChangedError,
    SharedRunnersLiveError,
    SharedStoreError,
)

if TYPE_CHECKING:
    from ._shared_runner import SharedBatchRunner

__all__ = [
    "JOURNAL_NAME",
    "KINDS",
    "LOCK_NAME",
    "MANIFEST_NAME",
    "AdaptiveLimiter",
    "BatchInputError",
    "BatchOutcome",
    "BatchRequest",
    "BatchRunner",
    "BatchStats",
    "FolderLock",
    "FolderLockedError",
    "InputChangedError",
    "ItemRow",
    "Journal",
    "JournalCorruptError",
    "JournalWriteError",
    "Kind",
    "OutcomeState",
    "OutputFolderError",
    "RedisDurabilityError",
    "SharedBatchRunner",
    "SharedInputChangedError",
    "SharedRunnersLiveError",
    "SharedStoreError",
    "SyncReport",
    "UnjournaledOutputError",
    "file_fingerprint",
    "read_requests",
    "run_batch",
    "safe_stem",
]


def __getattr__(name: str) -> Any:
    # The shared runner imports redis: only when it is asked for.
    if name == "SharedBatchRunner":
        from ._shared_runner import SharedBatchRunner

        return SharedBatchRunner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
