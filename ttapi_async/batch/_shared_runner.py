"""SharedBatchRunner: one batch run by many runners (processes, machines) through Redis.

The runner is ``BatchRunner`` over a ``SharedJournal``: the same steps per item, the same
policy, the same endings. What changes is where items come from (the batch's stream, a
few at a time), that a runner heartbeats and takes over dead runners' items, and that it
keeps going while other runners still hold work (one of them may die and leave it). Its
client's coordinator gives the shared account limit and rate, so a batch and a web backend
on one account do not starve each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import socket
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._input import FAMILY_OF, BatchRequest
from ._outcome import BatchOutcome
from ._outputs import Manifest
from ._runner import BatchRunner
from ._shared import SharedJournal, Store
from ._shared_api import JournalAPI
from ._shared_errors import SharedStoreError
from ._shared_plan import check_durability, count_states, plan_batch, requeue
from ._states import DONE, ItemRow, SyncReport

if TYPE_CHECKING:
    from .._client import AsyncTTAPI
    from ..coordination import RedisCoordinator

__all__ = ["SharedBatchRunner", "check_batch_name"]

_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def check_batch_name(name: str) -> str:
    """Return ``name`` if it can name a shared batch, else raise ValueError."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"a batch name must be 1-64 of A-Z a-z 0-9 _ . -, got {name!r}")
    return name


def shared_coordinator(client: AsyncTTAPI, coordinator: Any) -> RedisCoordinator:
    """Return the client's Redis coordinator; ``coordinator`` must be it (or None)."""
    own = client.coordinator
    if coordinator is not None and coordinator is not own:
        raise ValueError(
            "a shared batch runs on its client's coordinator: pass it to the client "
            "(AsyncTTAPI(coordinator=...)) so that submits share its limits"
        )
    from ..coordination import RedisCoordinator

    if not isinstance(own, RedisCoordinator):
        raise ValueError(
            "a shared batch needs a RedisCoordinator: AsyncTTAPI(coordinator="
            "RedisCoordinator(url)), or TTAPI_COORDINATOR for the CLI"
        )
    return own


class SharedBatchRunner(BatchRunner):
    """Run one share of the batch ``name``, kept in the client's ``RedisCoordinator``.

    ::

        coordinator = RedisCoordinator("redis://redis.internal:6379/0")
        async with AsyncTTAPI(coordinator=coordinator) as client:
            runner = SharedBatchRunner(client, "out/cats", name="cats")
            async for outcome in runner.run(requests):
                ...

    Every runner of a name gives the same requests; the first records them, the others
    join. Images go to this runner's ``out_dir``; the batch's record says which runner
    (and folder, and host) holds each file. Redis must persist every write
    (``appendonly yes``, ``appendfsync always``) unless ``accept_risk``. ``ttl`` is how
    long a silent runner keeps its items (default: the coordinator's
    ``dead_after_seconds``); the runner beats every third of it.
    """

    refetch = True

    def __init__(
        self,
        client: AsyncTTAPI,
        out_dir: str | Path,
        *,
        name: str,
        coordinator: RedisCoordinator | None = None,
        accept_risk: bool = False,
        ttl: float | None = None,
        **options: Any,
    ) -> None:
        super().__init__(client, out_dir, **options)
        self.name = check_batch_name(name)
        self.coordinator = shared_coordinator(client, coordinator)
        self.accept_risk = accept_risk
        #: a Redis failure stopped the run (its one-line message), None otherwise
        self.store_down: str | None = None
        #: the batch's counts per state when the run ended (every runner's items)
        self.final_counts: dict[str, int] | None = None
        #: how long this runner's heartbeat key lives: silent that long, it is taken over
        self.ttl = self.coordinator.dead_after_seconds if ttl is None else ttl
        self.period = self.ttl / 3
        self.idle_poll = self.period
        self.store: Store | None = None
        self._shared: SharedJournal | None = None
        self._taking = True
        self._taking_over = asyncio.Lock()
        self._beat_stop = asyncio.Event()

    # --- planning -------------------------------------------------------------------------

    def plan(self, requests: Iterable[BatchRequest], *, file_hash: str | None = None) -> SyncReport:
        """Refuse: a shared batch plans through Redis (``await aplan(...)``)."""
        raise TypeError("a shared batch is planned with 'await runner.aplan(requests)'")

    async def aplan(
        self, requests: Iterable[BatchRequest], *, file_hash: str | None = None
    ) -> SyncReport:
        """Check Redis's durability, record (or join) the batch, and join it as a runner.

        Raise ``RedisDurabilityError`` (unless ``accept_risk``), ``SharedInputChangedError``
        on a changed input (unless ``force``; with it, ``SharedRunnersLiveError`` while
        another runner of the batch is live), ``FolderLockedError`` when another run holds
        ``out_dir``, ``SharedStoreError`` when Redis fails.
        """
        coordinator = self.coordinator
        await self.client.open_coordinator()
        redis = coordinator.redis
        await check_durability(redis, accept_risk=self.accept_risk, shown_url=_shown(coordinator))
        store = Store(redis, coordinator.keys("batch", self.name))
        # One id per run (a process may run the batch again after being taken over).
        runner = f"{coordinator.worker_id}.{secrets.token_hex(2)}"
        self._lock.acquire()
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            report = await plan_batch(store, requests, name=self.name, planner=runner,
                                      force=self.force, file_hash=file_hash)  # fmt: skip
            await requeue(store, failed=self.retry_failed, unknown=self.resubmit_unknown)
            journal = SharedJournal(store, runner, out=str(self.out_dir.resolve()),
                                    host=socket.gethostname())  # fmt: skip
            counts, _ = await count_states(store)
        except BaseException:
            self._lock.release()
            raise
        self.stats.total = sum(counts.values())
        self.stats.already_done = counts[DONE]
        self.stats.report = report
        self.store = store
        self._shared = journal
        self._journal = journal
        return report

    # --- the run --------------------------------------------------------------------------

    async def run(
        self, requests: Iterable[BatchRequest] | None = None
    ) -> AsyncIterator[BatchOutcome]:
        """Run this runner's share; yield each item's outcome as it ends here."""
        if self._journal is None:
            if requests is None:
                raise ValueError("pass the requests, or call aplan() first")
            await self.aplan(requests)
        async for outcome in super().run():
            yield outcome

    async def _main(self) -> None:
        # Join (the first beat) before anything is handed out: a runner that was taken
        # over stops here. A runner joins when it runs, not when it plans: planned and
        # left waiting, it would be taken for dead.
        beat = None
        try:
            if await self._beat_once():
                beat = asyncio.create_task(self._beat_loop(), name="ttapi-batch-beat")
            await super()._main()
        finally:
            if beat is not None:
                # Told to stop, not cancelled: a cancel landing inside redis-py can be lost.
                self._beat_stop.set()
                try:
                    await asyncio.wait_for(asyncio.shield(beat), self.period + 10)
                except asyncio.TimeoutError:
                    beat.cancel()
            await self._leave()

    async def _leave(self) -> None:
        journal = self._shared
        store = self.store
        if journal is None or store is None or self.store_down is not None:
            return
        try:
            await journal.leave()
            self.final_counts, _ = await count_states(store)
        except SharedStoreError as exc:
            self._write_failed(exc)

    async def _beat_once(self) -> bool:
        """Renew the heartbeat key; False (and the run stops) when it cannot go on."""
        journal = self._shared
        assert journal is not None
        try:
            if await journal.beat(self.ttl):
                return True
            self.stop(
                f"runner {journal.runner} was silent too long and its items were taken "
                "over by another runner; run the same command again to rejoin"
            )
        except SharedStoreError as exc:
            self._write_failed(exc)
        return False

    async def _beat_loop(self) -> None:
        """Take over dead runners' items, then beat; every third of the heartbeat's TTL."""
        journal = self._shared
        assert journal is not None
        while not self._beat_stop.is_set():
            if self._taking and not self.stopping:
                try:
                    await self._take_over(journal)
                except SharedStoreError as exc:
                    self._write_failed(exc)
                    return
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._beat_stop.wait(), self.period)
            if self._beat_stop.is_set() or not await self._beat_once():
                return

    async def _take_over(self, journal: SharedJournal) -> None:
        async with self._taking_over:
            if not self._taking:
                return  # the run closed meanwhile: the next runner takes over
            _, unknown, rows = await journal.take_over(
                self.period * 2, resubmit_unknown=self.resubmit_unknown
            )
            # The items a dead runner left "submitting" end here, as unknown: the one
            # taker that marked them reports them (once), as a local run reports its own.
            self.stats.unknown += len(unknown)
            for row in unknown:
                self._emit(self._unknown_outcome(row))
            if not self._taking:
                # The run is closing: the jobs stay this runner's in Redis, submitted, and
                # whoever takes over after it leaves resumes them.
                return
            for row in rows:
                slot = self.limiter(FAMILY_OF[row.kind]).hold()
                self.stats.resumed += 1
                self._spawn(self._resume(row, slot), row.kind)
        self._wakeup.set()  # items queued again: the producer looks at the stream

    def _unknown_outcome(self, row: ItemRow) -> BatchOutcome:
        reason = row.error or "its runner died while submitting: it may have been sent"
        if self._endings is None:
            return BatchOutcome(id=row.id, kind=row.kind, state="unknown", error=reason)
        return self._endings.record(row, "unknown", error=reason)

    async def _settle_journal(self, journal: JournalAPI) -> None:
        # No takeover from here on; one under way reports its unknowns first (the run's
        # outcomes end after this).
        self._taking = False
        async with self._taking_over:
            pass
        await super()._settle_journal(journal)

    async def _more_later(self) -> bool:
        journal = self._shared
        if journal is None or self.stopping:
            self._taking = False
            return False
        try:
            busy = await journal.others_busy()
        except SharedStoreError as exc:
            self._write_failed(exc)
            busy = False
        if not busy:
            self._taking = False  # nothing is spawned once the producer has returned
            return False
        self._wakeup.clear()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), self.period)
        return True

    def _write_failed(self, exc: Exception) -> None:
        if isinstance(exc, SharedStoreError) and self.store_down is None:
            self.store_down = str(exc)
        super()._write_failed(exc)

    def _compact(self, manifest: Manifest, journal: JournalAPI) -> None:
        """Keep this runner's manifest as written: ``batch-collect`` writes the whole one."""


def _shown(coordinator: Any) -> str:
    # The URL as the coordinator's repr shows it: its password already hidden.
    found = re.search(r"url='([^']*)'", repr(coordinator))
    return found.group(1) if found else "the coordinator's Redis"
