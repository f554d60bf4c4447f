"""The watcher as its jobs see it: ``WatcherHost``, and the tasks of their async callbacks.

A ``Job`` reaches its ``JobHost`` through its kind (``job.kind.host``: one per watcher, not a
slot per job), never the ``JobWatcher`` itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ._dispatch import Dispatcher, settle_tasks

if TYPE_CHECKING:
    from ._job import Job, Outcome

__all__ = ["CallbackTasks", "WatcherHost"]

logger = logging.getLogger("ttapi_async")


class CallbackTasks:
    """The running async callbacks of one watcher's jobs (a callback never fails the watcher)."""

    __slots__ = ("_tasks",)

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def track(self, job_id: str, awaitable: Awaitable[Any]) -> None:
        """Run ``awaitable`` (returned by a callback of ``job_id``) as a task, logging its error."""

        async def run() -> None:
            try:
                await awaitable
            except Exception:
                logger.exception("on_update callback of job %s failed", job_id)

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settle(self) -> None:
        """Wait for every callback still running."""
        if self._tasks:
            await settle_tasks(list(self._tasks))


class WatcherHost:
    """The ``JobHost`` of one watcher's jobs, made of the watcher's parts."""

    __slots__ = ("_callbacks", "_dispatcher", "_finish")

    def __init__(
        self,
        dispatcher: Dispatcher[Any],
        finish: Callable[[Job, Outcome], None],
        callbacks: CallbackTasks,
    ) -> None:
        self._dispatcher = dispatcher
        self._finish = finish
        self._callbacks = callbacks

    def now(self) -> float:
        """Return the time on the watcher's clock (the one it has now: it may be changed)."""
        return self._dispatcher.clock()

    def finish(self, job: Job, outcome: Outcome) -> None:
        """Stop watching ``job`` and settle it with ``outcome``."""
        self._finish(job, outcome)

    def track_callback(self, job_id: str, awaitable: Awaitable[Any]) -> None:
        """Run a callback's awaitable to its end, logging its error."""
        self._callbacks.track(job_id, awaitable)
