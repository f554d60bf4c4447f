"""The package's public surface: exactly the names it promises, sorted."""

from __future__ import annotations

import types

import ttapi_async

CORE = {
    "NOT_GIVEN",
    "NotGiven",
    "AsyncTTAPI",
    "RetryPolicy",
    "ImageData",
    "ImageStream",
    "ImageStreamEvent",
    "ImagesResponse",
    "Usage",
    "JobData",
    "JobResult",
    "JobStatus",
    "TTAPIError",
    "APIConnectionError",
    "APITimeoutError",
    "APIStatusError",
    "BadRequestError",
    "AuthenticationError",
    "InsufficientQuotaError",
    "PermissionDeniedError",
    "NotFoundError",
    "RateLimitError",
    "RedirectError",
    "QueueFullError",
    "InternalServerError",
    "APIResponseValidationError",
    "InvalidRequestError",
    "JobFailedError",
    "JobTimeoutError",
    "__version__",
}
# Added by the asynchronous-jobs work (resources/jobs.py, _watcher.py, webhooks.py).
JOBS = {"Job", "JobWatcher", "PollSchedule", "WebhookReceiver"}
# The blocking client (_sync.py).
BLOCKING = {"TTAPI", "SyncJob"}
# Added by the hostile-answers work (issue 8): the size cap's error.
BODIES = {"ResponseTooLargeError"}
# Issue 13's money work: what ``client.spent.snapshot()`` returns.
MONEY = {"SpentSnapshot", "TokenTotals"}


def _isort_key(name: str) -> tuple[int, str]:
    # ruff's RUF022 order: CONSTANTS, then Classes, then everything else.
    if name.isupper():
        return (0, name)
    if name[:1].isupper():
        return (1, name)
    return (2, name)


def test_all_is_sorted() -> None:
    """``__all__`` is in isort order (constants, classes, then the rest), as ruff keeps it."""
    assert ttapi_async.__all__ == sorted(ttapi_async.__all__, key=_isort_key)


def test_all_is_exactly_the_public_surface() -> None:
    """``__all__`` lists exactly the intended public names, no more, no fewer."""
    assert set(ttapi_async.__all__) == CORE | JOBS | BLOCKING | BODIES | MONEY


def test_all_has_no_duplicates() -> None:
    """Each public name appears once."""
    assert len(ttapi_async.__all__) == len(set(ttapi_async.__all__))


def test_every_public_name_resolves() -> None:
    """Every name in ``__all__`` is an attribute of the package."""
    for name in ttapi_async.__all__:
        assert hasattr(ttapi_async, name), name


def test_no_public_attribute_is_left_out() -> None:
    """Every non-underscore, non-module attribute of the package is in ``__all__``."""
    public = {
        name
        for name, value in vars(ttapi_async).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert public <= set(ttapi_async.__all__)


def test_version_is_a_string() -> None:
    """``__version__`` is a non-empty string."""
    assert isinstance(ttapi_async.__version__, str) and ttapi_async.__version__
