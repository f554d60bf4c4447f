"""SharedJournal: the batch journal kept in Redis, so several runners share one batch.

It gives the runner the calls the local SQLite ``Journal`` gives (``JournalAPI``), with the
same guarantees across processes and machines:

- items are handed out through a Redis stream read by a consumer group (``XREADGROUP``);
  the runner that reads an entry becomes the item's holder;
- ``pending -> submitting`` is a compare-and-set in Lua (only the holder, only from
  pending): two runners can never both submit an item;
- the job id is recorded (``submitted``) before anyone waits on it;
- liveness is a heartbeat key with a TTL (Redis's clock), not how long an entry sat
  unacknowledged: jobs run for minutes. A taker (one at a time, ``SET NX``) takes over a
  runner whose key expired, exactly as the local journal's ``recover``: ``submitted``
  items are resumed by job id, ``pending`` ones queued again, ``submitting`` ones marked
  ``unknown``.

Every Redis failure becomes ``SharedStoreError`` (a ``JournalWriteError``): the runner
stops as it does when a local journal cannot be written, and a re-run resumes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .._redact import redact
from . import _shared_scripts as scripts
from ._shared_errors import SharedStoreError
from ._states import PENDING, STATES, ItemRow, done_columns

__all__ = ["DOWN", "SharedJournal", "Store", "row_of"]

#: Redis trouble that stops a runner (the store cannot be trusted to have recorded a step).
DOWN: Final = (RedisError, OSError, asyncio.TimeoutError)
_UNREACHABLE: Final = (RedisConnectionError, RedisTimeoutError, OSError, asyncio.TimeoutError)

#: Items one runner takes from the stream at a time: few, so that the others get theirs.
HANDOUT: Final = 16


def _clean(text: str | None) -> str:
    # What a server said (an error, a job id it made up) may quote the API key.
    return "" if text is None else redact(text)


def _float(value: str | None) -> float | None:
    return float(value) if value else None


def row_of(fields: Mapping[str, str]) -> ItemRow:
    """Return the ``ItemRow`` an item's hash holds."""
    return ItemRow(
        seq=int(fields.get("seq") or 0),
        id=fields["id"],
        kind=fields["kind"],
        params=json.loads(fields["params"]),
        stem=fields["stem"],
        state=fields.get("state") or PENDING,
        job_id=fields.get("job_id") or None,
        submits=int(fields.get("submits") or 0),
        error=fields.get("error") or None,
        files=tuple(json.loads(fields["files"])) if fields.get("files") else (),
        quota=int(fields["quota"]) if fields.get("quota") else None,
        usage=json.loads(fields["usage"]) if fields.get("usage") else None,
        started_at=_float(fields.get("started_at")),
        submitted_at=_float(fields.get("submitted_at")),
        finished_at=_float(fields.get("finished_at")),
    )


def _pairs(flat: Sequence[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


class Store:
    """The batch's keys in one Redis, and its scripts (sent by SHA, loaded on NOSCRIPT)."""

    _shas: dict[str, str] = {}

    def __init__(self, redis: Any, base: str) -> None:
        self.redis = redis
        self.base = base
        #: Redis round trips made (the benchmark reports them per item)
        self.calls = 0

    def key(self, *parts: str) -> str:
        """Return the key ``base:parts``."""
        return ":".join((self.base, *parts))

    def item(self, item_id: str) -> str:
        """Return the key of one item's hash."""
        return self.key("item", item_id)

    async def script(self, name: str, *args: object) -> Any:
        """Run one of ``_shared_scripts``; Redis trouble raises ``SharedStoreError``."""
        source: str = getattr(scripts, name)
        sha = self._shas.get(name)
        if sha is None:
            sha = self._shas[name] = hashlib.sha1(source.encode()).hexdigest()
        return await self.call(self._eval, sha, source, args)

    async def _eval(self, sha: str, source: str, args: Sequence[object]) -> Any:
        try:
            return await self.redis.evalsha(sha, 1, self.base, *args)
        except NoScriptError:
            return await self.redis.eval(source, 1, self.base, *args)

    async def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Await ``fn(*args, **kwargs)`` (one round trip); Redis trouble raises
        ``SharedStoreError``."""
        self.calls += 1
        try:
            return await fn(*args, **kwargs)
        except DOWN as exc:
            if _cancelling():
                # A cancel that landed inside redis-py comes out as a connection error:
                # give it back, or the task that was cancelled would go on for ever.
                raise asyncio.CancelledError from None
            raise store_error(exc) from None


def _cancelling() -> bool:
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)  # Python 3.11+
    return bool(cancelling()) if cancelling is not None else False


def store_error(exc: BaseException) -> SharedStoreError:
    """Return the one-line error a Redis failure means for a run."""
    what = "unreachable" if isinstance(exc, _UNREACHABLE) else "failed"
    return SharedStoreError(
        f"Redis {what} ({type(exc).__name__}: {_clean(str(exc))}): the shared batch stopped "
        "here; run the same command again once Redis is back to resume it"
    )


class SharedJournal:
    """One runner's view of a shared batch: the ``JournalAPI`` of a run, kept in Redis."""

    def __init__(self, store: Store, runner: str, *, out: str, host: str) -> None:
        self.store = store
        self.runner = runner
        self.out = out
        self.host = host
        self.handout = HANDOUT

    # --- the run (JournalAPI) ---------------------------------------------------------------

    async def fetch(self, states: Sequence[str], after: int, chunk: int = 500) -> list[ItemRow]:
        """Return the next pending items handed to this runner (submitted ones come from a
        takeover, never from here)."""
        if PENDING not in states:
            return []
        got = await self.store.script("HANDOUT", self.runner, min(chunk, self.handout))
        return [row_of(_pairs(flat)) for flat in got]

    async def aget(self, item_id: str) -> ItemRow | None:
        """Return one item, or None."""
        fields = await self.store.call(self.store.redis.hgetall, self.store.item(item_id))
        return row_of(fields) if fields else None

    async def acounts(self) -> dict[str, int]:
        """Return how many items this runner holds, per state."""
        counts = dict.fromkeys(STATES, 0)
        held = await self.store.call(self.store.redis.smembers, self.store.key("held", self.runner))
        if held:
            pipe = self.store.redis.pipeline(transaction=False)
            for item_id in held:
                pipe.hget(self.store.item(item_id), "state")
            for state in await self.store.call(pipe.execute):
                if state in counts:
                    counts[state] += 1
        return counts

    async def mark_submitting(self, item_id: str) -> bool:
        """Claim a pending item this runner holds (CAS); False: nothing may be sent."""
        return bool(await self.store.script("CLAIM", item_id, self.runner) == 1)

    async def mark_submitted(self, item_id: str, job_id: str) -> None:
        """Record the job id before anyone waits on it."""
        await self.store.script("SUBMITTED", item_id, self.runner, _clean(job_id))

    async def mark_pending(self, item_id: str, error: str | None = None) -> None:
        """Record that the service refused the request before doing anything."""
        await self.store.script("PENDING", item_id, self.runner, _clean(error))

    async def mark_done(
        self,
        item_id: str,
        *,
        files: Sequence[str],
        quota: int | None,
        usage: dict[str, Any] | None,
    ) -> None:
        """Record that the item's images are on disk here (this runner's folder and host)."""
        files_text, usage_text = done_columns(files, usage)
        quota_text = "" if quota is None else str(quota)
        await self._end(item_id, "done", "", files=files_text, quota=quota_text,
                        usage=usage_text or "")  # fmt: skip

    async def mark_failed(self, item_id: str, error: str) -> None:
        """Record that the item failed for good (until ``retry_failed``)."""
        await self._end(item_id, "failed", error)

    async def mark_unknown(self, item_id: str, error: str) -> None:
        """Record that the request may or may not have reached the service."""
        await self._end(item_id, "unknown", error)

    async def _end(
        self, item_id: str, state: str, error: str, *, files: str = "", quota: str = "",
        usage: str = "",
    ) -> None:  # fmt: skip
        await self.store.script(
            "END", item_id, self.runner, state, _clean(error), files, quota, usage,
            self.out, self.host,
        )  # fmt: skip

    async def note(self, item_id: str, error: str) -> None:
        """Record a problem without changing the state."""
        await self.store.script("NOTE", item_id, _clean(error))

    async def drain(self) -> None:
        """Return: every mark was written when its call returned."""

    def close(self) -> None:
        """Let the journal go (the connection is the coordinator's)."""

    # --- membership ---------------------------------------------------------------------------

    async def beat(self, ttl: float) -> bool:
        """Renew this runner's heartbeat key; False when it was taken over (fenced)."""
        return bool(await self.store.script("BEAT", self.runner, round(ttl * 1000)) == 1)

    async def take_over(
        self, lock: float, *, resubmit_unknown: bool = False
    ) -> tuple[int, list[ItemRow], list[ItemRow]]:
        """Take over runners whose heartbeat expired, if this runner gets the takeover lock.

        Return (items queued again, items marked unknown now, submitted items now this
        runner's); only the one taker that marked an item unknown is given its row.
        """
        out = await self.store.script(
            "TAKEOVER", self.runner, round(lock * 1000), int(resubmit_unknown)
        )
        if out[0] == -1:
            return 0, [], []
        n = int(out[1])
        rows = [row_of(_pairs(flat)) for flat in out[2:]]
        return int(out[0]), rows[:n], rows[n:]

    async def others_busy(self) -> bool:
        """Return True while another runner holds items (it may die and leave them to us)."""
        runners = await self.store.call(self.store.redis.smembers, self.store.key("runners"))
        others = sorted(r for r in runners if r != self.runner)
        if not others:
            return False
        pipe = self.store.redis.pipeline(transaction=False)
        for runner in others:
            pipe.scard(self.store.key("held", runner))
        return any(int(n) > 0 for n in await self.store.call(pipe.execute))

    async def leave(self) -> None:
        """Drop the heartbeat key, so that what this runner still holds is taken over now."""
        redis = self.store.redis
        await self.store.call(redis.delete, self.store.key("alive", self.runner))
        if not await self.store.call(redis.scard, self.store.key("held", self.runner)):
            await self.store.call(redis.srem, self.store.key("runners"), self.runner)
