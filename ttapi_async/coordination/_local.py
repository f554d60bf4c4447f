"""LocalCoordinator: the same calls, in one process (today's behaviour; Redis's fallback)."""

from __future__ import annotations

import asyncio
import math
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable

import attrs

from .._aimd import Aimd
from .._errors import LeaseTimeoutError
from ._keys import worker_name
from ._types import CoordinatorListener, Fallback, JobRecord, Lease, LimitSettings, Settled

__all__ = ["LocalCoordinator"]

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

#: How long a settled record is kept, in seconds (about a day, as in Redis).
KEEP_SETTLED = 86_400.0
#: How long a confirming-fetch claim holds before it lapses on its own.
CONFIRM_TTL = 30.0


class _Product(Aimd):
    """One product's adaptive limit and leases (the rules the Lua scripts apply in Redis)."""

    __slots__ = ("accepted", "changed", "epoch", "leases")

    def __init__(self, initial: int) -> None:
        super().__init__(initial)
        self.epoch = 0
        self.accepted = 0
        #: lease token -> bound to an accepted job
        self.leases: dict[str, bool] = {}
        self.changed = asyncio.Event()


class LocalCoordinator:
    """Coordinate the jobs of one process: records, leases, pause and rate live in memory."""

    def __init__(
        self,
        limits: LimitSettings | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        keep: float = KEEP_SETTLED,
    ) -> None:
        self.limits = limits or LimitSettings()
        self._clock = clock
        self._sleep = sleep
        self._keep = keep
        self._worker = worker_name()
        self._listener: CoordinatorListener | None = None
        self._records: dict[str, JobRecord] = {}
        #: (settled at, job id) in settle order: the oldest expire first, at no scan's cost
        self._settled: deque[tuple[float, str]] = deque()
        self._claims: dict[str, float] = {}
        self._products: dict[str, _Product] = {}
        self._paused_until = 0.0
        self._tat = 0.0
        self._token = secrets.token_urlsafe(32)

    def __repr__(self) -> str:
        return f"LocalCoordinator(worker={self._worker!r})"

    @property
    def worker_id(self) -> str:
        """Return this coordinator's worker id."""
        return self._worker

    @property
    def fallback(self) -> Fallback | None:
        """Return None: an in-process coordinator has nothing to fall back from."""
        return None

    async def open(self, api_key: str, listener: CoordinatorListener | None = None) -> None:
        """Remember ``listener``; the key is not needed in one process."""
        self._listener = listener

    async def aclose(self) -> None:
        """Forget the listener."""
        self._listener = None

    async def webhook_token(self) -> str:
        """Return this process's random webhook token."""
        return self._token

    # -- job records -------------------------------------------------------------------

    async def record_submitted(
        self, job_id: str, *, kind: str, product: str, lease: Lease | None, age: float = 0.0
    ) -> JobRecord:
        """Record an accepted job and bind its lease (the limit grows: it was accepted)."""
        if lease is not None:
            self._drop(lease.product, lease.token)
        existing = self._records.get(job_id)
        if existing is not None:
            return existing
        record = JobRecord(job_id, self._worker, kind, product, self._clock() - age)
        self._records[job_id] = record
        if product:
            state = self._product(product)
            state.leases[job_id] = True
            state.accepted += 1
            self._grow(product, state)
        return record

    async def get_record(self, job_id: str) -> JobRecord | None:
        """Return the job's record, or None."""
        self._prune()
        return self._records.get(job_id)

    async def settle(self, job_id: str, *, status: str, answer: str) -> Settled:
        """Record the first terminal status, free the job's lease and tell the listener."""
        now = self._clock()
        record = self._records.get(job_id)
        if record is not None and record.settled:
            return Settled(False, record)
        if record is None:
            record = JobRecord(job_id, "", "", "", now)
        record = attrs.evolve(record, status=status, answer=answer, settled_at=now)
        self._records[job_id] = record
        self._settled.append((now, job_id))
        self._prune()
        if record.product:
            self._drop(record.product, job_id)
        if self._listener is not None and record.owner == self._worker:
            self._listener.job_settled(record)
        return Settled(True, record)

    def forget(self, job_id: str) -> None:
        """Do nothing: the job still runs at the service, so its lease stays until it settles."""

    async def claim_confirm(self, job_id: str) -> bool:
        """Return True for the first claim of ``job_id`` until it is released or lapses."""
        now = self._clock()
        if self._claims.get(job_id, -math.inf) > now:
            return False
        self._claims[job_id] = now + CONFIRM_TTL
        return True

    async def claim_callback(self, job_id: str) -> tuple[JobRecord | None, bool]:
        """Return a callback's job record and whether this caller makes the confirming fetch."""
        record = await self.get_record(job_id)
        if record is None or record.settled:
            return record, False
        return record, await self.claim_confirm(job_id)

    async def release_confirm(self, job_id: str) -> None:
        """Release the confirming claim."""
        self._claims.pop(job_id, None)

    # -- leases, pause and rate --------------------------------------------------------

    async def acquire_lease(self, product: str, *, timeout: float | None = None) -> Lease:
        """Wait for a free slot of ``product``'s limit (and for any pause), then take it."""
        deadline = None if timeout is None else self._clock() + timeout
        state = self._product(product)
        while True:
            left = self._paused_until - self._clock()
            if left > 0:
                self._check_deadline(product, deadline, left)
                await self._sleep(left)
                continue
            if len(state.leases) < self.current(product):
                token = "~" + secrets.token_hex(8)
                state.leases[token] = False
                return Lease(product, token, state.epoch)
            state.changed.clear()
            if deadline is None:
                await state.changed.wait()
                continue
            remaining = deadline - self._clock()
            self._check_deadline(product, deadline, 0.0)
            try:
                await asyncio.wait_for(state.changed.wait(), remaining)
            except asyncio.TimeoutError:
                self._check_deadline(product, self._clock(), 0.0)

    async def release_lease(self, lease: Lease) -> None:
        """Give back a lease whose submit was not accepted."""
        self._drop(lease.product, lease.token)

    async def refused(
        self, lease: Lease, *, retry_after: float | None = None, queue_full: bool = False
    ) -> None:
        """Shrink the limit once per round, honour ``retry_after``, free the lease."""
        if retry_after is not None and retry_after > 0:
            await self.pause(retry_after)
        state = self._product(lease.product)
        if lease.epoch == state.epoch:
            state.epoch += 1
            base = state.limit
            if queue_full:
                base = min(base, float(max(state.accepted, 1)))
            state.shrink(base, self.limits.decrease, float(self.limits.minimum))
        self._drop(lease.product, lease.token)

    async def pause(self, seconds: float) -> None:
        """Hold new leases and requests for ``seconds``."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    async def pause_left(self) -> float:
        """Return how long the pause still holds."""
        return max(0.0, self._paused_until - self._clock())

    async def rate(self) -> None:
        """Wait for this request's turn under the rate (a GCRA) and any pause."""
        while True:
            wait = self.rate_wait()
            if wait <= 0:
                return
            await self._sleep(wait)

    def rate_wait(self) -> float:
        """Take a turn and return 0, or return how long to wait before asking again."""
        now = self._clock()
        if self._paused_until > now:
            return self._paused_until - now
        if self.limits.rate is None:
            return 0.0
        interval = 1.0 / self.limits.rate
        tat = max(self._tat, now)
        excess = tat - now - interval * (self.limits.burst - 1)
        if excess > 0:
            return excess
        self._tat = tat + interval
        return 0.0

    async def heartbeat(self) -> None:
        """Do nothing: one process cannot die without its jobs."""

    async def sweep(self) -> list[JobRecord]:
        """Return nothing: there is no other worker to adopt from."""
        return []

    # -- the adaptive limit ------------------------------------------------------------

    def current(self, product: str) -> int:
        """Return the whole number of leases ``product``'s limit allows now."""
        state = self._product(product)
        cap = self.limits.cap_of(product)
        return max(self.limits.minimum, min(cap, math.floor(state.limit)))

    def in_progress(self, product: str) -> int:
        """Return the leases held for ``product`` (taken or bound to a job)."""
        return len(self._product(product).leases)

    def _product(self, product: str) -> _Product:
        state = self._products.get(product)
        if state is None:
            initial = min(self.limits.initial, self.limits.cap_of(product))
            state = self._products[product] = _Product(initial)
        return state

    def _grow(self, product: str, state: _Product) -> None:
        if state.grow(float(self.limits.cap_of(product)), self.limits.grow_every):
            state.changed.set()

    def _drop(self, product: str, token: str) -> None:
        state = self._product(product)
        bound = state.leases.pop(token, None)
        if bound is None:
            return
        if bound:
            state.accepted -= 1
        state.changed.set()

    def _check_deadline(self, product: str, deadline: float | None, wait: float) -> None:
        if deadline is not None and self._clock() + wait >= deadline:
            raise LeaseTimeoutError(
                f"no {product} lease came free in time ({self.current(product)} jobs in progress)",
                product=product,
            )

    def _prune(self) -> None:
        settled, records = self._settled, self._records
        horizon = self._clock() - self._keep
        while settled and settled[0][0] < horizon:
            records.pop(settled.popleft()[1], None)
