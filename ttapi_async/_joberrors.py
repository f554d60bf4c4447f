"""What a failed poll means for its job, and the errors a watched job ends with."""

from __future__ import annotations

from ._errors import (
    TRANSIENT_STATUSES,
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    AuthenticationError,
    JobFailedError,
    JobTimeoutError,
    PermissionDeniedError,
)
from ._job import Job

__all__ = ["closed_error", "is_transient", "refuses_every_job", "timeout_error", "unfetchable"]


def is_transient(exc: BaseException) -> bool:
    """Tell whether a failed poll should simply be tried again later."""
    if isinstance(exc, (APIConnectionError, APIResponseValidationError)):
        return True
    if isinstance(exc, APIStatusError):
        return exc.status_code >= 500 or exc.status_code in TRANSIENT_STATUSES
    return False


def refuses_every_job(exc: BaseException) -> bool:
    """Tell whether the key (or the account) is refused: every other poll would be too."""
    return isinstance(exc, (AuthenticationError, PermissionDeniedError))


def timeout_error(job: Job, hint: str, cause: BaseException | None = None) -> JobTimeoutError:
    """Return the error of a job still pending at its deadline (``hint``: how to resume it)."""
    status = job.status
    last = f" (last status {status.status})" if status else ""
    error = JobTimeoutError(
        f"not finished before its deadline{last}; it may still finish: "
        f"resume it with {hint}({job.id!r})",
        job_id=job.id,
        status=status,
    )
    error.__cause__ = cause
    return error


def unfetchable(job: Job, exc: BaseException) -> JobFailedError:
    """Return the error of a job whose fetch failed for good (not transiently)."""
    error = JobFailedError(
        f"cannot fetch the job: {type(exc).__name__}: {exc}", job_id=job.id, status=job.status
    )
    error.__cause__ = exc
    return error


def closed_error(job: Job, hint: str) -> JobFailedError:
    """Return the error of a job still pending when its watcher closed."""
    return JobFailedError(
        f"the client closed while the job was pending; resume it with {hint}({job.id!r})",
        job_id=job.id,
        status=job.status,
    )
