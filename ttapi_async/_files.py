"""Bytes to disk: base64 decoding in chunks, atomic writes, and the "is this an image" check."""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from ._errors import APIResponseValidationError
from ._params import sniff_image_format

__all__ = [
    "MAX_DOWNLOAD_BYTES",
    "atomic_writer",
    "check_image",
    "decode_b64_to_bytes",
    "decode_b64_to_file",
]

#: The largest image we accept from a URL or a base64 body (a 4K PNG is ~30 MB).
MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024

# A multiple of 4 base64 characters, so every chunk decodes on its own.
_B64_CHUNK = 4 * 256 * 1024


def check_image(head: bytes, *, what: str) -> str:
    """Return the image format of ``head``; raise if the bytes are not an image."""
    fmt = sniff_image_format(head)
    if fmt is None:
        # Never quoted: what answered instead of an image may be anything (an admin page).
        raise APIResponseValidationError(f"{what} is not a PNG, JPEG or WebP image")
    return fmt


def _b64_chunks(b64: str) -> Iterator[bytes]:
    # Decoding a multi-megabyte answer at once would double its memory; chunks keep it flat.
    compact = b64.strip()
    if "\n" in compact or "\r" in compact:
        compact = "".join(compact.split())
    for start in range(0, len(compact), _B64_CHUNK):
        try:
            yield base64.b64decode(compact[start : start + _B64_CHUNK], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise APIResponseValidationError(f"b64_json is not valid base64: {exc}") from exc


def decode_b64_to_bytes(b64: str) -> bytes:
    """Decode an image sent as base64 and check that it is an image."""
    data = b"".join(_b64_chunks(b64))
    check_image(data[:16], what="b64_json")
    return data


@functools.cache
def _new_file_mode() -> int:
    # The umask can only be read by setting it; read it once, on the first save.
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_writer(path: Path) -> Iterator[IO[bytes]]:
    """Yield a temporary file beside ``path`` that replaces ``path`` only on success."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
        # mkstemp makes the file private (0600); a saved image gets the mode open() would give.
        os.chmod(tmp_name, _new_file_mode())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def decode_b64_to_file(b64: str, path: Path) -> Path:
    """Decode base64 straight into ``path``; a bad body leaves no file behind."""
    with atomic_writer(path) as fh:
        first = True
        for chunk in _b64_chunks(b64):
            if first:
                check_image(chunk[:16], what="b64_json")
                first = False
            fh.write(chunk)
        if first:
            raise APIResponseValidationError("b64_json is empty")
    return path
