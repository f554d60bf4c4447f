"""``TTAPI_COORDINATOR``: the CLI's coordinator, a ``RedisCoordinator`` when it names one."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ..coordination._keys import redact_url

if TYPE_CHECKING:
    from ..coordination import Coordinator

__all__ = ["ENV_NAMESPACE", "ENV_URL", "coordinator_from_env"]

ENV_URL = "TTAPI_COORDINATOR"
ENV_NAMESPACE = "TTAPI_COORDINATOR_NAMESPACE"
_SCHEMES = ("redis", "rediss", "unix")


def coordinator_from_env(environ: Mapping[str, str] | None = None) -> Coordinator | None:
    """Return a ``RedisCoordinator`` for ``$TTAPI_COORDINATOR``, or None when it is unset.

    ``$TTAPI_COORDINATOR_NAMESPACE`` names the namespace (default ``default``). Raise
    ``ValueError`` (the URL's password never in it) for a URL that is not Redis's, or when
    the ``redis`` extra is missing.
    """
    env = os.environ if environ is None else environ
    url = env.get(ENV_URL, "").strip()
    if not url:
        return None
    try:
        scheme = urlsplit(url).scheme
    except ValueError:
        scheme = ""
    if scheme not in _SCHEMES:
        raise ValueError(f"{ENV_URL} must be a redis:// URL, got {redact_url(url)}")
    try:
        from ..coordination import RedisCoordinator
    except ImportError as exc:
        raise ValueError(f"{ENV_URL} is set: {exc}") from None
    return RedisCoordinator(url, namespace=env.get(ENV_NAMESPACE) or "default")
