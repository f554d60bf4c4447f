"""The emulator's image encoders, sniffer and cache, on the inputs the endpoint tests never send."""

from __future__ import annotations

import io
import struct
import sys
import types

import pytest

from ttapi_async.testing._images import ImageCache, ImageSpec, encode_image, sniff_image


def test_a_padded_jpeg_reaches_its_size_and_still_reads_as_jpeg() -> None:
    """A JPEG padded past 64 KiB (several comment segments) is that big and still a JPEG."""
    spec = ImageSpec(16, 8, "jpeg", pad_to=200_000)
    data = encode_image(spec)
    assert len(data) >= 200_000
    assert sniff_image(data) == sniff_image(encode_image(ImageSpec(16, 8, "jpeg")))
    assert (sniff_image(data).width, sniff_image(data).height) == (16, 8)


def test_a_negative_dc_difference_encodes() -> None:
    """A JPEG whose colours step down between blocks (a negative DC difference) reads back."""
    for seed in range(8):
        data = encode_image(ImageSpec(32, 8, "jpeg", seed=seed, prompt="gradient"))
        assert sniff_image(data).format == "jpeg"


def test_sniff_refuses_what_is_no_image() -> None:
    """Bytes of no known format raise ValueError."""
    with pytest.raises(ValueError, match="not a PNG"):
        sniff_image(b"GIF89a" + b"\0" * 20)


def test_sniff_skips_jpeg_fill_bytes() -> None:
    """Fill bytes (0xFF) before a JPEG marker are skipped, and the frame header is read."""
    sof = b"\xff\xc0" + struct.pack(">HBHH", 11, 8, 5, 7) + b"\0" * 6
    assert sniff_image(b"\xff\xd8\xff" + sof).width == 7


def test_sniff_refuses_a_corrupt_jpeg_marker() -> None:
    """A JPEG whose segments do not start with 0xFF raises ValueError."""
    with pytest.raises(ValueError, match="corrupt JPEG"):
        sniff_image(b"\xff\xd8\x00\x00\x00\x00")


def test_sniff_refuses_a_jpeg_without_a_frame() -> None:
    """A JPEG with no frame header raises ValueError."""
    with pytest.raises(ValueError, match="without a frame"):
        sniff_image(b"\xff\xd8\xff\xfe\x00\x02\xff\xd9")


def _webp(kind: bytes, body: bytes) -> bytes:
    return b"RIFF" + struct.pack("<I", 4 + 8 + len(body)) + b"WEBP" + kind + b"\0\0\0\0" + body


def test_sniff_reads_every_webp_kind() -> None:
    """VP8X, VP8L and lossy VP8 headers give the image's size; another chunk raises."""
    vp8x = _webp(b"VP8X", b"\0" * 4 + (9).to_bytes(3, "little") + (4).to_bytes(3, "little"))
    assert (sniff_image(vp8x).width, sniff_image(vp8x).height) == (10, 5)
    bits = (11 - 1) | ((6 - 1) << 14)
    vp8l = _webp(b"VP8L", b"\x2f" + bits.to_bytes(4, "little"))
    assert (sniff_image(vp8l).width, sniff_image(vp8l).height) == (11, 6)
    vp8 = _webp(b"VP8 ", b"\0" * 6 + struct.pack("<HH", 12, 7))
    assert (sniff_image(vp8).width, sniff_image(vp8).height) == (12, 7)
    with pytest.raises(ValueError, match="unknown WebP"):
        sniff_image(_webp(b"ALPH", b"\0" * 10))


def test_the_cache_keeps_what_fits_and_drops_the_oldest() -> None:
    """Past its byte budget the cache drops the least recently used image; clear() empties it."""
    first, second = ImageSpec(8, 8, seed=1), ImageSpec(8, 8, seed=2)
    size = len(encode_image(first))
    cache = ImageCache(max_bytes=size + size // 2)
    assert cache.peek(first) is None and cache.peek_b64(first) is None
    cache.get(first)
    assert cache.peek(first) is not None and cache.peek_b64(first) is None
    cache.get_b64(first)
    assert cache.peek_b64(first) == cache.get_b64(first)
    cache.get(second)
    assert cache.peek(first) is None and cache.peek(second) is not None
    cache.clear()
    assert cache.peek(second) is None


#: made before any test puts a stub Pillow in place, so by the fallback encoder
_SMALL_JPEG = encode_image(ImageSpec(4, 4, "jpeg"))


class _StubPillowImage:
    """Stands in for PIL.Image (Pillow is optional and not installed here)."""

    def __init__(self) -> None:
        self.saved: list[tuple[str, int]] = []

    def frombytes(self, mode: str, size: tuple[int, int], raw: bytes) -> _StubPillowImage:
        return self

    def save(self, out: io.BytesIO, *, format: str, quality: int) -> None:
        self.saved.append((format, quality))
        out.write(_SMALL_JPEG if format == "JPEG" else b"RIFF-webp")


@pytest.fixture
def pillow(monkeypatch: pytest.MonkeyPatch) -> _StubPillowImage:
    stub = _StubPillowImage()
    package = types.ModuleType("PIL")
    package.Image = stub  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "PIL", package)
    monkeypatch.setitem(sys.modules, "PIL.Image", stub)  # type: ignore[arg-type]
    return stub


def test_pillow_output_is_used_and_a_short_jpeg_padded(pillow: _StubPillowImage) -> None:
    """With Pillow present its JPEG is used, capped at quality 95, and padded to ``pad_to``."""
    data = encode_image(ImageSpec(4, 4, "jpeg", pad_to=5000, quality=100))
    assert len(data) >= 5000 and data.startswith(b"\xff\xd8")
    assert pillow.saved == [("JPEG", 95)]


def test_pillow_webp_is_never_padded(pillow: _StubPillowImage) -> None:
    """Pillow's WebP is returned as Pillow made it, even when shorter than ``pad_to``."""
    assert encode_image(ImageSpec(4, 4, "webp", transparent=True, pad_to=5000)) == b"RIFF-webp"
    assert encode_image(ImageSpec(4, 4, "webp", pad_to=4)) == b"RIFF-webp"
