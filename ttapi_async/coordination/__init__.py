"""Coordination: one account shared by many worker processes.

``LocalCoordinator`` keeps everything in one process (today's behaviour);
``RedisCoordinator`` (``pip install 'ttapi_async[redis]'``) shares job records, webhook
routing, the jobs-in-progress limit and the request rate through Redis. The Redis client
is imported only when ``RedisCoordinator`` is first used. See ``docs/coordination.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._errors import LeaseTimeoutError
from ._keys import account_id, redact_url
from ._local import LocalCoordinator
from ._types import (
    PENDING,
    Coordinator,
    CoordinatorListener,
    Fallback,
    JobRecord,
    Lease,
    LimitSettings,
    Settled,
)

if TYPE_CHECKING:
    from ._redis import RedisCoordinator

__all__ = [
    "PENDING",
    "Coordinator",
    "CoordinatorListener",
    "Fallback",
    "JobRecord",
    "Lease",
    "LeaseTimeoutError",
    "LimitSettings",
    "LocalCoordinator",
    "RedisCoordinator",
    "Settled",
    "account_id",
    "redact_url",
]


def __getattr__(name: str) -> Any:
    # Import redis only for the one name that needs it: `import ttapi_async` stays light.
    if name == "RedisCoordinator":
        try:
            from ._redis import RedisCoordinator
        except ImportError as exc:  # pragma: no cover - depends on the installed extras
            if exc.name is not None and exc.name.startswith("redis"):
                raise ImportError(
                    "RedisCoordinator needs the redis extra: pip install 'ttapi_async[redis]'"
                ) from exc
            raise
        return RedisCoordinator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
