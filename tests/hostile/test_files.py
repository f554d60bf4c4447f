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


async def test_stream_edit_reads_its_files_off_the_event_loop(
    hostile: HostileServer,
    hostile_client: AsyncTTAPI,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """While a streamed edit's file read is stuck, the loop keeps running: the read is on a
    thread, and the file still goes out once."""
    path = tmp_path / "cat.png"
    path.write_bytes(PNG)
    release = threading.Event()
    real = _uploads._read_path

    def stuck_read(file: Path, *, param: str) -> bytes:
        assert release.wait(timeout=10), "the event loop stopped while a file was read"
        return real(file, param=param)

    monkeypatch.setattr(_uploads, "_read_path", stuck_read)
    completed = (
        b'event: image_edit.completed\ndata: {"type": "image_edit.completed", '
        b'"b64_json": "aGk=", "created_at": 1}\n\n'
    )
    hostile.on(EDITS, respond(200, headers={"Content-Type": "text/event-stream"}, body=completed))

    async def first_event() -> str:
        stream = hostile_client.images.stream_edit(prompt="a hat", image=path, model="gpt-image-1")
        async with stream:
            return [event.type async for event in stream][-1]

    streamed = asyncio.ensure_future(first_event())
    await asyncio.sleep(0)  # the stream starts, and reaches its read
    release.set()
    assert await streamed == "image_edit.completed"
    assert hostile.requests_to(EDITS)[0].body.count(PNG) == 1


async def test_stream_edit_of_a_fifo_fails_without_sending(
    hostile: HostileServer, hostile_client: AsyncTTAPI, tmp_path: Path
) -> None:
    """A streamed edit of a FIFO raises InvalidRequestError when it starts and sends nothing."""
    import os

    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    stream = hostile_client.images.stream_edit(prompt="a hat", image=fifo, model="gpt-image-1")
    with pytest.raises(InvalidRequestError, match="not a regular file"):
        async with stream:
            async for _ in stream:
                pass
    assert hostile.requests == []
