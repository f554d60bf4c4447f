"""AsyncTTAPI: configuration, the session's lifecycle, downloads; sending is in ``_sending``."""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import math
import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

import aiohttp
import attrs
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from ._downloads import Downloads
from ._errors import InvalidRequestError, TTAPIError
from ._proxies import NO_PROXY, Route, env_proxy
from ._reading import DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES
from ._redact import REDACTOR, register
from ._retry import RetryPolicy
from ._sending import FormFactory, Sender
from ._types import NOT_GIVEN, NotGiven, RequestOptions
from ._version import __version__

if TYPE_CHECKING:
    from .coordination import Coordinator

__all__ = [
    "DEFAULT_BASE_URL",
    "NOT_GIVEN",
    "AsyncTTAPI",
    "FormFactory",
    "NotGiven",
    "RequestOptions",
]

DEFAULT_BASE_URL: Final = "https://api.ttapi.io"
# Image generation takes minutes on the service's side; a short default would abandon
# (and, for paid POSTs, possibly double-bill) work that was about to finish.
DEFAULT_TIMEOUT: Final = 600.0
DEFAULT_CONNECT_TIMEOUT: Final = 30.0
DEFAULT_MAX_RETRIES: Final = 2
DEFAULT_MAX_CONNECTIONS: Final = 100


class _State(enum.Enum):
    UNOPENED = "unopened"
    OPENED = "opened"
    CLOSED = "closed"


class AsyncTTAPI(Sender):
    """Asynchronous client for TTAPI's OpenAI image models.

    Use it as ``async with AsyncTTAPI() as client:`` or call ``await client.aclose()``.
    The key comes from ``api_key`` or the ``TTAPI_API_KEY`` environment variable; it is
    never shown in a repr, an error or a log line. ``HTTP_PROXY`` / ``HTTPS_PROXY`` /
    ``NO_PROXY`` are honoured (``trust_env=False`` ignores them); ``proxy=`` names one.

    ``coordinator`` shares job records, webhook routing and the jobs-in-progress limit
    with other processes (``ttapi_async.coordination.RedisCoordinator``); without one the
    client keeps them in process (a ``LocalCoordinator``). Every job submit first takes
    a lease under its product's limit, waiting at most ``lease_timeout`` seconds (None: as
    long as it takes) before ``LeaseTimeoutError``. The client opens the coordinator on
    first use and closes it in ``aclose()``, whether it was passed in or not: one
    coordinator serves one client at a time (a second open client given it raises
    ``ValueError``); clients share state through coordinators on one namespace.
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
        session: aiohttp.ClientSession | None = None,
        validate: bool = True,
        proxy: str | None = None,
        trust_env: bool = True,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        allow_private_downloads: bool = False,
        coordinator: Coordinator | None = None,
        lease_timeout: float | None = None,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get("TTAPI_API_KEY")
        if not key:
            raise TTAPIError(
                "no API key: pass api_key=... or set the TTAPI_API_KEY environment variable"
            )
        if max_retries is not None and max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        if max_connections < 1:
            raise ValueError(f"max_connections must be >= 1, got {max_connections}")
        self._api_key = key
        # Process-wide, and for the life of the process: every error and log record is
        # cleaned of every client's key, even after the client that had it closed.
        register(key)
        self._redact = REDACTOR
        url = base_url or os.environ.get("TTAPI_BASE_URL") or DEFAULT_BASE_URL
        self.base_url: str = url.rstrip("/")
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        policy = retry_policy or RetryPolicy(max_retries=DEFAULT_MAX_RETRIES)
        if max_retries is not None:
            # Given both, max_retries wins; given only a policy, the policy's count stands.
            policy = attrs.evolve(policy, max_retries=max_retries)
        self.retry_policy: RetryPolicy = policy
        self.max_connections = max_connections
        # As requests and httpx do: HTTP(S)_PROXY / NO_PROXY are honoured unless trust_env
        # is off; ``proxy`` wins over them. An https URL always goes through a CONNECT
        # tunnel (aiohttp never forwards it in the clear), so a proxy never sees the key.
        self._proxy = proxy
        self._trust_env = trust_env
        # Set when the own session opens (see _proxies): the proxy of every API call, and
        # whether downloads look theirs up in the environment.
        self._api_route: Route = NO_PROXY
        self._env_proxies = False
        self.validate = validate
        #: seconds without a byte (in a stream: without an event) once an answer has started
        self.idle_timeout: float | None = _checked_idle(idle_timeout, param="idle_timeout")
        #: the most bytes (after decompression) one API answer may take
        self.max_response_bytes = _checked_cap(max_response_bytes)
        #: whether downloads may go to private, loopback or link-local addresses even when
        #: base_url is not one (they may whenever it is: the emulator)
        self.allow_private_downloads = allow_private_downloads
        self._downloads = Downloads(self)
        self._default_headers = dict(default_headers or {})
        self._borrowed_session = session
        self._session: aiohttp.ClientSession | None = session
        self._state = _State.UNOPENED
        self._close_callbacks: list[Callable[[], Awaitable[None]]] = []
        self._last_timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=connect_timeout)
        self._timeouts: dict[tuple[float | None, float | None], aiohttp.ClientTimeout] = {
            (timeout, connect_timeout): self._last_timeout
        }
        # Case-insensitive and built once: aiohttp takes a multidict as is (a dict it would
        # convert on every request), and a caller's "user-agent" replaces ours instead of
        # going out beside it. The key is always the one given as api_key.
        base: CIMultiDict[str] = CIMultiDict(
            {"Accept": "application/json", "User-Agent": f"ttapi_async/{__version__}"}
        )
        base.update(self._default_headers)
        base["TT-API-KEY"] = key
        self._base_headers: Mapping[str, str] = CIMultiDictProxy(base)
        self._json_headers: Mapping[str, str] = CIMultiDictProxy(
            CIMultiDict(base, **{"Content-Type": "application/json"})
        )

        from ._coordination import ClientCoordination
        from ._spent import Spending
        from .resources import Dalle3, Images
        from .resources._checks import check_lease_timeout

        check_lease_timeout(lease_timeout)
        #: the longest a job submit waits for a lease (None: as long as it takes)
        self.lease_timeout: float | None = lease_timeout
        self._coordination = ClientCoordination(
            coordinator, api_key=lambda: self._api_key, listener=self._coordinator_listener
        )

        #: running totals: job quota by product, usage tokens by model (``snapshot()``)
        self.spent = Spending()
        self.images = Images(self)
        self.dalle3 = Dalle3(self)
        self._attach_job_resources()

    def _attach_job_resources(self) -> None:
        """Attach the asynchronous-job resources (``gpt4o``, ``gpt``) and their watcher.

        The watcher costs nothing until a job is submitted or resumed (no task, no
        future); ``aclose()`` closes whichever watcher ``self.watcher`` is by then.
        """
        from ._watcher import JobWatcher
        from .resources.jobs import GPT, GPT4o

        self.watcher: JobWatcher = JobWatcher()
        coordination = self._coordination
        self.watcher.on_dropped = lambda job: coordination.dropped(job.id, job.key)
        self.gpt4o = GPT4o(self)
        self.gpt = GPT(self)

        async def close_watcher() -> None:
            await self.watcher.aclose()

        self._on_close(close_watcher)
        # After the watcher: its jobs settle (and release their leases) before it closes.
        self._on_close(self._coordination.aclose)

    # --- coordination ------------------------------------------------------------------------

    @property
    def coordinator(self) -> Coordinator:
        """Return the coordinator of this client (a ``LocalCoordinator`` unless one was given)."""
        return self._coordination.coordinator

    async def open_coordinator(self) -> Coordinator:
        """Return the coordinator, opened with this client's key and listener (idempotent).

        Submits and polls open it themselves; call this to use it directly first.
        """
        return await self._coordination.ready()

    def _coordinator_listener(self) -> Any:
        from ._coord_listener import WatcherListener

        return WatcherListener(self)

    # --- lifecycle ---------------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"AsyncTTAPI(base_url={self.base_url!r}, state={self._state.value})"

    async def __aenter__(self) -> AsyncTTAPI:
        if self._state is _State.CLOSED:
            raise RuntimeError("this AsyncTTAPI client is closed; create a new one")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def closed(self) -> bool:
        return self._state is _State.CLOSED

    def _on_close(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Run ``callback`` (once) when the client closes, before its session goes."""
        self._close_callbacks.append(callback)

    async def aclose(self) -> None:
        """Close the client: settle its watchers, then close the session it owns."""
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        callbacks, self._close_callbacks = self._close_callbacks, []
        try:
            for callback in callbacks:
                await callback()
        finally:
            # Even when a callback failed (or aclose was cancelled): never leak the session.
            session, self._session = self._session, None
            if session is not None and session is not self._borrowed_session:
                await session.close()

    def _get_session(self) -> aiohttp.ClientSession:
        if self._state is _State.CLOSED:
            raise RuntimeError("this AsyncTTAPI client is closed; create a new one")
        if self._session is None:
            # Created here, inside the running loop, never at construction time: a client
            # built at import time or in another loop must not own a session bound elsewhere.
            asyncio.get_running_loop()
            # No limit_per_host: equal to limit it limits nothing more, and costs
            # bookkeeping on every acquire and release.
            connector = aiohttp.TCPConnector(limit=self.max_connections)
            self._session = aiohttp.ClientSession(
                connector=connector,
                raise_for_status=False,
                proxy=self._proxy,
                # Not aiohttp's: it reads the environment in a thread on every request.
                trust_env=False,
            )
            self._env_proxies = self._trust_env and self._proxy is None
            if self._env_proxies:
                self._api_route = env_proxy(self.base_url)
        self._state = _State.OPENED
        return self._session

    # --- downloads (see _downloads) --------------------------------------------------------

    async def _download_route(self, url: URL) -> Route:
        """Return the proxy for a download of ``url`` (the environment's, read in a thread)."""
        if not self._env_proxies:
            return NO_PROXY  # a given proxy is the session's default; a borrowed one decides
        return await asyncio.to_thread(env_proxy, url)

    async def _download(self, url: str, *, expires_at: dt.datetime | None = None) -> bytes:
        """Download an image URL: no API key is sent, and only to where it may go."""
        return await self._downloads.read(url, expires_at=expires_at)

    async def _download_to(
        self, url: str, path: Path, *, expires_at: dt.datetime | None = None
    ) -> Path:
        """Stream an image URL into ``path`` atomically; memory stays flat."""
        return await self._downloads.save(url, path, expires_at=expires_at)


def _checked_idle(value: object, *, param: str) -> Any:
    """Return an idle timeout that is None (no limit), NOT_GIVEN, or a positive number."""
    if value is None or value is NOT_GIVEN:
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise InvalidRequestError(
            f"{param} must be a positive number of seconds or None, got {value!r}",
            param=param,
            value=value,
        )
    return float(value)


def _checked_cap(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidRequestError(
            f"max_response_bytes must be a positive integer, got {value!r}",
            param="max_response_bytes",
            value=value,
        )
    return value
