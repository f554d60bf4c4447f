"""Outputs: images written the moment they arrive, and ``manifest.jsonl``.

Base64 answers are decoded in chunks straight into a temporary file (on a worker thread)
and renamed into place; URLs are downloaded at once, since they expire. Nothing keeps an
image's bytes after it is written: results carry paths.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import concurrent.futures
import json
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any, Final, Protocol

from .._files import atomic_writer, decode_b64_to_file
from .._params import sniff_image_format
from .._redact import redact
from ._journal import DONE, FAILED, UNKNOWN, ItemRow, Journal

__all__ = [
    "MANIFEST_NAME",
    "Manifest",
    "image_path",
    "manifest_line",
    "save_b64",
    "save_url",
]

MANIFEST_NAME: Final = "manifest.jsonl"
#: The journal is the record that matters; the live manifest is flushed this often.
FLUSH_EVERY: Final = 0.5
_EXT = {"png": ".png", "jpeg": ".jpg", "webp": ".webp"}
_SUFFIXES = {".png": ".png", ".jpg": ".jpg", ".jpeg": ".jpg", ".webp": ".webp"}


class _Saver(Protocol):
    async def save(self, path: str | Path) -> Path: ...


def image_path(out_dir: Path, stem: str, index: int, count: int, ext: str) -> Path:
    """Return where image ``index`` of ``count`` of an item goes (stems are already safe)."""
    if count <= 1:
        return out_dir / f"{stem}{ext}"
    # Several images of one item share a folder named after it: no "-1" suffix can then
    # collide with another item's stem.
    return out_dir / stem / f"{index + 1}{ext}"


def _ext_of_b64(b64: str, fallback: str | None) -> str:
    try:
        head = base64.b64decode(b64.lstrip()[:24], validate=False)
    except (binascii.Error, ValueError):
        head = b""
    fmt = sniff_image_format(head) or fallback or "png"
    return _EXT.get(fmt, ".png")


async def save_b64(
    b64: str,
    out_dir: Path,
    stem: str,
    index: int,
    count: int,
    fmt: str | None,
    *,
    executor: concurrent.futures.Executor | None = None,
) -> Path:
    """Decode one base64 image to its place, on ``executor`` (megabytes must not stall the loop).

    The batch passes its own one-thread executor: decoding on the default pool's many
    threads spreads megabyte buffers over as many malloc arenas, and the process grows.
    """
    path = image_path(out_dir, stem, index, count, _ext_of_b64(b64, fmt))
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(executor, decode_b64_to_file, b64, path)


def _ext_of_url(url: str) -> str:
    suffix = os.path.splitext(url.split("?", 1)[0].split("#", 1)[0])[1].lower()
    return _SUFFIXES.get(suffix, ".png")


async def save_url(
    source: _Saver, url: str, out_dir: Path, stem: str, index: int, count: int
) -> Path:
    """Download one image (``source.save``) to its place, named by its real format."""
    path = image_path(out_dir, stem, index, count, _ext_of_url(url))
    saved = await source.save(path)
    fmt = sniff_image_format(_head(saved))
    wanted = _EXT.get(fmt or "", saved.suffix)
    if wanted != saved.suffix:
        target = saved.with_suffix(wanted)
        os.replace(saved, target)
        return target
    return saved


def _head(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(16)


def manifest_line(row: ItemRow, out_dir: Path) -> dict[str, Any]:
    """Return the manifest record of one finished item."""
    seconds = None
    if row.started_at is not None and row.finished_at is not None:
        seconds = round(row.finished_at - row.started_at, 3)
    return {
        "id": row.id,
        "kind": row.kind,
        "state": row.state,
        "params": row.params,
        "job_id": row.job_id,
        "files": list(row.files),
        "quota": row.quota,
        "usage": row.usage,
        "submits": row.submits,
        "started_at": row.started_at,
        "submitted_at": row.submitted_at,
        "finished_at": row.finished_at,
        "seconds": seconds,
        "error": row.error,
    }


def _line(record: Mapping[str, Any]) -> str:
    # Through the client's redaction: an error or a job id may quote the API key.
    return redact(json.dumps(record, ensure_ascii=False, separators=(",", ":"))) + "\n"


class Manifest:
    """``manifest.jsonl``: a line per item as it finishes, compacted to one per item at the end.

    During a run, lines are appended (and flushed) as items finish, so ``tail -f`` works
    and a crash keeps what finished. ``compact`` then rewrites the file from the journal,
    atomically: one line per finished item (done, failed or unknown), in input order.
    """

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.path = out_dir / MANIFEST_NAME
        self._fh: IO[str] | None = None
        self._flushed = 0.0

    def append(self, record: Mapping[str, Any]) -> None:
        """Append one record; flushed at most every ``FLUSH_EVERY`` seconds, and at the end."""
        if self._fh is None:
            self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        self._fh.write(_line(record))
        now = time.monotonic()
        if now - self._flushed >= FLUSH_EVERY:
            self._fh.flush()
            self._flushed = now

    def compact(self, journal: Journal) -> int:
        """Rewrite the manifest from the journal; return how many lines it holds.

        Written like an image (``atomic_writer``): replaced only once whole, and with the
        mode the images get, not mkstemp's private 0600.
        """
        self.close()
        count = 0
        with atomic_writer(self.path) as fh:
            rows: Iterable[ItemRow] = journal.rows((DONE, FAILED, UNKNOWN))
            for row in rows:
                fh.write(_line(manifest_line(row, self.out_dir)).encode("utf-8"))
                count += 1
        return count

    def close(self) -> None:
        """Close the file if open."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
