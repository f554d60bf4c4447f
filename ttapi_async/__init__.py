"""Asyncio-first client for TTAPI's OpenAI image models."""

from ._client import AsyncTTAPI
from ._errors import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    InsufficientQuotaError,
    InternalServerError,
    InvalidRequestError,
    JobFailedError,
    JobTimeoutError,
    NotFoundError,
    PermissionDeniedError,
    QueueFullError,
    RateLimitError,
    RedirectError,
    ResponseTooLargeError,
    TTAPIError,
)
from ._job import Job
from ._models import (
    ImageData,
    ImagesResponse,
    ImageStreamEvent,
    JobData,
    JobResult,
    JobStatus,
    Usage,
)
from ._retry import RetryPolicy
from ._schedule import PollSchedule
from ._spent import SpentSnapshot, TokenTotals
from ._sync import TTAPI, SyncJob
from ._types import NOT_GIVEN, NotGiven
from ._version import __version__
from ._watcher import JobWatcher
from .resources import ImageStream
from .webhooks import WebhookReceiver

__all__ = [
    "NOT_GIVEN",
    "TTAPI",
    "APIConnectionError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncTTAPI",
    "AuthenticationError",
    "BadRequestError",
    "ImageData",
    "ImageStream",
    "ImageStreamEvent",
    "ImagesResponse",
    "InsufficientQuotaError",
    "InternalServerError",
    "InvalidRequestError",
    "Job",
    "JobData",
    "JobFailedError",
    "JobResult",
    "JobStatus",
    "JobTimeoutError",
    "JobWatcher",
    "NotFoundError",
    "NotGiven",
    "PermissionDeniedError",
    "PollSchedule",
    "QueueFullError",
    "RateLimitError",
    "RedirectError",
    "ResponseTooLargeError",
    "RetryPolicy",
    "SpentSnapshot",
    "SyncJob",
    "TTAPIError",
    "TokenTotals",
    "Usage",
    "WebhookReceiver",
    "__version__",
]
