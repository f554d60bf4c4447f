"""What a coordinator is: the calls the client, watcher, receiver and batch make; their values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import attrs

__all__ = [
    "PENDING",
    "Coordinator",
    "CoordinatorListener",
    "Fallback",
    "JobRecord",
    "Lease",
    "LimitSettings",
    "Settled",
]

#: The status of a record whose job has not settled yet.
PENDING = "pending"


@attrs.frozen
class JobRecord:
    """What every worker knows about one job; times are seconds on the coordinator's clock."""

    job_id: str
    owner: str
    kind: str
    product: str
    submitted_at: float
    status: str = PENDING
    #: the terminal answer as the caller stored it (a JSON text), None while pending
    answer: str | None = None
    settled_at: float | None = None
    #: the worker this job was adopted from, when a sweeper took it over
    adopted_from: str | None = None
    #: False when Redis was unreachable and this is the process's own (local) knowledge
    shared: bool = True
    #: when this copy was read, on the same clock (set on adoption: the job's true age)
    read_at: float | None = None

    @property
    def settled(self) -> bool:
        """Return True once a terminal status is recorded."""
        return self.settled_at is not None

    @property
    def age(self) -> float | None:
        """Return how long ago the job was submitted when this copy was read, if known."""
        return None if self.read_at is None else max(0.0, self.read_at - self.submitted_at)


@attrs.frozen
class Settled:
    """The outcome of ``settle``: whether this call's status won, and the record as it stands."""

    won: bool
    record: JobRecord


@attrs.frozen
class Lease:
    """One slot of a product's jobs-in-progress limit, held from before submit to the job's end."""

    product: str
    token: str
    #: the limiter round it was taken in: refusals of older rounds do not shrink the limit again
    epoch: int
    #: False when taken from the local share because Redis was unreachable
    shared: bool = True


@attrs.frozen
class Fallback:
    """Redis is unreachable: poll every job, and stay within these local shares until it returns."""

    reason: str
    #: per product, this process's share of the last limit Redis reported
    local_limits: Mapping[str, int]
    #: this process's share of the shared request rate (requests per second), None if unlimited
    local_rate: float | None
    #: callbacks may not reach this worker's jobs: poll them
    poll: bool = True


@attrs.frozen
class LimitSettings:
    """How the adaptive jobs-in-progress limit moves (the batch limiter's rules, shared)."""

    #: the most jobs in progress per product (overridden per product by ``caps``)
    cap: int = 64
    caps: Mapping[str, int] = attrs.field(factory=dict)
    initial: int = 16
    minimum: int = 1
    #: a refusal multiplies the limit by this (once per round)
    decrease: float = 0.95
    #: after slow start, one slot more per this many acceptances
    grow_every: int = 8
    #: requests per second over every process (polls included), None for no shared cap
    rate: float | None = None
    #: requests that may go at once before the rate applies
    burst: int = 10

    def __attrs_post_init__(self) -> None:
        if not 0.0 < self.decrease < 1.0:
            raise ValueError(f"decrease must be within (0, 1), got {self.decrease}")
        if self.cap < 1 or any(cap < 1 for cap in self.caps.values()):
            raise ValueError("every cap must be >= 1")
        if self.rate is not None and self.rate <= 0:
            raise ValueError(f"rate must be > 0 or None, got {self.rate}")

    def cap_of(self, product: str) -> int:
        """Return the cap for ``product``."""
        return self.caps.get(product, self.cap)


class CoordinatorListener(Protocol):
    """What a coordinator tells its process (the client's watcher implements it)."""

    def job_settled(self, record: JobRecord) -> None:
        """Take a terminal record another worker (or a resync) found for a job of this worker."""

    def jobs_adopted(self, records: list[JobRecord]) -> None:
        """Start watching jobs taken over from a dead worker (their true age is in the record)."""

    def jobs_lost(self, job_ids: list[str]) -> None:
        """Stop watching these jobs: this worker was declared dead and another adopted them."""

    def fallback_started(self, fallback: Fallback) -> None:
        """Poll every job and keep to the local shares until ``resynced``."""

    def resynced(self) -> None:
        """Trust pushes and the shared limits again."""


@runtime_checkable
class Coordinator(Protocol):
    """Shared state for every process on one account; ``LocalCoordinator`` is the in-process one."""

    @property
    def worker_id(self) -> str:
        """Return this process incarnation's id (it changes if the worker is fenced)."""

    @property
    def fallback(self) -> Fallback | None:
        """Return the fallback in force while Redis is unreachable, else None."""

    async def open(self, api_key: str, listener: CoordinatorListener | None = None) -> None:
        """Bind to the account (only a one-way hash of ``api_key`` is kept) and start beating."""

    async def aclose(self) -> None:
        """Stop beating and listening; this worker's jobs stay recorded for the others."""

    async def webhook_token(self) -> str:
        """Return the webhook token every worker of the account and namespace agrees on."""

    async def record_submitted(
        self, job_id: str, *, kind: str, product: str, lease: Lease | None, age: float = 0.0
    ) -> JobRecord:
        """Record a job the service accepted (owned by this worker); binds ``lease`` to it."""

    async def get_record(self, job_id: str) -> JobRecord | None:
        """Return the job's record, or None when no worker recorded it (or it expired)."""

    async def settle(self, job_id: str, *, status: str, answer: str) -> Settled:
        """Record a terminal status (first wins), free the job's lease, wake its owner."""

    def forget(self, job_id: str) -> None:
        """Stop expecting news of a job this worker gave up (its record stays)."""

    async def claim_confirm(self, job_id: str) -> bool:
        """Return True if this worker may make the one confirming fetch for ``job_id``."""

    async def release_confirm(self, job_id: str) -> None:
        """Give the confirming claim back (the fetch found the job still running)."""

    async def acquire_lease(self, product: str, *, timeout: float | None = None) -> Lease:
        """Wait for a free slot of ``product``'s limit; raise ``LeaseTimeoutError`` at timeout."""

    async def release_lease(self, lease: Lease) -> None:
        """Give back a lease whose submit was not accepted (an accepted job frees it on settle)."""

    async def refused(
        self, lease: Lease, *, retry_after: float | None = None, queue_full: bool = False
    ) -> None:
        """Record a 429/499 for ``lease``'s submit: shrink the limit, pause, free the lease."""

    async def pause(self, seconds: float) -> None:
        """Hold every process's new requests for ``seconds`` (a ``Retry-After``)."""

    async def pause_left(self) -> float:
        """Return how long the shared pause still holds, in seconds."""

    async def rate(self) -> None:
        """Wait for this request's turn under the shared request rate (and any pause)."""

    async def heartbeat(self) -> None:
        """Beat once: prove this worker alive and renew its leases (the open() loop calls it)."""

    async def sweep(self) -> list[JobRecord]:
        """Adopt the jobs of workers silent past the deadline; return the adopted records."""
