"""Retries: the pure ``should_retry`` rules, Retry-After parsing, and what the client does."""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import logging

import pytest
from _support import (
    API_KEY,
    GENERATION_OK,
    GENERATIONS,
    PNG,
    LocalServer,
    SleepRecorder,
    closed_port,
    json_answer,
    text_answer,
)
from _support import client as client
from _support import server as server
from _support import sleeps as sleeps

from ttapi_async import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AsyncTTAPI,
    BadRequestError,
    InternalServerError,
    QueueFullError,
    RateLimitError,
    RetryPolicy,
)
from ttapi_async._retry import is_testing, parse_retry_after, set_testing, should_retry

NOW = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.timezone.utc)
JSON_BODY = {"error": {"message": "x"}}


def _status(code: int, body: object = JSON_BODY, **headers: str) -> APIStatusError:
    from ttapi_async._errors import status_error_class

    return status_error_class(code)("x", status_code=code, body=body, headers=headers)


BEFORE_SENDING = APIConnectionError("refused")
CONNECT_TIMEOUT = APITimeoutError("connect timed out")
AFTER_SENDING = APIConnectionError("reset", possibly_submitted=True)
READ_TIMEOUT = APITimeoutError("read timed out", possibly_submitted=True)

# (error, idempotent, retry_possibly_submitted, expected)
RULES = [
    # Nothing was sent: always safe to send again.
    (BEFORE_SENDING, False, False, True),
    (BEFORE_SENDING, True, False, True),
    (CONNECT_TIMEOUT, False, False, True),
    # Sent, then lost: only polls and downloads, or with the caller's opt-in.
    (AFTER_SENDING, False, False, False),
    (READ_TIMEOUT, False, False, False),
    (AFTER_SENDING, True, False, True),
    (READ_TIMEOUT, True, False, True),
    (AFTER_SENDING, False, True, True),
    (READ_TIMEOUT, False, True, True),
    # The server refused the work: come back later.
    (_status(429), False, False, True),
    (_status(499), False, False, True),
    (_status(503), False, False, True),
    # A 500 that explains itself is a refusal; a bare one may have come after the work began.
    (_status(500), False, False, True),
    (_status(500, body="<html>oops</html>"), False, False, False),
    (_status(500, body=None), False, False, False),
    (_status(502), False, False, False),
    (_status(504), False, False, False),
    # Client errors are never retried.
    (_status(400), False, False, False),
    (_status(401), False, False, False),
    (_status(402), False, False, False),
    (_status(403), False, False, False),
    (_status(404), False, False, False),
    (_status(400), True, False, False),
    (_status(404), True, False, False),
    # Idempotent requests: the transient statuses and every 5xx.
    (_status(408), True, False, True),
    (_status(409), True, False, True),
    (_status(425), True, False, True),
    (_status(429), True, False, True),
    (_status(499), True, False, True),
    (_status(500, body=None), True, False, True),
    (_status(502), True, False, True),
    (_status(504), True, False, True),
    (_status(408), False, False, False),
    # Other failures are not ours to retry.
    (APIResponseValidationError("bad body"), True, True, False),
    (ValueError("bug"), True, True, False),
    (RuntimeError("closed"), True, True, False),
]


@pytest.mark.parametrize(("exc", "idempotent", "possibly", "expected"), RULES)
def test_should_retry_rule(
    exc: BaseException, idempotent: bool, possibly: bool, expected: bool
) -> None:
    """``should_retry`` follows the README's "never pay twice" table for this case."""
    result = should_retry(exc, idempotent=idempotent, retry_possibly_submitted=possibly)
    assert result is expected


def test_should_retry_refuses_a_retry_after_beyond_the_cap() -> None:
    """A 429 asking for a wait longer than ``max_retry_after`` is not retried."""
    exc = _status(429, **{"Retry-After": "120"})
    assert not should_retry(exc, idempotent=True, max_retry_after=60)


def test_should_retry_accepts_a_retry_after_within_the_cap() -> None:
    """A 429 asking for a wait within ``max_retry_after`` is retried."""
    exc = _status(429, **{"Retry-After": "30"})
    assert should_retry(exc, idempotent=False, max_retry_after=60)


def test_should_retry_never_retries_cancellation() -> None:
    """CancelledError is never a reason to send again."""
    assert not should_retry(
        asyncio.CancelledError(), idempotent=True, retry_possibly_submitted=True
    )


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"Retry-After": " 2.5 "}, 2.5),
        ({"retry-after": "3"}, 3.0),
        ({"Retry-After": "0"}, 0.0),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"Retry-After-Ms": "250"}, 0.25),
        ({"retry-after-ms": "1500", "Retry-After": "9"}, 1.5),
        ({"retry-after-ms": "soon", "Retry-After": "9"}, 9.0),
        ({"Retry-After": email.utils.format_datetime(NOW + dt.timedelta(seconds=30))}, 30.0),
        ({"Retry-After": "Thu, 01 Jan 2026 12:00:45 GMT"}, 45.0),
        ({"Retry-After": email.utils.format_datetime(NOW - dt.timedelta(seconds=30))}, 0.0),
        ({"Retry-After": "-5"}, None),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": ""}, None),
        ({}, None),
    ],
    ids=[
        "seconds",
        "fractional",
        "lowercase",
        "zero",
        "ms",
        "ms-any-case",
        "ms-wins",
        "bad-ms-falls-back",
        "http-date",
        "http-date-text",
        "date-in-past",
        "negative",
        "garbage",
        "empty",
        "absent",
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    """``parse_retry_after`` reads each form of the header (or gives None)."""
    assert parse_retry_after(headers, now=NOW) == expected


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    """Backoff waits lie in [c/2, c] for c = initial * 2**(n-1), never above max_backoff."""
    policy = RetryPolicy(initial_backoff=0.5, max_backoff=4.0)
    for attempt, ceiling in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 4.0), (9, 4.0)]:
        for _ in range(50):
            assert ceiling / 2 <= policy.backoff(attempt) <= ceiling


def test_set_testing_switches_real_sleeps_off() -> None:
    """``set_testing`` toggles the switch the conftest uses (on during tests)."""
    assert is_testing()
    set_testing(False)
    try:
        assert not is_testing()
    finally:
        set_testing(True)


async def test_testing_switch_skips_the_sleep() -> None:
    """With testing on and no injected sleep, a 100 s backoff returns at once."""
    await asyncio.wait_for(RetryPolicy()._sleep(100.0), timeout=1.0)


# --- the client ----------------------------------------------------------------------------


async def _generate(c: AsyncTTAPI, **kwargs: object) -> object:
    return await c.images.generate(prompt="a cat", model="gpt-image-1", **kwargs)  # type: ignore[arg-type]


async def test_retry_after_seconds_is_waited(
    server: LocalServer, client: AsyncTTAPI, sleeps: SleepRecorder
) -> None:
    """A 429 with ``Retry-After: 3`` makes the client wait 3 s, then send again."""
    server.reply(
        "POST",
        GENERATIONS,
        json_answer(JSON_BODY, 429, **{"Retry-After": "3"}),
        json_answer(GENERATION_OK),
    )
    r = await _generate(client)
    assert sleeps.waits == [3.0]
    assert len(server.requests) == 2 and r is not None


async def test_retry_after_http_date_is_waited(
    server: LocalServer, client: AsyncTTAPI, sleeps: SleepRecorder
) -> None:
    """A 503 with ``Retry-After`` as an HTTP date makes the client wait until then."""
    when = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=20)
    server.reply(
        "POST",
        GENERATIONS,
        json_answer(
            JSON_BODY, 503, **{"Retry-After": email.utils.format_datetime(when, usegmt=True)}
        ),
        json_answer(GENERATION_OK),
    )
    await _generate(client)
    assert len(sleeps.waits) == 1 and 17.0 <= sleeps.waits[0] <= 20.0


async def test_retry_after_ms_is_waited(
    server: LocalServer, client: AsyncTTAPI, sleeps: SleepRecorder
) -> None:
    """A 429 with ``retry-after-ms: 1500`` makes the client wait 1.5 s."""
    server.reply(
        "POST",
        GENERATIONS,
        json_answer(JSON_BODY, 429, **{"retry-after-ms": "1500"}),
        json_answer(GENERATION_OK),
    )
    await _generate(client)
    assert sleeps.waits == [1.5]


async def test_too_long_retry_after_is_raised_not_waited(
    server: LocalServer, client: AsyncTTAPI, sleeps: SleepRecorder
) -> None:
    """A Retry-After beyond the cap (60 s) raises at once: no wait, one request."""
    server.reply("POST", GENERATIONS, json_answer(JSON_BODY, 429, **{"Retry-After": "3600"}))
    with pytest.raises(RateLimitError):
        await _generate(client)
    assert sleeps.waits == [] and len(server.requests) == 1


async def test_backoff_is_used_without_retry_after(
    server: LocalServer, client: AsyncTTAPI, sleeps: SleepRecorder
) -> None:
    """Without Retry-After, the waits are the exponential backoff: [0.25-0.5], [0.5-1]."""
    server.reply("POST", GENERATIONS, json_answer(JSON_BODY, 503))
    with pytest.raises(InternalServerError):
        await _generate(client)
    assert len(sleeps.waits) == 2
    assert 0.25 <= sleeps.waits[0] <= 0.5 and 0.5 <= sleeps.waits[1] <= 1.0


async def test_client_max_retries_bounds_attempts(
    server: LocalServer, sleeps: SleepRecorder
) -> None:
    """``max_retries=4`` on the client allows exactly five attempts."""
    server.reply("POST", GENERATIONS, json_answer(JSON_BODY, 499))
    async with AsyncTTAPI(
        api_key=API_KEY, base_url=server.url, max_retries=4, retry_policy=RetryPolicy(sleep=sleeps)
    ) as c:
        with pytest.raises(QueueFullError):
            await _generate(c)
    assert len(server.requests) == 5 and len(sleeps.waits) == 4


async def test_call_max_retries_overrides_client(server: LocalServer, client: AsyncTTAPI) -> None:
    """``max_retries=0`` on a call sends once, whatever the client's setting."""
    server.reply("POST", GENERATIONS, json_answer(JSON_BODY, 429))
    with pytest.raises(RateLimitError):
        await _generate(client, max_retries=0)
    assert len(server.requests) == 1


async def test_call_max_retries_can_raise_the_client_limit(
    server: LocalServer, client: AsyncTTAPI
) -> None:
    """``max_retries=5`` on a call allows six attempts although the client says two."""
    server.reply("POST", GENERATIONS, json_answer(JSON_BODY, 503))
    with pytest.raises(InternalServerError):
        await _generate(client, max_retries=5)
    assert len(server.requests) == 6


async def test_retry_then_success_returns_the_answer(
    server: LocalServer, client: AsyncTTAPI
) -> None:
    """Two 503s then a 200 give the 200's images."""
    server.reply(
        "POST",
        GENERATIONS,
        json_answer(JSON_BODY, 503),
        json_answer(JSON_BODY, 503),
        json_answer(GENERATION_OK),
    )
    r = await client.images.generate(prompt="a cat", model="gpt-image-1")
    assert r.usage is not None and r.usage.total_tokens == 4169


async def test_paid_post_500_with_error_body_is_retried(
    server: LocalServer, client: AsyncTTAPI
) -> None:
    """A paid POST answered 500 with a JSON error is retried."""
    server.reply("POST", GENERATIONS, json_answer(JSON_BODY, 500), json_answer(GENERATION_OK))
    await _generate(client)
    assert len(server.requests) == 2


@pytest.mark.parametrize(
    "answer",
    [
        text_answer(b"<html>upstream died</html>", 500, "text/html"),
        json_answer(JSON_BODY, 502),
        json_answer(JSON_BODY, 504),
    ],
    ids=["500-html", "502", "504"],
)
async def test_paid_post_ambiguous_5xx_is_not_retried(
    server: LocalServer, client: AsyncTTAPI, answer: object
) -> None:
    """A paid POST answered with a bare 500, a 502 or a 504 is raised after one attempt."""
    server.reply("POST", GENERATIONS, answer)  # type: ignore[arg-type]
    with pytest.raises(InternalServerError):
        await _generate(client)
    assert len(server.requests) == 1


async def test_bad_request_is_not_retried(server: LocalServer, client: AsyncTTAPI) -> None:
    """A 400 is raised after one attempt."""
    server.reply("POST", GENERATIONS, json_answer(JSON_BODY, 400))
    with pytest.raises(BadRequestError):
        await _generate(client)
    assert len(server.requests) == 1


async def test_connection_refused_is_retried_then_raised(sleeps: SleepRecorder) -> None:
    """A refused connection (nothing sent) is retried max_retries times, then raised."""
    async with AsyncTTAPI(
        api_key=API_KEY,
        base_url=f"http://127.0.0.1:{closed_port()}",
        retry_policy=RetryPolicy(sleep=sleeps),
    ) as c:
        with pytest.raises(APIConnectionError) as info:
            await _generate(c)
    assert not info.value.possibly_submitted
    assert not isinstance(info.value, APITimeoutError)
    assert len(sleeps.waits) == 2


async def test_timeout_after_sending_is_not_retried_for_paid_post(
    server: LocalServer, client: AsyncTTAPI, sleeps: SleepRecorder
) -> None:
    """A paid POST whose answer never comes raises APITimeoutError(possibly_submitted) at once."""
    server.route("POST", GENERATIONS, lambda _: server.hang())  # type: ignore[arg-type,return-value]
    with pytest.raises(APITimeoutError) as info:
        await _generate(client, timeout=0.05)
    assert info.value.possibly_submitted
    assert len(server.requests) == 1 and sleeps.waits == []


async def test_timeout_after_sending_is_retried_when_opted_in_per_call(
    server: LocalServer, client: AsyncTTAPI
) -> None:
    """``retry_possibly_submitted=True`` on a call retries a timeout after sending."""
    server.route("POST", GENERATIONS, lambda _: server.hang())  # type: ignore[arg-type,return-value]
    with pytest.raises(APITimeoutError):
        await _generate(client, timeout=0.05, retry_possibly_submitted=True)
    assert len(server.requests) == 3


async def test_timeout_after_sending_is_retried_when_opted_in_per_client(
    server: LocalServer, sleeps: SleepRecorder
) -> None:
    """``RetryPolicy(retry_possibly_submitted=True)`` retries a timeout after sending."""
    server.route("POST", GENERATIONS, lambda _: server.hang())  # type: ignore[arg-type,return-value]
    policy = RetryPolicy(sleep=sleeps, retry_possibly_submitted=True)
    async with AsyncTTAPI(
        api_key=API_KEY, base_url=server.url, timeout=0.05, max_retries=1, retry_policy=policy
    ) as c:
        with pytest.raises(APITimeoutError):
            await _generate(c)
    assert len(server.requests) == 2


async def test_multipart_edit_is_rebuilt_for_each_retry(
    server: LocalServer, client: AsyncTTAPI
) -> None:
    """A retried multipart edit sends its whole form again (aiohttp consumes a form)."""
    server.reply(
        "POST", "/v1/images/edits", json_answer(JSON_BODY, 503), json_answer(GENERATION_OK)
    )
    await client.images.edit(prompt="a hat", image=PNG, model="gpt-image-1")
    first, second = server.requests
    assert first.parts() == second.parts()
    assert [p.data for p in second.parts() if p.name == "image"] == [PNG]


async def test_retry_is_logged_at_info(
    server: LocalServer, client: AsyncTTAPI, caplog: pytest.LogCaptureFixture
) -> None:
    """Each retry logs one INFO record naming the error and the wait."""
    server.reply(
        "POST",
        GENERATIONS,
        json_answer(JSON_BODY, 429, **{"Retry-After": "2"}),
        json_answer(GENERATION_OK),
    )
    with caplog.at_level(logging.INFO, logger="ttapi_async"):
        await _generate(client)
    retries = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retries) == 1 and "RateLimitError" in retries[0].getMessage()
    assert "2.00s" in retries[0].getMessage()
