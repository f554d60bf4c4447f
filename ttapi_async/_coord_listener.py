"""What a coordinator tells the client, applied to its watcher (``CoordinatorListener``).

- ``job_settled``: another worker (or a resync) recorded the end of one of this worker's
  jobs: the job resolves from the record, without a fetch.
- ``jobs_adopted``: a dead worker's jobs are this worker's now: watch each with its true
  age (the record's), so its schedule and deadline count from its real submission.
- ``jobs_lost``: this worker was declared dead and another adopted these jobs: stop
  fetching them; each still resolves, from its record (one read per poll period).
- ``fallback_started`` / ``resynced``: Redis went away and came back. Jobs with a webhook
  already poll on their normal schedule, so callbacks lost meanwhile cost nothing.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ._coordination import answer_of, status_of
from .coordination._types import Fallback, JobRecord

if TYPE_CHECKING:
    from ._client import AsyncTTAPI
    from .resources.jobs import JobResource

__all__ = ["WatcherListener", "confirm", "resource_for"]

logger = logging.getLogger("ttapi_async")


class WatcherListener:
    """Apply a coordinator's news to one client's watcher."""

    def __init__(self, client: AsyncTTAPI) -> None:
        self._client = client
        #: True while the coordinator runs on its local fallback (Redis unreachable)
        self.in_fallback = False

    def job_settled(self, record: JobRecord) -> None:
        """Resolve the job from its record (no fetch), unless this process is settling it."""
        client = self._client
        if record.job_id in client._coordination.settling:
            return  # the poll that recorded it resolves it with the winning status
        watcher = client.watcher
        if watcher.get(record.job_id) is None:
            return
        status = status_of(record)
        if status is None:
            watcher.poke(record.job_id)  # an answer this client cannot read: fetch it
        else:
            watcher.deliver(record.job_id, status)

    def jobs_adopted(self, records: list[JobRecord]) -> None:
        """Watch jobs taken over from a dead worker, each with its true age."""
        for record in records:
            resource = self._resource(record.kind)
            if resource is None:
                logger.warning("adopted job %s of unknown kind %r", record.job_id, record.kind)
                continue
            resource._watch(record.job_id, record.kind, record.age, None)

    def jobs_lost(self, job_ids: list[str]) -> None:
        """Stop fetching jobs another worker adopted; they resolve from their records."""
        self._client._coordination.lost.update(job_ids)

    def fallback_started(self, fallback: Fallback) -> None:
        """Note the fallback: every job already polls on its normal schedule."""
        self.in_fallback = True

    def resynced(self) -> None:
        """Note that shared state and pushes are back."""
        self.in_fallback = False

    def _resource(self, kind: str) -> JobResource | None:
        return resource_for(self._client, kind)


def resource_for(client: AsyncTTAPI, kind: str) -> JobResource | None:
    """Return the resource whose jobs have ``kind`` (a watcher key: ``gpt4o``, ``gpt:<model>``)."""
    from .resources.jobs import JobResource

    resource = getattr(client, kind.partition(":")[0], None)
    return resource if isinstance(resource, JobResource) else None


async def confirm(client: AsyncTTAPI, record: JobRecord) -> None:
    """Make the one confirming fetch of a job this process does not watch (the claim is held).

    A terminal answer is recorded (which wakes the job's owner, wherever it runs); a job
    still running gives the claim back, so that a later callback may confirm it.
    """
    coordinator = client._coordination.coordinator
    job_id = record.job_id
    resource = resource_for(client, record.kind)
    try:
        if resource is None:
            raise LookupError(f"job {job_id}: no resource for its kind {record.kind!r}")
        await client._coordination.rate()
        status = await resource._fetch(job_id, None)
    except BaseException:
        client._coordination.spawn(coordinator.release_confirm(job_id), "release a claim")
        raise
    if status.terminal:
        await coordinator.settle(job_id, status=status.status, answer=answer_of(status))
    else:
        await coordinator.release_confirm(job_id)
