"""The blocking client ``TTAPI``: a thin layer over ``AsyncTTAPI`` on a loop it owns."""

from __future__ import annotations

import asyncio
import inspect
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ttapi_async import (
    TTAPI,
    AsyncTTAPI,
    AuthenticationError,
    ImagesResponse,
    InvalidRequestError,
    JobResult,
    JobTimeoutError,
)
from ttapi_async._portal import Portal
from ttapi_async._sync import SyncDalle3, SyncGPT, SyncGPT4o, SyncImages, SyncJob, _SyncResource
from ttapi_async.resources import Dalle3, Images
from ttapi_async.resources.jobs import GPT, GPT4o
from ttapi_async.testing import FakeTTAPI


@pytest.fixture
def server() -> Iterator[Portal]:
    """Yield a loop in a thread of its own, for servers a blocking test talks to."""
    portal = Portal(name="test-server-loop")
    yield portal
    portal.stop()


@pytest.fixture
def fake(server: Portal) -> Iterator[FakeTTAPI]:
    """Yield a FakeTTAPI served from the server thread."""
    emulator = FakeTTAPI()
    server.call(emulator.start)
    yield emulator
    server.call(emulator.close)


@pytest.fixture
def client(fake: FakeTTAPI) -> Iterator[TTAPI]:
    """Yield a blocking client wired to the fake."""
    with TTAPI(api_key=fake.api_key, base_url=fake.url) as c:
        yield c


def test_generate_returns_the_async_clients_response(client: TTAPI, tmp_path: Path) -> None:
    """A blocking generate gives the same ImagesResponse, and save() writes its image."""
    r = client.images.generate(prompt="a cat", model="gpt-image-1", size="1024x1024")
    assert isinstance(r, ImagesResponse)
    saved = client.save(r.data[0], tmp_path / "cat.png")
    assert saved.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert client.read(r.data[0]) == saved.read_bytes()


def test_dalle3_and_edit_block_too(client: TTAPI, tmp_path: Path) -> None:
    """dalle3.generate and images.edit run through the same forwarding."""
    r = client.dalle3.generate(prompt="a cat", size="1024x1792")
    assert r.data[0].url is not None
    png = client.read(client.images.generate(prompt="a cat", model="gpt-image-1").data[0])
    edited = client.images.edit(prompt="a hat", image=png, model="gpt-image-1")
    assert edited.data[0].b64_json


def test_errors_are_the_same_classes(fake: FakeTTAPI) -> None:
    """A refused key raises AuthenticationError and bad parameters InvalidRequestError."""
    with TTAPI(api_key="wrong", base_url=fake.url) as bad:
        with pytest.raises(AuthenticationError):
            bad.images.generate(prompt="a cat", model="gpt-image-1")
        with pytest.raises(InvalidRequestError):
            bad.images.generate(prompt="a cat", model="gpt-image-1", size="7x7")
        with pytest.raises(InvalidRequestError):
            bad.images.stream(prompt="a cat", model="gpt-image-1", size="7x7")


def test_stream_is_an_iterator(client: TTAPI) -> None:
    """images.stream gives a plain iterator of events, ending with the completed image."""
    with client.images.stream(prompt="a cat", model="gpt-image-1", partial_images=2) as events:
        kinds = [event.type for event in events]
    assert kinds[-1] == "image_generation.completed"
    # The fake, as the service may, sends at most the partials asked for (seeded).
    assert kinds[:-1] == ["image_generation.partial_image"] * (len(kinds) - 1)
    assert len(kinds) <= 3


def test_a_blocking_stream_has_the_answers_headers(client: TTAPI) -> None:
    """A blocking stream forwards the headers the async stream read with its first event."""
    with client.images.stream(prompt="a cat", model="gpt-image-1") as events:
        assert dict(events.headers) == {}
        first = next(events)
        assert events.headers["content-type"].startswith("text/event-stream")
        assert events.request_id is None  # the emulator sends none
        for _ in events:
            pass
    assert first.type.startswith("image_generation.")


def test_job_result_times_out_and_the_job_stays_watched(client: TTAPI) -> None:
    """A SyncJob's result(timeout=) raises JobTimeoutError; fetch and cancel still work."""
    job = client.gpt4o.submit(prompt="a fox")
    assert isinstance(job, SyncJob) and job.id
    with pytest.raises(JobTimeoutError):
        job.result(timeout=0.01)
    status = client.gpt4o.fetch(job.id)
    assert status.job_id == job.id
    assert job.cancel() is True


def test_resume_of_a_finished_job_gives_its_result(
    client: TTAPI, fake: FakeTTAPI, server: Portal
) -> None:
    """gpt.resume(job_id).result() fetches at once and returns the JobResult."""
    job_id = server.call(fake.create_job, "a fox", product="gpt", model="gpt-image-2")
    server.call(fake.finish_job, job_id)
    result = client.gpt.resume(job_id).result(timeout=30)
    assert isinstance(result, JobResult)
    assert result.job_id == job_id


def test_works_inside_a_running_loop(fake: FakeTTAPI) -> None:
    """Called from a thread whose event loop is running (a notebook cell), it still works."""

    async def cell() -> ImagesResponse:
        with TTAPI(api_key=fake.api_key, base_url=fake.url) as c:
            return c.images.generate(prompt="a cat", model="gpt-image-1")

    assert isinstance(asyncio.run(cell()), ImagesResponse)


def test_close_leaves_no_thread_loop_session_or_task(fake: FakeTTAPI) -> None:
    """After close() the loop's thread is gone, the loop closed and the session closed."""
    c = TTAPI(api_key=fake.api_key, base_url=fake.url)
    c.images.generate(prompt="a cat", model="gpt-image-1")
    c.gpt4o.submit(prompt="a fox")  # a watched job: the watcher has a task now
    portal, inner = c._portal, c._async
    session = inner._session
    assert session is not None and portal.thread.is_alive()
    c.close()
    assert not portal.thread.is_alive()
    assert portal.thread not in threading.enumerate()
    assert portal.loop.is_closed()
    assert session.closed and inner.closed
    c.close()  # twice is harmless
    with pytest.raises(RuntimeError, match="closed"):
        c.images.generate(prompt="a cat")


def test_construction_errors_leave_no_thread() -> None:
    """A client that cannot be built (no key) raises TTAPIError and stops its loop's thread."""
    before = set(threading.enumerate())
    with pytest.raises(Exception, match="no API key"):
        TTAPI(api_key="")
    assert set(threading.enumerate()) == before


def test_blocking_call_from_the_clients_own_loop_is_refused(client: TTAPI) -> None:
    """A blocking call made on the client's loop (a callback) raises instead of deadlocking."""

    def inside() -> None:
        client.images.generate(prompt="a cat")

    with pytest.raises(RuntimeError, match="wait for itself"):
        client._portal.call(inside)


def test_ctrl_c_cancels_the_request(server: Portal) -> None:
    """Ctrl-C during a blocking call cancels its task: the request's connection is dropped."""
    # Python raises KeyboardInterrupt on SIGINT only if it found SIGINT at its default on
    # start-up: a test run started in the background by a non-interactive shell inherits it
    # ignored, and the interrupt below would do nothing until the client's timeout.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _ctrl_c_cancels_the_request(server)
    finally:
        signal.signal(signal.SIGINT, previous)


def _ctrl_c_cancels_the_request(server: Portal) -> None:
    arrived = threading.Event()
    dropped = threading.Event()

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        arrived.set()
        # Never answers; read() returns b"" once the client closes the connection.
        await reader.read()
        dropped.set()
        writer.close()

    async def serve() -> asyncio.Server:
        return await asyncio.start_server(slow, "127.0.0.1", 0)

    tcp = server.call(serve)
    port = tcp.sockets[0].getsockname()[1]
    main = threading.main_thread().ident
    assert main == threading.get_ident()

    def interrupt() -> None:
        if arrived.wait(30):
            signal.pthread_kill(main, signal.SIGINT)

    interrupter = threading.Thread(target=interrupt)
    # A bounded timeout: should the interrupt miss the call, the test fails instead of hanging.
    with TTAPI(api_key="k", base_url=f"http://127.0.0.1:{port}", timeout=60) as c:
        interrupter.start()
        with pytest.raises(KeyboardInterrupt):
            c.images.generate(prompt="a cat", model="gpt-image-1")
        interrupter.join()
        assert dropped.wait(30)

        def others() -> int:
            return len(asyncio.all_tasks() - {asyncio.current_task()})

        assert c._portal.call(others) == 0
    tcp.close()
    server.call(tcp.wait_closed)


def test_every_async_method_is_forwarded_and_typed() -> None:
    """Each public method of an async resource has a typed blocking entry of the same name."""
    pairs: list[tuple[type, type]] = [
        (Images, SyncImages),
        (Dalle3, SyncDalle3),
        (GPT4o, SyncGPT4o),
        (GPT, SyncGPT),
    ]
    for async_cls, sync_cls in pairs:
        public = {
            name
            for name, value in inspect.getmembers(async_cls, inspect.isfunction)
            if not name.startswith("_")
        }
        assert public <= set(vars(sync_cls)), (sync_cls.__name__, public - set(vars(sync_cls)))


def test_constructor_takes_the_async_clients_settings() -> None:
    """TTAPI takes every AsyncTTAPI setting but ``session`` (bound to another loop)."""
    async_params = inspect.signature(AsyncTTAPI.__init__).parameters
    sync_params = inspect.signature(TTAPI.__init__).parameters
    assert set(sync_params) == set(async_params) - {"session"}
    for name, param in sync_params.items():
        assert param.default == async_params[name].default, name


def test_an_unlisted_async_method_is_forwarded_by_name() -> None:
    """A coroutine method the async resource gains later blocks at once, without sync code."""

    class Later:
        async def hello(self, name: str) -> str:
            return f"hello {name}"

    portal = Portal()
    try:
        resource: Any = _SyncResource(Later(), portal)
        assert resource.hello("you") == "hello you"
        with pytest.raises(AttributeError):
            resource._private  # noqa: B018
    finally:
        portal.stop()
