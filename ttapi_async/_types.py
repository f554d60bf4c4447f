"""The shared vocabulary: sentinels, per-call options, ``compact``.

The bottom of the import graph: every layer imports it, and it imports nothing of the
package, so the client, the resources and the watcher can share these names without
importing each other.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Final

import attrs

__all__ = ["NOT_GIVEN", "NotGiven", "RequestOptions", "compact"]


class NotGiven(enum.Enum):
    """Sentinel type: an option the caller did not pass (``None`` means "no limit")."""

    NOT_GIVEN = enum.auto()

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN: Final = NotGiven.NOT_GIVEN


@attrs.frozen
class RequestOptions:
    """Per-call overrides of the client's settings."""

    timeout: float | NotGiven | None = NOT_GIVEN
    idle_timeout: float | NotGiven | None = NOT_GIVEN
    max_retries: int | NotGiven = NOT_GIVEN
    retry_possibly_submitted: bool | NotGiven = NOT_GIVEN
    extra_headers: Mapping[str, str] | None = None


def compact(**fields: Any) -> dict[str, Any]:
    """Return the fields that were given (``None`` means "leave it to the server")."""
    return {k: v for k, v in fields.items() if v is not None}
