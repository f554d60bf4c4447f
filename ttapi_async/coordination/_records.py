"""A job record's fields in Redis (a hash) and back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._types import PENDING, JobRecord

__all__ = ["parse_record"]


def parse_record(job_id: str, raw: Mapping[Any, Any]) -> JobRecord | None:
    """Return the record a Redis hash holds, or None for an empty (missing) hash."""
    if not raw:
        return None
    fields = {str(key): str(value) for key, value in raw.items()}
    settled = fields.get("settled_ms")
    return JobRecord(
        job_id=job_id,
        owner=fields.get("owner", ""),
        kind=fields.get("kind", ""),
        product=fields.get("product", ""),
        submitted_at=_seconds(fields.get("submitted_ms")) or 0.0,
        status=fields.get("status", PENDING),
        answer=fields.get("answer") if settled else None,
        settled_at=_seconds(settled),
        adopted_from=fields.get("adopted_from") or None,
    )


def _seconds(ms: str | None) -> float | None:
    if not ms:
        return None
    return float(ms) / 1000
