"""Asynchronous jobs whose state is computed from the clock when asked, never by a task.

A job stores when it leaves the queue and when it ends; its status at any
moment follows from the clock. So 100,000 jobs in flight cost memory only
(a few hundred bytes each, thanks to ``__slots__``), and a test that moves a
``ManualClock`` moves every job at once.
"""

from __future__ import annotations

import heapq
import random
import uuid
from collections.abc import Iterator
from typing import Final

from ._config import Duration

__all__ = ["FAILED", "ON_QUEUE", "PENDING_QUEUE", "SUCCESS", "Job", "JobStore"]

PENDING_QUEUE: Final = "PENDING_QUEUE"
ON_QUEUE: Final = "ON_QUEUE"
SUCCESS: Final = "SUCCESS"
FAILED: Final = "FAILED"
STATES: Final = (PENDING_QUEUE, ON_QUEUE, SUCCESS, FAILED)


class Job:
    """Hold one job's inputs and its schedule, in clock seconds."""

    __slots__ = (
        "done_at",
        "failed",
        "finished_at",
        "forced",
        "hook_url",
        "id",
        "key",
        "message",
        "model",
        "product",
        "prompt",
        "queued_until",
        "refer_images",
        "size",
        "submitted_at",
    )

    def __init__(
        self,
        job_id: str,
        product: str,
        key: str,
        prompt: str,
        refer_images: list[str] | None,
        hook_url: str | None,
        model: str | None,
        size: str,
        submitted_at: float,
        queued_until: float,
        done_at: float,
        failed: bool,
        message: str | None,
    ) -> None:
        self.id = job_id
        self.product = product
        self.key = key
        self.prompt = prompt
        self.refer_images = refer_images
        self.hook_url = hook_url
        self.model = model
        self.size = size
        self.submitted_at = submitted_at
        self.queued_until = queued_until
        #: the natural end; the in-progress heap is ordered by it, so it never changes
        self.done_at = done_at
        self.failed = failed
        self.message = message
        #: a status set by ``finish_job``, overriding the schedule
        self.forced: str | None = None
        self.finished_at: float | None = None

    def status(self, now: float) -> str:
        """Return the status at clock time ``now``."""
        if self.forced is not None:
            return self.forced
        if now < self.queued_until:
            return PENDING_QUEUE
        if now < self.done_at:
            return ON_QUEUE
        return FAILED if self.failed else SUCCESS

    def end(self) -> float:
        """Return the clock time the job ends (or ended)."""
        return self.finished_at if self.finished_at is not None else self.done_at

    def __lt__(self, other: Job) -> bool:
        return self.done_at < other.done_at


class _Bucket:
    """Track the unfinished jobs of one (key, product) for the in-progress limit."""

    __slots__ = ("forced_in_heap", "heap")

    def __init__(self) -> None:
        self.heap: list[Job] = []
        # Jobs settled early by finish_job stay in the heap until their natural
        # end; they must not count as in progress meanwhile.
        self.forced_in_heap = 0

    def prune(self, now: float) -> None:
        heap = self.heap
        while heap and heap[0].done_at <= now:
            job = heapq.heappop(heap)
            if job.forced is not None:
                self.forced_in_heap -= 1

    def in_progress(self, now: float) -> int:
        self.prune(now)
        return len(self.heap) - self.forced_in_heap


class JobStore:
    """Create, find and settle jobs; count them by state."""

    def __init__(self, rng: random.Random, *, time_scale: float) -> None:
        self.rng = rng
        self.time_scale = time_scale
        self._jobs: dict[str, Job] = {}
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        #: product -> the most jobs one key has had in progress at once (what the limit caps)
        self.peak_in_progress: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._jobs)

    def __iter__(self) -> Iterator[Job]:
        return iter(self._jobs.values())

    def get(self, job_id: str) -> Job | None:
        """Return the job with this id, or None."""
        return self._jobs.get(job_id)

    def in_progress(self, key: str, product: str, now: float) -> int:
        """Count the jobs of ``key`` for ``product`` still pending or running."""
        bucket = self._buckets.get((key, product))
        return bucket.in_progress(now) if bucket is not None else 0

    def new_id(self) -> str:
        """Return a job id drawn from the seeded generator (reproducible)."""
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def create(
        self,
        *,
        product: str,
        key: str,
        prompt: str,
        refer_images: list[str] | None,
        hook_url: str | None,
        model: str | None,
        size: str,
        now: float,
        duration: Duration,
        queue_share: float,
        failure_rate: float,
        failure_message: str,
    ) -> Job:
        """Create a job starting at ``now`` with a duration and an outcome drawn now."""
        rng = self.rng
        job_id = self.new_id()
        seconds = duration.sample(rng) * self.time_scale
        failed = failure_rate > 0 and rng.random() < failure_rate
        job = Job(
            job_id,
            product,
            key,
            prompt,
            refer_images,
            hook_url,
            model,
            size,
            now,
            now + seconds * queue_share,
            now + seconds,
            failed,
            failure_message if failed else None,
        )
        self._jobs[job_id] = job
        bucket = self._buckets.get((key, product))
        if bucket is None:
            bucket = self._buckets[(key, product)] = _Bucket()
        heapq.heappush(bucket.heap, job)
        # A peak can only be reached at a submission: count it there.
        in_progress = bucket.in_progress(now)
        if in_progress > self.peak_in_progress.get(product, 0):
            self.peak_in_progress[product] = in_progress
        return job

    def finish(self, job: Job, status: str, message: str, now: float) -> None:
        """Settle ``job`` now as SUCCESS or FAILED, whatever its schedule said."""
        if status not in (SUCCESS, FAILED):
            raise ValueError(f"a job can only be finished as SUCCESS or FAILED, not {status!r}")
        if job.status(now) not in (PENDING_QUEUE, ON_QUEUE):
            raise ValueError(f"job {job.id} has already ended")
        bucket = self._buckets[(job.key, job.product)]
        bucket.prune(now)
        # Still pending, so done_at > now and the job is in the heap.
        bucket.forced_in_heap += 1
        job.forced = status
        job.finished_at = now
        job.failed = status == FAILED
        job.message = message if job.failed else None

    def count_by_state(self, now: float) -> dict[str, int]:
        """Return how many jobs are in each state at ``now``."""
        counts = dict.fromkeys(STATES, 0)
        for job in self._jobs.values():
            counts[job.status(now)] += 1
        return counts

    def clear(self) -> None:
        """Forget every job."""
        self._jobs.clear()
        self._buckets.clear()
        self.peak_in_progress.clear()
