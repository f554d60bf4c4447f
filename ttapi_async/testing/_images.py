"""Real, decodable images for the fake's answers, deterministic per (seed, prompt).

PNG is written with zlib and struct only. JPEG and WebP use Pillow when it is
importable; without it the fake writes a minimal but valid file of the asked
size in one solid colour (a baseline JPEG whose blocks carry only a DC term,
and a lossless VP8L WebP whose prefix codes have one symbol each, so its pixels
cost zero bits). Every decoder reads both; only the picture is plainer.

The payload option pads a file with an ancillary chunk (PNG), comment segments
(JPEG) or an unknown chunk (WebP, extended format) holding pseudo-random bytes,
so a 1024x1024 answer can weigh megabytes of base64 like the real service's,
while decoders skip the padding.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import io
import random
import struct
import threading
import zlib
from collections import OrderedDict
from typing import Any, Literal

import attrs

__all__ = [
    "ImageCache",
    "ImageInfo",
    "ImageSpec",
    "encode_image",
    "sniff_image",
]

ImageFormat = Literal["png", "jpeg", "webp"]
Payload = Literal["small", "realistic"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Ancillary ("t" lower), private ("t" lower), reserved bit clear ("P" upper),
# safe to copy ("d" lower): every PNG decoder must skip it.
_PNG_PAD_CHUNK = b"ttPd"
_BANDS = 8


@attrs.frozen
class ImageSpec:
    """Describe one image to render: what is asked, and what it is drawn from."""

    width: int
    height: int
    format: ImageFormat = "png"
    transparent: bool = False
    seed: int = 0
    prompt: str = ""
    #: which image of an ``n > 1`` answer, or which partial image of a stream
    variant: int = 0
    payload: Payload = "small"
    #: pad the file to about this many bytes (0: no padding)
    pad_to: int = 0
    #: JPEG/WebP quality when Pillow renders them (output_compression)
    quality: int = 100


@attrs.frozen
class ImageInfo:
    """Tell what an image file is: its format and pixel size."""

    format: str
    width: int
    height: int


def _digest(spec: ImageSpec) -> bytes:
    key = f"{spec.seed}\x00{spec.variant}\x00{spec.prompt}".encode()
    return hashlib.blake2b(key, digest_size=16).digest()


def _colours(spec: ImageSpec) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    d = _digest(spec)
    return (d[0], d[1], d[2]), (d[3], d[4], d[5])


def _gradient_rows(spec: ImageSpec, channels: int) -> list[bytes]:
    """Return ``_BANDS`` distinct pixel rows; bands of identical rows compress fast."""
    (r0, g0, b0), (r1, g1, b1) = _colours(spec)
    w = spec.width
    span = max(w - 1, 1)
    rows = []
    for band in range(_BANDS):
        shade = band * 12
        row = bytearray()
        for x in range(w):
            r = (r0 + (r1 - r0) * x // span + shade) & 0xFF
            g = (g0 + (g1 - g0) * x // span + shade) & 0xFF
            b = (b0 + (b1 - b0) * x // span) & 0xFF
            row += bytes((r, g, b, 0xFF - band * 8)) if channels == 4 else bytes((r, g, b))
        rows.append(bytes(row))
    return rows


def _raw_pixels(spec: ImageSpec, channels: int) -> list[bytes]:
    """Return one bytes object per pixel row (no PNG filter byte)."""
    bands = _gradient_rows(spec, channels)
    h = spec.height
    rows = [bands[y * _BANDS // h] for y in range(h)]
    if spec.payload == "realistic":
        # Photographs do not compress: keep the gradient in the top bits and
        # fill the low five bits of every sample with noise, which deflate
        # cannot shrink, so the PNG weighs about what a real one does.
        rng = random.Random(_digest(spec))
        row_len = spec.width * channels
        keep = int.from_bytes(b"\xe0" * row_len, "big")
        noise_mask = int.from_bytes(b"\x1f" * row_len, "big")
        noisy = []
        for row in rows:
            mixed = (int.from_bytes(row, "big") & keep) | (
                int.from_bytes(rng.randbytes(row_len), "big") & noise_mask
            )
            noisy.append(mixed.to_bytes(row_len, "big"))
        rows = noisy
    return rows


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _padding(spec: ImageSpec, size: int) -> bytes:
    # Pseudo-random, so base64 and gzip see it as image-like data.
    return random.Random(b"pad" + _digest(spec)).randbytes(max(size, 0))


def encode_png(spec: ImageSpec) -> bytes:
    """Encode ``spec`` as an 8-bit RGB (or RGBA when transparent) PNG."""
    channels = 4 if spec.transparent else 3
    colour_type = 6 if spec.transparent else 2
    ihdr = struct.pack(">IIBBBBB", spec.width, spec.height, 8, colour_type, 0, 0, 0)
    raw = b"\x00" + b"\x00".join(_raw_pixels(spec, channels))
    level = 1 if spec.payload == "realistic" else 6
    idat = zlib.compress(raw, level)
    head = _PNG_SIGNATURE + _png_chunk(b"IHDR", ihdr)
    tail = _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")
    missing = spec.pad_to - len(head) - len(tail) - 12
    if missing > 0:
        head += _png_chunk(_PNG_PAD_CHUNK, _padding(spec, missing))
    return head + tail


# --- JPEG without Pillow ---------------------------------------------------------


def _jpeg_category(value: int) -> int:
    return abs(value).bit_length()


def _jpeg_bits(value: int, category: int) -> str:
    if category == 0:
        return ""
    if value < 0:
        value += (1 << category) - 1
    return format(value, f"0{category}b")


def _jpeg_segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def _encode_jpeg_solid(spec: ImageSpec) -> bytes:
    """Encode a baseline JPEG of one colour: every 8x8 block holds only a DC term."""
    (r, g, b), _ = _colours(spec)
    y = round(0.299 * r + 0.587 * g + 0.114 * b)
    cb = round(128 - 0.168736 * r - 0.331264 * g + 0.5 * b)
    cr = round(128 + 0.5 * r - 0.418688 * g - 0.081312 * b)
    # Quantising DC by 8 makes the coefficient equal to the level-shifted sample.
    dcs = [max(-128, min(127, c - 128)) for c in (y, cb, cr)]
    symbols = sorted({0} | {_jpeg_category(d) for d in dcs})
    # Canonical code: n symbols of one length L, codes 0..n-1 (never all ones).
    length = 1
    while (1 << length) - 1 < len(symbols):
        length += 1
    codes = {s: format(i, f"0{length}b") for i, s in enumerate(symbols)}
    counts = bytearray(16)
    counts[length - 1] = len(symbols)
    dc_table = b"\x00" + bytes(counts) + bytes(symbols)
    # AC table 0 holds one symbol, 0x00 (end of block), coded "0".
    ac_table = b"\x10\x01" + bytes(15) + b"\x00"
    dht = dc_table + ac_table
    eob = "0"
    first = "".join(codes[_jpeg_category(d)] + _jpeg_bits(d, _jpeg_category(d)) + eob for d in dcs)
    rest = (codes[0] + eob) * 3
    mcus = ((spec.width + 7) // 8) * ((spec.height + 7) // 8)
    bits = first + rest * (mcus - 1)
    bits += "1" * (-len(bits) % 8)
    scan = int(bits, 2).to_bytes(len(bits) // 8, "big").replace(b"\xff", b"\xff\x00")
    header = b"\xff\xd8" + _jpeg_segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")
    header += _jpeg_segment(0xDB, b"\x00" + b"\x08" * 64)
    sof = struct.pack(">BHHB", 8, spec.height, spec.width, 3)
    sof += b"\x01\x11\x00\x02\x11\x00\x03\x11\x00"
    header += _jpeg_segment(0xC0, sof) + _jpeg_segment(0xC4, dht)
    sos = _jpeg_segment(0xDA, b"\x03\x01\x00\x02\x00\x03\x00\x00\x3f\x00")
    return _pad_jpeg(spec, header, sos + scan + b"\xff\xd9")


def _pad_jpeg(spec: ImageSpec, header: bytes, body: bytes) -> bytes:
    missing = spec.pad_to - len(header) - len(body)
    if missing <= 0:
        return header + body
    padding = _padding(spec, missing)
    comments = []
    for start in range(0, len(padding), 65533):
        comments.append(_jpeg_segment(0xFE, padding[start : start + 65533]))
    return header + b"".join(comments) + body


# --- WebP without Pillow ---------------------------------------------------------


class _BitWriter:
    """Write bits least-significant first, as VP8L reads them."""

    def __init__(self) -> None:
        self.value = 0
        self.count = 0

    def put(self, value: int, nbits: int) -> None:
        self.value |= (value & ((1 << nbits) - 1)) << self.count
        self.count += nbits

    def tobytes(self) -> bytes:
        return self.value.to_bytes((self.count + 7) // 8, "little")


def _riff_chunk(kind: bytes, data: bytes) -> bytes:
    return kind + struct.pack("<I", len(data)) + data + (b"\x00" if len(data) % 2 else b"")


def _encode_webp_solid(spec: ImageSpec) -> bytes:
    """Encode a lossless WebP of one colour whose pixels take zero bits."""
    (r, g, b), _ = _colours(spec)
    alpha = 0x80 if spec.transparent else 0xFF
    w = _BitWriter()
    w.put(0x2F, 8)
    w.put(spec.width - 1, 14)
    w.put(spec.height - 1, 14)
    w.put(1 if spec.transparent else 0, 1)
    w.put(0, 3)  # version
    w.put(0, 1)  # no transform
    w.put(0, 1)  # no colour cache
    w.put(0, 1)  # no meta prefix codes
    for symbol in (g, r, b, alpha, 0):  # green, red, blue, alpha, distance
        w.put(1, 1)  # simple code
        w.put(0, 1)  # one symbol
        w.put(1, 1)  # symbol written on 8 bits
        w.put(symbol, 8)
    vp8l = _riff_chunk(b"VP8L", w.tobytes())
    if spec.pad_to <= 12 + len(vp8l):
        body = b"WEBP" + vp8l
    else:
        # Unknown chunks are only allowed in the extended format (VP8X).
        flags = 0x10 if spec.transparent else 0
        vp8x = _riff_chunk(
            b"VP8X",
            bytes((flags, 0, 0, 0))
            + (spec.width - 1).to_bytes(3, "little")
            + (spec.height - 1).to_bytes(3, "little"),
        )
        missing = max(spec.pad_to - 12 - len(vp8x) - len(vp8l) - 8, 0)
        body = b"WEBP" + vp8x + vp8l + _riff_chunk(b"PADD", _padding(spec, missing))
    return b"RIFF" + struct.pack("<I", len(body)) + body


# --- Pillow, when present ----------------------------------------------------------


def _encode_with_pillow(spec: ImageSpec) -> bytes | None:
    try:
        # Imported by name: Pillow is optional and mypy must not need its stubs.
        pil_image: Any = importlib.import_module("PIL.Image")
    except ImportError:
        return None

    channels = 4 if spec.transparent and spec.format == "webp" else 3
    raw = b"".join(_raw_pixels(attrs.evolve(spec, transparent=channels == 4), channels))
    image = pil_image.frombytes("RGBA" if channels == 4 else "RGB", (spec.width, spec.height), raw)
    out = io.BytesIO()
    quality = max(1, min(spec.quality, 95 if spec.format == "jpeg" else 100))
    image.save(out, format="JPEG" if spec.format == "jpeg" else "WEBP", quality=quality)
    data: bytes = out.getvalue()
    if spec.pad_to <= len(data):
        return data
    if spec.format == "jpeg":
        return _pad_jpeg(spec, data[:2], data[2:])
    # Pillow's WebP may already be extended; padding it safely needs VP8X rules
    # we do not want to re-implement, so only the fallback pads WebP.
    return data


def encode_image(spec: ImageSpec) -> bytes:
    """Encode ``spec`` in its format."""
    if spec.format == "png":
        return encode_png(spec)
    data = _encode_with_pillow(spec)
    if data is not None:
        return data
    if spec.format == "jpeg":
        return _encode_jpeg_solid(spec)
    return _encode_webp_solid(spec)


class ImageCache:
    """Keep encoded images (and their base64) under a byte budget, least recently used out.

    Rendering a 1024x1024 image costs milliseconds to tens of milliseconds;
    answers repeat the same (seed, prompt, size) often in tests and benchmarks.
    """

    def __init__(self, max_bytes: int = 96 * 1024 * 1024) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[ImageSpec, tuple[bytes, str | None]] = OrderedDict()
        self._size = 0
        # Rendering runs in a worker thread for large images; the cache is shared.
        self._lock = threading.Lock()

    def peek(self, spec: ImageSpec) -> bytes | None:
        """Return the cached bytes of ``spec``, or None without rendering."""
        with self._lock:
            entry = self._entries.get(spec)
            return None if entry is None else entry[0]

    def peek_b64(self, spec: ImageSpec) -> str | None:
        """Return the cached base64 of ``spec``, or None without rendering."""
        with self._lock:
            entry = self._entries.get(spec)
            if entry is None or entry[1] is None:
                return None
            self._entries.move_to_end(spec)
            return entry[1]

    def get(self, spec: ImageSpec) -> bytes:
        """Return the encoded bytes of ``spec``."""
        with self._lock:
            entry = self._entries.get(spec)
            if entry is not None:
                self._entries.move_to_end(spec)
                return entry[0]
        data = encode_image(spec)
        self._store(spec, data, None)
        return data

    def get_b64(self, spec: ImageSpec) -> str:
        """Return the base64 text of ``spec``'s encoded bytes."""
        with self._lock:
            entry = self._entries.get(spec)
            if entry is not None and entry[1] is not None:
                self._entries.move_to_end(spec)
                return entry[1]
        data = self.get(spec)
        text = base64.b64encode(data).decode("ascii")
        self._store(spec, data, text)
        return text

    def _store(self, spec: ImageSpec, data: bytes, text: str | None) -> None:
        with self._lock:
            old = self._entries.pop(spec, None)
            if old is not None:
                self._size -= len(old[0]) + len(old[1] or "")
                if text is None:
                    text = old[1]
            self._entries[spec] = (data, text)
            self._size += len(data) + len(text or "")
            while self._size > self.max_bytes and len(self._entries) > 1:
                _, (d, t) = self._entries.popitem(last=False)
                self._size -= len(d) + len(t or "")

    def clear(self) -> None:
        """Forget every cached image."""
        with self._lock:
            self._entries.clear()
            self._size = 0


def sniff_image(data: bytes) -> ImageInfo:
    """Return the format and pixel size of a PNG, JPEG or WebP file.

    Raise ``ValueError`` when ``data`` is none of them or is cut short.
    """
    if data.startswith(_PNG_SIGNATURE) and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return ImageInfo("png", width, height)
    if data.startswith(b"\xff\xd8"):
        return _sniff_jpeg(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _sniff_webp(data)
    raise ValueError("not a PNG, JPEG or WebP file")


def _sniff_jpeg(data: bytes) -> ImageInfo:
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ValueError("corrupt JPEG marker")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE):
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return ImageInfo("jpeg", width, height)
        pos += 2 + length
    raise ValueError("JPEG without a frame header")


def _sniff_webp(data: bytes) -> ImageInfo:
    kind = data[12:16]
    if kind == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return ImageInfo("webp", width, height)
    if kind == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return ImageInfo("webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if kind == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return ImageInfo("webp", width & 0x3FFF, height & 0x3FFF)
    raise ValueError("unknown WebP chunk")
