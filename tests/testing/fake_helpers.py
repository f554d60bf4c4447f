"""Helpers shared by the fake's tests: a strict PNG decoder and request shortcuts."""

from __future__ import annotations

import struct
import zlib
from typing import Any

import aiohttp

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def decode_png(data: bytes) -> tuple[int, int, int]:
    """Decode a PNG fully (CRCs, zlib stream, row filters); return (width, height, channels)."""
    assert data.startswith(PNG_SIGNATURE), "not a PNG"
    pos = len(PNG_SIGNATURE)
    idat = b""
    width = height = channels = 0
    seen_end = False
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r}"
        if kind == b"IHDR":
            width, height, depth, colour, _, _, _ = struct.unpack(">IIBBBBB", body)
            assert depth == 8
            channels = {2: 3, 6: 4}[colour]
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            seen_end = True
        else:
            assert kind[0:1].islower(), f"unknown critical chunk {kind!r}"
        pos += 12 + length
    assert seen_end, "no IEND"
    raw = zlib.decompress(idat)
    stride = 1 + width * channels
    assert len(raw) == height * stride, "pixel data does not match the header"
    assert all(raw[y * stride] <= 4 for y in range(height)), "bad row filter"
    return width, height, channels


async def post_json(
    session: aiohttp.ClientSession, url: str, body: dict[str, Any], **kw: Any
) -> tuple[int, Any]:
    """POST ``body`` and return (status, decoded JSON)."""
    async with session.post(url, json=body, **kw) as resp:
        return resp.status, await resp.json(content_type=None)


async def get_json(session: aiohttp.ClientSession, url: str, **kw: Any) -> tuple[int, Any]:
    """GET ``url`` and return (status, decoded JSON)."""
    async with session.get(url, **kw) as resp:
        return resp.status, await resp.json(content_type=None)
