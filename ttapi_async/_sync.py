"""``TTAPI``: the blocking twin of ``AsyncTTAPI``, for scripts and notebooks.

Nothing here talks to the network or knows an endpoint: every call runs the
``AsyncTTAPI`` method of the same name on the client's own event loop (a thread it
owns, see ``_portal``) and blocks for the answer. A resource's methods are forwarded
by name, so an async method added later works here at once; the one-line ``_call``
/ ``_job`` / ``_stream`` entries below only give it its static type.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar

from ._client import DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_TIMEOUT, AsyncTTAPI
from ._job import Job
from ._models import ImageData, ImageStreamEvent, JobResult, JobStatus
from ._portal import Portal
from ._reading import DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES
from ._retry import RetryPolicy
from .resources import Dalle3, Images, ImageStream
from .resources.jobs import GPT, GPT4o

if TYPE_CHECKING:
    from .coordination import Coordinator

__all__ = ["TTAPI", "SyncImageStream", "SyncJob"]

_P = ParamSpec("_P")
_R = TypeVar("_R")
_S = TypeVar("_S")


class SyncJob:
    """A blocking handle of an asynchronous job: ``job.result(timeout=...)`` waits for it."""

    __slots__ = ("_job", "_portal")

    def __init__(self, job: Job, portal: Portal) -> None:
        self._job = job
        self._portal = portal

    def __repr__(self) -> str:
        return repr(self._job)

    @property
    def id(self) -> str:
        return self._job.id

    @property
    def status(self) -> JobStatus | None:
        """Return the last status fetched; None before any."""
        return self._job.status

    def done(self) -> bool:
        """Return True once the job has a result, an error, or was cancelled here."""
        return self._job.done()

    def result(self, timeout: float | None = None) -> JobResult:
        """Wait for the job's result; raise ``JobTimeoutError`` after ``timeout`` seconds.

        As with ``await job.wait(timeout)``: a timeout (or Ctrl-C) only stops this wait,
        the job stays watched and ``result()`` may be called again.
        """
        return self._portal.call(self._job.wait, timeout)

    def cancel(self) -> bool:
        """Stop watching the job here (it keeps running, and is billed, on the service)."""
        return self._portal.call(self._job.cancel)


class SyncImageStream:
    """An iterator of ``ImageStreamEvent`` that is also a context manager."""

    def __init__(self, stream: ImageStream, portal: Portal) -> None:
        self._stream = stream
        self._portal = portal

    def __iter__(self) -> Iterator[ImageStreamEvent]:
        return self

    def __next__(self) -> ImageStreamEvent:
        try:
            return self._portal.call(self._stream.__anext__)
        except StopAsyncIteration:
            raise StopIteration from None

    def __enter__(self) -> SyncImageStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def headers(self) -> Mapping[str, str]:
        """Return the answer's headers once the first event has been read (empty before)."""
        return self._stream.headers

    @property
    def request_id(self) -> str | None:
        """Return the id the service gave this request, or None."""
        return self._stream.request_id

    def close(self) -> None:
        """Stop reading and release the connection."""
        self._portal.call(self._stream.aclose)


def _blocking_value(value: Any, portal: Portal) -> Any:
    """Return what a blocking caller gets for what an async method returned."""
    if isinstance(value, Job):
        return SyncJob(value, portal)
    if isinstance(value, ImageStream):
        return SyncImageStream(value, portal)
    return value


class _Forward(Generic[_P, _R]):
    """A resource method run on the client's loop, by name: same parameters, blocking."""

    def __init__(self, method: Callable[..., Any]) -> None:
        self._name = method.__name__

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    def __get__(self, obj: _SyncResource[Any], owner: type | None = None) -> Callable[_P, _R]:
        return obj._forward(self._name)


# Three spellings of one runtime thing (a ``_Forward`` by name): they differ only in the
# static type they give the blocking method, read off the async method's own signature.
def _call(method: Callable[Concatenate[Any, _P], Awaitable[_R]]) -> _Forward[_P, _R]:
    """Type a forwarded coroutine method: it blocks and returns what the coroutine returns."""
    return _Forward(method)


def _job(method: Callable[Concatenate[Any, _P], Awaitable[Job] | Job]) -> _Forward[_P, SyncJob]:
    """Type a forwarded method that gives a ``Job``: it gives a ``SyncJob``."""
    return _Forward(method)


def _stream(method: Callable[Concatenate[Any, _P], ImageStream]) -> _Forward[_P, SyncImageStream]:
    """Type a forwarded method that gives an ``ImageStream``: it gives a ``SyncImageStream``."""
    return _Forward(method)


class _SyncResource(Generic[_S]):
    """Base of the blocking resources: forward every method to the async resource."""

    def __init__(self, resource: _S, portal: Portal) -> None:
        self._resource = resource
        self._portal = portal

    def _forward(self, name: str) -> Callable[..., Any]:
        target = getattr(self._resource, name)
        portal = self._portal

        def blocking(*args: Any, **kwargs: Any) -> Any:
            return _blocking_value(portal.call(target, *args, **kwargs), portal)

        blocking.__name__ = name
        blocking.__doc__ = getattr(target, "__doc__", None)
        return blocking

    if not TYPE_CHECKING:
        # Hidden from the type checker, which sees only the typed entries of each class:
        # a method the async resource gained later still works here, untyped until listed.
        def __getattr__(self, name: str) -> Any:
            if name.startswith("_"):
                raise AttributeError(name)
            value = getattr(self._resource, name)
            return self._forward(name) if callable(value) else value


class SyncImages(_SyncResource[Images]):
    """``client.images``, blocking."""

    generate = _call(Images.generate)
    edit = _call(Images.edit)
    stream = _stream(Images.stream)
    stream_edit = _stream(Images.stream_edit)


class SyncDalle3(_SyncResource[Dalle3]):
    """``client.dalle3``, blocking."""

    generate = _call(Dalle3.generate)


class SyncGPT4o(_SyncResource[GPT4o]):
    """``client.gpt4o``, blocking: ``submit`` and ``resume`` give a ``SyncJob``."""

    submit = _job(GPT4o.submit)
    resume = _job(GPT4o.resume)
    fetch = _call(GPT4o.fetch)
    generate = _call(GPT4o.generate)


class SyncGPT(_SyncResource[GPT]):
    """``client.gpt``, blocking: ``submit`` and ``resume`` give a ``SyncJob``."""

    submit = _job(GPT.submit)
    resume = _job(GPT.resume)
    fetch = _call(GPT.fetch)
    generate = _call(GPT.generate)


class TTAPI:
    """Blocking client for TTAPI's OpenAI image models: ``AsyncTTAPI``'s twin.

    Use it as ``with TTAPI() as client:`` or call ``client.close()``. Arguments,
    resources, method names and errors are ``AsyncTTAPI``'s; every call runs on one
    event loop in a thread the client owns, so it also works where a loop is already
    running (a Jupyter notebook), and may be made from several threads at once.
    Ctrl-C in a blocking call cancels the request it was making.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        connect_timeout: float | None = DEFAULT_CONNECT_TIMEOUT,
        max_retries: int | None = None,
        retry_policy: RetryPolicy | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        default_headers: Mapping[str, str] | None = None,
        validate: bool = True,
        proxy: str | None = None,
        trust_env: bool = True,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        allow_private_downloads: bool = False,
        coordinator: Coordinator | None = None,
        lease_timeout: float | None = None,
    ) -> None:
        # No ``session=``: an aiohttp session belongs to the loop it was made in, and this
        # client's loop is its own.
        settings: dict[str, Any] = {
            "api_key": api_key,
            "base_url": base_url,
            "timeout": timeout,
            "connect_timeout": connect_timeout,
            "max_retries": max_retries,
            "retry_policy": retry_policy,
            "max_connections": max_connections,
            "default_headers": default_headers,
            "validate": validate,
            "proxy": proxy,
            "trust_env": trust_env,
            "idle_timeout": idle_timeout,
            "max_response_bytes": max_response_bytes,
            "allow_private_downloads": allow_private_downloads,
            # Opened (and closed) on the client's own loop, like everything else it runs.
            "coordinator": coordinator,
            "lease_timeout": lease_timeout,
        }
        self._portal = Portal()
        try:
            # Made on its loop: the client and its watcher never see another loop.
            self._async: AsyncTTAPI = self._portal.call(AsyncTTAPI, **settings)
        except BaseException:
            self._portal.stop()
            raise
        portal = self._portal
        self.images = SyncImages(self._async.images, portal)
        self.dalle3 = SyncDalle3(self._async.dalle3, portal)
        self.gpt4o = SyncGPT4o(self._async.gpt4o, portal)
        self.gpt = SyncGPT(self._async.gpt, portal)
        #: the async client's running totals (thread-safe to read from here)
        self.spent = self._async.spent

    def __repr__(self) -> str:
        return f"TTAPI(base_url={self.base_url!r}, closed={self.closed})"

    @property
    def base_url(self) -> str:
        return self._async.base_url

    @property
    def closed(self) -> bool:
        return self._async.closed

    def read(self, image: ImageData | JobResult) -> bytes:
        """Return an image's bytes: decode its base64, or download its URL."""
        return self._portal.call(image.read)

    def save(self, image: ImageData | JobResult, path: str | Path) -> Path:
        """Write an image to ``path`` atomically (``await image.save(path)``, blocking)."""
        return self._portal.call(image.save, path)

    def close(self) -> None:
        """Close the async client (watcher, session), then stop and join the loop's thread."""
        if not self._portal.thread.is_alive():
            return
        try:
            self._portal.call(self._async.aclose)
        finally:
            self._portal.stop()

    def __enter__(self) -> TTAPI:
        if self.closed:
            raise RuntimeError("this TTAPI client is closed; create a new one")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
