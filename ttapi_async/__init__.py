"""Asyncio-first client for TTAPI's OpenAI image models."""

from ._client import NOT_GIVEN, AsyncTTAPI, NotGiven
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
    TTAPIError,
)
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
from ._version import __version__
from .resources import ImageStream

__all__ = [
    "NOT_GIVEN",
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
    "JobData",
    "JobFailedError",
    "JobResult",
    "JobStatus",
    "JobTimeoutError",
    "NotFoundError",
    "NotGiven",
    "PermissionDeniedError",
    "QueueFullError",
    "RateLimitError",
    "RetryPolicy",
    "TTAPIError",
    "Usage",
    "__version__",
]
