"""The RedisCoordinator's connection, liveness (heartbeat, sweep, fencing) and outage handling."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

import attrs
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

from . import _scripts
from ._fallback import Outbox, Settle, Submitted, Unqueue, fallback_for
from ._keys import Keys, account_id, redact_url, scrub, webhook_secret, worker_name
from ._listener import PushListener
from ._local import CONFIRM_TTL, KEEP_SETTLED, LocalCoordinator
from ._records import parse_record
from ._types import CoordinatorListener, Fallback, JobRecord, LimitSettings

__all__ = ["DOWN", "Grant", "RedisBase"]

logger = logging.getLogger("ttapi_async.coordination")

#: Redis trouble that means "unreachable": fall back, do not fail the caller.
DOWN = (RedisConnectionError, RedisTimeoutError, OSError, asyncio.TimeoutError)


@attrs.frozen
class Grant:
    """A lease a release handed to a waiting ``acquire_lease`` (the push that says so)."""

    epoch: int
    #: how long the shared pause still holds (the grant waits it out), ms on Redis's clock
    wait_ms: int
    current: int


class _Script:
    """One Lua script, sent by SHA and loaded on the first NOSCRIPT."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(self, client: aioredis.Redis, key: str, args: Sequence[object]) -> Any:
        try:
            return await client.evalsha(self.sha, 1, key, *args)  # type: ignore[arg-type]
        except NoScriptError:
            return await client.eval(self.source, 1, key, *args)  # type: ignore[arg-type]


_S = {name: _Script(getattr(_scripts, name)) for name in _scripts.__all__}


class RedisBase:
    """Connect, beat, sweep, listen, and fall back while Redis is unreachable."""

    def __init__(
        self,
        url: str,
        *,
        namespace: str = "default",
        limits: LimitSettings | None = None,
        heartbeat: float = 2.0,
        dead_after: float = 2.0,
        lease_ttl: float | None = None,
        keep: float = KEEP_SETTLED,
        recheck: float = 30.0,
        socket_timeout: float = 2.0,
        max_connections: int = 32,
        pool_timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if heartbeat <= 0 or dead_after < 1:
            raise ValueError("heartbeat must be > 0 and dead_after >= 1 (periods)")
        if max_connections < 1 or pool_timeout <= 0:
            raise ValueError("max_connections must be >= 1 and pool_timeout > 0")
        self._url = url
        self._shown_url = redact_url(url)
        self.namespace = namespace
        Keys(namespace, "check")  # raise on a bad namespace now, not at open()
        self.limits = limits or LimitSettings()
        self.period = heartbeat
        self._deadline_ms = round(heartbeat * dead_after * 1000)
        # Leases outlive a dead owner long enough for a sweeper to move them (three beats).
        self._lease_ms = round((lease_ttl or heartbeat * (dead_after + 8)) * 1000)
        self._keep_ms = round(keep * 1000)
        # A waiting acquire_lease asks Redis again this often. A grant comes by push, and a
        # push lost to a reconnect makes every waiter ask again: this is the last resort.
        self._recheck = recheck
        self._socket_timeout = socket_timeout
        self._max_connections = max_connections
        self._pool_timeout = pool_timeout
        self._clock = clock
        self._sleep = sleep
        self._worker = worker_name()
        self._keys: Keys | None = None
        self._secret = b""
        self._client: aioredis.Redis | None = None
        self._push_client: aioredis.Redis
        #: the heartbeat's and the sweep's own connection (see open())
        self._beat_client: aioredis.Redis | None = None
        self._push: PushListener | None = None
        self._beater: asyncio.Task[None] | None = None
        self._listener: CoordinatorListener | None = None
        self._pending: set[str] = set()
        #: this worker's jobs another worker is confirming -> when its claim lapses (our clock)
        self._claimed: dict[str, float] = {}
        #: waiting acquire_lease calls by token: a grant (or None: ask again) resolves one
        self._tickets: dict[str, asyncio.Future[Grant | None]] = {}
        self._known: dict[str, int] = {}
        self._peers = 1
        self._fallback: Fallback | None = None
        self._local: LocalCoordinator | None = None
        self._outbox = Outbox()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False

    def __repr__(self) -> str:
        return (
            f"RedisCoordinator(url={self._shown_url!r}, namespace={self.namespace!r}, "
            f"worker={self._worker!r}, fallback={self._fallback is not None})"
        )

    @property
    def worker_id(self) -> str:
        """Return this incarnation's worker id (a fenced worker takes a new one)."""
        return self._worker

    @property
    def fallback(self) -> Fallback | None:
        """Return the fallback in force while Redis is unreachable, else None."""
        return self._fallback

    @property
    def keys(self) -> Keys:
        """Return the key builder of the bound account (after ``open``)."""
        if self._keys is None:
            raise RuntimeError("open() the coordinator first")
        return self._keys

    @property
    def redis(self) -> aioredis.Redis:
        """Return the open Redis client, for the package's other shared stores (the batch)."""
        return self._redis()

    @property
    def dead_after_seconds(self) -> float:
        """Return how long a worker may stay silent before the others call it dead."""
        return self._deadline_ms / 1000

    async def open(self, api_key: str, listener: CoordinatorListener | None = None) -> None:
        """Bind to the account, subscribe, beat once and start the heartbeat loop."""
        if self._client is not None:
            raise RuntimeError("this RedisCoordinator is already open")
        self._closing = False
        self._keys = Keys(self.namespace, account_id(api_key))
        self._secret = webhook_secret(api_key)
        self._listener = listener
        self._client = self._pooled(self._max_connections)
        # The beat has a connection of its own: queued behind a burst of job traffic in the
        # pool above, a busy worker's beat came late and the others declared it dead (two
        # of four workers in one benchmark run), which fences it and takes its leases.
        self._beat_client = self._pooled(1)
        # Its own client without retries: redis-py would otherwise reconnect and resubscribe
        # silently, and the pushes lost meanwhile would never be looked for.
        self._push_client = aioredis.Redis.from_url(
            self._url,
            decode_responses=True,
            socket_connect_timeout=self._socket_timeout,
            retry=Retry(NoBackoff(), 0),
        )
        self._push = PushListener(
            self._push_client,
            on_message=self._on_push,
            on_up=self._resubscribed,
            on_down=self._listener_down,
        )
        self._push.start(self._channels())
        await self.heartbeat()
        self._beater = asyncio.create_task(self._beat_loop(), name="ttapi-coordination-beat")

    async def aclose(self) -> None:
        """Stop the loops, give back this worker's leases and close the connections.

        Leases not bound to a job are freed at once. A pending job keeps its record and its
        lease (the service still runs it): the next sweep of any live worker adopts both,
        without waiting for this worker to fall silent past the deadline.
        """
        self._closing = True
        if self._beater is not None:
            self._beater.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beater
            self._beater = None
        if self._client is not None and self._fallback is None:
            # Not through _run: an outage found while closing starts no fallback.
            with contextlib.suppress(*DOWN):
                await _S["RETIRE"](self._client, self.keys.clock, (self.keys.prefix, self._worker))
        if self._push is not None:
            await self._push.aclose()
            self._push = None
            await self._push_client.aclose()
        # Awaited, not only cancelled: a read-back whose cancel Python 3.11 swallowed inside
        # redis-py's connect would otherwise open a socket after the pool below is closed.
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for future in self._tickets.values():
            future.cancel()
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        if self._beat_client is not None:
            await self._beat_client.aclose()
            self._beat_client = None

    async def wait_subscribed(self, timeout: float = 30.0) -> None:
        """Return once the pub/sub connection is subscribed; TimeoutError after ``timeout``."""
        assert self._push is not None
        await asyncio.wait_for(self._push.up.wait(), timeout)

    async def heartbeat(self) -> None:
        """Beat once (renewing this worker's leases); resync first if Redis just came back."""
        try:
            state, _, live = await self._beat("HEARTBEAT", self._worker, self._lease_ms,
                                              self._deadline_ms)  # fmt: skip
        except DOWN:
            return
        if state == -1:
            await self._fenced()
            state, _, live = await self._beat("HEARTBEAT", self._worker, self._lease_ms,
                                              self._deadline_ms)  # fmt: skip
        self._peers = max(1, int(live))
        if self._fallback is not None:
            await self._resync()

    async def sweep(self) -> list[JobRecord]:
        """Adopt the jobs of workers silent past the deadline; tell the listener, return them."""
        if self._fallback is not None:
            return []
        try:
            out = await self._beat(
                "SWEEP", self._worker, self._deadline_ms, self._lease_ms,
                round(self.period * 900), self._keep_ms,
            )  # fmt: skip
        except DOWN:
            return []
        if not out or out[0] == -1:
            return []
        now = int(out[0]) / 1000
        records = []
        for i in range(1, len(out), 5):
            job_id, kind, product, submitted_ms, dead = out[i : i + 5]
            submitted = int(float(submitted_ms)) / 1000 if submitted_ms else now
            records.append(JobRecord(job_id, self._worker, kind, product, submitted,
                                     adopted_from=dead, read_at=now))  # fmt: skip
            self._pending.add(job_id)
        if records:
            logger.info("adopted %d job(s) of dead worker(s)", len(records))
            if self._listener is not None:
                self._listener.jobs_adopted(records)
        return records

    async def get_record(self, job_id: str) -> JobRecord | None:
        """Return the job's record from Redis (or this process's own, while Redis is down)."""
        if self._fallback is None:
            with contextlib.suppress(*DOWN):
                fields = await self._redis().hgetall(self.keys("job", job_id))
                return parse_record(job_id, fields)
        return await self._local_().get_record(job_id)

    async def server_time(self) -> float:
        """Return Redis's clock (the one every lease and heartbeat is timed by), in seconds."""
        seconds, micros = await self._redis().time()
        offset = int(await self._redis().get(self.keys.clock) or 0)
        return seconds + micros / 1e6 + offset / 1000

    # -- internals ---------------------------------------------------------------------

    def _redis(self) -> aioredis.Redis:
        if self._client is None:
            raise RuntimeError("open() the coordinator first")
        return self._client

    def _local_(self) -> LocalCoordinator:
        if self._local is None:
            self._local = LocalCoordinator(self.limits, clock=self._clock, sleep=self._sleep)
        return self._local

    def _channels(self) -> set[str]:
        return {self.keys("wake", self._worker)}

    def _pooled(self, connections: int) -> aioredis.Redis:
        # A blocking pool: a burst of calls beyond its size waits (up to pool_timeout) for
        # a connection; redis-py's default pool would raise, and that reads as an outage.
        pool = aioredis.BlockingConnectionPool.from_url(
            self._url,
            max_connections=connections,
            timeout=self._pool_timeout,
            decode_responses=True,
            socket_timeout=self._socket_timeout,
            socket_connect_timeout=self._socket_timeout,
            retry=Retry(NoBackoff(), 1),
        )
        return aioredis.Redis.from_pool(pool)

    async def _run(self, name: str, *args: object, on: aioredis.Redis | None = None) -> Any:
        """Run one script (on the pooled client, or ``on``); on an outage switch to the
        fallback and re-raise."""
        try:
            client = self._redis() if on is None else on
            return await _S[name](client, self.keys.clock, (self.keys.prefix, *args))
        except DOWN as exc:
            self._down(exc)
            raise

    async def _beat(self, name: str, *args: object) -> Any:
        """Run a script of the beat (HEARTBEAT, SWEEP) on its own connection."""
        if self._beat_client is None:
            raise RuntimeError("open() the coordinator first")
        return await self._run(name, *args, on=self._beat_client)

    async def _beat_loop(self) -> None:
        # Real time, not the injected ``sleep``: that one is for the waits callers asked for.
        # Stopped by ``_closing`` as well as by the cancel: a cancel that lands inside a
        # redis-py call can come out as a connection error, which heartbeat() takes for an
        # outage and swallows; the loop would then beat on and aclose() wait for ever.
        loop = asyncio.get_running_loop()
        due = loop.time()
        while not self._closing:
            # Beats a period apart from start to start: a slow sweep does not stretch the
            # silence the others measure.
            due = max(due + self.period, loop.time())
            await asyncio.sleep(due - loop.time())
            try:
                await self.heartbeat()
                if self._closing:
                    return
                await self.sweep()
            except Exception:
                # A loop that died would get this worker declared dead: log and beat on.
                logger.exception("worker %s: heartbeat failed", self._worker)

    async def _fenced(self, keep: Sequence[str] = ()) -> None:
        """This worker was declared dead: its jobs belong to an adopter; go on as a new worker."""
        lost = sorted(self._pending - set(keep))
        self._pending.intersection_update(keep)
        old, self._worker = self._worker, worker_name()
        logger.warning("worker %s was declared dead; %d job(s) lost to an adopter", old, len(lost))
        if self._push is not None:
            self._push.set_channels(self._channels())
        self._ask_again()  # their places in the queues were the old id's
        if lost and self._listener is not None:
            self._listener.jobs_lost(lost)

    def _down(self, exc: BaseException) -> None:
        if self._fallback is not None:
            return
        reason = scrub(f"{type(exc).__name__}: {exc}", self._url)
        fallback, settings = fallback_for(reason, self.limits, self._known, self._peers)
        self._local = LocalCoordinator(settings, clock=self._clock, sleep=self._sleep)
        self._fallback = fallback
        logger.warning(
            "worker %s: Redis at %s unreachable (%s): polling every job, local limits %s "
            "until it returns",
            self._worker, self._shown_url, reason, dict(fallback.local_limits),
        )  # fmt: skip
        self._ask_again()
        if self._listener is not None:
            self._listener.fallback_started(fallback)

    def _listener_down(self, exc: BaseException) -> None:
        # A pub/sub connection can fail on its own (a stale pooled socket after a restart):
        # only an outage that the main connection confirms starts the fallback.
        self._spawn(self._probe(exc))

    async def _probe(self, exc: BaseException) -> None:
        try:
            await self._redis().ping()
        except DOWN:
            self._down(exc)

    async def _resync(self) -> None:
        """Redis is back: replay what it missed, re-read pending records, leave the fallback."""
        if not await self._replay():
            return
        await self._resync_pending()
        self._fallback = None
        self._local = None
        logger.info("Redis at %s reachable again: shared limits and pushes resumed",
                    self._shown_url)  # fmt: skip
        if self._listener is not None:
            self._listener.resynced()

    async def _replay(self) -> bool:
        """Send the outbox in order (each entry is idempotent); False if Redis failed again."""
        done = 0
        try:
            for entry in self._outbox.entries:
                if isinstance(entry, Submitted):
                    member = entry.lease.token if entry.lease and entry.lease.shared else ""
                    cap = self.limits.cap_of(entry.product) if entry.product else 1
                    await self._run(
                        "SUBMITTED", self._worker, entry.job_id, entry.kind, entry.product,
                        member, round((self._clock() - entry.at) * 1000), self._keep_ms,
                        self._lease_ms, cap, self.limits.initial, self.limits.grow_every,
                    )  # fmt: skip
                elif isinstance(entry, Settle):
                    await self._run("SETTLE", self._worker, entry.job_id, entry.status,
                                    entry.answer, self._keep_ms)  # fmt: skip
                elif isinstance(entry, Unqueue):
                    await self._run("UNQUEUE", self._worker, entry.product, entry.token)
                else:
                    await self._run("RELEASE", self._worker, entry.lease.product,
                                    entry.lease.token)  # fmt: skip
                done += 1
        except DOWN:
            return False
        finally:
            self._outbox.done(done)
        return True

    async def _resubscribed(self) -> None:
        """Pushes sent while unsubscribed are lost: waiters ask again, records are re-read."""
        self._ask_again()
        await self._resync_pending()

    async def _resync_pending(self) -> None:
        """Re-read the records of this worker's pending jobs: pushes missed meanwhile are lost."""
        if not self._pending:
            return
        pipe = self._redis().pipeline(transaction=False)
        jobs = sorted(self._pending)
        for job_id in jobs:
            pipe.hgetall(self.keys("job", job_id))
        try:
            replies = await pipe.execute()
        except DOWN as exc:
            self._down(exc)
            raise
        lost = []
        for job_id, fields in zip(jobs, replies, strict=True):
            record = parse_record(job_id, fields)
            if record is None:
                continue
            if record.settled:
                self._deliver(record)
            elif record.owner and record.owner != self._worker:
                lost.append(job_id)
        if lost:
            self._pending.difference_update(lost)
            if self._listener is not None:
                self._listener.jobs_lost(lost)

    def _on_push(self, channel: str, data: str) -> None:
        # "<kind>\n<job id or lease token>[\n<payload>]"; a bare job id means settled.
        kind, _, rest = data.partition("\n")
        if not rest:
            kind, rest = "settled", data
        job_id, _, payload = rest.partition("\n")
        if kind == "grant":
            self._granted(job_id, payload)
            return
        if job_id not in self._pending:
            return
        if kind == "claim":
            self._claimed[job_id] = self._clock() + CONFIRM_TTL
        elif kind == "unclaim":
            self._claimed.pop(job_id, None)
        elif kind == "settled":
            record = _pushed_record(job_id, payload)
            if record is not None and record.settled:
                self._deliver(record)
                return
            self._spawn(self._read_woken(job_id))

    def _granted(self, token: str, payload: str) -> None:
        future = self._tickets.get(token)
        if future is None or future.done():
            return  # its waiter left: the UNQUEUE it sent gives the lease back
        try:
            _, epoch, wait_ms, current = payload.rsplit("|", 3)
            grant = Grant(int(epoch), int(float(wait_ms)), int(current))
        except ValueError:
            future.set_result(None)  # unreadable: the waiter asks Redis
            return
        future.set_result(grant)

    async def _read_woken(self, job_id: str) -> None:
        record = await self.get_record(job_id)
        if record is not None and record.settled:
            self._deliver(record)

    def _deliver(self, record: JobRecord) -> None:
        if record.job_id not in self._pending:
            return
        self._pending.discard(record.job_id)
        self._claimed.pop(record.job_id, None)
        if self._listener is not None:
            self._listener.job_settled(record)

    def _ask_again(self) -> None:
        """Make every waiting acquire_lease ask Redis again (its grant may have been lost)."""
        for future in self._tickets.values():
            if not future.done():
                future.set_result(None)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        if self._closing:
            work.close()  # closing: nothing read now could reach a waiter
            return
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _pushed_record(job_id: str, payload: str) -> JobRecord | None:
    """Return the record a wake-up carried, or None if it carried none readable."""
    if not payload:
        return None
    try:
        fields = json.loads(payload)
    except ValueError:
        return None
    return parse_record(job_id, fields) if isinstance(fields, dict) else None
