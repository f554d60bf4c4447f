"""What the journal records: the item states, the table, and one item's row.

States::

    pending ──► submitting ──► submitted(job_id) ──► done
                    │               │            └─► failed
                    │               └─(sync kinds answer at once)
                    ├─► unknown   the request may have reached the service (timeout after
                    │             sending, a crash mid-request): never sent again unless asked
                    └─► failed    refused for good (400, 402, a FAILED job...)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

import attrs

from ._input import BatchRequest

__all__ = [
    "COLUMNS",
    "DONE",
    "FAILED",
    "JOURNAL_NAME",
    "PENDING",
    "SCHEMA",
    "SCHEMA_VERSION",
    "STATES",
    "SUBMITTED",
    "SUBMITTING",
    "UNKNOWN",
    "InputChangedError",
    "ItemRow",
    "SyncReport",
    "done_columns",
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

SCHEMA: Final = """
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

COLUMNS: Final = (
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


def done_columns(files: Sequence[str], usage: dict[str, Any] | None) -> tuple[str, str | None]:
    """Return how a journal (local or shared) stores a done item's files and usage: JSON
    text (None: no usage), as ``ItemRow`` reads them back."""
    return json.dumps(list(files)), None if usage is None else json.dumps(usage)
