"""The pending jobs ordered by the time of their next poll."""

from __future__ import annotations

import heapq
from typing import Generic, Protocol, TypeVar

__all__ = ["Due", "DueHeap"]


class Due(Protocol):
    """Something with a next poll time: ``due`` is None while it is not in the heap."""

    id: str
    due: float | None


D = TypeVar("D", bound=Due)


class DueHeap(Generic[D]):
    """A heap of ``(due, id, item)`` where only an item's latest entry counts.

    Moving an item earlier (a webhook asked for a fetch now) pushes a new entry and leaves
    the old one in place: an entry is live only while ``entry[0] is item.due``, the very
    float object, so every due time must be a fresh float (``push`` makes sure of that).
    Stale entries are dropped when they reach the top.
    """

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: list[tuple[float, str, D]] = []

    def __len__(self) -> int:
        """Return the count of entries, stale ones included."""
        return len(self._entries)

    def push(self, item: D, due: float) -> float:
        """Schedule ``item`` at ``due`` (replacing its earlier time); return the time set."""
        due += 0.0  # a fresh float object: entries are matched by identity
        item.due = due
        heapq.heappush(self._entries, (due, item.id, item))
        return due

    def first(self) -> float | None:
        """Return the earliest live due time, or None when nothing is scheduled."""
        entries = self._entries
        while entries and entries[0][2].due is not entries[0][0]:
            heapq.heappop(entries)
        return entries[0][0] if entries else None

    def pop(self) -> D:
        """Remove the earliest live item (``first()`` must have been checked) and return it."""
        item = heapq.heappop(self._entries)[2]
        item.due = None
        return item

    def clear(self) -> None:
        """Forget every entry."""
        self._entries.clear()
