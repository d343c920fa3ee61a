"""Typed data models for every request and response of the Diffio API (both eras).

Every class is a frozen, keyword-only attrs class with snake_case attributes; the wire names are
camelCase and the mapping is done by the one converter in :mod:`diffio_async._convert`. There is
one module per API group: ``projects`` (and uploads), ``generations``, ``webhooks``,
``api_keys``, ``usage``, ``account``. The known values of status and type fields are in
``_vocabularies``, the lenient parsing rules in ``_parsing``, the secret-free reprs in
``_reprs``. Every model can be handed on (``_model``): ``to_dict()`` and ``to_json()``
(snake_case, JSON-safe, secrets hidden as in the repr unless ``include_secrets=True``) and
``to_wire()`` (the camelCase API shape, by the hooks of ``_serialise``); every answer model
keeps the fields the SDK does not know in ``extra``. Import the models from here.
"""

from __future__ import annotations

from ._vocabularies import (
    ApiKeyStatus,
    BillingPolicyType,
    BillingPolicyTypeName,
    DownloadType,
    DownloadTypeName,
    GenerationStatus,
    ProgressStage,
    ProjectStatus,
    StageStatus,
    TranscriptionStatus,
    WebhookEventType,
    WebhookEventTypeName,
    WebhookMode,
    WebhookModeName,
)
from .account import Account, AccountSettings, UpdateAccountSettingsRequest
from .api_keys import (
    ApiKey,
    ApiKeyList,
    ApiKeyPermissions,
    CreateApiKeyRequest,
    RevokeApiKeyRequest,
    RotateApiKeyRequest,
)
from .generations import (
    CreatedGeneration,
    CreateGenerationRequest,
    DownloadInfo,
    GenerationDownloadRequest,
    GenerationProgress,
    GenerationProgressRequest,
    QueueInfo,
    Stage,
    StageProgress,
    Transcription,
)
from .projects import (
    CompleteProjectUploadRequest,
    CompleteProjectUploadResponse,
    CreateProjectRequest,
    CreateProjectResponse,
    EdgeAbortRequest,
    EdgeCompleteRequest,
    EdgePartReceipt,
    EdgeUploadComplete,
    EdgeUploadStart,
    GenerationSummary,
    ListProjectGenerationsRequest,
    Project,
    ProjectGenerations,
    ProjectList,
    ProjectRef,
    UploadSession,
)
from .usage import (
    BillingPolicy,
    BillingSummary,
    Usage,
    UsagePeriod,
    UsageSummary,
    UsageSummaryRequest,
)
from .webhooks import (
    AppPortalAccess,
    AppPortalAccessRequest,
    ConfigureWebhookRequest,
    SendTestEventRequest,
    WebhookConfigureResponse,
    WebhookEndpoint,
    WebhookEvent,
    WebhookTestEvent,
)

__all__ = [
    "Account",
    "AccountSettings",
    "ApiKey",
    "ApiKeyList",
    "ApiKeyPermissions",
    "ApiKeyStatus",
    "AppPortalAccess",
    "AppPortalAccessRequest",
    "BillingPolicy",
    "BillingPolicyType",
    "BillingPolicyTypeName",
    "BillingSummary",
    "CompleteProjectUploadRequest",
    "CompleteProjectUploadResponse",
    "ConfigureWebhookRequest",
    "CreateApiKeyRequest",
    "CreateGenerationRequest",
    "CreateProjectRequest",
    "CreateProjectResponse",
    "CreatedGeneration",
    "DownloadInfo",
    "DownloadType",
    "DownloadTypeName",
    "EdgeAbortRequest",
    "EdgeCompleteRequest",
    "EdgePartReceipt",
    "EdgeUploadComplete",
    "EdgeUploadStart",
    "GenerationDownloadRequest",
    "GenerationProgress",
    "GenerationProgressRequest",
    "GenerationStatus",
    "GenerationSummary",
    "ListProjectGenerationsRequest",
    "ProgressStage",
    "Project",
    "ProjectGenerations",
    "ProjectList",
    "ProjectRef",
    "ProjectStatus",
    "QueueInfo",
    "RevokeApiKeyRequest",
    "RotateApiKeyRequest",
    "SendTestEventRequest",
    "Stage",
    "StageProgress",
    "StageStatus",
    "Transcription",
    "TranscriptionStatus",
    "UpdateAccountSettingsRequest",
    "UploadSession",
    "Usage",
    "UsagePeriod",
    "UsageSummary",
    "UsageSummaryRequest",
    "WebhookConfigureResponse",
    "WebhookEndpoint",
    "WebhookEvent",
    "WebhookEventType",
    "WebhookEventTypeName",
    "WebhookMode",
    "WebhookModeName",
    "WebhookTestEvent",
]
