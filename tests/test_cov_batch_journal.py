"""The batch journal's lifecycle: closing with writes queued, writes after close, --force."""

from __future__ import annotations

from pathlib import Path

import pytest

from ttapi_async.batch import BatchRequest, InputChangedError, Journal, JournalWriteError


def requests(*ids: str) -> list[BatchRequest]:
    return [BatchRequest(i, "gpt4o", {"prompt": f"p-{i}"}) for i in ids]


async def test_aclose_commits_what_was_written(tmp_path: Path) -> None:
    """A job id recorded just before aclose() is in the journal when it is opened again."""
    journal = Journal.open(tmp_path)
    journal.sync_input(requests("a"))
    assert await journal.mark_submitting("a")
    await journal.mark_submitted("a", "job-1")
    await journal.aclose()
    journal.close()  # closing again is a no-op
    with Journal.open(tmp_path) as again:
        row = again.get("a")
    assert row is not None and (row.state, row.job_id) == ("submitted", "job-1")


async def test_a_write_after_close_raises_a_journal_error(tmp_path: Path) -> None:
    """A mark on a closed journal raises JournalWriteError, never a sqlite error."""
    journal = Journal.open(tmp_path)
    journal.sync_input(requests("a"))
    journal.close()
    with pytest.raises(JournalWriteError, match="closed"):
        await journal.mark_submitting("a")


def test_force_forgets_removed_items(tmp_path: Path) -> None:
    """Items gone from the input are refused without --force, and forgotten with it."""
    with Journal.open(tmp_path) as journal:
        journal.sync_input(requests("a", "b"))
    with Journal.open(tmp_path) as journal:
        with pytest.raises(InputChangedError):
            journal.sync_input(requests("a"))
        journal.sync_input(requests("a"), force=True)
        assert [row.id for row in journal.rows()] == ["a"]
