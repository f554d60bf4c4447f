"""The fake's building blocks on their own: images, durations, clock, job store, public names."""

from __future__ import annotations

import random
import tracemalloc

import pytest
from fake_helpers import decode_png

import ttapi_async.testing as testing
from ttapi_async.testing import Duration, ManualClock, sniff_image
from ttapi_async.testing._images import (
    ImageCache,
    ImageSpec,
    _encode_jpeg_solid,
    _encode_webp_solid,
    encode_image,
)
from ttapi_async.testing._jobs import JobStore


def test_png_deterministic_per_seed_and_prompt() -> None:
    """The same (seed, prompt) renders the same bytes; another prompt or seed does not."""
    a = encode_image(ImageSpec(64, 48, seed=1, prompt="cat"))
    assert a == encode_image(ImageSpec(64, 48, seed=1, prompt="cat"))
    assert a != encode_image(ImageSpec(64, 48, seed=1, prompt="dog"))
    assert a != encode_image(ImageSpec(64, 48, seed=2, prompt="cat"))
    assert decode_png(a) == (64, 48, 3)


@pytest.mark.parametrize("size", [(1, 1), (17, 33), (1024, 1024)])
def test_jpeg_fallback_has_asked_size(size: tuple[int, int]) -> None:
    """The Pillow-free JPEG is a baseline JPEG of the asked size, ending with EOI."""
    data = _encode_jpeg_solid(ImageSpec(*size, "jpeg", prompt="j"))
    assert data.startswith(b"\xff\xd8") and data.endswith(b"\xff\xd9")
    assert (sniff_image(data).width, sniff_image(data).height) == size


@pytest.mark.parametrize("pad", [0, 50_000])
def test_webp_fallback_has_asked_size(pad: int) -> None:
    """The Pillow-free WebP is a RIFF/WEBP file of the asked size, padded when asked."""
    data = _encode_webp_solid(ImageSpec(300, 200, "webp", prompt="w", pad_to=pad))
    assert data[:4] == b"RIFF" and int.from_bytes(data[4:8], "little") == len(data) - 8
    info = sniff_image(data)
    assert (info.format, info.width, info.height) == ("webp", 300, 200)
    if pad:
        assert abs(len(data) - pad) <= 2


def test_padding_reaches_the_asked_size() -> None:
    """pad_to pads a PNG to that size exactly and it still decodes."""
    data = encode_image(ImageSpec(32, 32, prompt="p", pad_to=100_000))
    assert len(data) == 100_000
    assert decode_png(data) == (32, 32, 3)


def test_sniff_rejects_other_files() -> None:
    """sniff_image raises ValueError for bytes that are no image."""
    with pytest.raises(ValueError):
        sniff_image(b"GIF89a....")


def test_image_cache_respects_budget() -> None:
    """The cache evicts least recently used images past its byte budget."""
    cache = ImageCache(max_bytes=30_000)
    specs = [ImageSpec(16, 16, prompt=str(i), pad_to=10_000) for i in range(5)]
    for spec in specs:
        cache.get_b64(spec)
    assert cache.peek(specs[0]) is None
    assert cache.peek_b64(specs[-1]) is not None


def test_duration_kinds() -> None:
    """fixed, uniform and lognormal durations sample within their law."""
    rng = random.Random(0)
    assert Duration.fixed(3).sample(rng) == 3
    assert all(2 <= Duration.uniform(2, 4).sample(rng) <= 4 for _ in range(100))
    draws = sorted(Duration.lognormal(40, 0.3).sample(rng) for _ in range(1001))
    assert 35 < draws[500] < 45


def test_duration_parse() -> None:
    """Duration.parse reads N, fixed:N, uniform:A,B and lognormal:M,S."""
    assert Duration.parse("5") == Duration.fixed(5)
    assert Duration.parse("uniform:1,2") == Duration.uniform(1, 2)
    assert Duration.parse("lognormal:45,0.4") == Duration.lognormal(45, 0.4)
    with pytest.raises(ValueError):
        Duration.parse("gamma:1,2")


def test_manual_clock_advances_and_notifies() -> None:
    """ManualClock moves only on advance, never backwards, and tells its listeners."""
    clock = ManualClock(5)
    calls: list[float] = []
    clock.subscribe(lambda: calls.append(clock()))
    assert clock.advance(2.5) == 7.5
    assert calls == [7.5]
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_job_state_is_small() -> None:
    """A job in flight costs well under 1 KB (lazy state, __slots__)."""
    store = JobStore(random.Random(0), time_scale=1.0)
    key, size = "tt-key", "1024x1024"
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for i in range(5000):
        store.create(
            product="4o-image",
            key=key,
            prompt=f"prompt number {i}",
            refer_images=None,
            hook_url=None,
            model=None,
            size=size,
            now=0.0,
            duration=Duration.fixed(60),
            queue_share=0.2,
            failure_rate=0.1,
            failure_message="job failed",
        )
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert used / 5000 < 1024
    assert store.in_progress(key, "4o-image", 0.0) == 5000
    assert store.in_progress(key, "4o-image", 60.0) == 0


def test_public_names() -> None:
    """ttapi_async.testing exports exactly its public surface, sorted."""
    assert testing.__all__ == sorted(testing.__all__)
    assert set(testing.__all__) == {
        "Clock",
        "Duration",
        "FakeStats",
        "FakeTTAPI",
        "FaultKind",
        "FaultRule",
        "HookDelivery",
        "ImageInfo",
        "JobView",
        "ManualClock",
        "RequestRecord",
        "is_loopback_url",
        "sniff_image",
    }
    for name in testing.__all__:
        assert getattr(testing, name) is not None
