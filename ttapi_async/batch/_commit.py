"""Group commit: writes queued on the event loop, committed together on one worker thread.

An fsync takes milliseconds, which the event loop must not spend waiting; writes from
concurrent items share one transaction (one fsync for all the job ids that arrived
together), and while one commit runs, the next group gathers. A write nobody awaits
commits within ``LAZY_COMMIT`` seconds, riding along with the next awaited one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from typing import Any, Final

from ._errors import JournalWriteError

__all__ = ["LAZY_COMMIT", "GroupCommit", "Op"]

#: Seconds within which a write nobody waits for is committed.
LAZY_COMMIT: Final = 0.05

Op = tuple[str, tuple[Any, ...]]
#: (the write, whether it must be fsynced, the future of its caller if one waits)
_Queued = tuple[Op, bool, "asyncio.Future[int] | None"]
#: Runs on the worker thread: commit the writes in one transaction, return each one's rowcount.
Apply = Callable[[list[Op], bool], list[int]]


class GroupCommit:
    """Queue writes from the event loop; commit them in groups on a thread of their own."""

    def __init__(self, apply: Apply, *, name: str, durable: bool = True) -> None:
        self._apply = apply
        self.name = name
        self.durable = durable
        self._pending: list[_Queued] = []
        # Set while a commit runs; resolved (with the commit's error, or None) only after
        # every waiting writer was answered, so whoever awaits it always gets to run again.
        self._round: asyncio.Future[JournalWriteError | None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._closed = False

    @property
    def busy(self) -> bool:
        """Return True while a commit runs on the worker thread."""
        return self._round is not None

    def worker(self) -> concurrent.futures.ThreadPoolExecutor:
        """Return the one thread every access during a run goes through."""
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="ttapi-journal"
            )
        return self._executor

    async def write(self, op: Op, *, wait: bool, sync: bool = False) -> int:
        """Queue one write; with ``wait``, return its rowcount once committed (else -1).

        ``sync`` asks for an fsync (``synchronous=FULL``) of the commit that carries it.
        A failed commit raises ``JournalWriteError`` in every writer that waits for it;
        the writes nobody waits for go back in line for the next commit (or ``close``).
        """
        if self._closed:
            raise JournalWriteError(f"the journal {self.name} is closed")
        loop = asyncio.get_running_loop()
        if not wait:
            self._pending.append((op, False, None))
            if self._timer is None and self._round is None:
                self._timer = loop.call_later(LAZY_COMMIT, self._start)
            return -1
        future: asyncio.Future[int] = loop.create_future()
        self._pending.append((op, sync and self.durable, future))
        if self._round is None:
            self._start()
        return await future

    def _start(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._round is not None or not self._pending or self._closed:
            return
        batch, self._pending = self._pending, []
        loop = asyncio.get_running_loop()
        round_: asyncio.Future[JournalWriteError | None] = loop.create_future()
        self._round = round_
        work = loop.run_in_executor(
            self.worker(), self._apply, [op for op, _, _ in batch], any(d for _, d, _ in batch)
        )
        work.add_done_callback(lambda done: self._finished(batch, done, round_))

    def _finished(
        self,
        batch: list[_Queued],
        work: asyncio.Future[list[int]],
        round_: asyncio.Future[JournalWriteError | None],
    ) -> None:
        self._round = None
        error: JournalWriteError | None = None
        counts: list[int] = []
        if work.cancelled():
            error = JournalWriteError(f"a commit of the journal {self.name} was abandoned")
        elif (exc := work.exception()) is not None:
            if isinstance(exc, JournalWriteError):
                error = exc
            else:
                error = JournalWriteError.of(exc, self.name)
                error.__cause__ = exc
        else:
            counts = work.result()
        if error is not None:
            self._pending[:0] = [queued for queued in batch if queued[2] is None]
        for index, (_, _, future) in enumerate(batch):
            if future is None or future.done():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(counts[index])
        round_.set_result(error)
        if any(future is not None for _, _, future in self._pending):
            self._start()  # writers are waiting: commit for them now (or fail them)
        elif self._pending and error is None and self._timer is None and not self._closed:
            self._timer = asyncio.get_running_loop().call_later(LAZY_COMMIT, self._start)

    async def drain(self) -> None:
        """Commit every write queued so far; raise ``JournalWriteError`` if a commit fails.

        Always makes progress: it awaits only a round that is still running, and every
        round ends by resolving its future after its writers were answered.
        """
        while True:
            round_ = self._round
            if round_ is None:
                if not self._pending:
                    return
                if self._closed:
                    raise JournalWriteError(f"the journal {self.name} closed with writes queued")
                self._start()
                round_ = self._round
                assert round_ is not None
            error = await asyncio.shield(round_)
            if error is not None:
                raise error

    def close(self) -> tuple[list[Op], bool]:
        """Stop the thread (after its commit ends); return what is still queued, and whether
        it must be fsynced; waiting writers are cancelled."""
        if self._closed:
            return [], False
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        batch, self._pending = self._pending, []
        for _, _, future in batch:
            if future is not None and not future.done():
                future.cancel()
        return [op for op, _, _ in batch], any(d for _, d, _ in batch)
