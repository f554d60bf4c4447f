"""A job submit under a lease: wait for room under the product's limit, then send.

Each attempt takes its own lease from the client's coordinator (``acquire_lease``; a
``LeaseTimeoutError`` sends nothing), waits its turn under the shared rate, and POSTs.
What the answer means for the lease:

- accepted: the caller records the job (``record_submitted`` binds the lease to it; the
  lease is freed when the job settles);
- 429/499: ``refused`` (the limit shrinks, a ``Retry-After`` pauses everyone, the lease is
  freed), then the client's retry policy decides, with a fresh lease for the next attempt;
- the outcome unknown (a timeout after sending, an unreadable 200, a cancel mid-send): the
  service may be running the job, so the lease is held a while (``AMBIGUOUS_HOLD``);
- any other failure: the lease is released.

A caller that may stop waiting (the batch runner, on Ctrl-C) sets ``lease_wait_ends`` to a
future: once it is done, a wait for a lease ends with ``LeaseTimeoutError`` (nothing sent).
Without it, a stopping batch waited for a lease that jobs it had stopped watching held for
``AMBIGUOUS_HOLD`` (2 minutes).

A caller that must mark its request as being sent (the batch runner's ``pending ->
submitting`` claim) sets ``before_send``: it is awaited once the lease is held and the
shared rate lets the request go, right before the POST. What it raises ends the attempt
with nothing sent (the lease is freed). A runner that dies while it waits for a lease has
then claimed nothing, so its item is queued again rather than called ``unknown``.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from .._errors import (
    APIConnectionError,
    APIResponseValidationError,
    LeaseTimeoutError,
    QueueFullError,
    RateLimitError,
)
from .._retry import retry_after_of
from .._types import RequestOptions

if TYPE_CHECKING:
    from .._client import AsyncTTAPI
    from ..coordination._types import Coordinator, Lease

__all__ = ["Parse", "before_send", "lease_wait_ends", "submit_leased"]

#: Read the job id out of a submit's (JSON, status, headers); raise typed if it is not there.
Parse = Callable[[Any, int, Mapping[str, str]], str]

_ONCE = RequestOptions(max_retries=0)

#: A future whose completion ends this context's waits for a lease (see the module's doc).
lease_wait_ends: contextvars.ContextVar[asyncio.Future[None] | None] = contextvars.ContextVar(
    "lease_wait_ends", default=None
)

#: Awaited right before this context's submit is sent (see the module's doc).
before_send: contextvars.ContextVar[Callable[[], Awaitable[None]] | None] = contextvars.ContextVar(
    "before_send", default=None
)


async def submit_leased(
    client: AsyncTTAPI,
    path: str,
    body: Mapping[str, Any],
    *,
    product: str,
    parse: Parse,
    options: RequestOptions | None,
    lease_timeout: float | None,
) -> tuple[str, Mapping[str, str], Lease]:
    """Submit ``body`` to ``path`` under a lease of ``product``; return (job id, headers, lease).

    Retries follow the client's policy (``options`` may change it), one lease per attempt.
    """
    once = _ONCE if options is None else attrs.evolve(options, max_retries=0)

    async def attempt() -> tuple[str, Mapping[str, str], Lease]:
        return await _attempt(client, path, body, product, parse, once, lease_timeout)

    # As in Sender._send: the first attempt runs outside tenacity (the common case).
    try:
        return await attempt()
    except Exception as exc:  # CancelledError is a BaseException: it passes untouched
        return await client._retry(attempt, exc, idempotent=False, options=options)


async def _attempt(
    client: AsyncTTAPI,
    path: str,
    body: Mapping[str, Any],
    product: str,
    parse: Parse,
    once: RequestOptions,
    lease_timeout: float | None,
) -> tuple[str, Mapping[str, str], Lease]:
    coordination = client._coordination
    coordinator = await coordination.ready()
    lease = await _acquire(coordinator, product, lease_timeout)
    sent = False
    try:
        await coordination.rate()
        ready = before_send.get()
        if ready is not None:
            await ready()  # the caller's claim: what it raises sends nothing
        sent = True
        payload, status, headers = await client._send(
            "POST", path, json_body=body, idempotent=False, options=once
        )
        job_id = parse(payload, status, headers)
    except (RateLimitError, QueueFullError) as exc:
        await coordinator.refused(
            lease, retry_after=retry_after_of(exc), queue_full=isinstance(exc, QueueFullError)
        )
        raise
    except (APIConnectionError, APIResponseValidationError) as exc:
        # A 2xx whose body is unreadable may still have created the job.
        possibly = isinstance(exc, APIResponseValidationError) or exc.possibly_submitted
        if possibly:
            coordination.hold(lease)
        else:
            await coordinator.release_lease(lease)
        raise
    except asyncio.CancelledError:
        if sent:
            coordination.hold(lease)
        else:
            coordination.spawn(coordinator.release_lease(lease), "release a lease")
        raise
    except BaseException:
        await coordinator.release_lease(lease)
        raise
    return job_id, headers, lease


async def _acquire(coordinator: Coordinator, product: str, timeout: float | None) -> Lease:
    """Wait for a lease of ``product``, unless this context's ``lease_wait_ends`` comes first."""
    ends = lease_wait_ends.get()
    if ends is None:
        return await coordinator.acquire_lease(product, timeout=timeout)
    waiting = asyncio.ensure_future(coordinator.acquire_lease(product, timeout=timeout))
    if not ends.done():
        try:
            await asyncio.wait((waiting, ends), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            if not waiting.cancel() and waiting.exception() is None:
                _release_soon(coordinator, waiting.result())  # granted just now: unused
            raise
    if not waiting.done():
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
    if waiting.cancelled():
        raise LeaseTimeoutError(
            f"stopped while waiting for room under the {product} limit; nothing was sent",
            product=product,
        )
    lease = waiting.result()  # raises what the wait raised (a LeaseTimeoutError, Redis down)
    if not ends.done():
        return lease
    # The lease came as the wait was ending: give it back, since nothing will be sent.
    await coordinator.release_lease(lease)
    raise LeaseTimeoutError(
        f"stopped while waiting for room under the {product} limit; nothing was sent",
        product=product,
    )


def _release_soon(coordinator: Coordinator, lease: Lease) -> None:
    """Give ``lease`` back from a task of its own (its waiter is being cancelled)."""
    task = asyncio.ensure_future(coordinator.release_lease(lease))
    _RELEASING.add(task)
    task.add_done_callback(_RELEASING.discard)


_RELEASING: set[asyncio.Future[None]] = set()
