"""Planning a shared batch: the durability check, the input recorded once, changes found.

The first runner under a name records every item and queues it in the stream; the others
find the same input and join. One planner at a time (``SET NX PX`` on ``:plan``). A changed
input is found as the local journal finds it: the ids whose request changed and the ids
that disappeared are named, and ``force`` accepts them (changed items start again as
pending, removed ones are forgotten, new ones are added), but only while no other runner
of the batch is live: else ``SharedRunnersLiveError`` and nothing changes.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Final

from ._input import BatchRequest
from ._names import safe_stem, stem_key
from ._shared import DOWN, Store, store_error
from ._shared_errors import (
    RedisDurabilityError,
    SharedInputChangedError,
    SharedRunnersLiveError,
)
from ._shared_scripts import GROUP
from ._states import STATES, SyncReport

__all__ = ["PLAN_LOCK", "check_durability", "count_states", "plan_batch", "requeue"]

#: How long a planner may hold the planning lock (it dies: the next one plans after this).
PLAN_LOCK: Final = 120.0
_CHUNK: Final = 1000
VERSION: Final = "1"


async def check_durability(redis: Any, *, accept_risk: bool, shown_url: str) -> None:
    """Raise ``RedisDurabilityError`` unless Redis persists every write, or the risk is taken.

    ``appendonly yes`` + ``appendfsync always``: a ``submitting`` mark then survives a
    Redis restart, and an item whose request may have left is never sent again unasked.
    """
    if accept_risk:
        return
    try:
        appendonly = (await redis.config_get("appendonly")).get("appendonly")
        appendfsync = (await redis.config_get("appendfsync")).get("appendfsync")
    except DOWN as exc:
        if type(exc).__name__ != "ResponseError":
            raise store_error(exc) from None
        appendonly = appendfsync = None  # CONFIG is disabled (a managed Redis): cannot tell
    if appendonly == "yes" and appendfsync == "always":
        return
    seen = (
        "cannot read its persistence settings (CONFIG GET refused)"
        if appendonly is None
        else f"appendonly={appendonly}, appendfsync={appendfsync}"
    )
    raise RedisDurabilityError(
        f"Redis at {shown_url} does not persist every write ({seen}): after a restart it "
        "could forget an item being submitted and pay for it twice; set 'appendonly yes' "
        "and 'appendfsync always', or pass --accept-redis-risk (accept_risk=True)",
        appendonly=appendonly,
        appendfsync=appendfsync,
    )


def _input_hash(requests: Sequence[BatchRequest], prints: Sequence[str]) -> str:
    digest = hashlib.sha256()
    for request, fingerprint in zip(requests, prints, strict=True):
        digest.update(f"{request.id}\0{fingerprint}\n".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


async def plan_batch(
    store: Store,
    requests: Iterable[BatchRequest],
    *,
    name: str,
    planner: str,
    force: bool = False,
    file_hash: str | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> SyncReport:
    """Record the batch's input under ``name`` (or find it recorded); return what changed."""
    items = list(requests)
    prints = [r.fingerprint() for r in items]
    whole = _input_hash(items, prints)
    redis = store.redis
    lock = store.key("plan")
    while not await store.call(redis.set, lock, planner, nx=True, px=round(PLAN_LOCK * 1000)):
        await sleep(0.05)  # another runner is planning this batch: it takes a second or so
    try:
        meta = await store.call(redis.hgetall, store.key("meta"))
        previous = meta.get("file_hash") or None
        file_changed = None
        if file_hash is not None and previous is not None:
            file_changed = previous != file_hash
        if not meta:
            await _create(store, items, prints)
            report = SyncReport(len(items), len(items), (), (), file_changed)
        elif meta.get("input") == whole:
            report = SyncReport(len(items), 0, (), (), file_changed)
        else:
            report = await _sync(store, items, prints, name=name, planner=planner,
                                 force=force)  # fmt: skip
            report = SyncReport(report.total, report.added, report.changed, report.removed,
                                file_changed)  # fmt: skip
        fields = {"input": whole, "total": str(len(items)), "version": VERSION}
        if file_hash is not None:
            fields["file_hash"] = file_hash
        await store.call(redis.hset, store.key("meta"), mapping=fields)
    finally:
        await store.call(redis.delete, lock)
    return report


async def _create(store: Store, items: Sequence[BatchRequest], prints: Sequence[str]) -> None:
    try:
        await store.redis.xgroup_create(store.key("stream"), GROUP, id="0", mkstream=True)
    except DOWN as exc:
        if "BUSYGROUP" not in str(exc):
            raise store_error(exc) from None
    await _add(store, items, prints, seq=0, taken=set())


async def _add(
    store: Store,
    items: Sequence[BatchRequest],
    prints: Sequence[str],
    *,
    seq: int,
    taken: set[str],
) -> None:
    """Record new items (after position ``seq``) and queue them."""
    now = f"{time.time():.3f}"
    for start in range(0, len(items), _CHUNK):
        pipe = store.redis.pipeline(transaction=False)
        for offset, request in enumerate(items[start : start + _CHUNK]):
            stem = _stem(request.id, taken)
            fingerprint = prints[start + offset]
            pipe.hset(
                store.item(request.id),
                mapping={
                    "id": request.id, "seq": str(seq + start + offset), "kind": request.kind,
                    "params": request.canonical_params(), "fp": fingerprint, "stem": stem,
                    "state": "pending", "submits": "0", "updated_at": now,
                },
            )  # fmt: skip
            pipe.rpush(store.key("ids"), request.id)
            pipe.hset(store.key("fp"), request.id, fingerprint)
            pipe.hset(store.key("stems"), stem_key(stem), request.id)
            pipe.xadd(store.key("stream"), {"id": request.id})
        await store.call(pipe.execute)


def _stem(item_id: str, taken: set[str]) -> str:
    # As the local journal: ids that clean to one stem (or differ only in case) get a suffix.
    stem = safe_stem(item_id)
    candidate, n = stem, 0
    while stem_key(candidate) in taken:
        n += 1
        salt = f"{item_id}\0{n}".encode("utf-8", "surrogatepass")
        candidate = f"{stem}-{hashlib.sha256(salt).hexdigest()[:6]}"
    taken.add(stem_key(candidate))
    return candidate


async def _sync(
    store: Store,
    items: Sequence[BatchRequest],
    prints: Sequence[str],
    *,
    name: str,
    planner: str,
    force: bool,
) -> SyncReport:
    redis = store.redis
    known: dict[str, str] = await store.call(redis.hgetall, store.key("fp"))
    seen = {r.id for r in items}
    changed = [r.id for r, fp in zip(items, prints, strict=True) if r.id in known
               and known[r.id] != fp]  # fmt: skip
    removed = [i for i in await store.call(redis.lrange, store.key("ids"), 0, -1) if i not in seen]
    if (changed or removed) and not force:
        raise SharedInputChangedError(name, changed, removed, len(known))
    if changed or removed:
        by_id = {r.id: (r, fp) for r, fp in zip(items, prints, strict=True)}
        await _replan(store, [by_id[i] for i in changed], removed, name=name, planner=planner)
    fresh = [(r, fp) for r, fp in zip(items, prints, strict=True) if r.id not in known]
    if fresh:
        # New ids are safe beside live runners (nobody can hold them yet): as without force.
        stems = await store.call(redis.hkeys, store.key("stems"))
        total = await store.call(redis.llen, store.key("ids"))
        await _add(store, [r for r, _ in fresh], [fp for _, fp in fresh], seq=total,
                   taken=set(stems))  # fmt: skip
    return SyncReport(len(items), len(fresh), tuple(changed), tuple(removed))


async def _replan(
    store: Store,
    changed: Sequence[tuple[BatchRequest, str]],
    removed: Sequence[str],
    *,
    name: str,
    planner: str,
) -> None:
    """Redo ``changed`` items and forget ``removed`` ones, unless another runner is live.

    Redoing an item a live runner is submitting would pay for it twice, so the REPLAN
    script refuses (``SharedRunnersLiveError``, nothing changed) while any other runner's
    heartbeat key exists, and decides that in the same atomic script that applies the
    change: a runner that beats after it sees only the new input (new runners plan first,
    under the plan lock held here). The window left is the heartbeat's own: a runner whose
    key ran out while it was still running (stalled longer than its TTL, not dead) may
    have a POST of an item it claimed before in flight; if that item changed, it is sent
    again with its new request (the takeover would have called it unknown).
    """
    args: list[object] = [planner, len(changed)]
    for request, fingerprint in changed:
        args += [request.id, request.kind, request.canonical_params(), fingerprint]
    args += removed
    # One script for the whole change, so that nothing of it happens beside a live runner.
    # Its cost: Redis does nothing else meanwhile (measured: 3 s for 90,000 changed and
    # 10,000 removed items on a 2-core machine; Redis answers others BUSY past 5 s). A
    # change that large is better a new --name.
    out = await store.script("REPLAN", *args)
    if int(out[0]) == -1:
        wait = int(out[1])
        raise SharedRunnersLiveError(name, out[2:], wait=wait / 1000 if wait >= 0 else None)


async def requeue(store: Store, *, failed: bool, unknown: bool) -> int:
    """Queue failed and/or unknown items again (as pending); return how many."""
    if not failed and not unknown:
        return 0
    total = int(await store.call(store.redis.llen, store.key("ids")))
    count = 0
    for start in range(0, total, _CHUNK):
        count += int(
            await store.script("REQUEUE", start, start + _CHUNK - 1, int(failed), int(unknown))
        )
    return count


async def count_states(store: Store) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """Return the batch's items per state, and per runner (its holder or settler) per state."""
    totals = dict.fromkeys(STATES, 0)
    runners: dict[str, dict[str, int]] = {}
    async for fields in iter_items(store, ("state", "runner")):
        state, runner = fields
        state = state or "pending"
        totals[state] = totals.get(state, 0) + 1
        if runner:
            per = runners.setdefault(runner, dict.fromkeys(STATES, 0))
            per[state] = per.get(state, 0) + 1
    return totals, runners


async def iter_items(store: Store, fields: Sequence[str]) -> Any:
    """Yield ``fields`` of every item in input order, a pipelined chunk at a time."""
    total = int(await store.call(store.redis.llen, store.key("ids")))
    for start in range(0, total, _CHUNK):
        ids = await store.call(store.redis.lrange, store.key("ids"), start, start + _CHUNK - 1)
        pipe = store.redis.pipeline(transaction=False)
        for item_id in ids:
            pipe.hmget(store.item(item_id), list(fields))
        for values in await store.call(pipe.execute):
            yield values
