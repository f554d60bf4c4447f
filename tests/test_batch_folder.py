"""Tests of the output folder's guards: the run lock, lost journals, unreadable journals."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest
from _garbage import others_garbage_collected as others_garbage_collected

from ttapi_async.batch import (
    LOCK_NAME,
    BatchRequest,
    BatchRunner,
    FolderLock,
    FolderLockedError,
    Journal,
    JournalCorruptError,
    UnjournaledOutputError,
)


def reqs(n: int = 2) -> list[BatchRequest]:
    return [BatchRequest(f"id{i}", "gpt4o", {"prompt": f"p{i}"}) for i in range(n)]


def test_a_held_folder_is_refused_naming_the_holder(tmp_path: Path) -> None:
    """A second lock on a held folder fails with one line naming the holder's pid and host."""
    with FolderLock(tmp_path), pytest.raises(FolderLockedError) as info:
        FolderLock(tmp_path).acquire()
    message = str(info.value)
    assert f"pid {os.getpid()} on " in message and "started 20" in message
    assert "\n" not in message


def test_a_released_folder_can_be_locked_again(tmp_path: Path) -> None:
    """Once released, the lock is free again and says nothing stale."""
    with FolderLock(tmp_path):
        pass
    assert (tmp_path / LOCK_NAME).read_text() == ""
    with FolderLock(tmp_path) as lock:
        assert lock.held


def test_plan_holds_the_lock_until_the_run_ends(tmp_path: Path) -> None:
    """A runner that planned over a folder keeps a second runner out of it."""
    first = BatchRunner(None, tmp_path)  # type: ignore[arg-type]
    first.plan(reqs())
    try:
        with pytest.raises(FolderLockedError):
            BatchRunner(None, tmp_path).plan(reqs())  # type: ignore[arg-type]
    finally:
        first.close()
    again = BatchRunner(None, tmp_path)  # type: ignore[arg-type]
    again.plan(reqs())
    again.close()


@pytest.mark.parametrize("lost", ["deleted", "emptied"])
def test_images_without_a_journal_are_refused(tmp_path: Path, lost: str) -> None:
    """Finished images beside a deleted or emptied journal are refused, not paid again."""
    (tmp_path / "id0.png").write_bytes(b"\x89PNG")
    if lost == "emptied":
        (tmp_path / "journal.sqlite3").write_bytes(b"")
    with pytest.raises(UnjournaledOutputError, match="1 image"):
        BatchRunner(None, tmp_path).plan(reqs())  # type: ignore[arg-type]


def test_a_manifest_without_a_journal_is_refused(tmp_path: Path) -> None:
    """A manifest.jsonl with no journal beside it is refused the same way."""
    (tmp_path / "manifest.jsonl").write_text('{"id": "id0"}\n')
    with pytest.raises(UnjournaledOutputError, match=r"manifest\.jsonl"):
        BatchRunner(None, tmp_path).plan(reqs())  # type: ignore[arg-type]


def test_force_accepts_images_without_a_journal(tmp_path: Path) -> None:
    """With force, the folder is used anyway (the user chose to pay again)."""
    (tmp_path / "id0.png").write_bytes(b"\x89PNG")
    runner = BatchRunner(None, tmp_path, force=True)  # type: ignore[arg-type]
    assert runner.plan(reqs()).added == 2
    runner.close()


def test_a_corrupt_journal_is_one_line(tmp_path: Path) -> None:
    """A journal that is not SQLite raises JournalCorruptError with a one-line message."""
    (tmp_path / "journal.sqlite3").write_bytes(b"this is not a database" * 100)
    with pytest.raises(JournalCorruptError) as info:
        Journal.open(tmp_path)
    assert "\n" not in str(info.value) and "journal.sqlite3" in str(info.value)


@pytest.mark.usefixtures("others_garbage_collected")
def test_a_refused_journal_closes_its_connection(tmp_path: Path) -> None:
    """A journal of another schema is refused without leaking its sqlite connection."""
    with Journal.open(tmp_path) as journal:
        journal.set_meta("schema", "99")
    with pytest.raises(JournalCorruptError, match="journal schema 99"):
        Journal.open(tmp_path)
    gc.collect()  # a leaked connection warns here (Python 3.13), an error in this suite
