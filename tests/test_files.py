"""Bytes to disk: base64 decoding, the image check and atomic writes."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest
from _support import PNG, PNG_B64

from ttapi_async import APIResponseValidationError
from ttapi_async._files import (
    _B64_CHUNK,
    atomic_writer,
    check_image,
    decode_b64_to_bytes,
    decode_b64_to_file,
)

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 20
WEBP = b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 20


@pytest.mark.parametrize(("head", "fmt"), [(PNG, "png"), (JPEG, "jpeg"), (WEBP, "webp")])
def test_check_image_names_the_format(head: bytes, fmt: str) -> None:
    """PNG, JPEG and WebP are recognised by their first bytes."""
    assert check_image(head[:16], what="x") == fmt


@pytest.mark.parametrize("head", [b"", b"GIF89a", b"<html>", b"\x89PN"])
def test_check_image_rejects_other_bytes(head: bytes) -> None:
    """Anything else raises APIResponseValidationError naming what was checked."""
    with pytest.raises(APIResponseValidationError, match="the thing"):
        check_image(head, what="the thing")


def test_decode_b64_to_bytes_round_trips() -> None:
    """Base64 of an image decodes back to the same bytes."""
    assert decode_b64_to_bytes(PNG_B64) == PNG


def test_decode_b64_tolerates_line_breaks() -> None:
    """Base64 wrapped over several lines decodes too."""
    wrapped = "\n".join(PNG_B64[i : i + 60] for i in range(0, len(PNG_B64), 60))
    assert decode_b64_to_bytes(wrapped + "\n") == PNG


def test_decode_b64_larger_than_one_chunk() -> None:
    """An image whose base64 spans several decoding chunks decodes exactly."""
    data = PNG + os.urandom(_B64_CHUNK)  # base64 is 4/3 longer: at least two chunks
    assert decode_b64_to_bytes(base64.b64encode(data).decode()) == data


@pytest.mark.parametrize("b64", ["not base64!!", "QUJD$"])
def test_invalid_base64_raises(b64: str) -> None:
    """Characters outside base64 raise APIResponseValidationError."""
    with pytest.raises(APIResponseValidationError, match="base64"):
        decode_b64_to_bytes(b64)


def test_base64_of_a_non_image_raises() -> None:
    """Valid base64 of something that is not an image raises."""
    with pytest.raises(APIResponseValidationError, match="not a PNG"):
        decode_b64_to_bytes(base64.b64encode(b"hello world, not an image").decode())


def test_decode_b64_to_file_writes_the_image(tmp_path: Path) -> None:
    """``decode_b64_to_file`` writes the decoded image, creating parent directories."""
    path = decode_b64_to_file(PNG_B64, tmp_path / "a" / "b" / "cat.png")
    assert path.read_bytes() == PNG


@pytest.mark.parametrize(
    "b64",
    [base64.b64encode(b"plain text").decode(), "!!!!", "", PNG_B64[:-8] + "$$$$$$$$"],
    ids=["not-image", "bad-chars", "empty", "bad-tail"],
)
def test_failed_decode_leaves_no_file(tmp_path: Path, b64: str) -> None:
    """A body that fails to decode leaves neither the file nor a temporary one."""
    with pytest.raises(APIResponseValidationError):
        decode_b64_to_file(b64, tmp_path / "cat.png")
    assert os.listdir(tmp_path) == []


def test_failed_decode_keeps_the_previous_file(tmp_path: Path) -> None:
    """A failed save over an existing file leaves the old file intact."""
    path = tmp_path / "cat.png"
    path.write_bytes(b"old")
    with pytest.raises(APIResponseValidationError):
        decode_b64_to_file("!!!!", path)
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["cat.png"]


def test_atomic_writer_replaces_only_on_success(tmp_path: Path) -> None:
    """The target appears only when the writer's block completes."""
    path = tmp_path / "out.bin"
    with atomic_writer(path) as fh:
        fh.write(b"data")
        assert not path.exists()
    assert path.read_bytes() == b"data"


def test_atomic_writer_cleans_up_on_error(tmp_path: Path) -> None:
    """An exception inside the block removes the temporary file and re-raises."""
    with pytest.raises(RuntimeError), atomic_writer(tmp_path / "out.bin") as fh:
        fh.write(b"partial")
        raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []


def test_saved_file_gets_the_usual_mode(tmp_path: Path) -> None:
    """A saved image is readable as a file made by ``open()`` would be, not private (0600)."""
    umask = os.umask(0o022)
    os.umask(umask)
    path = decode_b64_to_file(PNG_B64, tmp_path / "cat.png")
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
