"""How items end: the outcome a run yields, the live counters, and the one place that
records an ending (journal mark, counters, manifest line) for every item alike."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import attrs

from .._redact import redact
from ._errors import JournalWriteError
from ._outputs import Manifest, manifest_line
from ._shared_api import JournalAPI
from ._states import DONE, ItemRow, SyncReport

if TYPE_CHECKING:
    from ._gallery import GalleryWriter

__all__ = ["BatchOutcome", "BatchStats", "Endings", "OutcomeState"]

#: ``submitted``: the job is recorded and may still finish; the next run resumes it.
OutcomeState = Literal["done", "failed", "unknown", "submitted"]


@attrs.frozen
class BatchOutcome:
    """How one item ended in this run: paths on disk, never image bytes."""

    id: str
    kind: str
    state: OutcomeState
    files: tuple[Path, ...] = ()
    job_id: str | None = None
    quota: int | None = None
    usage: dict[str, Any] | None = None
    error: str | None = None
    seconds: float | None = None

    @property
    def ok(self) -> bool:
        """Return True when the item's images are on disk."""
        return self.state == DONE


@attrs.define
class BatchStats:
    """Live counters of a run (read them for a progress display)."""

    total: int = 0
    already_done: int = 0
    done: int = 0
    failed: int = 0
    unknown: int = 0
    #: items whose job is recorded but not finished here: a re-run resumes them (after
    #: the run, every such item in the journal, including jobs a stop left running)
    still_submitted: int = 0
    in_flight: int = 0
    submit_requests: int = 0
    refused: int = 0
    resumed: int = 0
    #: items another writer of the same journal claimed first (this run sent nothing)
    claimed_elsewhere: int = 0
    quota: int = 0
    tokens: int = 0
    started: float = attrs.field(factory=time.monotonic)
    finished: float | None = None
    interrupted: bool = False
    stopped_reason: str | None = None
    #: why the spending cap stopped submission (max_quota / max_tokens), None if it did not
    capped: str | None = None
    report: SyncReport | None = None
    #: item id -> job id of jobs the service accepted that the journal could not record
    unrecorded: dict[str, str] = attrs.field(factory=dict)

    @property
    def finished_items(self) -> int:
        """Return the items that reached an end this run."""
        return self.done + self.failed + self.unknown

    @property
    def remaining(self) -> int:
        """Return the items neither done, nor ended, nor submitted and still running."""
        ended = self.already_done + self.finished_items + self.still_submitted
        return max(0, self.total - ended)

    @property
    def wall(self) -> float:
        """Return the seconds the run has taken."""
        return (self.finished or time.monotonic()) - self.started


class Endings:
    """Record how items end, in the journal, the counters and the manifest."""

    def __init__(
        self,
        journal: JournalAPI,
        manifest: Manifest | None,
        stats: BatchStats,
        out_dir: Path,
        *,
        on_write_error: Callable[[Exception], None],
    ) -> None:
        self.journal = journal
        self.manifest = manifest
        self.stats = stats
        self.out_dir = out_dir
        self._on_write_error = on_write_error
        self._started: dict[str, float] = {}
        #: told of every ending, to keep index.html current (set by the runner)
        self.gallery: GalleryWriter | None = None

    def started(self, item_id: str) -> None:
        """Note when the item's first request of this run left."""
        self._started.setdefault(item_id, time.time())

    async def done(
        self,
        row: ItemRow,
        paths: list[Path],
        *,
        quota: int | None,
        usage: dict[str, Any] | None,
        job_id: str | None,
    ) -> BatchOutcome:
        """The item's images are on disk."""
        files = [str(p.relative_to(self.out_dir)) for p in paths]
        await self._mark(self.journal.mark_done(row.id, files=files, quota=quota, usage=usage))
        self.stats.done += 1
        return self.record(row, "done", files=tuple(paths), job_id=job_id, quota=quota, usage=usage)

    async def fail(self, row: ItemRow, reason: str, *, job_id: str | None = None) -> BatchOutcome:
        """The item failed for good (until ``--retry-failed``)."""
        await self._mark(self.journal.mark_failed(row.id, reason))
        self.stats.failed += 1
        return self.record(row, "failed", job_id=job_id, error=reason)

    async def unknown(self, row: ItemRow, reason: str) -> BatchOutcome:
        """The request may have reached the service: it is not sent again unless asked."""
        # If this write fails the row stays "submitting", which the next run reads as unknown.
        await self._mark(self.journal.mark_unknown(row.id, reason))
        self.stats.unknown += 1
        return self.record(row, "unknown", error=reason)

    async def keep(self, row: ItemRow, reason: str, *, job_id: str) -> BatchOutcome:
        """The job stays recorded as submitted: the next run resumes it."""
        await self._mark(self.journal.note(row.id, reason))
        self.stats.still_submitted += 1
        return self.record(row, "submitted", job_id=job_id, error=reason)

    async def _mark(self, write: Any) -> None:
        try:
            await write
        except JournalWriteError as exc:
            self._on_write_error(exc)

    def record(self, row: ItemRow, state: OutcomeState, **kw: Any) -> BatchOutcome:
        """Return the outcome, and write its manifest line."""
        if kw.get("error") is not None:
            kw["error"] = redact(kw["error"])  # what a server said may quote the API key
        outcome = BatchOutcome(id=row.id, kind=row.kind, state=state, **kw)
        started = self._started.pop(row.id, None)
        now = time.time()
        if started is not None:
            outcome = attrs.evolve(outcome, seconds=round(now - started, 3))
        if self.manifest is not None:
            line = manifest_line(row, self.out_dir)
            line.update(
                state=state,
                job_id=outcome.job_id or row.job_id,
                files=[str(p.relative_to(self.out_dir)) for p in outcome.files],
                quota=outcome.quota,
                usage=outcome.usage,
                error=outcome.error,
                started_at=started or row.started_at,
                finished_at=now,
                seconds=outcome.seconds,
            )
            try:
                self.manifest.append(line)
            except OSError as exc:  # the journal is the record; the manifest is rebuilt from it
                self._on_write_error(exc)
        if self.gallery is not None:
            self.gallery.settled()
        return outcome
