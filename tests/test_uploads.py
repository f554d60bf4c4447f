"""Special files given as images: only regular files are read, and never more than the cap."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from _support import PNG

from ttapi_async import InvalidRequestError
from ttapi_async._uploads import MAX_UPLOAD_BYTES, prepare_upload


def test_dev_zero_is_refused_unread() -> None:
    """``image="/dev/zero"`` raises InvalidRequestError (a device), not MemoryError."""
    with pytest.raises(InvalidRequestError, match="not a regular file"):
        prepare_upload("/dev/zero", param="image")


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    """A FIFO with no writer is refused at once (opening it must not block the loop)."""
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(InvalidRequestError, match="not a regular file"):
        prepare_upload(fifo, param="image")


def test_an_open_device_file_is_refused_unread() -> None:
    """A file object open on a device is refused before ``read()`` is called."""
    with open("/dev/zero", "rb") as fh, pytest.raises(InvalidRequestError, match="regular"):
        prepare_upload(fh, param="image")


def test_a_file_over_the_cap_is_refused_by_its_size(tmp_path: Path) -> None:
    """A regular file larger than the cap is refused by its size, before any read."""
    big = tmp_path / "big.png"
    with open(big, "wb") as fh:
        fh.truncate(MAX_UPLOAD_BYTES + 1)  # sparse: no disk, no memory
    with pytest.raises(InvalidRequestError, match=f"is {MAX_UPLOAD_BYTES + 1:,} bytes"):
        prepare_upload(big, param="image")


def test_a_file_object_over_the_cap_is_refused() -> None:
    """An in-memory file longer than the cap is refused after reading one byte past it."""

    class Endless(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def read(self, size: int = -1) -> bytes:
            assert size > 0, "an unbounded read() of an endless file"
            return b"\x00" * size

    with pytest.raises(InvalidRequestError, match="larger than that"):
        prepare_upload(Endless(), param="image")


def test_regular_files_and_buffers_still_read(tmp_path: Path) -> None:
    """A PNG path and a BytesIO are read whole, as before."""
    path = tmp_path / "cat.png"
    path.write_bytes(PNG)
    assert prepare_upload(path, param="image").data == PNG
    assert prepare_upload(io.BytesIO(PNG), param="image").data == PNG
    with open(path, "rb") as fh:
        assert prepare_upload(fh, param="image").data == PNG


def test_a_missing_file_still_says_it_cannot_be_read(tmp_path: Path) -> None:
    """A path that does not exist raises InvalidRequestError naming it."""
    with pytest.raises(InvalidRequestError, match="cannot read"):
        prepare_upload(tmp_path / "nope.png", param="image")
