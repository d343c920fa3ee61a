"""diffio_async: an asyncio- and trio-native SDK for the Diffio speech-restoration API.

Start with :class:`AsyncDiffio`::

    async with AsyncDiffio() as client:
        result = await client.restore("talk.wav", output="out/")

or, from blocking code, :class:`Diffio`::

    with Diffio() as client:
        result = client.restore("talk.wav", output="out/")
"""

from __future__ import annotations

from . import _logging
from ._catalog import DEFAULT_MODEL, KNOWN_MODELS, ModelKey, ModelSpec
from ._convert import from_wire
from ._http.retry import RetryPolicy
from ._http.transport import RequestOptions, Timeout
from ._media.upload import MediaSource, UploadSource  # UploadSource: to annotate your wrappers
from ._sync.generation import SyncGeneration
from ._version import __version__
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
    EventLoopMismatchError,
    GenerationFailedError,
    IdempotencyConflictError,
    InternalServerError,
    InvalidRequestError,
    InvalidTransitionError,
    LedgerError,
    LedgerFormatError,
    LedgerLockedError,
    ModelRetiredError,
    NotFoundError,
    OutputCollisionError,
    PayloadTooLargeError,
    PaymentFailedError,
    PaymentRequiredError,
    PermissionDeniedError,
    RateLimitError,
    RedirectError,
    RestoreError,
    SpendLimitExceededError,
    TranscriptPendingError,
    TranscriptUnavailableError,
    UploadError,
    UploadMissingError,
    WaitTimeoutError,
    WebhookVerificationError,
)
from .resources._polling import PollBudget, PollPolicy
from .resources._raw_response import RawResponse, with_raw_response
from .resources.generation_handle import Generation
from .sync_client import Diffio
from .types import (
    AccountSettings,
    ApiKey,
    BillingPolicyTypeName,
    CompleteProjectUploadResponse,
    CreatedGeneration,
    CreateProjectResponse,
    DownloadInfo,
    DownloadTypeName,
    GenerationProgress,
    GenerationStatus,
    GenerationSummary,
    Project,
    ProjectRef,
    Stage,
    UsageSummary,
    WebhookEndpoint,
    WebhookEvent,
    WebhookEventTypeName,
    WebhookModeName,
    WebhookTestEvent,
)
from .webhooks import WebhookRouter, verify_event
from .workflows._options import MAX_CONCURRENCY, BatchOptions, RestoreOptions
from .workflows.bulk import ItemResult
from .workflows.restore import RestoreResult

_logging.setup_from_environment()  # redacted records; $DIFFIO_LOG prints them on stderr

__all__ = [
    "DEFAULT_MODEL",
    "KNOWN_MODELS",
    "MAX_CONCURRENCY",
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
    "BatchOptions",
    "ClientClosedError",
    "CompleteProjectUploadResponse",
    "ConfigurationError",
    "ConflictError",
    "CreateProjectResponse",
    "CreatedGeneration",
    "Diffio",
    "DiffioError",
    "DownloadError",
    "DownloadInfo",
    "EventLoopMismatchError",
    "Generation",
    "GenerationFailedError",
    "GenerationProgress",
    "GenerationStatus",
    "GenerationSummary",
    "IdempotencyConflictError",
    "InternalServerError",
    "InvalidRequestError",
    "InvalidTransitionError",
    "ItemResult",
    "LedgerError",
    "LedgerFormatError",
    "LedgerLockedError",
    "MediaSource",
    "ModelRetiredError",
    "ModelSpec",
    "NotFoundError",
    "OutputCollisionError",
    "PayloadTooLargeError",
    "PaymentFailedError",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "PollBudget",
    "PollPolicy",
    "Project",
    "RateLimitError",
    "RawResponse",
    "RedirectError",
    "RequestOptions",
    "RestoreError",
    "RestoreOptions",
    "RestoreResult",
    "RetryPolicy",
    "SpendLimitExceededError",
    "Stage",
    "SyncGeneration",
    "Timeout",
    "TranscriptPendingError",
    "TranscriptUnavailableError",
    "UploadError",
    "UploadMissingError",
    "UploadSource",
    "UsageSummary",
    "WaitTimeoutError",
    "WebhookEndpoint",
    "WebhookEvent",
    "WebhookRouter",
    "WebhookTestEvent",
    "WebhookVerificationError",
    "__version__",
    "verify_event",
    "from_wire",
    "with_raw_response",
    "ModelKey",
    "BillingPolicyTypeName",
    "DownloadTypeName",
    "ProjectRef",
    "WebhookEventTypeName",
    "WebhookModeName",
]
