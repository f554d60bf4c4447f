"""The watcher's per-job entry: its flags read by name, and it is the watcher's to write."""

from __future__ import annotations

from ttapi_async import JobStatus, JobWatcher
from ttapi_async._watchentry import JobFlags
from ttapi_async.testing import ManualClock


async def never(job_id: str) -> JobStatus:
    return JobStatus(job_id=job_id, status="PENDING")


async def test_flags_read_by_name_through_job_flags() -> None:
    """A job of known age reads LEARNABLE, a resumed one nothing, and a cancelled one SETTLED."""
    async with JobWatcher(fetch=never, clock=ManualClock()) as watcher:
        fresh = watcher.watch("fresh", age=0.0)
        resumed = watcher.watch("resumed", age=None)
        assert JobFlags(fresh.flags) & ~JobFlags.FOLLOWER == JobFlags.LEARNABLE
        assert JobFlags(resumed.flags) == JobFlags(0)
        resumed.cancel()
        assert JobFlags(resumed.flags) == JobFlags.SETTLED
        assert resumed.due is None and fresh.due is not None


def test_the_poll_path_bits_are_the_members_values() -> None:
    """Each int the poll path uses is the value of the JobFlags member of the same name."""
    from ttapi_async import _watchentry

    for member in JobFlags:
        assert member.name is not None
        assert getattr(_watchentry, member.name) == member.value
