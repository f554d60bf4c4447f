"""Limits and faults: 429 with Retry-After, each fault kind, one-shot helpers, seeded draws."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest
from fake_helpers import post_json

from ttapi_async.testing import Duration, FakeTTAPI, FaultRule, ManualClock

GEN = "/v1/images/generations"
GEN_BODY = {"prompt": "a", "model": "gpt-image-1"}
SUBMIT = "/openai/gpt/generations"


@pytest.mark.fake_ttapi(clock=ManualClock(), rate_limit=2.0, rate_burst=2)
async def test_rate_limit_429_with_retry_after(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """Past the burst, a key gets 429 with Retry-After in OpenAI's shape on /v1; time refills."""
    url = f"{fake_ttapi.url}{GEN}"
    assert (await post_json(session, url, GEN_BODY))[0] == 200
    assert (await post_json(session, url, GEN_BODY))[0] == 200
    async with session.post(url, json=GEN_BODY) as resp:
        assert resp.status == 429
        assert resp.headers["Retry-After"] == "1"
        assert (await resp.json())["error"]["code"] == "rate_limit_exceeded"
    fake_ttapi.clock.advance(0.5)  # type: ignore[attr-defined]
    assert (await post_json(session, url, GEN_BODY))[0] == 200


@pytest.mark.fake_ttapi(clock=ManualClock(), rate_limit=1.0, rate_burst=1)
async def test_rate_limit_envelope_outside_v1(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """Outside /v1 a 429 carries TTAPI's FAILED envelope and Retry-After."""
    url = f"{fake_ttapi.url}{SUBMIT}"
    await post_json(session, url, {"prompt": "x"})
    async with session.post(url, json={"prompt": "x"}) as resp:
        assert resp.status == 429
        assert int(resp.headers["Retry-After"]) >= 1
        assert (await resp.json())["status"] == "FAILED"


@pytest.mark.fake_ttapi(clock=ManualClock(), rate_limit=1.0, rate_burst=1)
async def test_rate_limit_at_scale_one_sends_only_retry_after(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """At time scale 1 a 429 carries the service's Retry-After and no retry-after-ms."""
    url = f"{fake_ttapi.url}{GEN}"
    await post_json(session, url, GEN_BODY)
    async with session.post(url, json=GEN_BODY) as resp:
        assert resp.status == 429
        assert "retry-after-ms" not in resp.headers


@pytest.mark.fake_ttapi(clock=ManualClock(), rate_limit=1.0, rate_burst=1, time_scale=0.01)
async def test_rate_limit_when_time_scaled_says_the_wait_in_scaled_ms(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """A time-scaled fake adds retry-after-ms: the service's whole seconds times the scale."""
    url = f"{fake_ttapi.url}{GEN}"
    await post_json(session, url, GEN_BODY)
    async with session.post(url, json=GEN_BODY) as resp:
        assert resp.status == 429
        assert resp.headers["Retry-After"] == "1"
        assert resp.headers["retry-after-ms"] == "10"


async def test_fail_next_n_requests(fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession) -> None:
    """fail_next answers the next n requests to a path with the status, then lets them through."""
    fake_ttapi.fail_next(GEN, n=2, status=503)
    url = f"{fake_ttapi.url}{GEN}"
    statuses = [(await post_json(session, url, GEN_BODY))[0] for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert fake_ttapi.faults_active == ()
    assert fake_ttapi.stats().submissions_by_prompt == {"a": 1}


async def test_status_fault_shapes(fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession) -> None:
    """A status fault answers OpenAI's error on /v1 and the FAILED envelope elsewhere."""
    fake_ttapi.fail_next("*", n=2, status=500)
    s1, b1 = await post_json(session, f"{fake_ttapi.url}{GEN}", GEN_BODY)
    s2, b2 = await post_json(session, f"{fake_ttapi.url}{SUBMIT}", {"prompt": "x"})
    assert (s1, s2) == (500, 500)
    assert b1["error"]["type"] == "server_error"
    assert b2["status"] == "FAILED"


async def test_status_fault_draws_from_statuses(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """A status rule with several statuses answers each of them over many requests."""
    fake_ttapi.set_faults(FaultRule("status", SUBMIT, status=(500, 502, 503, 504)))
    url = f"{fake_ttapi.url}{SUBMIT}"
    seen = {(await post_json(session, url, {"prompt": "x"}))[0] for _ in range(40)}
    assert seen == {500, 502, 503, 504}


async def test_drop_before_processes_nothing(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """drop_before closes the connection and creates no job."""
    fake_ttapi.add_fault(FaultRule("drop_before", SUBMIT, times=1))
    with pytest.raises(aiohttp.ClientConnectionError):
        await post_json(session, f"{fake_ttapi.url}{SUBMIT}", {"prompt": "lost"})
    assert fake_ttapi.jobs == []
    assert fake_ttapi.requests[-1].status == 0
    assert fake_ttapi.requests[-1].fault == "drop_before"


async def test_drop_after_creates_the_job(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """drop_after closes the connection after the job was really created (possibly submitted)."""
    fake_ttapi.add_fault(FaultRule("drop_after", SUBMIT, times=1))
    with pytest.raises(aiohttp.ClientConnectionError):
        await post_json(session, f"{fake_ttapi.url}{SUBMIT}", {"prompt": "ghost"})
    assert [job.prompt for job in fake_ttapi.jobs] == ["ghost"]
    assert fake_ttapi.stats().submissions_by_prompt == {"ghost": 1}
    assert fake_ttapi.stats().by_endpoint[f"POST {SUBMIT}"] == {0: 1}


async def test_malformed_body(fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession) -> None:
    """malformed answers 200 with a body that does not parse as JSON."""
    fake_ttapi.add_fault(FaultRule("malformed", SUBMIT, times=1))
    async with session.post(f"{fake_ttapi.url}{SUBMIT}", json={"prompt": "x"}) as resp:
        assert resp.status == 200
        with pytest.raises(ValueError):
            await resp.json()


async def test_truncated_body(fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession) -> None:
    """truncate sends half the announced body, then closes: the client sees a payload error."""
    fake_ttapi.add_fault(FaultRule("truncate", GEN, times=1))
    async with session.post(f"{fake_ttapi.url}{GEN}", json=GEN_BODY) as resp:
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()


async def test_truncated_stream(fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession) -> None:
    """truncate on a stream cuts the event stream before its completed event."""
    fake_ttapi.add_fault(FaultRule("truncate", GEN, times=1))
    body = dict(GEN_BODY, stream=True, partial_images=1)
    async with session.post(f"{fake_ttapi.url}{GEN}", json=body) as resp:
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()


@pytest.mark.fake_ttapi(time_scale=0.05)
async def test_delay_fault(fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession) -> None:
    """delay holds the answer for delay * time_scale seconds and is recorded."""
    fake_ttapi.add_fault(FaultRule("delay", SUBMIT, delay=2.0, times=1))
    start = time.perf_counter()
    status, _ = await post_json(session, f"{fake_ttapi.url}{SUBMIT}", {"prompt": "slow"})
    assert status == 200
    assert time.perf_counter() - start >= 0.09
    assert fake_ttapi.requests[-1].fault == "delay"


async def test_delay_fault_trips_a_client_timeout(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """A delay longer than the client's timeout makes the client time out."""
    fake_ttapi.add_fault(FaultRule("delay", SUBMIT, delay=0.5, times=1))
    # asyncio.TimeoutError: on Python 3.10 aiohttp raises it, and it is not yet the builtin.
    with pytest.raises(asyncio.TimeoutError):
        await post_json(
            session,
            f"{fake_ttapi.url}{SUBMIT}",
            {"prompt": "slow"},
            timeout=aiohttp.ClientTimeout(total=0.05),
        )


async def test_fault_method_filter(fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession) -> None:
    """A rule limited to GET leaves POSTs to the same path alone."""
    fake_ttapi.fail_next("/openai/gpt/fetch", n=1, status=502, method="GET")
    job_id = fake_ttapi.create_job("m", product="gpt")
    status, _ = await post_json(session, f"{fake_ttapi.url}/openai/gpt/fetch", {"jobId": job_id})
    assert status == 200
    async with session.get(f"{fake_ttapi.url}/openai/gpt/fetch?jobId={job_id}") as resp:
        assert resp.status == 502


async def _run_scenario(seed: int) -> list[Any]:
    """Run the same requests against a fresh fake with ``seed``; return what was observed."""
    fake = FakeTTAPI(
        seed=seed,
        clock=ManualClock(),
        epoch=1_700_000_000.0,
        job_duration=Duration.lognormal(30, 0.5),
        job_failure_rate=0.5,
        faults=(FaultRule("status", SUBMIT, probability=0.3),),
    )
    seen: list[Any] = []
    async with fake, aiohttp.ClientSession(headers={"TT-API-KEY": fake.api_key}) as s:
        for i in range(20):
            status, body = await post_json(s, f"{fake.url}{SUBMIT}", {"prompt": f"p{i}"})
            seen.append((status, body))
        fake.clock.advance(10_000)  # type: ignore[attr-defined]
        seen.extend((j.id, j.status, j.finish_time) for j in fake.jobs)
        _, gen = await post_json(s, f"{fake.url}{GEN}", GEN_BODY)
        seen.append(gen["data"][0]["b64_json"])
    return seen


async def test_same_seed_same_run() -> None:
    """The same seed and requests give the same ids, faults, outcomes and images."""
    assert await _run_scenario(3) == await _run_scenario(3)


async def test_other_seed_other_run() -> None:
    """Another seed draws other ids and faults."""
    assert (await _run_scenario(3))[:20] != (await _run_scenario(4))[:20]


def test_fault_rule_parse() -> None:
    """FaultRule.parse reads KIND:PATH[:PROB[:ARG]]."""
    assert FaultRule.parse("status:/v1/*:0.1:500,503") == FaultRule(
        "status", "/v1/*", 0.1, (500, 503)
    )
    assert FaultRule.parse("delay:*:1:2.5") == FaultRule("delay", "*", 1.0, delay=2.5)
    assert FaultRule.parse("drop_after:/openai/gpt/generations").kind == "drop_after"
    with pytest.raises(ValueError):
        FaultRule.parse("explode:/v1/*")


def test_fault_rule_validates_probability() -> None:
    """A probability outside [0, 1] is refused."""
    with pytest.raises(ValueError):
        FaultRule("status", probability=1.5)
