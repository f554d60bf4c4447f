"""Running totals of what a client spent: job quota by product, usage tokens by model.

For web backends that meter their own users: read ``client.spent.snapshot()`` before and
after a user's calls and subtract (``after - before``). Quota is counted once per job that
ended SUCCESS (a FAILED job is not billed); tokens come from the ``usage`` of the
synchronous endpoints' answers (GPT Image models report it; DALL-E models do not).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

import attrs

from ._models import Usage

__all__ = ["DEFAULT_MODEL", "Spending", "SpentSnapshot", "TokenTotals"]

#: The model key of a request that named none (the service's default model).
DEFAULT_MODEL: Final = "(default)"


@attrs.frozen
class TokenTotals:
    """Usage tokens added up (``usage.input_tokens`` / ``output_tokens`` / ``total_tokens``)."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0

    def __add__(self, other: TokenTotals) -> TokenTotals:
        return TokenTotals(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.total_tokens + other.total_tokens,
        )

    def __sub__(self, other: TokenTotals) -> TokenTotals:
        return TokenTotals(
            self.input_tokens - other.input_tokens,
            self.output_tokens - other.output_tokens,
            self.total_tokens - other.total_tokens,
        )


def _frozen(mapping: Mapping[str, object]) -> Mapping[str, object]:
    return MappingProxyType(dict(mapping))


@attrs.frozen
class SpentSnapshot:
    """What a client had spent at one moment; ``later - earlier`` is what was spent between.

    ``quota`` maps a job product (``"gpt4o"``, ``"gpt:<model>"``) to quota units; ``tokens``
    maps a model (``"(default)"`` when the request named none) to its ``TokenTotals``.
    """

    quota: Mapping[str, int] = attrs.field(factory=dict, converter=_frozen)
    tokens: Mapping[str, TokenTotals] = attrs.field(factory=dict, converter=_frozen)
    jobs: int = 0
    requests: int = 0

    @property
    def total_quota(self) -> int:
        """Return the quota units of every product added up."""
        return sum(self.quota.values())

    @property
    def total_tokens(self) -> int:
        """Return the usage tokens (``total_tokens``) of every model added up."""
        return sum(t.total_tokens for t in self.tokens.values())

    def __sub__(self, other: SpentSnapshot) -> SpentSnapshot:
        quota = {k: v - other.quota.get(k, 0) for k, v in self.quota.items()}
        tokens = {k: v - other.tokens.get(k, TokenTotals()) for k, v in self.tokens.items()}
        return SpentSnapshot(
            quota={k: v for k, v in quota.items() if v},
            tokens={k: v for k, v in tokens.items() if v != TokenTotals()},
            jobs=self.jobs - other.jobs,
            requests=self.requests - other.requests,
        )


class Spending:
    """The running totals a client keeps (``client.spent``); ``snapshot()`` reads them.

    Adding is cheap (one dict update); a lock keeps a snapshot taken from another thread
    (the blocking client's caller) consistent.
    """

    __slots__ = ("_jobs", "_lock", "_quota", "_requests", "_tokens")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._quota: dict[str, int] = {}
        # Plain lists [input, output, total], made into TokenTotals only by a snapshot: an
        # answer's usage costs a few additions on the hot path, not two attrs instances.
        self._tokens: dict[str, list[int]] = {}
        self._jobs = 0
        self._requests = 0

    def __repr__(self) -> str:
        snap = self.snapshot()
        return f"<Spending quota={snap.total_quota} tokens={snap.total_tokens}>"

    def add_quota(self, product: str, quota: int) -> None:
        """Count one job that ended SUCCESS and what it cost."""
        with self._lock:
            self._quota[product] = self._quota.get(product, 0) + quota
            self._jobs += 1

    def add_usage(self, model: str | None, usage: Usage | None) -> None:
        """Count one synchronous answer and its ``usage`` (None: no tokens reported)."""
        with self._lock:
            self._requests += 1
            if usage is None:
                return
            totals = self._tokens.get(model or DEFAULT_MODEL)
            if totals is None:
                totals = self._tokens[model or DEFAULT_MODEL] = [0, 0, 0]
            totals[0] += usage.input_tokens
            totals[1] += usage.output_tokens
            totals[2] += usage.total_tokens

    def snapshot(self) -> SpentSnapshot:
        """Return the totals now, as an immutable value."""
        with self._lock:
            return self._snapshot()

    def _snapshot(self) -> SpentSnapshot:
        tokens = {k: TokenTotals(*v) for k, v in self._tokens.items()}
        return SpentSnapshot(
            quota=self._quota, tokens=tokens, jobs=self._jobs, requests=self._requests
        )

    def reset(self) -> SpentSnapshot:
        """Start the totals again from zero; return what they were."""
        with self._lock:
            snap = self._snapshot()
            self._quota, self._tokens, self._jobs, self._requests = {}, {}, 0, 0
            return snap
