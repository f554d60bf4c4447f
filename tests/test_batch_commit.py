"""Tests of the journal's group commit: drain always makes progress, failures are kept."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ttapi_async.batch import BatchRequest, Journal, JournalWriteError
from ttapi_async.batch._commit import GroupCommit, Op

# Commit, let the worker thread finish, let the loop mark the commit's future done, then
# drain before that future's done-callback runs: the window in which the old drain()
# awaited an already-done future forever without yielding (100% CPU, Ctrl-C ignored).
DRAIN_IN_THE_WINDOW = """
import asyncio, sys, tempfile
from pathlib import Path
from ttapi_async.batch import BatchRequest, Journal

async def main() -> None:
    with Journal.open(Path(tempfile.mkdtemp())) as journal:
        journal.sync_input([BatchRequest("a", "gpt4o", {"prompt": "x"})])
        writer = asyncio.ensure_future(journal.mark_submitted("a", "job-1"))
        await asyncio.sleep(0)  # the writer queues its write; the commit starts
        journal._commits.worker().submit(lambda: None).result()  # the commit has ended
        await asyncio.sleep(0)  # its future is done; its callback is only queued
        await journal.drain()
        await writer
        print(journal.get("a").state)

asyncio.run(main())
"""


def test_drain_right_after_a_commit_ends_returns() -> None:
    """drain() called between a commit's end and its callback returns (it used to spin)."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(DRAIN_IN_THE_WINDOW)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout.strip()) == (0, "submitted"), done.stderr


class _Disk:
    """An apply function whose commits fail while ``full`` is set, as on a full disk."""

    def __init__(self) -> None:
        self.full = False
        self.committed: list[Op] = []

    def apply(self, ops: list[Op], durable: bool) -> list[int]:
        if self.full:
            raise OSError(28, "No space left on device")
        self.committed.extend(ops)
        return [1] * len(ops)


async def test_failed_commit_raises_in_its_writer_and_in_drain() -> None:
    """A commit that fails raises JournalWriteError (disk_full) in the writer and in drain."""
    disk = _Disk()
    commits = GroupCommit(disk.apply, name="j")
    disk.full = True
    with pytest.raises(JournalWriteError) as info:
        await commits.write(("a", ()), wait=True)
    assert info.value.disk_full
    await commits.write(("b", ()), wait=False)
    with pytest.raises(JournalWriteError):
        await commits.drain()
    commits.close()


async def test_writes_nobody_awaits_survive_a_failed_commit() -> None:
    """Unawaited writes of a failed commit are committed by the next drain once it can."""
    disk = _Disk()
    commits = GroupCommit(disk.apply, name="j")
    disk.full = True
    await commits.write(("lazy", ()), wait=False)
    with pytest.raises(JournalWriteError):
        await commits.write(("awaited", ()), wait=True)
    disk.full = False
    await commits.drain()
    assert disk.committed == [("lazy", ())]
    commits.close()


async def test_two_journals_on_one_file_never_both_claim_an_item(tmp_path: Path) -> None:
    """Two writers sharing one journal: for each item exactly one mark_submitting wins."""
    requests = [BatchRequest(f"i{n}", "gpt4o", {"prompt": f"p{n}"}) for n in range(50)]
    with Journal.open(tmp_path) as one, Journal.open(tmp_path) as two:
        one.sync_input(requests)
        two.sync_input(requests)
        claims = await asyncio.gather(
            *(j.mark_submitting(r.id) for r in requests for j in (one, two))
        )
        assert one.counts()["submitting"] == 50
    wins = [claims[i] + claims[i + 1] for i in range(0, len(claims), 2)]
    assert wins == [1] * 50


async def test_a_claimed_item_is_not_claimed_again(tmp_path: Path) -> None:
    """mark_submitting returns False for an item that is no longer pending."""
    with Journal.open(tmp_path) as journal:
        journal.sync_input([BatchRequest("a", "gpt4o", {"prompt": "x"})])
        assert await journal.mark_submitting("a") is True
        assert await journal.mark_submitting("a") is False
        await journal.mark_submitted("a", "job-1")
        assert await journal.mark_submitting("a") is False
