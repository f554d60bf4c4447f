"""What every resource shares: its client, per-call options, and the validation switch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from .._types import NOT_GIVEN, NotGiven, RequestOptions, compact
from ._checks import (
    check_extra_headers,
    check_idle_timeout,
    check_max_retries,
    check_retry_possibly_submitted,
    check_timeout,
)

if TYPE_CHECKING:
    from .._client import AsyncTTAPI

__all__ = ["Resource", "compact"]


class Resource:
    """Base of ``client.images``, ``client.dalle3``, ``client.gpt4o`` and ``client.gpt``."""

    def __init__(self, client: AsyncTTAPI) -> None:
        self._client = client

    def _validating(self, validate: bool | None) -> bool:
        return self._client.validate if validate is None else validate

    @staticmethod
    def _options(
        timeout: float | NotGiven | None = NOT_GIVEN,
        max_retries: int | NotGiven = NOT_GIVEN,
        retry_possibly_submitted: bool | NotGiven = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        *,
        idle_timeout: float | NotGiven | None = NOT_GIVEN,
    ) -> RequestOptions | None:
        if (
            timeout is NOT_GIVEN
            and idle_timeout is NOT_GIVEN
            and max_retries is NOT_GIVEN
            and retry_possibly_submitted is NOT_GIVEN
            and not extra_headers
        ):
            return None  # the common case costs no allocation (and no check)
        # Before anything is sent: a bad option found after a paid POST is money lost.
        check_timeout(timeout)
        check_idle_timeout(idle_timeout)
        check_max_retries(max_retries)
        check_retry_possibly_submitted(retry_possibly_submitted)
        check_extra_headers(extra_headers)
        return RequestOptions(
            timeout=timeout,
            idle_timeout=idle_timeout,
            max_retries=max_retries,
            retry_possibly_submitted=retry_possibly_submitted,
            extra_headers=extra_headers,
        )
