"""While Redis is unreachable: a local share of the limits, and an outbox replayed on return."""

from __future__ import annotations

import math
from collections.abc import Mapping

import attrs

from ._types import Fallback, Lease, LimitSettings

__all__ = ["Outbox", "Release", "Settle", "Submitted", "Unqueue", "fallback_for", "local_limits"]


@attrs.frozen
class Submitted:
    """A job accepted while Redis was unreachable: record it (and bind its lease) later."""

    job_id: str
    kind: str
    product: str
    lease: Lease | None
    #: when submit returned, on the local (monotonic) clock: replay sends the age, not this
    at: float


@attrs.frozen
class Settle:
    """A terminal status seen while Redis was unreachable."""

    job_id: str
    status: str
    answer: str


@attrs.frozen
class Release:
    """A shared lease given back while Redis was unreachable."""

    lease: Lease


@attrs.frozen
class Unqueue:
    """A waiter that left a product's queue while Redis was unreachable."""

    product: str
    token: str


Entry = Submitted | Settle | Release | Unqueue


class Outbox:
    """Writes that could not reach Redis, in order; each replays idempotently."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []

    def __len__(self) -> int:
        return len(self.entries)

    def add(self, entry: Entry) -> None:
        """Queue ``entry`` for the resync."""
        self.entries.append(entry)

    def done(self, count: int) -> None:
        """Drop the first ``count`` entries (they reached Redis)."""
        del self.entries[:count]


def local_limits(
    limits: LimitSettings, known: Mapping[str, int], peers: int
) -> tuple[dict[str, int], float | None]:
    """Return this process's share of each last known limit, and of the rate, among ``peers``."""
    peers = max(1, peers)
    shares = {product: max(1, limit // peers) for product, limit in known.items()}
    rate = None if limits.rate is None else limits.rate / peers
    return shares, rate


def fallback_for(
    reason: str, limits: LimitSettings, known: Mapping[str, int], peers: int
) -> tuple[Fallback, LimitSettings]:
    """Return the fallback signal and the settings of the local coordinator that enforces it."""
    shares, rate = local_limits(limits, known, peers)
    default = max(1, math.floor(min(limits.initial, limits.cap) / max(1, peers)))
    settings = attrs.evolve(
        limits,
        cap=default,
        caps=shares,
        initial=max([default, *shares.values()]),
        rate=rate,
        burst=max(1, limits.burst // max(1, peers)),
    )
    return Fallback(reason=reason, local_limits=shares, local_rate=rate), settings
