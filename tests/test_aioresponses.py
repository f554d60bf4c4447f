"""aioresponses, the usual way to mock aiohttp clients, can mock ttapi_async's calls.

aioresponses 0.7.9 cannot build responses under aiohttp 3.14 and later, so these tests run
only where it works (CI's lowest-versions run); elsewhere they skip with the reason.
"""

from __future__ import annotations

import re

import pytest

aioresponses_module = pytest.importorskip("aioresponses", reason="aioresponses is not installed")


def _aioresponses_works() -> bool:
    """Tell whether this aioresponses can build a response under the installed aiohttp."""
    import aiohttp

    major, minor = (int(part) for part in aiohttp.__version__.split(".")[:2])
    return (major, minor) < (3, 14)


pytestmark = pytest.mark.skipif(
    not _aioresponses_works(), reason="aioresponses 0.7.9 cannot build responses on aiohttp>=3.14"
)

from ttapi_async import AsyncTTAPI  # noqa: E402

BASE = "https://api.example.test"
GENERATION = {
    "created": 1745818538,
    "data": [{"url": "https://cdn.example.test/cat.png", "revised_prompt": "a cute cat"}],
    "usage": {"total_tokens": 10, "input_tokens": 4, "output_tokens": 6},
}


async def test_generate_is_mocked() -> None:
    """A generation mocked by aioresponses comes back as a typed ImagesResponse."""
    with aioresponses_module.aioresponses() as mocked:
        mocked.post(f"{BASE}/v1/images/generations", payload=GENERATION)
        async with AsyncTTAPI(api_key="sk-test", base_url=BASE) as client:
            r = await client.images.generate(prompt="a cat", model="dall-e-2")
    assert r.data[0].url == "https://cdn.example.test/cat.png"
    assert r.usage is not None and r.usage.total_tokens == 10


async def test_job_submit_and_fetch_are_mocked() -> None:
    """A GPT-4o submit and one fetch mocked by aioresponses give the job id and its result."""
    job_id = "5ecc5080-b1d7-4b9f-8184-435e46ebb5cb"
    done = {
        "status": "SUCCESS",
        "message": "success",
        "jobId": job_id,
        "data": {
            "prompt": "a fox",
            "referImages": [],
            "imageUrl": "https://cdn.example.test/fox.png",
            "quota": "2",
            "finishTime": "2025-03-31 04:25:33",
            "hookUrl": None,
        },
    }
    with aioresponses_module.aioresponses() as mocked:
        mocked.post(
            f"{BASE}/openai/4o-image/generations",
            payload={"status": "SUCCESS", "message": "success", "data": {"jobId": job_id}},
        )
        mocked.post(re.compile(rf"^{re.escape(BASE)}/openai/4o-image/fetch.*"), payload=done)
        async with AsyncTTAPI(api_key="sk-test", base_url=BASE) as client:
            job = await client.gpt4o.submit(prompt="a fox")
            status = await client.gpt4o.fetch(job.id)
            job.cancel()
    assert job.id == job_id
    assert status.succeeded and status.data is not None
    assert status.data.image_url == "https://cdn.example.test/fox.png"


async def test_mocked_error_is_typed() -> None:
    """A 429 mocked by aioresponses raises the client's RateLimitError once retries run out."""
    from ttapi_async import RateLimitError

    with aioresponses_module.aioresponses() as mocked:
        mocked.post(
            f"{BASE}/v1/images/generations",
            status=429,
            payload={"error": {"message": "slow down", "type": "rate_limit"}},
            repeat=True,
        )
        async with AsyncTTAPI(api_key="sk-test", base_url=BASE, max_retries=0) as client:
            with pytest.raises(RateLimitError):
                await client.images.generate(prompt="a cat", model="dall-e-2")
