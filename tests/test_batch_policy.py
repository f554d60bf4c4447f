"""The batch's failure policy as a table: what an error at each stage means for the item."""

from __future__ import annotations

import errno

import pytest

from ttapi_async import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    InvalidRequestError,
    JobFailedError,
    JobTimeoutError,
)
from ttapi_async._errors import status_error_class
from ttapi_async.batch import JournalWriteError
from ttapi_async.batch._policy import Action, Stage, Verdict, decide, disk_full, explain
from ttapi_async.coordination import LeaseTimeoutError


def _status(code: int, body: object = None) -> APIStatusError:
    body = {"error": {"message": "x"}} if body is None else body
    return status_error_class(code)("x", status_code=code, body=body)


class _Failed:
    failed = True


FULL = OSError(errno.ENOSPC, "No space left on device")
JOURNAL_FULL = JournalWriteError("cannot write the journal", errno=errno.ENOSPC)
SUBMIT, WATCH, SAVE_JOB, SAVE_ANSWER = Stage.SUBMIT, Stage.WATCH, Stage.SAVE_JOB, Stage.SAVE_ANSWER
REFUSED, RETRY, FAIL, UNKNOWN, KEEP, HOLD = (
    Action.REFUSED,
    Action.RETRY,
    Action.FAIL,
    Action.UNKNOWN,
    Action.KEEP,
    Action.HOLD,
)

# (stage, error, action, the run stops)
TABLE = [
    # Sending: refusals and certain non-deliveries go back in line.
    (SUBMIT, _status(429), REFUSED, False),
    (SUBMIT, _status(499), REFUSED, False),
    (SUBMIT, APIConnectionError("refused"), RETRY, False),
    (SUBMIT, _status(503), RETRY, False),
    (SUBMIT, LeaseTimeoutError("no room", product="gpt4o"), RETRY, False),  # nothing sent
    # ... what may have reached the service is never sent again unasked.
    (SUBMIT, APIConnectionError("reset", possibly_submitted=True), UNKNOWN, False),
    (SUBMIT, _status(502), UNKNOWN, False),
    (SUBMIT, _status(500, body="<html>"), UNKNOWN, False),
    (SUBMIT, APIResponseValidationError("bad json"), UNKNOWN, False),
    (SUBMIT, RecursionError("deep"), UNKNOWN, False),
    (SUBMIT, TypeError("a bug after sending"), UNKNOWN, False),
    # ... refusals for good fail the item; account-wide ones stop the run.
    (SUBMIT, InvalidRequestError("size"), FAIL, False),
    (SUBMIT, _status(400), FAIL, False),
    (SUBMIT, _status(401), HOLD, True),
    (SUBMIT, _status(402), HOLD, True),
    (SUBMIT, _status(403), HOLD, True),
    # Watching a recorded job: only the service's own "failed" or "unknown job" ends it.
    (WATCH, JobFailedError("boom", job_id="j", status=_Failed()), FAIL, False),
    (WATCH, _status(404), FAIL, False),
    (WATCH, JobFailedError("client closed", job_id="j"), KEEP, False),
    (WATCH, JobTimeoutError("deadline", job_id="j"), KEEP, False),
    (WATCH, _status(500), KEEP, False),
    (WATCH, RecursionError("deep"), KEEP, False),
    (WATCH, _status(401), KEEP, True),
    (WATCH, JOURNAL_FULL, KEEP, True),
    # Saving a recorded job's image: the job stays recorded, whatever the error.
    (SAVE_JOB, APIConnectionError("reset"), KEEP, False),
    (SAVE_JOB, PermissionError(errno.EACCES, "denied"), KEEP, False),
    (SAVE_JOB, ValueError("odd url"), KEEP, False),
    (SAVE_JOB, FULL, KEEP, True),
    # Saving a synchronous answer: paid, not saved, no job to resume.
    (SAVE_ANSWER, PermissionError(errno.EACCES, "denied"), UNKNOWN, False),
    (SAVE_ANSWER, ValueError("bad base64"), UNKNOWN, False),
    (SAVE_ANSWER, FULL, UNKNOWN, True),
]


@pytest.mark.parametrize(("stage", "exc", "action", "stop"), TABLE)
def test_policy_table(stage: Stage, exc: BaseException, action: Action, stop: bool) -> None:
    """Each (stage, error) pair gets the action and the stop decision of the table."""
    assert decide(stage, exc) == Verdict(action, stop)


def test_disk_full_is_found_through_the_cause_chain() -> None:
    """An ENOSPC wrapped as the cause of another error still reads as a full disk."""
    try:
        try:
            raise FULL
        except OSError as exc:
            raise RuntimeError("write failed") from exc
    except RuntimeError as outer:
        assert disk_full(outer)
    assert not disk_full(OSError(errno.EACCES, "denied"))


def test_a_kept_job_says_it_is_still_submitted() -> None:
    """The reason recorded for a kept job tells the user a re-run picks it up."""
    reason = explain(SAVE_JOB, FULL, decide(SAVE_JOB, FULL), "job-1")
    assert reason.startswith("download failed: OSError") and "re-run" in reason
