"""Keep a fake client's jobs moving on a ManualClock, and make a stalled clock loud.

On a manual clock the watcher polls only when its schedule says so, and the
schedule knows nothing of the fake: a 5 s job, ``clock.advance(6)`` and a first
poll due at 8 s would leave ``await job`` waiting forever. So the fake's
clients poll a job as soon as the clock passes the job's end (jobs with a
``hookUrl`` wait for their callback instead), and when the clock has not moved
for ``manual_clock_stall`` real seconds while a job is pending, the job fails
with an error that says so, instead of hanging silently.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from .._models import JobStatus
from ._clock import ManualClock
from ._jobs import FAILED, SUCCESS

if TYPE_CHECKING:
    from .._watcher import JobWatcher
    from ._fake import FakeTTAPI

__all__ = ["ClockDriver"]

logger = logging.getLogger("ttapi_async.testing")

_ENDED = (SUCCESS, FAILED)


class ClockDriver:
    """Drive one client's watcher from the fake's ManualClock (made by ``fake.client()``)."""

    def __init__(self, fake: FakeTTAPI, watcher: JobWatcher, clock: ManualClock) -> None:
        self.fake = fake
        self.watcher = watcher
        self.clock = clock
        self._timer: asyncio.TimerHandle | None = None
        self._last_now = clock.now
        self._still_since: float | None = None
        clock.subscribe(self.on_advance)
        self._arm()

    def on_advance(self) -> None:
        """Poll every pending job the fake has ended (without a callback to wait for)."""
        if self.watcher.closed:
            self.stop()
            return
        self.poke_ended(with_hooks=False)
        self._arm()

    def poke_ended(self, *, with_hooks: bool, only: str | None = None) -> int:
        """Ask the watcher to fetch the pending jobs that have ended at the fake; count them."""
        state = self.fake._state
        now = self.clock.now
        poked = 0
        for job_id in self.watcher.pending_ids():
            if only is not None and job_id != only:
                continue
            job = state.jobs.get(job_id)
            if job is None or job.status(now) not in _ENDED:
                continue
            if job.hook_url is not None and not with_hooks:
                continue
            poked += self.watcher.poke(job_id)
        return poked

    def stop(self) -> None:
        """Stop driving: the client closed, or the fake is done with this clock."""
        self.clock.unsubscribe(self.on_advance)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self) -> None:
        # A loop timer, not a task: nothing is left pending when a test's loop closes.
        stall = self.fake.manual_clock_stall
        if self._timer is not None or stall is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # armed by the first advance made inside a loop
        self._timer = loop.call_later(min(1.0, stall / 4), self._check)

    def _check(self) -> None:
        self._timer = None
        watcher = self.watcher
        if watcher.closed:
            self.stop()
            return
        loop = asyncio.get_running_loop()
        now = self.clock.now
        pending = watcher.pending_ids()
        if not pending or now != self._last_now or not watcher.quiet():
            self._last_now = now
            self._still_since = None
        elif self._still_since is None:
            self._still_since = loop.time()
        elif loop.time() - self._still_since >= (self.fake.manual_clock_stall or 0.0):
            self._still_since = None
            self._stalled(pending)
        self._arm()

    def _stalled(self, pending: list[str]) -> None:
        # Jobs that ended (their callback never came) only need the fetch; the others can
        # only end if the clock moves, which nothing is going to do.
        if self.poke_ended(with_hooks=True):
            return
        state = self.fake._state
        now = self.clock.now
        for job_id in pending:
            job = state.jobs.get(job_id)
            if job is None:
                continue
            message = (
                f"FakeTTAPI: the ManualClock has stood at {now:g} s for "
                f"{self.fake.manual_clock_stall:g} real seconds while this job runs until "
                f"{job.end():g} s; advance it (fake.clock.advance({job.end() - now:g})) "
                "or await fake.settle(job)"
            )
            logger.error("%s (job %s)", message, job_id)
            self.watcher.deliver(job_id, JobStatus(job_id=job_id, status=FAILED, message=message))
