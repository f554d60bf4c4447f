"""WebhookReceiver's refusals of settings that could not work or would be unsafe."""

from __future__ import annotations

import pytest

from ttapi_async import JobWatcher
from ttapi_async.webhooks import WebhookReceiver


@pytest.mark.parametrize("url", ["ftp://example.com/hook", "https:///hook", "hook"])
def test_a_public_url_that_is_no_http_url_is_refused(url: str) -> None:
    """A public_url that is not an http(s) URL with a host raises ValueError."""
    with pytest.raises(ValueError, match="public_url"):
        WebhookReceiver(JobWatcher(), public_url=url)


def test_a_short_token_is_refused() -> None:
    """A token under 16 characters (guessable) raises ValueError."""
    with pytest.raises(ValueError, match="token"):
        WebhookReceiver(JobWatcher(), public_url="https://example.com/h", token="short")


def test_a_max_body_below_one_is_refused() -> None:
    """max_body=0 (no body could be read) raises ValueError."""
    with pytest.raises(ValueError, match="max_body"):
        WebhookReceiver(JobWatcher(), public_url="https://example.com/h", max_body=0)
