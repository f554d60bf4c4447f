"""What an API call does with a 3xx answer: follow it only where no key or money is at risk.

- Another origin (scheme, host or port): never followed; the key goes only to base_url's.
  So https is never downgraded to http either.
- A request that creates paid work: never followed, whatever the status, so a POST is
  never sent twice and never turned into another request.
- A repeatable request (a job fetch): a 307/308 to the same origin is followed, method and
  body kept, at most ``MAX_REDIRECTS`` times (a GET follows any 3xx so). 301/302/303 would
  turn a POST into a GET, which asks for something else: not followed.

Downloads are not API calls (they carry no key) and follow redirects as usual.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from yarl import URL

from ._errors import RedirectError
from ._translation import path_of

__all__ = ["MAX_REDIRECTS", "is_redirect", "redirect_target"]

MAX_REDIRECTS: Final = 3
_KEEPS_METHOD: Final = frozenset({307, 308})


def is_redirect(status: int) -> bool:
    """Return True for a 3xx status (none is ever followed by aiohttp for an API call)."""
    return 300 <= status < 400


def redirect_target(
    method: str,
    url: str,
    status: int,
    headers: Mapping[str, str],
    *,
    idempotent: bool,
    hops: int,
) -> str:
    """Return the URL a 3xx answer may be followed to, or raise ``RedirectError``.

    ``hops`` is how many redirects this request has followed already.
    """
    where = f"{method} {path_of(url)} was redirected ({status})"
    location = headers.get("Location")
    if not location:
        raise RedirectError(f"{where} without a Location", status_code=status, headers=headers)
    try:
        here = URL(url)
        target = here.join(URL(location))
        origin = str(target.origin())
    except ValueError:
        raise RedirectError(
            f"{where} to an unusable Location; not followed", status_code=status, headers=headers
        ) from None
    if origin != str(here.origin()):
        raise RedirectError(
            f"{where} to another origin, {origin}; not followed: the API key is sent only "
            f"to {here.origin()}",
            status_code=status,
            headers=headers,
            location=origin,
        )
    if not idempotent:
        reason = "a paid request is never sent twice"
    elif status not in _KEEPS_METHOD and method != "GET":
        reason = f"a {status} would turn {method} into GET"
    elif hops >= MAX_REDIRECTS:
        reason = f"more than {MAX_REDIRECTS} redirects"
    else:
        return str(target)
    raise RedirectError(
        f"{where} to {origin}; not followed: {reason}",
        status_code=status,
        headers=headers,
        location=origin,
    )
