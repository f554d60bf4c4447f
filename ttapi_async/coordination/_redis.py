"""RedisCoordinator: job records, leases, pause and rate shared by every worker through Redis."""

from __future__ import annotations

import asyncio
import contextlib
import secrets

import attrs

from .._errors import LeaseTimeoutError
from ._fallback import Release, Settle, Submitted, Unqueue
from ._keys import webhook_token
from ._local import CONFIRM_TTL
from ._records import parse_record
from ._redis_base import DOWN, Grant, RedisBase
from ._types import JobRecord, Lease, Settled

__all__ = ["RedisCoordinator"]


class RedisCoordinator(RedisBase):
    """Share one account's jobs, limits and webhook token among processes through Redis.

    Every worker that passes the same URL and ``namespace`` (and uses the same API key)
    joins the same group. ``heartbeat`` is the beat period in seconds; a worker silent
    for ``dead_after`` periods is declared dead and its jobs adopted. Only a one-way hash
    of the API key reaches Redis; the URL's password never appears in a repr or a log.
    At most ``max_connections`` commands are in flight at once (besides the one pub/sub
    connection); more wait up to ``pool_timeout`` seconds for a connection.
    """

    async def webhook_token(self) -> str:
        """Return the token every worker derives alike from the key and the namespace's salt."""
        salt = ""
        with contextlib.suppress(*DOWN):
            salt = str(await self._redis().get(self.keys("hook-salt")) or "")
        return webhook_token(self._secret, self.namespace, salt)

    async def rotate_webhook_token(self) -> str:
        """Give the namespace a new salt: every worker's next ``webhook_token`` is a new one."""
        await self._redis().set(self.keys("hook-salt"), secrets.token_hex(16))
        return await self.webhook_token()

    # -- job records -------------------------------------------------------------------

    async def record_submitted(
        self, job_id: str, *, kind: str, product: str, lease: Lease | None, age: float = 0.0
    ) -> JobRecord:
        """Record an accepted job as this worker's and bind ``lease`` to it (one script)."""
        self._pending.add(job_id)
        if self._fallback is None:
            with contextlib.suppress(*DOWN):
                return await self._record(job_id, kind, product, lease, age)
        self._outbox.add(Submitted(job_id, kind, product, lease, self._clock() - age))
        local_lease = lease if lease is not None and not lease.shared else None
        record = await self._local_().record_submitted(
            job_id, kind=kind, product=product, lease=local_lease
        )
        return attrs.evolve(record, owner=self._worker, shared=False)

    async def _record(
        self, job_id: str, kind: str, product: str, lease: Lease | None, age: float
    ) -> JobRecord:
        member = "" if lease is None or not lease.shared else lease.token
        cap = self.limits.cap_of(product) if product else 1
        for _ in range(2):
            state, now = await self._run(
                "SUBMITTED",
                self._worker, job_id, kind, product, member, round(age * 1000),
                self._keep_ms, self._lease_ms, cap, self.limits.initial, self.limits.grow_every,
            )  # fmt: skip
            if state != -1:
                break
            await self._fenced(keep=[job_id])  # declared dead meanwhile: record it anew
        if lease is not None and not lease.shared:
            await self._local_().release_lease(lease)
        if state == 1:  # recorded now: the record is what was sent, no need to read it
            return JobRecord(job_id, self._worker, kind, product, (now - round(age * 1000)) / 1000)
        record = await self.get_record(job_id)
        return record or JobRecord(job_id, self._worker, kind, product, now / 1000 - age)

    async def settle(self, job_id: str, *, status: str, answer: str) -> Settled:
        """Record the first terminal status, free the job's lease and wake its owner."""
        if self._fallback is None:
            with contextlib.suppress(*DOWN):
                won, *flat = await self._run(
                    "SETTLE", self._worker, job_id, status, answer, self._keep_ms
                )
                record = parse_record(job_id, dict(zip(flat[::2], flat[1::2], strict=True)))
                assert record is not None  # the script has just written it
                if won and record.owner == self._worker:
                    self._deliver(record)
                return Settled(bool(won), record)
        self._outbox.add(Settle(job_id, status, answer))
        settled = await self._local_().settle(job_id, status=status, answer=answer)
        record = attrs.evolve(settled.record, shared=False)
        if settled.won and job_id in self._pending:
            self._deliver(record)
        return Settled(settled.won, record)

    def forget(self, job_id: str) -> None:
        """Stop expecting news of ``job_id`` here; its record and lease stay until it settles."""
        self._pending.discard(job_id)
        self._claimed.pop(job_id, None)

    async def claim_confirm(self, job_id: str) -> bool:
        """Return True for the one worker that may make the confirming fetch (SET NX PX)."""
        if self._fallback is None:
            with contextlib.suppress(*DOWN):
                ttl = round(CONFIRM_TTL * 1000)
                return bool(await self._run("CLAIM", self._worker, job_id, ttl))
        return await self._local_().claim_confirm(job_id)

    async def claim_callback(self, job_id: str) -> tuple[JobRecord | None, bool]:
        """Read a callback's job record and, unless it settled, take the confirming claim.

        One round trip instead of ``get_record`` then ``claim_confirm``: it also closes the
        window in which the owner settles between the two, which would cost a fetch.
        Returns ``(None, False)`` when no worker recorded the job.
        """
        if self._fallback is None:
            with contextlib.suppress(*DOWN):
                ttl = round(CONFIRM_TTL * 1000)
                reply = await self._run("CLAIM_RECORD", self._worker, job_id, ttl)
                if not reply:
                    return None, False
                claimed, *flat = reply
                record = parse_record(job_id, dict(zip(flat[::2], flat[1::2], strict=True)))
                return record, bool(claimed)
        return await self._local_().claim_callback(job_id)

    def confirming_elsewhere(self, job_id: str) -> bool:
        """Return True while another worker holds the confirming claim of this worker's job.

        The claim's holder said so in a push: a callback that reaches this worker too
        then makes no fetch of its own (the holder's settle wakes this worker).
        """
        until = self._claimed.get(job_id)
        if until is None:
            return False
        if until > self._clock():
            return True
        del self._claimed[job_id]
        return False

    async def release_confirm(self, job_id: str) -> None:
        """Give the confirming claim back, if it is still this worker's."""
        if self._fallback is None:
            with contextlib.suppress(*DOWN):
                await self._run("RELEASE_CLAIM", self._worker, job_id)
                return
        await self._local_().release_confirm(job_id)

    # -- leases, pause, rate -----------------------------------------------------------

    async def acquire_lease(self, product: str, *, timeout: float | None = None) -> Lease:
        """Wait for a free slot of ``product``'s shared limit; LeaseTimeoutError at timeout.

        A slot free now is taken at once. Otherwise the caller joins the product's queue in
        Redis (the same round trip), and the release that frees a slot hands it to the
        oldest waiter, in its name, and pushes it the news: one waiter woken per freed
        lease, with no round trip of its own.
        """
        deadline = None if timeout is None else self._clock() + timeout
        token = "~" + secrets.token_hex(8)
        queue_ms = 0 if timeout is not None and timeout <= 0 else self._deadline_ms
        queued = leased = False
        try:
            while True:
                if self._fallback is not None:
                    if queued:
                        self._outbox.add(Unqueue(product, token))
                        queued = False
                    left = None if deadline is None else max(0.0, deadline - self._clock())
                    lease = await self._local_().acquire_lease(product, timeout=left)
                    leased = True
                    return attrs.evolve(lease, shared=False)
                # Listen before asking: a grant pushed while the script runs is not missed.
                future: asyncio.Future[Grant | None] = asyncio.get_running_loop().create_future()
                self._tickets[token] = future
                try:
                    ok, wait_ms, epoch, current, _ = await self._run(
                        "ACQUIRE", self._worker, product, token, self._lease_ms,
                        self.limits.cap_of(product), self.limits.initial, self.limits.minimum,
                        queue_ms,
                    )  # fmt: skip
                except DOWN:
                    continue  # _run switched to the fallback
                self._known[product] = int(current)
                if ok:
                    if wait_ms > 0:
                        await self._sleep(wait_ms / 1000)  # granted during the pause
                    leased = True
                    return Lease(product, token, int(epoch))
                queued = queued or (wait_ms < 0 and queue_ms > 0)
                wait = wait_ms / 1000 if wait_ms > 0 else self._recheck
                if deadline is not None:
                    left = deadline - self._clock()
                    if left <= 0:
                        raise LeaseTimeoutError(
                            f"no {product} lease came free in time (limit {current})",
                            product=product,
                        )
                    wait = min(wait, left)
                if wait_ms > 0:
                    await self._sleep(wait)  # the shared pause
                    continue
                try:
                    grant = await asyncio.wait_for(asyncio.shield(future), wait)
                except asyncio.TimeoutError:
                    continue  # ask again: a lost push, or the deadline
                if grant is None:
                    continue  # reconnected, fenced or fallen back: ask again
                self._known[product] = grant.current
                if grant.wait_ms > 0:
                    # Still "queued" meanwhile: a cancel here gives the granted lease back.
                    await self._sleep(grant.wait_ms / 1000)  # granted during the pause
                leased = True
                return Lease(product, token, grant.epoch)
        finally:
            self._tickets.pop(token, None)
            if queued and not leased:
                # Leave the queue, and give back a slot granted meanwhile (to the next one).
                self._spawn(self._unqueue(product, token))

    async def _unqueue(self, product: str, token: str) -> None:
        if self._closing:
            return  # RETIRE took this worker out of every queue
        if self._fallback is None:
            with contextlib.suppress(*DOWN):
                await self._run("UNQUEUE", self._worker, product, token)
                return
        self._outbox.add(Unqueue(product, token))

    async def release_lease(self, lease: Lease) -> None:
        """Give back a lease whose submit was not accepted."""
        if not lease.shared:
            await self._local_().release_lease(lease)
        elif self._fallback is None:
            with contextlib.suppress(*DOWN):
                await self._run("RELEASE", self._worker, lease.product, lease.token)
                return
        self._outbox.add(Release(lease))

    async def refused(
        self, lease: Lease, *, retry_after: float | None = None, queue_full: bool = False
    ) -> None:
        """Record a 429/499: shrink the shared limit once per round, pause everyone, free it."""
        if self._fallback is None and lease.shared:
            with contextlib.suppress(*DOWN):
                current = await self._run(
                    "REFUSED", self._worker, lease.product, lease.token, lease.epoch,
                    round((retry_after or 0.0) * 1000), int(queue_full), self.limits.decrease,
                    self.limits.cap_of(lease.product), self.limits.initial, self.limits.minimum,
                )  # fmt: skip
                self._known[lease.product] = int(current)
                return
        if lease.shared:
            self._outbox.add(Release(lease))
            lease = attrs.evolve(lease, shared=False)
        await self._local_().refused(lease, retry_after=retry_after, queue_full=queue_full)

    async def pause(self, seconds: float) -> None:
        """Hold every process's new requests and leases for ``seconds`` (Redis's clock)."""
        if self._fallback is None:
            with contextlib.suppress(*DOWN):
                await self._run("PAUSE", round(seconds * 1000))
                return
        await self._local_().pause(seconds)

    async def pause_left(self) -> float:
        """Return how long the shared pause still holds, in seconds."""
        if self._fallback is None:
            with contextlib.suppress(*DOWN):
                return int(await self._run("PAUSE", 0)) / 1000
        return await self._local_().pause_left()

    async def rate(self) -> None:
        """Wait for this request's turn under the shared rate (a GCRA in Redis) and any pause."""
        interval = 0.0 if self.limits.rate is None else 1000.0 / self.limits.rate
        while True:
            if self._fallback is not None:
                await self._local_().rate()
                return
            with contextlib.suppress(*DOWN):
                wait_ms = int(await self._run("RATE", f"{interval:.3f}", self.limits.burst))
                if wait_ms <= 0:
                    return
                await self._sleep(wait_ms / 1000)

    # -- liveness ----------------------------------------------------------------------
