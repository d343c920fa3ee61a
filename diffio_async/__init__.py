"""diffio_async: an asyncio- and trio-native SDK for the Diffio speech-restoration API.

Start with :class:`AsyncDiffio`::

    async with AsyncDiffio() as client:
        result = await client.restore("talk.wav", output="out/")
"""

from __future__ import annotations

from ._catalog import DEFAULT_MODEL, KNOWN_MODELS, ModelSpec
from ._restore import RestoreResult
from ._retry import RetryPolicy
from ._transport import RequestOptions, Timeout
from ._upload import MediaSource
from ._version import __version__
from .bulk import ItemResult
from .client import AsyncDiffio
from .errors import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BatchAbortedError,
    ClientClosedError,
    ConfigurationError,
    ConflictError,
    DiffioError,
    DownloadError,
    GenerationFailedError,
    IdempotencyConflictError,
    InternalServerError,
    InvalidRequestError,
    ModelRetiredError,
    NotFoundError,
    PayloadTooLargeError,
    PaymentFailedError,
    PaymentRequiredError,
    PermissionDeniedError,
    RateLimitError,
    RestoreError,
    SpendLimitExceededError,
    TranscriptPendingError,
    TranscriptUnavailableError,
    UploadError,
    UploadMissingError,
    WaitTimeoutError,
    WebhookVerificationError,
)
from .generation import Generation, PollPolicy
from .models import (
    AccountSettings,
    ApiKey,
    CompleteProjectUploadResponse,
    CreatedGeneration,
    CreateProjectResponse,
    DownloadInfo,
    GenerationProgress,
    GenerationStatus,
    GenerationSummary,
    Project,
    Stage,
    UsageSummary,
    WebhookEndpoint,
    WebhookEvent,
    WebhookTestEvent,
)

__all__ = [
    "DEFAULT_MODEL",
    "KNOWN_MODELS",
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AccountSettings",
    "ApiKey",
    "AsyncDiffio",
    "AuthenticationError",
    "BadRequestError",
    "BatchAbortedError",
    "ClientClosedError",
    "CompleteProjectUploadResponse",
    "ConfigurationError",
    "ConflictError",
    "CreateProjectResponse",
    "CreatedGeneration",
    "DiffioError",
    "DownloadError",
    "DownloadInfo",
    "Generation",
    "GenerationFailedError",
    "GenerationProgress",
    "GenerationStatus",
    "GenerationSummary",
    "IdempotencyConflictError",
    "InternalServerError",
    "InvalidRequestError",
    "ItemResult",
    "MediaSource",
    "ModelRetiredError",
    "ModelSpec",
    "NotFoundError",
    "PayloadTooLargeError",
    "PaymentFailedError",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "PollPolicy",
    "Project",
    "RateLimitError",
    "RequestOptions",
    "RestoreError",
    "RestoreResult",
    "RetryPolicy",
    "SpendLimitExceededError",
    "Stage",
    "Timeout",
    "TranscriptPendingError",
    "TranscriptUnavailableError",
    "UploadError",
    "UploadMissingError",
    "UsageSummary",
    "WaitTimeoutError",
    "WebhookEndpoint",
    "WebhookEvent",
    "WebhookTestEvent",
    "WebhookVerificationError",
    "__version__",
]
