"""The durable journal: one SQLite file in the output folder holding every item's state.

States::

    pending ──► submitting ──► submitted(job_id) ──► done
                    │               │            └─► failed
                    │               └─(sync kinds answer at once)
                    ├─► unknown   the request may have reached the service (timeout after
                    │             sending, a crash mid-request): never sent again unless asked
                    └─► failed    refused for good (400, 402, a FAILED job...)

Durability: WAL mode. The two transitions that guard against paying twice, ``submitting``
(written before a request leaves) and ``submitted`` (the job id, written before the batch
waits), commit with ``synchronous=FULL``: they survive a power cut, not just a killed
process. Everything else commits with ``synchronous=NORMAL``, within ``LAZY_COMMIT`` seconds and
unawaited: a killed process or a power cut loses at most the last few "done" marks, which
a re-run repairs by polling those jobs again. Writes from concurrent items are grouped
into one transaction (one fsync for all the job ids that arrived
together), on the journal's own thread: an fsync takes milliseconds, which the event
loop must not spend waiting. While one commit runs, the next group gathers.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import json
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final

import attrs

from ._input import BatchRequest
from ._names import safe_stem, stem_key

__all__ = [
    "DONE",
    "FAILED",
    "JOURNAL_NAME",
    "PENDING",
    "STATES",
    "SUBMITTED",
    "SUBMITTING",
    "UNKNOWN",
    "InputChangedError",
    "ItemRow",
    "Journal",
    "SyncReport",
]

JOURNAL_NAME: Final = "journal.sqlite3"
SCHEMA_VERSION: Final = 1

PENDING: Final = "pending"
SUBMITTING: Final = "submitting"
SUBMITTED: Final = "submitted"
UNKNOWN: Final = "unknown"
DONE: Final = "done"
FAILED: Final = "failed"
STATES: Final = (PENDING, SUBMITTING, SUBMITTED, UNKNOWN, DONE, FAILED)
#: Seconds within which a write nobody waits for is committed.
LAZY_COMMIT: Final = 0.05

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    params TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    stem TEXT NOT NULL,
    stem_key TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL DEFAULT 'pending',
    job_id TEXT,
    submits INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    files TEXT,
    quota INTEGER,
    usage TEXT,
    started_at REAL,
    submitted_at REAL,
    finished_at REAL,
    updated_at REAL
);
CREATE INDEX IF NOT EXISTS items_state ON items (state, seq);
"""

_COLUMNS = (
    "seq, id, kind, params, stem, state, job_id, submits, error, files, quota, usage, "
    "started_at, submitted_at, finished_at"
)


class InputChangedError(ValueError):
    """Raise when the input no longer matches the batch recorded in the output folder."""

    def __init__(self, changed: Sequence[str], removed: Sequence[str], total: int) -> None:
        self.changed = tuple(changed)
        self.removed = tuple(removed)
        parts = []
        if changed:
            parts.append(f"{len(changed)} item(s) changed their request ({_show(changed)})")
        if removed:
            parts.append(f"{len(removed)} item(s) are no longer in the input ({_show(removed)})")
        super().__init__(
            "the input differs from the batch already in this folder: "
            + "; ".join(parts)
            + f" (of {total} recorded). Use a new output folder, or --force to redo the "
            "changed items and forget the removed ones."
        )


def _show(ids: Sequence[str], limit: int = 5) -> str:
    shown = ", ".join(repr(i) for i in ids[:limit])
    return shown + (f", and {len(ids) - limit} more" if len(ids) > limit else "")


@attrs.frozen
class SyncReport:
    """What comparing the input with the journal found."""

    total: int
    added: int
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    #: the input file's hash differs from the last run's (None: no hash to compare)
    file_changed: bool | None = None


@attrs.frozen
class ItemRow:
    """One item as the journal holds it."""

    seq: int
    id: str
    kind: str
    params: dict[str, Any]
    stem: str
    state: str
    job_id: str | None = None
    submits: int = 0
    error: str | None = None
    files: tuple[str, ...] = ()
    quota: int | None = None
    usage: dict[str, Any] | None = None
    started_at: float | None = None
    submitted_at: float | None = None
    finished_at: float | None = None

    @property
    def request(self) -> BatchRequest:
        """Return the request this row records."""
        return BatchRequest(self.id, self.kind, self.params)  # type: ignore[arg-type]

    @classmethod
    def from_db(cls, row: Sequence[Any]) -> ItemRow:
        return cls(
            seq=row[0],
            id=row[1],
            kind=row[2],
            params=json.loads(row[3]),
            stem=row[4],
            state=row[5],
            job_id=row[6],
            submits=row[7],
            error=row[8],
            files=tuple(json.loads(row[9])) if row[9] else (),
            quota=row[10],
            usage=json.loads(row[11]) if row[11] else None,
            started_at=row[12],
            submitted_at=row[13],
            finished_at=row[14],
        )


_Op = tuple[str, tuple[Any, ...]]
_Queued = tuple[_Op, bool, "asyncio.Future[None] | None"]


class Journal:
    """The batch's SQLite journal; open it with ``Journal.open(out_dir)``.

    Planning calls (``sync_input``, ``recover``, ``requeue``, ``counts``, ``rows``) are
    synchronous and made before or after a run; during a run every access goes through
    the ``async`` methods, which run on the journal's own thread.
    """

    def __init__(self, path: Path, *, durable: bool = True) -> None:
        self.path = path
        self.durable = durable
        self._conn = sqlite3.connect(
            str(path), isolation_level=None, check_same_thread=False, timeout=30.0
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(_SCHEMA)
        self._sync_mode = "NORMAL"
        self._pending: list[_Queued] = []
        self._busy = False
        self._flushing: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._closed = False
        with self._transaction():
            row = self._conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
            if row is None:
                self._conn.execute("INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            elif int(row[0]) != SCHEMA_VERSION:
                raise ValueError(
                    f"{path} was written by another version of ttapi_async "
                    f"(journal schema {row[0]}, this one reads {SCHEMA_VERSION})"
                )

    @classmethod
    def open(cls, out_dir: str | Path, *, durable: bool = True) -> Journal:
        """Open (or create) the journal of the batch in ``out_dir``."""
        folder = Path(out_dir)
        folder.mkdir(parents=True, exist_ok=True)
        return cls(folder / JOURNAL_NAME, durable=durable)

    # --- synchronous: planning ---------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def meta(self, key: str) -> str | None:
        """Return a value stored with the batch, or None."""
        row = self._conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        """Store a value with the batch."""
        with self._transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def sync_input(
        self,
        requests: Iterable[BatchRequest],
        *,
        force: bool = False,
        file_hash: str | None = None,
    ) -> SyncReport:
        """Record new requests and compare known ones with what the journal holds.

        Raise ``InputChangedError`` when an id's request changed or an id disappeared,
        unless ``force``: then changed items start again as pending and removed ones are
        forgotten. New ids are simply added. ``file_hash`` (the input file's SHA-256) is
        kept, and the report says whether it changed: a file edited only in comments or
        blank lines changes its hash, not its requests.
        """
        previous = self.meta("input_sha256")
        changed: list[str] = []
        added = 0
        total = 0
        with self._transaction() as conn:
            conn.execute("CREATE TEMP TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY)")
            conn.execute("DELETE FROM seen")
            for request in requests:
                total += 1
                fingerprint = request.fingerprint()
                conn.execute("INSERT INTO seen VALUES (?)", (request.id,))
                row = conn.execute(
                    "SELECT fingerprint FROM items WHERE id=?", (request.id,)
                ).fetchone()
                if row is None:
                    self._insert(conn, request, fingerprint)
                    added += 1
                elif row[0] != fingerprint:
                    changed.append(request.id)
                    if force:
                        conn.execute(
                            "UPDATE items SET kind=?, params=?, fingerprint=?, state='pending', "
                            "job_id=NULL, error=NULL, files=NULL, quota=NULL, usage=NULL, "
                            "started_at=NULL, submitted_at=NULL, finished_at=NULL, "
                            "updated_at=? WHERE id=?",
                            (
                                request.kind,
                                request.canonical_params(),
                                fingerprint,
                                time.time(),
                                request.id,
                            ),
                        )
            removed = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM items WHERE id NOT IN (SELECT id FROM seen) ORDER BY seq"
                )
            ]
            if (changed or removed) and not force:
                raise InputChangedError(changed, removed, total - added + len(removed))
            if removed:
                conn.execute("DELETE FROM items WHERE id NOT IN (SELECT id FROM seen)")
            conn.execute("DELETE FROM seen")
            if file_hash is not None:
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('input_sha256', ?)", (file_hash,))
        file_changed = None
        if file_hash is not None and previous is not None:
            file_changed = previous != file_hash
        return SyncReport(total, added, tuple(changed), tuple(removed), file_changed)

    def _insert(self, conn: sqlite3.Connection, request: BatchRequest, fingerprint: str) -> None:
        stem = safe_stem(request.id)
        candidate, n = stem, 0
        while conn.execute(
            "SELECT 1 FROM items WHERE stem_key=?", (stem_key(candidate),)
        ).fetchone():
            # Two ids that differ only in case (or clean to the same text) would overwrite
            # each other's files on a case-insensitive disk: give the later one a suffix.
            n += 1
            salt = f"{request.id}\0{n}".encode("utf-8", "surrogatepass")
            candidate = f"{stem}-{hashlib.sha256(salt).hexdigest()[:6]}"
        conn.execute(
            "INSERT INTO items (id, kind, params, fingerprint, stem, stem_key, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                request.id,
                request.kind,
                request.canonical_params(),
                fingerprint,
                candidate,
                stem_key(candidate),
                time.time(),
            ),
        )

    def recover(self) -> int:
        """Mark items left ``submitting`` by a crash as ``unknown``; return how many."""
        with self._transaction() as conn:
            cur = conn.execute(
                "UPDATE items SET state='unknown', error=?, updated_at=? WHERE state='submitting'",
                (
                    "interrupted while submitting: the request may have reached the service",
                    time.time(),
                ),
            )
            return cur.rowcount

    def requeue(self, *, failed: bool = False, unknown: bool = False) -> int:
        """Set failed and/or unknown items back to pending; return how many."""
        states = [s for s, on in ((FAILED, failed), (UNKNOWN, unknown)) if on]
        if not states:
            return 0
        marks = ",".join("?" * len(states))
        with self._transaction() as conn:
            cur = conn.execute(
                f"UPDATE items SET state='pending', job_id=NULL, error=NULL, updated_at=? "
                f"WHERE state IN ({marks})",
                (time.time(), *states),
            )
            return cur.rowcount

    def counts(self) -> dict[str, int]:
        """Return how many items are in each state."""
        out = dict.fromkeys(STATES, 0)
        for state, n in self._conn.execute("SELECT state, COUNT(*) FROM items GROUP BY state"):
            out[state] = n
        return out

    def get(self, item_id: str) -> ItemRow | None:
        """Return one item, or None."""
        row = self._conn.execute(f"SELECT {_COLUMNS} FROM items WHERE id=?", (item_id,)).fetchone()
        return None if row is None else ItemRow.from_db(row)

    def rows(self, states: Sequence[str] | None = None, *, chunk: int = 500) -> Iterator[ItemRow]:
        """Yield items in input order (optionally only some states), a chunk at a time."""
        yield from self._chunks(states, chunk)

    def _chunks(self, states: Sequence[str] | None, chunk: int) -> Iterator[ItemRow]:
        last = -1
        while True:
            rows = self._fetch_chunk(states, last, chunk)
            if not rows:
                return
            yield from rows
            last = rows[-1].seq

    def _fetch_chunk(self, states: Sequence[str] | None, after: int, chunk: int) -> list[ItemRow]:
        where = "seq > ?"
        args: list[Any] = [after]
        if states is not None:
            where += f" AND state IN ({','.join('?' * len(states))})"
            args.extend(states)
        cur = self._conn.execute(
            f"SELECT {_COLUMNS} FROM items WHERE {where} ORDER BY seq LIMIT ?", (*args, chunk)
        )
        return [ItemRow.from_db(r) for r in cur]

    # --- asynchronous: during a run ----------------------------------------------------------

    async def fetch(self, states: Sequence[str], after: int, chunk: int = 500) -> list[ItemRow]:
        """Return up to ``chunk`` items in ``states`` after input position ``after``."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._worker(), self._fetch_chunk, tuple(states), after, chunk
        )

    def _worker(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="ttapi-journal"
            )
        return self._executor

    async def _write(
        self, sql: str, args: tuple[Any, ...], *, wait: bool, sync: bool = False
    ) -> None:
        """Queue one write; wait for its commit only with ``wait``; fsync it with ``sync``.

        Awaited writes (a request about to leave, a job id, an unknown outcome) are
        committed as soon as the journal's thread is free, together with everything
        queued meanwhile (group commit: one fsync for all of them). The others ride along,
        or commit within ``LAZY_COMMIT`` seconds: a crash loses at most that much of
        "done" marks, which a re-run repairs by polling those jobs again.
        """
        if self._closed:
            raise RuntimeError("the journal is closed")
        loop = asyncio.get_running_loop()
        if not wait:
            self._pending.append(((sql, args), False, None))
            if self._timer is None and not self._busy:
                self._timer = loop.call_later(LAZY_COMMIT, self._start_flush)
            return
        future: asyncio.Future[None] = loop.create_future()
        self._pending.append(((sql, args), sync and self.durable, future))
        if not self._busy:
            self._start_flush()
        await future

    def _start_flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._busy or not self._pending or self._closed:
            return
        batch, self._pending = self._pending, []
        ops = [op for op, _, _ in batch]
        durable = any(d for _, d, _ in batch)
        self._busy = True
        loop = asyncio.get_running_loop()
        done = loop.run_in_executor(self._worker(), self._apply, ops, durable)
        self._flushing = done
        done.add_done_callback(lambda f: self._flushed(batch, f))

    def _flushed(self, batch: list[_Queued], done: asyncio.Future[None]) -> None:
        self._busy = False
        self._flushing = None
        exc = None if done.cancelled() else done.exception()
        for _, _, future in batch:
            if future is None or future.done():
                continue
            if done.cancelled():
                future.cancel()
            elif exc is not None:
                future.set_exception(exc)
            else:
                future.set_result(None)
        if any(future is not None for _, _, future in self._pending):
            self._start_flush()
        elif self._pending and self._timer is None and not self._closed:
            self._timer = asyncio.get_running_loop().call_later(LAZY_COMMIT, self._start_flush)

    def _apply(self, ops: list[_Op], durable: bool) -> None:
        mode = "FULL" if durable else "NORMAL"
        if mode != self._sync_mode:
            self._conn.execute(f"PRAGMA synchronous={mode}")
            self._sync_mode = mode
        with self._transaction() as conn:
            for sql, args in ops:
                conn.execute(sql, args)

    async def mark_submitting(self, item_id: str) -> None:
        """Record, durably, that a request for this item is about to be sent."""
        now = time.time()
        await self._write(
            "UPDATE items SET state='submitting', submits=submits+1, error=NULL, "
            "started_at=COALESCE(started_at, ?), updated_at=? WHERE id=?",
            (now, now, item_id),
            wait=True,
            sync=True,
        )

    async def mark_submitted(self, item_id: str, job_id: str) -> None:
        """Record, durably, the job id the service gave this item."""
        now = time.time()
        await self._write(
            "UPDATE items SET state='submitted', job_id=?, submitted_at=?, updated_at=? WHERE id=?",
            (job_id, now, now, item_id),
            wait=True,
            sync=True,
        )

    async def mark_pending(self, item_id: str, error: str | None = None) -> None:
        """Record that the service refused the request before doing anything."""
        await self._write(
            "UPDATE items SET state='pending', error=?, updated_at=? WHERE id=?",
            (error, time.time(), item_id),
            wait=True,
        )

    async def mark_done(
        self,
        item_id: str,
        *,
        files: Sequence[str],
        quota: int | None,
        usage: dict[str, Any] | None,
    ) -> None:
        """Record that the item's images are on disk."""
        now = time.time()
        await self._write(
            "UPDATE items SET state='done', error=NULL, files=?, quota=?, usage=?, "
            "finished_at=?, updated_at=? WHERE id=?",
            (
                json.dumps(list(files)),
                quota,
                json.dumps(usage) if usage is not None else None,
                now,
                now,
                item_id,
            ),
            wait=False,
        )

    async def mark_failed(self, item_id: str, error: str) -> None:
        """Record that the item failed for good (until ``--retry-failed``)."""
        now = time.time()
        await self._write(
            "UPDATE items SET state='failed', error=?, finished_at=?, updated_at=? WHERE id=?",
            (error, now, now, item_id),
            wait=False,
        )

    async def mark_unknown(self, item_id: str, error: str) -> None:
        """Record that the request may or may not have reached the service."""
        now = time.time()
        await self._write(
            "UPDATE items SET state='unknown', error=?, finished_at=?, updated_at=? WHERE id=?",
            (error, now, now, item_id),
            wait=True,
            sync=True,
        )

    async def note(self, item_id: str, error: str) -> None:
        """Record a problem without changing the state (a job still running at a deadline)."""
        await self._write(
            "UPDATE items SET error=?, updated_at=? WHERE id=?",
            (error, time.time(), item_id),
            wait=False,
        )

    async def drain(self) -> None:
        """Commit every write made so far."""
        while self._pending or self._flushing is not None:
            if self._flushing is None:
                self._start_flush()
            flushing = self._flushing
            if flushing is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(flushing)

    async def aclose(self) -> None:
        """Commit what is pending and close the database."""
        await self.drain()
        self.close()

    def close(self) -> None:
        """Commit what is queued and close the database."""
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        # What is still queued (unawaited marks) is committed here, on this thread.
        batch, self._pending = self._pending, []
        if batch:
            with contextlib.suppress(sqlite3.Error):
                self._apply([op for op, _, _ in batch], any(d for _, d, _ in batch))
        for _, _, future in batch:
            if future is not None and not future.done():
                future.cancel()
        self._conn.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
