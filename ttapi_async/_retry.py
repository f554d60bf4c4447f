"""Retry policy: which failures are retried, how long to wait, and the tenacity wiring.

The rule that matters most: a request that creates paid work is retried only when the
server certainly did not act on it. See ``should_retry``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import attrs
import tenacity

from ._errors import TRANSIENT_STATUSES as _IDEMPOTENT_RETRY_STATUSES
from ._errors import APIConnectionError, APIStatusError, TTAPIError

__all__ = [
    "RetryPolicy",
    "is_testing",
    "parse_retry_after",
    "retry_after_of",
    "set_testing",
    "should_retry",
]

logger = logging.getLogger("ttapi_async")

Sleep = Callable[[float], Awaitable[None]]

# Statuses that mean "the server did not take the work, come back later".
_REFUSED_STATUSES = frozenset({429, 499, 503})

_testing = False


def set_testing(testing: bool) -> None:
    """Turn real backoff sleeps off (True) or on (False) for every client in the process.

    Waits are still computed and logged; only the sleep is skipped, so tests never wait.
    """
    global _testing
    _testing = testing


def is_testing() -> bool:
    """Return True when backoff sleeps are switched off."""
    return _testing


def parse_retry_after(
    headers: Mapping[str, str], *, now: dt.datetime | None = None
) -> float | None:
    """Return the wait a server asked for, in seconds, or None.

    Reads ``retry-after-ms`` (OpenAI's), then ``Retry-After`` as seconds or as an HTTP date.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_ms = lowered.get("retry-after-ms")
    if raw_ms is not None:
        try:
            ms = float(raw_ms)
        except ValueError:
            ms = -1.0
        if ms >= 0:
            return ms / 1000.0
    raw = lowered.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        pass
    else:
        return seconds if seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    current = now or dt.datetime.now(dt.timezone.utc)
    return max(0.0, (when - current).total_seconds())


def retry_after_of(exc: BaseException) -> float | None:
    """Return the Retry-After an error carries, if any."""
    if isinstance(exc, APIStatusError):
        return parse_retry_after(exc.headers)
    return None


def should_retry(
    exc: BaseException,
    *,
    idempotent: bool,
    retry_possibly_submitted: bool = False,
    max_retry_after: float = 60.0,
) -> bool:
    """Decide whether a failed attempt may be sent again.

    - Polls and downloads (``idempotent``) are retried on any connection failure, timeout,
      408/409/425/429/499 and 5xx.
    - Paid POSTs are retried only when the server certainly did not act: the connection
      failed before the request went out, or it answered 429, 499, 503, or 500 with an
      error body. A timeout or disconnect after sending is ambiguous and is retried only
      with ``retry_possibly_submitted``.
    - A Retry-After longer than ``max_retry_after`` is not waited out: the error is raised.
    """
    if isinstance(exc, APIConnectionError):
        if not exc.possibly_submitted:
            return True
        return idempotent or retry_possibly_submitted
    if not isinstance(exc, APIStatusError):
        return False
    retry_after = retry_after_of(exc)
    if retry_after is not None and retry_after > max_retry_after:
        return False
    status = exc.status_code
    if idempotent:
        return status in _IDEMPOTENT_RETRY_STATUSES or status >= 500
    if status in _REFUSED_STATUSES:
        return True
    # A 500 that says what went wrong is the service refusing; a bare 500 (a proxy's page,
    # a dropped upstream) may have come after the work started.
    return status == 500 and isinstance(exc.body, Mapping)


@attrs.frozen
class RetryPolicy:
    """How a client retries: counts, backoff, Retry-After handling, and the sleep it uses.

    ``sleep`` is injectable so tests can record the waits instead of sleeping.
    """

    max_retries: int = 2
    initial_backoff: float = 0.5
    max_backoff: float = 8.0
    max_retry_after: float = 60.0
    retry_possibly_submitted: bool = False
    sleep: Sleep | None = attrs.field(default=None, eq=False)
    rng: random.Random = attrs.field(factory=random.Random, eq=False, repr=False)

    def backoff(self, attempt: int) -> float:
        """Return the wait before retry number ``attempt`` (1-based): full jitter, capped."""
        ceiling = min(self.max_backoff, self.initial_backoff * (2 ** (attempt - 1)))
        return self.rng.uniform(ceiling / 2, ceiling)

    def wait_for(self, state: tenacity.RetryCallState) -> float:
        """Return the wait tenacity should sleep: the server's Retry-After, else backoff."""
        exc = state.outcome.exception() if state.outcome else None
        hinted = retry_after_of(exc) if exc is not None else None
        if hinted is not None:
            return min(hinted, self.max_retry_after)
        return self.backoff(state.attempt_number)

    async def _sleep(self, seconds: float) -> None:
        if self.sleep is not None:
            await self.sleep(seconds)
        elif not _testing:
            await asyncio.sleep(seconds)

    def retrying(
        self,
        *,
        idempotent: bool,
        max_retries: int | None = None,
        retry_possibly_submitted: bool | None = None,
    ) -> tenacity.AsyncRetrying:
        """Return a tenacity controller for one logical request."""
        attempts = (self.max_retries if max_retries is None else max_retries) + 1
        possibly = (
            self.retry_possibly_submitted
            if retry_possibly_submitted is None
            else retry_possibly_submitted
        )

        def predicate(exc: BaseException) -> bool:
            return should_retry(
                exc,
                idempotent=idempotent,
                retry_possibly_submitted=possibly,
                max_retry_after=self.max_retry_after,
            )

        return tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(attempts),
            retry=tenacity.retry_if_exception(predicate),
            wait=self.wait_for,
            sleep=self._sleep,
            before_sleep=_log_retry,
            reraise=True,
        )


def _log_retry(state: tenacity.RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    logger.info(
        "retrying after %s (attempt %d, waiting %.2fs)",
        _describe(exc),
        state.attempt_number,
        wait,
    )


def _describe(exc: BaseException | None) -> Any:
    if isinstance(exc, TTAPIError):
        return f"{type(exc).__name__}: {exc.message}"
    return type(exc).__name__
