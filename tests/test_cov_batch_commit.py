"""GroupCommit (the journal's group commit) on failures and on close, with a stub apply."""

from __future__ import annotations

import pytest

from ttapi_async.batch import JournalWriteError
from ttapi_async.batch._commit import GroupCommit, Op


class Store:
    """A stub apply: records each commit's ops, or raises ``error`` (a surprise) once."""

    def __init__(self) -> None:
        self.commits: list[list[Op]] = []
        self.error: BaseException | None = None

    def __call__(self, ops: list[Op], durable: bool) -> list[int]:
        if self.error is not None:
            error, self.error = self.error, None
            raise error
        self.commits.append(ops)
        return [1] * len(ops)


async def test_a_surprising_commit_error_becomes_a_journal_error_and_keeps_lazy_writes() -> None:
    """A commit failing with a non-journal error raises JournalWriteError in the awaiting
    writer; a write nobody awaited goes back in line and is committed by the next drain."""
    store = Store()
    commit = GroupCommit(store, name="j")
    await commit.write(("lazy", ()), wait=False)
    store.error = RuntimeError("disk said no")
    with pytest.raises(JournalWriteError) as caught:
        await commit.write(("awaited", ()), wait=True)
    assert isinstance(caught.value.__cause__, RuntimeError)
    await commit.drain()
    assert store.commits == [[("lazy", ())]]
    commit.close()


async def test_close_returns_the_queued_writes_and_later_writes_are_refused() -> None:
    """close() hands back what is still queued (to commit on the spot); a write after it raises."""
    store = Store()
    commit = GroupCommit(store, name="j")
    await commit.write(("lazy", ()), wait=False)
    ops, _ = commit.close()
    assert ops == [("lazy", ())]
    assert commit.close() == ([], False)
    with pytest.raises(JournalWriteError, match="closed"):
        await commit.write(("late", ()), wait=False)
    assert not commit.busy
