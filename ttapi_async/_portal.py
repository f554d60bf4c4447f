"""``Portal``: one event loop in a thread of its own, called into from other threads.

The blocking client runs every coroutine of its ``AsyncTTAPI`` here. A caller blocks
until the coroutine's task ends; an interrupt of the caller (Ctrl-C) cancels that task
and waits for it to unwind, so the request it was making is aborted, not orphaned.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Final, ParamSpec, TypeVar, overload

__all__ = ["Portal"]

_T = TypeVar("_T")
_P = ParamSpec("_P")

# How long an interrupted call waits for its task to unwind before giving up on it: a
# cancelled request releases its connection in milliseconds, but a caller who pressed
# Ctrl-C must never hang on a task that swallows cancellation.
_UNWIND_SECONDS: Final = 10.0


class Portal:
    """Run an event loop in a daemon thread; ``call()`` runs a function there and blocks."""

    def __init__(self, name: str = "ttapi-loop") -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def _main(self) -> None:
        loop = self._loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            try:
                # Nothing should be left: every call waits for its task. Whatever is (a
                # caller that gave up on an unwinding task) is cancelled, not abandoned.
                leftover = asyncio.all_tasks(loop)
                for task in leftover:
                    task.cancel()
                if leftover:
                    loop.run_until_complete(asyncio.gather(*leftover, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.run_until_complete(loop.shutdown_default_executor())
            finally:
                asyncio.set_event_loop(None)
                loop.close()

    @overload
    def call(
        self, fn: Callable[_P, Awaitable[_T]], /, *args: _P.args, **kwargs: _P.kwargs
    ) -> _T: ...

    @overload
    def call(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _T: ...

    def call(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` on the loop (awaiting it if it is a coroutine); block.

        Its exception is raised here unchanged. An exception of the caller's own while it
        waits (``KeyboardInterrupt``) cancels the task first, then propagates.
        """
        if threading.current_thread() is self._thread:
            raise RuntimeError(
                "a blocking TTAPI call was made on the client's own event loop "
                "(from a callback?): it would wait for itself forever"
            )
        if not self._thread.is_alive():
            raise RuntimeError("this TTAPI client is closed; create a new one")
        done = threading.Event()
        box: list[asyncio.Task[Any]] = []

        async def invoke() -> Any:
            result = fn(*args, **kwargs)
            # Coroutines only: a Job is awaitable too, and a method that returns one (resume)
            # must give the Job, not wait for it.
            if inspect.iscoroutine(result):
                return await result
            return result

        def start() -> None:
            task = self._loop.create_task(invoke())
            box.append(task)
            task.add_done_callback(lambda _: done.set())

        def abandon() -> None:
            # Callbacks run in order: if start() was queued, its task exists by now. If the
            # interrupt came before start() was queued, there is nothing to cancel.
            if box:
                box[0].cancel()
            else:
                done.set()

        try:
            # Inside the try: a Ctrl-C landing right after start() is queued still cancels.
            self._loop.call_soon_threadsafe(start)
            # Event.wait() without a timeout is woken by a signal (Ctrl-C) on the main thread.
            done.wait()
        except BaseException:
            self._loop.call_soon_threadsafe(abandon)
            done.wait(_UNWIND_SECONDS)
            raise
        return box[0].result()

    def stop(self) -> None:
        """Stop the loop (cancelling anything left on it), close it and join its thread."""
        if not self._thread.is_alive():
            return
        if threading.current_thread() is self._thread:
            raise RuntimeError("a TTAPI client cannot be closed from its own event loop")
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
