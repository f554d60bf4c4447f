"""Downloading image URLs: where a download may go, how much it may take, what it must be.

An image URL comes from the server's answer, so it is as trusted as the server: it must be
http(s), and it must not point the client at its own machine or network (a loopback admin
page, a cloud metadata address) unless ``base_url`` itself is such an address (the
emulator) or the user opted in (``allow_private_downloads=True``). Every hop of a redirect
is judged the same way: redirects are followed here, one at a time, never by aiohttp.

The addresses judged are the ones the host resolves to just before the request; aiohttp
resolves again to connect, so a DNS answer that changes in between (rebinding) is not
caught. Literal addresses, and names that resolve to private ones, are.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Final

import aiohttp
from yarl import URL

from ._errors import APIResponseValidationError, APIStatusError, status_error_class
from ._files import MAX_DOWNLOAD_BYTES, atomic_writer, check_image
from ._models import URL_LIFETIME
from ._reading import IdleExpired, IdleTimer
from ._translation import Translating

if TYPE_CHECKING:
    from ._client import AsyncTTAPI

__all__ = ["Downloads", "is_private"]

_MAX_REDIRECTS: Final = 5
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
# Enough of a file's start to tell PNG, JPEG and WebP apart.
_SNIFF_BYTES: Final = 16
_CHUNK: Final = 256 * 1024

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Sink = Callable[[bytes], Awaitable[None]]


def is_private(address: Address) -> bool:
    """Return True for an address that is not on the public internet (loopback included)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    return not address.is_global or address.is_multicast


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])  # drop an IPv6 zone id
    except ValueError:
        return None


def _parsed(url: str) -> URL:
    try:
        return URL(url)
    except ValueError:  # "http://[bad", a port out of range: never quoted, it came from a server
        raise APIResponseValidationError("refusing to download: not a valid URL") from None


def _shown(url: URL) -> str:
    # Put in errors: scheme, host, port and path; never the query, which may carry tokens.
    return str(url.with_query(None).with_fragment(None))


class Downloads:
    """The downloads of one client: ``read()`` and ``save()`` of results with a URL."""

    def __init__(self, client: AsyncTTAPI) -> None:
        self._client = client
        self._base_private: bool | None = None

    async def read(self, url: str, *, expires_at: dt.datetime | None = None) -> bytes:
        """Download an image URL (no API key is sent: it may be a CDN's), capped and checked."""
        chunks: list[bytes] = []

        async def sink(chunk: bytes) -> None:
            chunks.append(chunk)

        async for attempt in self._client._retrying(idempotent=True, options=None):
            with attempt:
                chunks.clear()
                await self._into(url, sink, expires_at)
        return b"".join(chunks)

    async def save(self, url: str, path: Path, *, expires_at: dt.datetime | None = None) -> Path:
        """Stream an image URL into ``path`` atomically; memory stays flat."""
        async for attempt in self._client._retrying(idempotent=True, options=None):
            with attempt, atomic_writer(path) as fh:

                async def sink(chunk: bytes) -> None:
                    fh.write(chunk)

                await self._into(url, sink, expires_at)
        return path

    # --- where a download may go ---------------------------------------------------------

    async def _check(self, url: URL) -> None:
        """Raise unless ``url`` is http(s) and (when it must be) on a public address."""
        if url.scheme not in ("http", "https") or not url.host:
            raise APIResponseValidationError(
                f"refusing to download {url.scheme or 'a relative'}:// URL: "
                "image URLs must be http:// or https://"
            )
        if self._client.allow_private_downloads:
            return
        private = [a for a in await self._addresses(url.host, url.port) if is_private(a)]
        if private and not await self._base_is_private():
            raise APIResponseValidationError(
                f"refusing to download {_shown(url)}: {url.host} is a private, loopback or "
                f"link-local address ({private[0]}); pass allow_private_downloads=True to "
                "AsyncTTAPI to allow it"
            )

    async def _base_is_private(self) -> bool:
        # Asked only when a download's target is private, and remembered: base_url is fixed.
        if self._base_private is None:
            base = URL(self._client.base_url)
            host = base.host or ""
            if host == "localhost" or host.endswith(".localhost"):
                self._base_private = True
            else:
                addresses = await self._addresses(host, base.port)
                self._base_private = any(is_private(a) for a in addresses)
        return self._base_private

    @staticmethod
    async def _addresses(host: str, port: int | None) -> list[Address]:
        literal = _literal(host)
        if literal is not None:
            return [literal]
        if host == "localhost" or host.endswith(".localhost"):  # RFC 6761: always loopback
            return [ipaddress.IPv4Address("127.0.0.1")]
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError:
            return []  # unresolvable here: aiohttp will fail to connect and say so
        found = (_literal(str(info[4][0])) for info in infos)
        return [a for a in found if a is not None]

    # --- one download --------------------------------------------------------------------

    async def _into(self, url: str, sink: Sink, expires_at: dt.datetime | None) -> None:
        client = self._client
        session = client._get_session()
        timeout = client._client_timeout(None)
        headers = {"User-Agent": client._base_headers["User-Agent"]}
        target = _parsed(url)
        for _ in range(_MAX_REDIRECTS + 1):
            await self._check(target)
            proxy, proxy_auth = await client._download_route(target)
            # The origin, not base_url: a timeout connecting names the host it was for.
            with Translating("GET", _shown(target), str(target.origin())):
                async with session.get(
                    target,
                    headers=headers,
                    timeout=timeout,
                    raise_for_status=False,
                    allow_redirects=False,
                    proxy=proxy,
                    proxy_auth=proxy_auth,
                ) as resp:
                    location = resp.headers.get("Location")
                    if resp.status in _REDIRECTS and location:
                        target = target.join(_parsed(location))
                        continue
                    if resp.status >= 300:
                        raise _status_error(resp, target, expires_at)
                    await self._body(resp, target, sink)
                    return
        raise APIResponseValidationError(
            f"download of {_shown(_parsed(url))} was redirected more than {_MAX_REDIRECTS} times"
        )

    async def _body(self, resp: aiohttp.ClientResponse, url: URL, sink: Sink) -> None:
        shown = _shown(url)
        declared = resp.content_length
        if declared is not None and declared > MAX_DOWNLOAD_BYTES:
            raise APIResponseValidationError(
                f"image at {shown} is {declared} bytes, over the {MAX_DOWNLOAD_BYTES} byte cap"
            )
        idle = self._client.idle_timeout
        timer = IdleTimer(resp.content, idle) if idle is not None else None
        received = 0
        # The first chunk may be a few bytes: hold chunks until the magic bytes are in.
        head: list[bytes] | None = []
        try:
            async for chunk in resp.content.iter_chunked(_CHUNK):
                if timer is not None:
                    timer.touch()
                received += len(chunk)  # decompressed bytes: a gzip bomb stops here too
                if received > MAX_DOWNLOAD_BYTES:
                    raise APIResponseValidationError(
                        f"image at {shown} exceeds the {MAX_DOWNLOAD_BYTES} byte cap"
                    )
                if head is not None:
                    head.append(chunk)
                    if received < _SNIFF_BYTES:
                        continue
                    chunk, head = b"".join(head), None
                    check_image(chunk[:_SNIFF_BYTES], what=f"download of {shown}")
                await sink(chunk)
        except IdleExpired:
            assert timer is not None
            raise timer.error("GET", shown) from None
        finally:
            if timer is not None:
                timer.cancel()
        if received == 0:
            raise APIResponseValidationError(f"image at {shown} is empty")
        if head is not None:  # shorter than the magic bytes: never an image
            check_image(b"".join(head), what=f"download of {shown}")


def _status_error(
    resp: aiohttp.ClientResponse, url: URL, expires_at: dt.datetime | None
) -> APIStatusError:
    """Return the error for a download answered 3xx (with no Location), 4xx or 5xx.

    The body is never quoted: whatever answered is not the API, and may be anything.
    """
    status = resp.status
    shown = _shown(url)
    if status in (404, 410):
        now = dt.datetime.fromtimestamp(time.time(), tz=dt.timezone.utc)
        if expires_at is not None and expires_at <= now:
            why = f"it expired at {expires_at.isoformat(timespec='seconds')}"
        else:
            why = "it has probably expired"
        message = (
            f"image URL {shown} is gone (HTTP {status}): {why}. TTAPI's image URLs live "
            f"{URL_LIFETIME.seconds // 60} minutes; save images soon after they arrive"
        )
    else:
        message = f"download of {shown} failed: HTTP {status}"
    return status_error_class(status)(message, status_code=status, headers=resp.headers)
