"""The failure policy: what an error at each stage of an item means for that item.

The rule that shapes the table is "never pay twice": once a request may have reached the
service, the item is never sent again without being asked (``unknown``), and once its job
id is recorded it stays ``submitted`` whatever goes wrong watching or saving it, so the
next run resumes the job instead of paying for a new one.
"""

from __future__ import annotations

import enum
import errno
from typing import Final

import attrs

from .._errors import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    AuthenticationError,
    InsufficientQuotaError,
    InvalidRequestError,
    JobFailedError,
    JobTimeoutError,
    LeaseTimeoutError,
    NotFoundError,
    PermissionDeniedError,
    QueueFullError,
    RateLimitError,
    TTAPIError,
)
from .._retry import should_retry
from ._errors import JournalWriteError

__all__ = ["FATAL", "Action", "Stage", "Verdict", "decide", "disk_full", "explain"]

#: Errors that every later item would meet alike: the run stops at the first.
FATAL: Final = (AuthenticationError, PermissionDeniedError, InsufficientQuotaError)


class Stage(enum.Enum):
    """Where in an item's life an error came from."""

    SUBMIT = "submit"  # sending the request, before an answer was read
    WATCH = "watch"  # waiting for a job whose id is recorded
    SAVE_JOB = "save_job"  # saving a finished job's image (its id is recorded)
    SAVE_ANSWER = "save_answer"  # saving a synchronous answer's images (paid, no job id)


class Action(enum.Enum):
    """What becomes of the item."""

    REFUSED = "refused"  # 429/499: back in line, and the limiter learns from it
    RETRY = "retry"  # certainly not acted on: back in line after a backoff
    FAIL = "fail"  # failed for good (until --retry-failed)
    UNKNOWN = "unknown"  # may have been acted on (and billed): not sent again unless asked
    KEEP = "keep"  # its job id is recorded: stays submitted, the next run resumes it
    HOLD = "hold"  # back to pending untouched: the run stops before anything else is sent


@attrs.frozen
class Verdict:
    """The item's fate, and whether the whole run must stop submitting."""

    action: Action
    stop: bool = False


def disk_full(exc: BaseException) -> bool:
    """Return True when ``exc`` (or what caused it) says the disk is full."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 8:
        if isinstance(current, JournalWriteError) and current.disk_full:
            return True
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        current = current.__cause__ or current.__context__
        seen += 1
    return False


def _stops(exc: BaseException) -> bool:
    return isinstance(exc, (*FATAL, JournalWriteError)) or disk_full(exc)


def decide(stage: Stage, exc: BaseException) -> Verdict:
    """Return what ``exc`` raised at ``stage`` means for the item (see the module's rule)."""
    stop = _stops(exc)
    if stage is Stage.SUBMIT:
        return Verdict(_submit_action(exc), stop)
    if stage is Stage.SAVE_ANSWER:
        return Verdict(Action.UNKNOWN, stop)  # paid for but not saved: sending again pays again
    if stage is Stage.WATCH and _job_is_gone(exc):
        return Verdict(Action.FAIL, stop)
    return Verdict(Action.KEEP, stop)


def _submit_action(exc: BaseException) -> Action:
    if isinstance(exc, RateLimitError | QueueFullError):
        return Action.REFUSED
    if isinstance(exc, InvalidRequestError):
        return Action.FAIL
    if isinstance(exc, LeaseTimeoutError):
        return Action.RETRY  # no room came free in time: nothing was sent
    if isinstance(exc, APIConnectionError):
        return Action.UNKNOWN if exc.possibly_submitted else Action.RETRY
    if isinstance(exc, APIStatusError):
        if should_retry(exc, idempotent=False):
            return Action.RETRY
        if exc.status_code >= 500:
            return Action.UNKNOWN  # a 502/504 or a bare 500 may come after the work was taken
        return Action.HOLD if isinstance(exc, FATAL) else Action.FAIL
    if isinstance(exc, TTAPIError) and not isinstance(exc, APIResponseValidationError):
        return Action.FAIL
    # An answer that could not be read, or any error nobody foresaw: the work may exist.
    return Action.UNKNOWN


def _job_is_gone(exc: BaseException) -> bool:
    """Return True when the service says the job failed, or does not know it."""
    if isinstance(exc, NotFoundError):
        return True
    if isinstance(exc, JobFailedError):
        status = exc.status
        return bool(getattr(status, "failed", False)) or isinstance(exc.__cause__, NotFoundError)
    return False


def explain(stage: Stage, exc: BaseException, verdict: Verdict, job_id: str | None) -> str:
    """Return the reason recorded with the item."""
    what = f"{type(exc).__name__}: {exc}"
    if stage is Stage.WATCH and verdict.action is Action.FAIL:
        if isinstance(exc, JobFailedError) and getattr(exc.status, "failed", False):
            return f"job failed: {exc.message}"
        return f"the service does not know job {job_id} (expired?)"
    if stage is Stage.SAVE_ANSWER:
        return f"answer received but not saved: {what}"
    if verdict.action is Action.KEEP:
        if stage is Stage.SAVE_JOB:
            return f"download failed: {what}; still submitted, re-run to fetch it again"
        if isinstance(exc, JobTimeoutError | JobFailedError):
            what = exc.message if isinstance(exc, JobTimeoutError) else str(exc)
        return f"{what}; still submitted, re-run to keep watching it"
    return what
