"""The batch folder's lock and its check for images no journal knows of."""

from __future__ import annotations

from pathlib import Path

import pytest

from ttapi_async.batch import Journal, UnjournaledOutputError
from ttapi_async.batch._folder import FolderLock, _count_images, refuse_unjournaled


def test_acquire_twice_and_release_twice_are_harmless(tmp_path: Path) -> None:
    """A lock taken twice by its holder stays held once; a second release is a no-op."""
    lock = FolderLock(tmp_path)
    lock.acquire()
    lock.acquire()
    assert lock.held
    lock.release()
    lock.release()
    assert not lock.held
    with FolderLock(tmp_path) as again:
        assert again.held


def test_images_in_item_folders_count_as_unjournaled_output(tmp_path: Path) -> None:
    """An item folder of images (1.png, 2.png) with no journal is refused like loose images."""
    item = tmp_path / "item"
    item.mkdir()
    (item / "1.png").write_bytes(b"x")
    (item / "2.png").write_bytes(b"x")
    (item / "notes.txt").write_text("x")
    with Journal.open(tmp_path) as journal, pytest.raises(UnjournaledOutputError, match="2 image"):
        refuse_unjournaled(tmp_path, journal)


def test_counting_images_stops_at_the_limit(tmp_path: Path) -> None:
    """Counting a huge folder's images stops once it reaches the limit."""
    for k in range(5):
        (tmp_path / f"{k}.png").write_bytes(b"x")
    assert _count_images(tmp_path, limit=3) == 3
