"""Progress for people (a rich bar on stderr) and for machines (JSON lines on stdout).

rich is imported only when a display is built: the batch library works without the
``cli`` extra.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import IO, Any

from .._redact import redact
from ._outcome import BatchOutcome, BatchStats

__all__ = ["JsonEvents", "RichProgress", "summary_lines", "summary_record"]


def summary_record(stats: BatchStats) -> dict[str, Any]:
    """Return the end-of-run figures as a JSON-able dict."""
    return {
        "total": stats.total,
        "already_done": stats.already_done,
        "done": stats.done,
        "failed": stats.failed,
        "unknown": stats.unknown,
        "still_submitted": stats.still_submitted,
        "not_run": stats.remaining,
        "resumed": stats.resumed,
        "submit_requests": stats.submit_requests,
        "refused": stats.refused,
        "quota": stats.quota,
        "tokens": stats.tokens,
        "wall_seconds": round(stats.wall, 3),
        "interrupted": stats.interrupted,
        "stopped_reason": stats.stopped_reason,
        "capped": stats.capped,
        "claimed_elsewhere": stats.claimed_elsewhere,
        "unrecorded_jobs": dict(stats.unrecorded),
    }


def summary_lines(stats: BatchStats, out_dir: str) -> list[str]:
    """Return the human summary printed at the end of a run."""
    rate = stats.finished_items / stats.wall if stats.wall > 0 else 0.0
    lines = [
        f"{stats.done} done, {stats.failed} failed, {stats.unknown} unknown"
        + (f", {stats.still_submitted} still running" if stats.still_submitted else "")
        + (f", {stats.already_done} done before" if stats.already_done else "")
        + (f", {stats.remaining} not run" if stats.remaining else "")
        + f" of {stats.total} in {stats.wall:.1f}s ({rate:.1f}/s)",
    ]
    spent = []
    if stats.quota:
        spent.append(f"quota spent: {stats.quota}")
    if stats.tokens:
        spent.append(f"tokens: {stats.tokens}")
    if stats.refused:
        spent.append(f"{stats.refused} of {stats.submit_requests} submissions refused (429/499)")
    if spent:
        lines.append(", ".join(spent))
    lines.append(f"images and manifest.jsonl in {out_dir}")
    if stats.capped:
        lines.append(f"stopped: {stats.capped}")
    if stats.stopped_reason:
        lines.append(f"stopped: {stats.stopped_reason}")
    elif stats.interrupted:
        lines.append("interrupted: run the same command again to resume")
    if stats.still_submitted:
        lines.append(
            f"{stats.still_submitted} submitted job(s) are still running at the service "
            "(already paid): run the same command again to collect them; they are not "
            "submitted again"
        )
    if stats.unrecorded:
        shown = ", ".join(f"{k}={v}" for k, v in list(stats.unrecorded.items())[:5])
        more = len(stats.unrecorded) - 5
        lines.append(
            f"{len(stats.unrecorded)} accepted job(s) could not be written to the journal "
            f"(item=job id: {shown}{f', and {more} more' if more > 0 else ''}); "
            "'ttapi fetch JOB_ID --wait' saves one"
        )
    if stats.claimed_elsewhere:
        lines.append(f"{stats.claimed_elsewhere} item(s) were claimed by another writer")
    if stats.unknown:
        lines.append(
            "unknown items may have been submitted (and billed); "
            "--resubmit-unknown sends them again"
        )
    if stats.failed:
        lines.append("--retry-failed retries the failed items; see manifest.jsonl for reasons")
    return [redact(line) for line in lines]


class JsonEvents:
    """Write one JSON object per line: ``start``, ``item`` per outcome, ``summary``."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out

    def emit(self, event: str, **fields: Any) -> None:
        """Write one event and flush it."""
        record = {"event": event, **fields}
        self.out.write(redact(json.dumps(record, ensure_ascii=False, default=str)) + "\n")
        self.out.flush()

    def item(self, outcome: BatchOutcome) -> None:
        """Write the event of one finished item."""
        self.emit(
            "item",
            id=outcome.id,
            kind=outcome.kind,
            state=outcome.state,
            files=[str(p) for p in outcome.files],
            job_id=outcome.job_id,
            quota=outcome.quota,
            usage=outcome.usage,
            error=outcome.error,
            seconds=outcome.seconds,
        )


class RichProgress:
    """A progress bar on stderr: done / failed / in flight, rate, ETA and the live limit."""

    def __init__(
        self, stats: BatchStats, *, file: IO[str] | None = None, console: Any = None
    ) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.stats = stats
        self.console = console or Console(file=file, stderr=file is None)
        self.progress = Progress(
            TextColumn("[bold]batch"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("[green]{task.fields[done]} done"),
            TextColumn("[red]{task.fields[failed]} failed"),
            TextColumn("[cyan]{task.fields[in_flight]} in flight"),
            TextColumn("{task.fields[rate]}/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            auto_refresh=False,
            transient=False,
        )
        self._task_id = self.progress.add_task(
            "batch", total=None, done=0, failed=0, in_flight=0, rate="0.0"
        )

    def report(self, outcome: BatchOutcome) -> None:
        """Print one item that did not end done above the bar (ids and errors as plain text)."""
        from rich.text import Text

        line = Text.assemble((outcome.state, "red"), redact(f" {outcome.id}: {outcome.error}"))
        self.console.print(line, highlight=False)

    def refresh(self) -> None:
        """Redraw from the counters."""
        stats = self.stats
        finished = stats.finished_items
        wall = stats.wall
        self.progress.update(
            self._task_id,
            total=max(stats.total, 1),
            completed=stats.already_done + finished,
            done=stats.already_done + stats.done,
            failed=stats.failed + stats.unknown,
            in_flight=stats.in_flight,
            rate=f"{finished / wall:.1f}" if wall > 0 else "0.0",
        )
        self.progress.refresh()

    @contextlib.asynccontextmanager
    async def running(self, interval: float = 0.2) -> AsyncIterator[RichProgress]:
        """Show the bar and redraw it every ``interval`` seconds until the block ends."""

        async def tick() -> None:
            while True:
                self.refresh()
                await asyncio.sleep(interval)

        self.progress.start()
        task = asyncio.create_task(tick())
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self.refresh()
            self.progress.stop()
