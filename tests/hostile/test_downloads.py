"""Downloads of image URLs a hostile answer names: where they may go and what errors say.

A client whose ``base_url`` is a public address is built where a download must be judged:
nothing is ever sent to that address (every test only downloads), and the address is a
literal, so judging it needs no DNS.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import socket
from pathlib import Path

import pytest
from _support import GENERATIONS, PNG

from hostile.conftest import ClientFactory
from hostile.server import HostileServer, redirect, respond, stall
from ttapi_async import (
    APIResponseValidationError,
    APITimeoutError,
    AsyncTTAPI,
    ImageData,
    InternalServerError,
    JobResult,
    NotFoundError,
    _downloads,
)
from ttapi_async._models import bind

PUBLIC_BASE = "https://1.1.1.1"  # never contacted: see the module docstring
IMAGE = respond(200, {"Content-Type": "image/png"}, PNG)


def _item(client: AsyncTTAPI, url: str, created: int | None = None) -> ImageData:
    item = ImageData(url=url)
    bind(item, client)
    if created is not None:
        object.__setattr__(item, "_created", created)
    return item


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://cdn.example/x.png", "data:,x"])
async def test_a_non_http_url_is_refused_and_named(
    make_hostile_client: ClientFactory, url: str
) -> None:
    """A file://, ftp:// or data: image URL is refused with an error about the URL itself."""
    client = make_hostile_client()
    with pytest.raises(APIResponseValidationError, match="must be http:// or https://"):
        await _item(client, url).read()


@pytest.mark.parametrize("url", ["http://[bad/x.png", "http://cdn.example:99999/x.png"])
async def test_a_malformed_url_is_a_typed_error(
    make_hostile_client: ClientFactory, url: str
) -> None:
    """An image URL that does not parse raises APIResponseValidationError, not ValueError."""
    client = make_hostile_client()
    with pytest.raises(APIResponseValidationError, match="not a valid URL"):
        await _item(client, url).read()


async def test_a_malformed_redirect_location_is_a_typed_error(
    hostile: HostileServer, hostile_client: AsyncTTAPI
) -> None:
    """A download redirected to a Location that does not parse raises a typed error."""
    hostile.on("/img.png", redirect(302, "http://[oops/x.png"))
    with pytest.raises(APIResponseValidationError, match="not a valid URL"):
        await _item(hostile_client, hostile.url + "/img.png").read()


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]", "169.254.169.254", "10.1.2.3", "[::1]"],
)
async def test_a_private_address_is_refused_when_base_url_is_public(
    hostile: HostileServer, make_hostile_client: ClientFactory, host: str
) -> None:
    """Loopback, link-local and private addresses are refused before anything is sent."""
    hostile.on("/admin", IMAGE)
    client = make_hostile_client(base_url=PUBLIC_BASE)
    with pytest.raises(APIResponseValidationError, match="allow_private_downloads=True"):
        await _item(client, f"http://{host}:{hostile.port}/admin").read()
    assert hostile.requests == []


async def test_a_private_address_is_allowed_when_base_url_is_one(
    hostile: HostileServer, hostile_client: AsyncTTAPI
) -> None:
    """With base_url on loopback (the emulator), a loopback image URL downloads."""
    hostile.on("/img.png", IMAGE)
    assert await _item(hostile_client, hostile.url + "/img.png").read() == PNG


async def test_a_private_address_is_allowed_when_opted_in(
    hostile: HostileServer, make_hostile_client: ClientFactory, tmp_path: Path
) -> None:
    """``allow_private_downloads=True`` lets a public-base client fetch from loopback."""
    hostile.on("/img.png", IMAGE)
    client = make_hostile_client(base_url=PUBLIC_BASE, allow_private_downloads=True)
    saved = await _item(client, hostile.url + "/img.png").save(tmp_path / "a.png")
    assert saved.read_bytes() == PNG


async def test_each_redirect_hop_is_judged(
    hostile: HostileServer, make_hostile_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A public image URL redirecting to a private address is refused at that hop."""
    private = ipaddress.ip_address("127.0.0.2")  # the only "private" address in this test
    monkeypatch.setattr(_downloads, "is_private", lambda address: address == private)
    hostile.on("/img.png", redirect(302, f"http://127.0.0.2:{hostile.port}/admin"))
    hostile.on("/admin", IMAGE)
    client = make_hostile_client(base_url=PUBLIC_BASE)
    with pytest.raises(APIResponseValidationError, match=r"127\.0\.0\.2"):
        await _item(client, hostile.url + "/img.png").read()
    assert [r.path for r in hostile.requests] == ["/img.png"]


async def test_a_redirect_to_an_image_is_followed(
    hostile: HostileServer, hostile_client: AsyncTTAPI
) -> None:
    """Downloads carry no key, so they follow redirects (each hop judged)."""
    hostile.on("/img.png", redirect(307, "/cdn/img.png"))
    hostile.on("/cdn/img.png", IMAGE)
    assert await _item(hostile_client, hostile.url + "/img.png").read() == PNG
    assert all("TT-API-KEY" not in r.headers for r in hostile.requests)


async def test_a_non_image_answer_is_never_quoted(
    hostile: HostileServer, hostile_client: AsyncTTAPI
) -> None:
    """A 200 that is not an image raises without quoting a byte of what it was."""
    hostile.on("/img.png", respond(200, {"Content-Type": "text/html"}, b"<html>ADMIN-SECRET"))
    with pytest.raises(APIResponseValidationError) as caught:
        await _item(hostile_client, hostile.url + "/img.png").read()
    assert "ADMIN" not in str(caught.value) and "html" not in str(caught.value)


async def test_an_error_answer_is_never_quoted(
    hostile: HostileServer, make_hostile_client: ClientFactory
) -> None:
    """A 500 to a download raises InternalServerError without its body."""
    hostile.on("/img.png", respond(500, {"Content-Type": "text/plain"}, b"ADMIN-SECRET"))
    client = make_hostile_client(max_retries=0)
    with pytest.raises(InternalServerError) as caught:
        await _item(client, hostile.url + "/img.png").read()
    assert "ADMIN" not in str(caught.value) and caught.value.body is None


# --- issue 12, item 10: expired URLs --------------------------------------------------------


async def test_a_404_download_says_urls_expire(
    hostile: HostileServer, hostile_client: AsyncTTAPI
) -> None:
    """A download answered 404 raises NotFoundError saying image URLs live 60 minutes."""
    hostile.on("/img.png", respond(404, body=b"Not found."))
    with pytest.raises(NotFoundError, match="live 60 minutes") as caught:
        await _item(hostile_client, hostile.url + "/img.png").read()
    assert "probably expired" in str(caught.value)


async def test_a_404_after_the_known_expiry_says_when(
    hostile: HostileServer, hostile_client: AsyncTTAPI
) -> None:
    """When the answer's ``created`` is over 60 minutes old, the error says when it expired."""
    hostile.on("/img.png", respond(404, body=b"Not found."))
    item = _item(hostile_client, hostile.url + "/img.png", created=1_700_000_000)
    with pytest.raises(NotFoundError, match="expired at 2023-11-14T23:13:20"):
        await item.read()


async def test_a_url_result_says_when_it_expires(
    hostile: HostileServer, hostile_client: AsyncTTAPI
) -> None:
    """``ImageData.url_expires_at`` is the answer's ``created`` plus 60 minutes, in UTC."""
    answer = {"created": 1_700_000_000, "data": [{"url": "https://cdn.example/x.png"}]}
    hostile.on(GENERATIONS, respond(200, body=answer))
    result = await hostile_client.images.generate(prompt="a cat", model="dall-e-2")
    expected = dt.datetime(2023, 11, 14, 23, 13, 20, tzinfo=dt.timezone.utc)
    assert result.data[0].url_expires_at == expected
    assert ImageData(b64_json="AAAA").url_expires_at is None


def test_a_job_result_expires_60_minutes_after_it_finished_when_the_zone_is_known() -> None:
    """A JobResult's URL expiry is known for an aware finish time, unknown for a naive one."""
    finished = dt.datetime(2025, 3, 31, 4, 25, 33, tzinfo=dt.timezone.utc)
    aware = JobResult(job_id="j", image_url="https://x/y.png", finish_time=finished)
    assert aware.url_expires_at == finished + dt.timedelta(minutes=60)
    naive = JobResult(
        job_id="j", image_url="https://x/y.png", finish_time=finished.replace(tzinfo=None)
    )
    assert naive.url_expires_at is None


# --- names, not addresses: what a host resolves to is judged ---------------------------------


def _resolving(monkeypatch: pytest.MonkeyPatch, table: dict[str, str]) -> None:
    """Make the running loop's getaddrinfo answer from ``table`` (no DNS is ever asked)."""
    loop = asyncio.get_running_loop()

    async def getaddrinfo(host: str, port: object, **_: object) -> list[tuple[object, ...]]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "unknown")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (table[host], port or 80))]

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)


async def test_a_name_resolving_to_a_private_address_is_refused(
    make_hostile_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A host name is judged by the addresses it resolves to, not by how it looks."""
    _resolving(monkeypatch, {"cdn.internal": "10.0.0.5"})
    client = make_hostile_client(base_url=PUBLIC_BASE)
    with pytest.raises(APIResponseValidationError, match=r"10\.0\.0\.5"):
        await _item(client, "http://cdn.internal/x.png").read()


async def test_a_base_url_name_resolving_privately_allows_private_downloads(
    hostile: HostileServer, make_hostile_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An emulator reached by a name (say, in docker compose) counts as a private base_url."""
    _resolving(monkeypatch, {"fake-ttapi": "172.18.0.2"})
    hostile.on("/img.png", IMAGE)
    client = make_hostile_client(base_url="http://fake-ttapi:8000")
    assert await _item(client, hostile.url + "/img.png").read() == PNG


async def test_an_unresolvable_name_is_left_to_the_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A name that does not resolve here is not judged (the request would fail on its own)."""
    _resolving(monkeypatch, {})
    assert await _downloads.Downloads._addresses("nowhere.example", 443) == []


async def test_a_localhost_base_url_allows_loopback_downloads(
    hostile: HostileServer, make_hostile_client: ClientFactory
) -> None:
    """``base_url="http://localhost:..."`` is the emulator too: loopback downloads work."""
    hostile.on("/img.png", IMAGE)
    client = make_hostile_client(base_url=f"http://localhost:{hostile.port}")
    assert await _item(client, hostile.url + "/img.png").read() == PNG


# --- what comes back ------------------------------------------------------------------------


async def test_endless_redirects_are_refused(
    hostile: HostileServer, hostile_client: AsyncTTAPI
) -> None:
    """A download redirected in a loop stops after 5 hops with a typed error."""
    hostile.on("/a.png", redirect(302, "/b.png"))
    hostile.on("/b.png", redirect(302, "/a.png"))
    with pytest.raises(APIResponseValidationError, match="redirected more than 5 times"):
        await _item(hostile_client, hostile.url + "/a.png").read()
    assert len(hostile.requests) == 6


@pytest.mark.parametrize(("body", "problem"), [(b"", "is empty"), (b"\x89PN", "not a PNG")])
async def test_an_empty_or_short_download_is_not_an_image(
    hostile: HostileServer, hostile_client: AsyncTTAPI, body: bytes, problem: str
) -> None:
    """An empty body, or one shorter than any image's magic bytes, raises."""
    hostile.on("/img.png", respond(200, {"Content-Type": "image/png"}, body))
    with pytest.raises(APIResponseValidationError, match=problem):
        await _item(hostile_client, hostile.url + "/img.png").read()


async def test_a_stalled_download_ends_in_an_idle_timeout(
    hostile: HostileServer, make_hostile_client: ClientFactory
) -> None:
    """A download that stops after its first bytes raises APITimeoutError (idle timeout)."""
    hostile.on("/img.png", stall(PNG[:20], headers={"Content-Type": "image/png"}))
    client = make_hostile_client(idle_timeout=0.2, max_retries=0)
    with pytest.raises(APITimeoutError, match="idle timeout"):
        await _item(client, hostile.url + "/img.png").read()
