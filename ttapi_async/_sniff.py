"""Tell an image upload's format and size from its first bytes, without decoding it.

Formats are judged by magic bytes, never by file name; dimensions come from the PNG
``IHDR`` chunk, the three WebP headers, or a JPEG frame header found within the head.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from typing import Final

import attrs

__all__ = ["ImageFileInfo", "image_dimensions", "sniff_image_format"]

_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
_JPEG_SOI: Final = b"\xff\xd8\xff"
# JPEG start-of-frame markers carry the size; C4 (DHT), C8 (JPG) and CC (DAC) share the range.
_JPEG_SOF_MARKERS: Final = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field: TEM, RSTn, SOI, EOI.
_JPEG_STANDALONE_MARKERS: Final = frozenset({0x01, *range(0xD0, 0xDA)})
_JPEG_SOS: Final = 0xDA


def sniff_image_format(head: bytes) -> str | None:
    """Return "png", "jpeg" or "webp" from a file's first bytes, or None for anything else."""
    if head.startswith(_PNG_SIGNATURE):
        return "png"
    if head.startswith(_JPEG_SOI):
        return "jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def _png_dimensions(head: bytes) -> tuple[int, int] | None:
    if len(head) < 24 or head[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def _webp_dimensions(head: bytes) -> tuple[int, int] | None:
    chunk, data = head[12:16], head[20:30]
    if len(data) < 10:
        return None
    if chunk == b"VP8X":  # canvas size minus one, 24-bit little-endian
        return (
            int.from_bytes(data[4:7], "little") + 1,
            int.from_bytes(data[7:10], "little") + 1,
        )
    if chunk == b"VP8L" and data[0] == 0x2F:  # 14-bit width-1 and height-1 after the signature
        bits = int.from_bytes(data[1:5], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and data[3:6] == b"\x9d\x01\x2a":  # key frame start code, then sizes
        width, height = struct.unpack("<HH", data[6:10])
        return width & 0x3FFF, height & 0x3FFF
    return None


def _jpeg_dimensions(head: bytes) -> tuple[int, int] | None:
    # Walk the marker segments that fit in `head`; the frame header usually follows EXIF, so
    # it is found only when the caller passed enough bytes.
    pos = 2
    while pos + 4 <= len(head):
        if head[pos] != 0xFF:
            return None
        marker = head[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _JPEG_STANDALONE_MARKERS:
            pos += 2
            continue
        if marker == _JPEG_SOS:
            return None
        if marker in _JPEG_SOF_MARKERS:
            if pos + 9 > len(head):
                return None
            height, width = struct.unpack(">HH", head[pos + 5 : pos + 9])
            return width, height
        (length,) = struct.unpack(">H", head[pos + 2 : pos + 4])
        pos += 2 + length
    return None


_DIMENSION_READERS: Final[Mapping[str, Callable[[bytes], tuple[int, int] | None]]] = {
    "png": _png_dimensions,
    "webp": _webp_dimensions,
    "jpeg": _jpeg_dimensions,
}


def image_dimensions(head: bytes) -> tuple[int, int] | None:
    """Return (width, height) read from a PNG, WebP or JPEG head, or None when unreadable.

    PNG needs 24 bytes, WebP 30; JPEG is found only if its frame header lies within ``head``.
    A zero width or height (a corrupt header) counts as unreadable.
    """
    image_format = sniff_image_format(head)
    reader = _DIMENSION_READERS.get(image_format) if image_format else None
    size = reader(head) if reader else None
    if size is None or 0 in size:
        return None
    return size


@attrs.frozen
class ImageFileInfo:
    """Describe one upload by its name, first bytes and size, without holding it in memory."""

    filename: str
    #: at least the first 64 bytes (fewer if the file is shorter)
    head: bytes = attrs.field(repr=False)
    #: total size in bytes
    size: int

    @property
    def format(self) -> str | None:
        """Return "png", "jpeg" or "webp" by magic bytes, or None."""
        return sniff_image_format(self.head)

    @property
    def dimensions(self) -> tuple[int, int] | None:
        """Return (width, height) when the head shows them, else None."""
        return image_dimensions(self.head)
