"""Hostile files as edit inputs: a read that stalls must not stop the event loop."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from _support import EDITS, GENERATION_OK, PNG

from hostile.server import HostileServer, respond
from ttapi_async import AsyncTTAPI, InvalidRequestError, _uploads


async def test_edit_reads_its_files_off_the_event_loop(
    hostile: HostileServer,
    hostile_client: AsyncTTAPI,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While an edit's file read is stuck, the loop keeps running: the read is on a thread."""
    path = tmp_path / "cat.png"
    path.write_bytes(PNG)
    release = threading.Event()
    real = _uploads._read_path

    def stuck_read(file: Path, *, param: str) -> bytes:
        # Set by the test's coroutine, which runs only if this read is not on the loop.
        assert release.wait(timeout=10), "the event loop stopped while a file was read"
        return real(file, param=param)

    monkeypatch.setattr(_uploads, "_read_path", stuck_read)
    hostile.on(EDITS, respond(200, body=GENERATION_OK))
    edit = asyncio.ensure_future(
        hostile_client.images.edit(prompt="a hat", image=path, model="gpt-image-1")
    )
    await asyncio.sleep(0)  # the edit starts, and reaches its read
    release.set()
    result = await edit
    assert result.created == GENERATION_OK["created"]
    assert hostile.requests_to(EDITS)[0].body.count(PNG) == 1


async def test_edit_of_a_fifo_fails_without_sending(
    hostile: HostileServer, hostile_client: AsyncTTAPI, tmp_path: Path
) -> None:
    """``edit(image=<a FIFO>)`` raises InvalidRequestError and sends nothing."""
    import os

    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(InvalidRequestError, match="not a regular file"):
        await hostile_client.images.edit(prompt="a hat", image=fifo, model="gpt-image-1")
    assert hostile.requests == []
