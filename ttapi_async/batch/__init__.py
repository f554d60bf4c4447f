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
"""

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
from ._runner import BatchRunner, run_batch

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
    "SyncReport",
    "UnjournaledOutputError",
    "file_fingerprint",
    "read_requests",
    "run_batch",
    "safe_stem",
]
