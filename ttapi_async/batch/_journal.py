"""The durable journal: one SQLite file in the output folder holding every item's state.

The states are drawn in ``_states``. Durability: WAL mode. The two transitions that guard
against paying twice, ``submitting`` (written before a request leaves) and ``submitted``
(the job id, written before the batch waits), commit with ``synchronous=FULL``: they
survive a power cut, not just a killed process. Everything else commits with
``synchronous=NORMAL``, within ``LAZY_COMMIT`` seconds and unawaited: a crash loses at
most the last few "done" marks, which a re-run repairs by polling those jobs again.
Writes during a run are group-committed on the journal's own thread (``_commit``).
Leaving ``pending`` is a compare-and-set: two writers sharing one journal can never
both submit an item.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .._redact import redact
from ._commit import GroupCommit, Op
from ._errors import JournalCorruptError, JournalWriteError
from ._input import BatchRequest
from ._names import safe_stem, stem_key
from ._states import (
    COLUMNS,
    DONE,
    FAILED,
    JOURNAL_NAME,
    PENDING,
    SCHEMA,
    SCHEMA_VERSION,
    STATES,
    SUBMITTED,
    SUBMITTING,
    UNKNOWN,
    InputChangedError,
    ItemRow,
    SyncReport,
    done_columns,
)

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


def _clean(text: str | None) -> str | None:
    # What a server said (an error, a job id it made up) may quote the API key.
    return None if text is None else redact(text)


class Journal:
    """The batch's SQLite journal; open it with ``Journal.open(out_dir)``.

    Planning calls (``sync_input``, ``recover``, ``requeue``, ``counts``, ``rows``) are
    synchronous and made before or after a run; during a run every access goes through
    the ``async`` methods, which run on the journal's own thread.
    """

    def __init__(self, path: Path, *, durable: bool = True) -> None:
        self.path = path
        self.durable = durable
        self._sync_mode = "NORMAL"
        self._commits = GroupCommit(self._apply, name=str(path), durable=durable)
        self._closed = False
        self._conn = sqlite3.connect(
            str(path), isolation_level=None, check_same_thread=False, timeout=30.0
        )
        try:
            self._setup()
        except BaseException:
            # A journal that cannot be used must not leave its connection open behind it.
            self._conn.close()
            raise

    def _setup(self) -> None:
        try:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(SCHEMA)
            with self._transaction():
                row = self._conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
                if row is None:
                    self._conn.execute(
                        "INSERT INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
                    )
        except sqlite3.DatabaseError as exc:
            raise JournalCorruptError(
                f"{self.path} is not a journal this version can read ({exc}): move it away "
                "to start over (items it recorded may be paid again), or use another folder"
            ) from None
        if str(row[0] if row else SCHEMA_VERSION) != str(SCHEMA_VERSION):
            raise JournalCorruptError(
                f"{self.path} was written by another version of ttapi_async "
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

    def item_count(self) -> int:
        """Return how many items the journal records."""
        return int(self._conn.execute("SELECT COUNT(*) FROM items").fetchone()[0])

    def get(self, item_id: str) -> ItemRow | None:
        """Return one item, or None."""
        row = self._conn.execute(f"SELECT {COLUMNS} FROM items WHERE id=?", (item_id,)).fetchone()
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
            f"SELECT {COLUMNS} FROM items WHERE {where} ORDER BY seq LIMIT ?", (*args, chunk)
        )
        return [ItemRow.from_db(r) for r in cur]

    # --- asynchronous: during a run ----------------------------------------------------------

    async def fetch(self, states: Sequence[str], after: int, chunk: int = 500) -> list[ItemRow]:
        """Return up to ``chunk`` items in ``states`` after input position ``after``."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._commits.worker(), self._fetch_chunk, tuple(states), after, chunk
        )

    async def aget(self, item_id: str) -> ItemRow | None:
        """Return ``get(item_id)``, read on the journal's thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._commits.worker(), self.get, item_id)

    async def acounts(self) -> dict[str, int]:
        """Return ``counts()``, read on the journal's thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._commits.worker(), self.counts)

    async def _write(
        self, sql: str, args: tuple[Any, ...], *, wait: bool, sync: bool = False
    ) -> int:
        """Queue one write; wait for its commit only with ``wait``; fsync it with ``sync``."""
        return await self._commits.write((sql, args), wait=wait, sync=sync)

    def _apply(self, ops: list[Op], durable: bool) -> list[int]:
        """Commit ``ops`` in one transaction (on the journal's thread); return their rowcounts.

        The one place a write reaches the disk: its failures become ``JournalWriteError``.
        """
        try:
            mode = "FULL" if durable else "NORMAL"
            if mode != self._sync_mode:
                self._conn.execute(f"PRAGMA synchronous={mode}")
                self._sync_mode = mode
            with self._transaction() as conn:
                return [conn.execute(sql, args).rowcount for sql, args in ops]
        except (sqlite3.Error, OSError) as exc:
            raise JournalWriteError.of(exc, self.path) from exc

    async def mark_submitting(self, item_id: str) -> bool:
        """Claim a pending item, durably, before its request is sent; return False when it
        is no longer pending (another writer claimed it): then nothing may be sent."""
        now = time.time()
        claimed = await self._write(
            "UPDATE items SET state='submitting', submits=submits+1, error=NULL, "
            "started_at=COALESCE(started_at, ?), updated_at=? WHERE id=? AND state='pending'",
            (now, now, item_id),
            wait=True,
            sync=True,
        )
        return claimed == 1

    async def mark_submitted(self, item_id: str, job_id: str) -> None:
        """Record, durably, the job id the service gave this item."""
        now = time.time()
        await self._write(
            "UPDATE items SET state='submitted', job_id=?, submitted_at=?, updated_at=? WHERE id=?",
            (_clean(job_id), now, now, item_id),
            wait=True,
            sync=True,
        )

    async def mark_pending(self, item_id: str, error: str | None = None) -> None:
        """Record that the service refused the request before doing anything."""
        await self._write(
            "UPDATE items SET state='pending', error=?, updated_at=? WHERE id=?",
            (_clean(error), time.time(), item_id),
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
        files_text, usage_text = done_columns(files, usage)
        await self._write(
            "UPDATE items SET state='done', error=NULL, files=?, quota=?, usage=?, "
            "finished_at=?, updated_at=? WHERE id=?",
            (files_text, quota, usage_text, now, now, item_id),
            wait=False,
        )

    async def mark_failed(self, item_id: str, error: str) -> None:
        """Record that the item failed for good (until ``--retry-failed``)."""
        now = time.time()
        await self._write(
            "UPDATE items SET state='failed', error=?, finished_at=?, updated_at=? WHERE id=?",
            (_clean(error), now, now, item_id),
            wait=False,
        )

    async def mark_unknown(self, item_id: str, error: str) -> None:
        """Record that the request may or may not have reached the service."""
        now = time.time()
        await self._write(
            "UPDATE items SET state='unknown', error=?, finished_at=?, updated_at=? WHERE id=?",
            (_clean(error), now, now, item_id),
            wait=True,
            sync=True,
        )

    async def note(self, item_id: str, error: str) -> None:
        """Record a problem without changing the state (a job still running at a deadline)."""
        await self._write(
            "UPDATE items SET error=?, updated_at=? WHERE id=?",
            (_clean(error), time.time(), item_id),
            wait=False,
        )

    async def drain(self) -> None:
        """Commit every write made so far; raise ``JournalWriteError`` if that fails."""
        await self._commits.drain()

    async def aclose(self) -> None:
        """Commit what is pending and close the database."""
        try:
            await self.drain()
        finally:
            self.close()

    def close(self) -> None:
        """Commit what is queued (best effort) and close the database."""
        if self._closed:
            return
        self._closed = True
        # What is still queued (unawaited marks) is committed here, on this thread.
        ops, durable = self._commits.close()
        try:
            if ops:
                with contextlib.suppress(JournalWriteError):
                    self._apply(ops, durable)
        finally:
            self._conn.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
