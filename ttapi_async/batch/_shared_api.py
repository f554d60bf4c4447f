"""What the runner asks of a journal: the local SQLite ``Journal`` and the Redis-backed
``SharedJournal`` both give it, so ``BatchRunner`` and ``ItemSteps`` run over either."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from ._states import ItemRow

__all__ = ["JournalAPI"]


class JournalAPI(Protocol):
    """The calls a run makes on its journal (every one but ``close`` during the run)."""

    async def fetch(self, states: Sequence[str], after: int, chunk: int = 500) -> list[ItemRow]:
        """Return items in ``states`` to work on next."""
        ...

    async def aget(self, item_id: str) -> ItemRow | None:
        """Return one item, or None."""
        ...

    async def acounts(self) -> dict[str, int]:
        """Return how many items are in each state."""
        ...

    async def mark_submitting(self, item_id: str) -> bool:
        """Claim a pending item (a compare-and-set); False: nothing may be sent."""
        ...

    async def mark_submitted(self, item_id: str, job_id: str) -> None:
        """Record the job id, durably, before anyone waits on it."""
        ...

    async def mark_pending(self, item_id: str, error: str | None = None) -> None:
        """Record that the service refused the request before doing anything."""
        ...

    async def mark_done(
        self,
        item_id: str,
        *,
        files: Sequence[str],
        quota: int | None,
        usage: dict[str, Any] | None,
    ) -> None:
        """Record that the item's images are on disk."""
        ...

    async def mark_failed(self, item_id: str, error: str) -> None:
        """Record that the item failed for good."""
        ...

    async def mark_unknown(self, item_id: str, error: str) -> None:
        """Record that the request may or may not have reached the service."""
        ...

    async def note(self, item_id: str, error: str) -> None:
        """Record a problem without changing the state."""
        ...

    async def drain(self) -> None:
        """Commit every write made so far."""
        ...

    def close(self) -> None:
        """Let the journal go."""
        ...
