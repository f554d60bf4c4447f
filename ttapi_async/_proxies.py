"""Which proxy the environment names for a URL, looked up by the client instead of by aiohttp.

With ``trust_env=True`` aiohttp reads the proxy variables (and ``~/.netrc``) in a worker thread
on every request: two thread hops a call, which cost more CPU than the rest of a small call.
The client's own session runs with ``trust_env`` off and is handed the proxy: found once, when
the session opens, for API calls (they all go to base_url's origin), and per URL for downloads.
"""

from __future__ import annotations

from typing import TypeAlias

from aiohttp import BasicAuth
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

__all__ = ["NO_PROXY", "Route", "env_proxy"]

#: (proxy, its credentials): what ``session.request(proxy=..., proxy_auth=...)`` takes.
Route: TypeAlias = "tuple[URL | None, BasicAuth | None]"
NO_PROXY: Route = (None, None)


def env_proxy(url: str | URL) -> Route:
    """Return the proxy that HTTP(S)_PROXY / NO_PROXY name for ``url``, as aiohttp finds it.

    The proxy's credentials come from its URL or from ``~/.netrc``, as with aiohttp's own
    ``trust_env``; a target host's own ``~/.netrc`` entry is never sent.
    """
    try:
        return get_env_proxy_for_url(URL(url))
    except LookupError:  # no variable for this scheme, or NO_PROXY lists the host
        return NO_PROXY
