"""Tests of the SQLite journal: input sync, change detection, states, durability."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ttapi_async.batch import BatchRequest, InputChangedError, Journal
from ttapi_async.batch._journal import JOURNAL_NAME


def reqs(*prompts: str, kind: str = "gpt4o") -> list[BatchRequest]:
    return [BatchRequest(f"id{i}", kind, {"prompt": p}) for i, p in enumerate(prompts)]  # type: ignore[arg-type]


def state_of(folder: Path, item_id: str) -> tuple[str, str | None]:
    """Read an item's state through a separate connection, as a crashed-and-restarted run would."""
    conn = sqlite3.connect(folder / JOURNAL_NAME)
    try:
        row = conn.execute("SELECT state, job_id FROM items WHERE id=?", (item_id,)).fetchone()
    finally:
        conn.close()
    return row[0], row[1]


def test_new_items_start_pending(tmp_path: Path) -> None:
    """Every request of a new batch is recorded as pending, in input order."""
    with Journal.open(tmp_path) as journal:
        report = journal.sync_input(reqs("a", "b"))
        assert (report.total, report.added) == (2, 2)
        assert [(r.id, r.state) for r in journal.rows()] == [("id0", "pending"), ("id1", "pending")]


def test_same_input_again_changes_nothing(tmp_path: Path) -> None:
    """Re-reading the same input adds nothing and raises nothing."""
    with Journal.open(tmp_path) as journal:
        journal.sync_input(reqs("a", "b"))
    with Journal.open(tmp_path) as journal:
        report = journal.sync_input(reqs("a", "b"))
    assert report.added == 0 and not report.changed and not report.removed


def test_changed_request_is_explained(tmp_path: Path) -> None:
    """A changed prompt for a known id raises InputChangedError naming that id."""
    with Journal.open(tmp_path) as journal:
        journal.sync_input(reqs("a", "b"))
    with Journal.open(tmp_path) as journal, pytest.raises(InputChangedError) as info:
        journal.sync_input(reqs("a", "B"))
    assert info.value.changed == ("id1",)
    assert "'id1'" in str(info.value) and "--force" in str(info.value)


def test_removed_item_is_explained(tmp_path: Path) -> None:
    """An id that disappeared from the input is reported, not silently dropped."""
    with Journal.open(tmp_path) as journal:
        journal.sync_input(reqs("a", "b"))
    with Journal.open(tmp_path) as journal, pytest.raises(InputChangedError) as info:
        journal.sync_input(reqs("a"))
    assert info.value.removed == ("id1",)


def test_appended_items_are_accepted(tmp_path: Path) -> None:
    """New ids at the end are simply added: growing a prompt file is not a conflict."""
    with Journal.open(tmp_path) as journal:
        journal.sync_input(reqs("a"))
    with Journal.open(tmp_path) as journal:
        assert journal.sync_input(reqs("a", "b")).added == 1


async def test_force_resets_changed_items(tmp_path: Path) -> None:
    """With force, a changed item starts again as pending with its new request."""
    with Journal.open(tmp_path) as journal:
        journal.sync_input(reqs("a"))
        await journal.mark_submitting("id0")
        await journal.mark_submitted("id0", "job-1")
    with Journal.open(tmp_path) as journal:
        journal.sync_input(reqs("changed"), force=True)
        row = journal.get("id0")
    assert row is not None
    assert (row.state, row.job_id, row.params["prompt"]) == ("pending", None, "changed")


async def test_job_id_is_committed_when_mark_submitted_returns(tmp_path: Path) -> None:
    """Once mark_submitted returns, another connection sees the job id (it is durable)."""
    with Journal.open(tmp_path) as journal:
        journal.sync_input(reqs("a"))
        await journal.mark_submitting("id0")
        await journal.mark_submitted("id0", "job-42")
        assert state_of(tmp_path, "id0") == ("submitted", "job-42")


async def test_concurrent_writes_share_one_transaction(tmp_path: Path) -> None:
    """Writes made in one turn of the loop are committed together and all land."""
    import asyncio

    with Journal.open(tmp_path) as journal:
        journal.sync_input(reqs(*"abcdefgh"))
        await asyncio.gather(*(journal.mark_submitted(f"id{i}", f"j{i}") for i in range(8)))
        assert journal.counts()["submitted"] == 8


async def test_recover_turns_submitting_into_unknown(tmp_path: Path) -> None:
    """An item left "submitting" by a crash may have reached the service: it becomes unknown."""
    with Journal.open(tmp_path) as journal:
        journal.sync_input(reqs("a"))
        await journal.mark_submitting("id0")
    with Journal.open(tmp_path) as journal:
        assert journal.recover() == 1
        row = journal.get("id0")
    assert row is not None and row.state == "unknown" and "may have reached" in (row.error or "")


async def test_requeue_only_what_is_asked(tmp_path: Path) -> None:
    """Failed items go back to pending with failed=True; unknown ones only with unknown=True."""
    with Journal.open(tmp_path) as journal:
        journal.sync_input(reqs("a", "b"))
        await journal.mark_failed("id0", "boom")
        await journal.mark_unknown("id1", "timeout")
        assert journal.requeue(failed=True) == 1
        assert journal.counts()["unknown"] == 1
        assert journal.requeue(unknown=True) == 1
        assert journal.counts()["pending"] == 2


async def test_submits_are_counted(tmp_path: Path) -> None:
    """Each mark_submitting adds one to the item's count of requests sent."""
    with Journal.open(tmp_path) as journal:
        journal.sync_input(reqs("a"))
        await journal.mark_submitting("id0")
        await journal.mark_pending("id0", "429")
        await journal.mark_submitting("id0")
        row = journal.get("id0")
    assert row is not None and row.submits == 2


def test_other_schema_version_is_refused(tmp_path: Path) -> None:
    """A journal written by an incompatible version is refused, not misread."""
    with Journal.open(tmp_path) as journal:
        journal.set_meta("schema", "99")
    with pytest.raises(ValueError, match="journal schema 99"):
        Journal.open(tmp_path)


def test_journal_uses_wal(tmp_path: Path) -> None:
    """The journal runs in WAL mode (readers never block the batch, crashes keep commits)."""
    with Journal.open(tmp_path) as journal:
        mode = journal._conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_file_hash_change_is_reported(tmp_path: Path) -> None:
    """A new hash of the input file is reported even when every request is unchanged."""
    with Journal.open(tmp_path) as journal:
        assert journal.sync_input(reqs("a"), file_hash="h1").file_changed is None
    with Journal.open(tmp_path) as journal:
        assert journal.sync_input(reqs("a"), file_hash="h1").file_changed is False
    with Journal.open(tmp_path) as journal:
        assert journal.sync_input(reqs("a"), file_hash="h2").file_changed is True
