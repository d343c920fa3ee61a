"""Typed data models for every request and response of the Diffio API (both eras).

Every class is a frozen, keyword-only attrs class with snake_case attributes; the wire names are
camelCase and the mapping is done by the one converter in :mod:`diffio_async._convert`.

Parsing is lenient, like the official SDKs' parsers:

* unknown fields are ignored, and a ``null`` for a field that has a non-``None`` default counts as
  missing (stage ``status`` -> ``"pending"``, ``progress`` -> ``0``, ...);
* status fields are plain ``str``, stripped and lower-cased by the converter (``" FAILED"`` is
  ``"failed"``); values this SDK does not know are kept (normalised the same way). The
  ``*Status`` / ``*Type`` classes below only name the known values;
* ``error`` and ``error_details`` (of a progress answer, its stages and webhook events) are text:
  a JSON value that is not a string (an object, a list, a number) becomes its compact JSON text,
  e.g. ``{"code":"GPU_OOM","message":"out of memory"}``, so nothing the server said is lost;
* numbers may arrive as numeric strings (``"2"``), timestamps as ISO-8601 strings (``Z`` or an
  offset; naive means UTC) and are parsed to timezone-aware UTC :class:`~datetime.datetime`
  objects. An unparseable optional timestamp becomes ``None``; a required one is an error;
* sequences are tuples, free-form JSON objects (``params``, ``sampling``, ``resourceBounds``,
  ``samplePayload``) are plain ``dict``\\ s.

Required fields follow the official Python SDK (``diffio-api.md`` §14); a missing required field
raises :class:`~diffio_async.errors.APIResponseValidationError` from the converter.

Secrets never appear in a ``repr``: :attr:`ApiKey.key` and :attr:`UploadSession.upload_token`
are shown as ``'***'``, and URLs (signed upload and download URLs, portal and webhook URLs) are
shown without their query, fragment or user info and with an era-B media token masked:
``'https://edge.example/m/***/generations/g/out.mp3?…'``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final, Literal

import attrs

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
    "WebhookMode",
    "WebhookTestEvent",
]


# ---------------------------------------------------------------------------------------------
# Known string values (plain str constants: the server may send others, which are kept).
# Each vocabulary is defined here once; a class's ``ALL`` tuple is what the resources check
# caller input against, so there is no second list of the same values.
# ---------------------------------------------------------------------------------------------


class GenerationStatus:
    """Known values of a generation's overall ``status`` (progress, list, create, webhooks)."""

    QUEUED: Final = "queued"
    PENDING: Final = "pending"  # seen once in era B before "processing"
    PROCESSING: Final = "processing"
    COMPLETE: Final = "complete"
    FAILED: Final = "failed"  # progress endpoint
    ERROR: Final = "error"  # webhook payloads
    #: Statuses after which a generation never changes; anything unknown is non-terminal.
    TERMINAL: Final = frozenset({"complete", "failed", "error"})
    #: Terminal statuses that mean the generation did not succeed.
    FAILURES: Final = frozenset({"failed", "error"})


class StageStatus:
    """Known values of a stage object's ``status`` (``preProcessing``, ``inference``, ...)."""

    PENDING: Final = "pending"
    RUNNING: Final = "running"
    COMPLETE: Final = "complete"
    FAILED: Final = "failed"


class ProgressStage:
    """Known values of the era-B ``stage`` field of a progress answer."""

    PENDING: Final = "pending"
    PREPARING: Final = "preparing"
    TRANSCRIBING: Final = "transcribing"
    QUEUED: Final = "queued"
    STARTING: Final = "starting"
    DOWNLOADING: Final = "downloading"
    DECODING: Final = "decoding"
    RESTORING: Final = "restoring"
    FINALIZING: Final = "finalizing"
    UPLOADING: Final = "uploading"
    COMPLETE: Final = "complete"
    FAILED: Final = "failed"


class ProjectStatus:
    """Known values of a project's ``status``."""

    UPLOADING: Final = "uploading"
    UPLOADED: Final = "uploaded"
    COMPLETE: Final = "complete"


class TranscriptionStatus:
    """Known values of ``transcription.status``."""

    PENDING: Final = "pending"
    AVAILABLE: Final = "available"
    UNAVAILABLE: Final = "unavailable"


class DownloadType:
    """Values of ``downloadType`` (``mp3`` is a client-side alias of ``audio``, never sent)."""

    AUDIO: Final = "audio"
    VIDEO: Final = "video"
    TRANSCRIPT: Final = "transcript"
    #: Every value, in documented order: what ``get_download`` (and the CLI) accepts.
    ALL: Final = (AUDIO, VIDEO, TRANSCRIPT)


class WebhookEventType:
    """Webhook ``eventType`` values."""

    QUEUED: Final = "generation.queued"
    PROCESSING: Final = "generation.processing"
    FAILED: Final = "generation.failed"
    COMPLETED: Final = "generation.completed"
    #: Every event type Diffio sends (the default subscription of ``webhooks.configure``).
    ALL: Final = (QUEUED, PROCESSING, FAILED, COMPLETED)


class WebhookMode:
    """Webhook ``mode`` values."""

    TEST: Final = "test"
    LIVE: Final = "live"
    #: Every mode.
    ALL: Final = (TEST, LIVE)


class ApiKeyStatus:
    """Known values of an API key's ``status``."""

    ACTIVE: Final = "active"
    REVOKED: Final = "revoked"


class BillingPolicyType:
    """Known values of ``billingPolicy.type``."""

    CUSTOMER_STRIPE: Final = "customerStripe"
    INTERNAL_DIFFIO: Final = "internalDiffio"
    #: Every type the API documents (what ``account.update_settings`` accepts).
    ALL: Final = (CUSTOMER_STRIPE, INTERNAL_DIFFIO)


# ---------------------------------------------------------------------------------------------
# Secrets in reprs
# ---------------------------------------------------------------------------------------------


def _mask(value: object) -> str:
    return "None" if value is None else "'***'"


_AUTHORITY = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<authority>[^/?#]*)")
_MEDIA_TOKEN = re.compile(r"(/m/)[^/?#]+")


def _url_repr(value: object) -> str:
    """A URL's repr without what makes it a credential (query, fragment, user info, the era-B
    ``/m/<media token>/`` segment): ``'https://host/path?…'``."""
    if not isinstance(value, str):
        return repr(value)
    cuts = [i for i in (value.find("?"), value.find("#")) if i >= 0]
    cut = min(cuts, default=len(value))
    head, tail = value[:cut], value[cut:]
    prefix = ""
    match = _AUTHORITY.match(head)
    if match is not None:
        authority = match["authority"]
        if "@" in authority:
            authority = "***@" + authority.rpartition("@")[2]
        prefix, head = match["scheme"] + authority, head[match.end() :]
    shown = prefix + _MEDIA_TOKEN.sub(r"\1***", head)
    if tail:
        shown += tail[0] + "\u2026"
    return repr(shown)


_STATUS: Final = {"normalize": "status"}
"""Field metadata: the converter strips and lower-cases it (``" FAILED"`` -> ``"failed"``)."""
_TEXT: Final = {"normalize": "text"}
"""Field metadata: the converter turns any JSON value into text (non-strings as compact JSON)."""


class _ShapeError(ValueError):
    """A wire value has the wrong shape; the message is safe to show (it never holds values)."""


# ---------------------------------------------------------------------------------------------
# Projects and uploads
# ---------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class CreateProjectRequest:
    """Body of ``POST /v1/create_project``."""

    file_name: str
    content_type: str | None = None
    content_length: int | None = None
    file_format: str | None = None
    params: Mapping[str, Any] | None = None


@attrs.frozen(kw_only=True)
class UploadSession:
    """Era-B edge upload session returned by ``create_project`` (``upload``)."""

    edge_base_url: str = attrs.field(repr=_url_repr)
    upload_token: str = attrs.field(repr=_mask)
    upload_session_id: str | None = None
    object_key: str | None = None
    part_size_bytes: int | None = None
    max_bytes: int | None = None
    expires_at: datetime | None = None


@attrs.frozen(kw_only=True)
class CreateProjectResponse:
    """Answer of ``create_project``: a signed ``upload_url`` (era A) or an ``upload`` (era B)."""

    api_project_id: str
    # era A
    upload_url: str | None = attrs.field(default=None, repr=_url_repr)
    upload_method: str = "PUT"
    bucket: str | None = None
    # era B
    upload: UploadSession | None = None
    # both
    object_path: str | None = None
    expires_at: datetime | None = None

    def __attrs_post_init__(self) -> None:
        if self.upload_url is None and self.upload is None:
            raise _ShapeError(
                "create_project answer has neither uploadUrl (era A) nor upload (era B)"
            )

    @property
    def era(self) -> Literal["a", "b"]:
        """``"b"`` when the server answered an edge ``upload`` session, else ``"a"``."""
        return "b" if self.upload is not None else "a"

    @property
    def upload_mode(self) -> Literal["signed_url", "edge"]:
        """How to upload the media: one signed request (era A) or edge multipart (era B)."""
        return "edge" if self.upload is not None else "signed_url"


@attrs.frozen(kw_only=True)
class EdgeUploadStart:
    """Answer of the edge ``POST /v1/uploads/start`` (sizes fall back to the session's)."""

    upload_id: str
    part_size_bytes: int | None = None
    max_bytes: int | None = None


@attrs.frozen(kw_only=True)
class EdgePartReceipt:
    """Answer of the edge ``PUT /v1/uploads/parts/{n}``; also an item of the complete request."""

    part_number: int
    etag: str


@attrs.frozen(kw_only=True)
class EdgeCompleteRequest:
    """Body of the edge ``POST /v1/uploads/complete`` (parts sorted by number)."""

    upload_id: str
    parts: tuple[EdgePartReceipt, ...]


@attrs.frozen(kw_only=True)
class EdgeAbortRequest:
    """Body of the edge ``POST /v1/uploads/abort``."""

    upload_id: str


@attrs.frozen(kw_only=True)
class EdgeUploadComplete:
    """Answer of the edge ``POST /v1/uploads/complete``."""

    object_key: str
    size_bytes: int | None = None
    etag: str | None = None


@attrs.frozen(kw_only=True)
class CompleteProjectUploadRequest:
    """Body of ``POST /v1/complete_project_upload`` (era B)."""

    api_project_id: str


@attrs.frozen(kw_only=True)
class CompleteProjectUploadResponse:
    """Answer of ``complete_project_upload`` (era B)."""

    api_project_id: str
    status: str = attrs.field(default=ProjectStatus.UPLOADED, metadata=_STATUS)
    size_bytes: int | None = None


@attrs.frozen(kw_only=True)
class Project:
    """One project of ``list_projects``."""

    api_project_id: str
    status: str = attrs.field(default=ProjectStatus.UPLOADING, metadata=_STATUS)
    original_file_name: str | None = None
    content_type: str | None = None
    has_video: bool = False
    generation_count: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None


@attrs.frozen(kw_only=True)
class ProjectList:
    """Answer of ``list_projects``."""

    projects: tuple[Project, ...] = ()


@attrs.frozen(kw_only=True)
class ListProjectGenerationsRequest:
    """Body of ``POST /v1/list_project_generations``."""

    api_project_id: str


@attrs.frozen(kw_only=True)
class GenerationSummary:
    """One generation of ``list_project_generations``."""

    generation_id: str
    status: str = attrs.field(default=GenerationStatus.QUEUED, metadata=_STATUS)
    model_key: str | None = None
    progress: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def is_terminal(self) -> bool:
        """True once the status is ``complete``, ``failed`` or ``error``."""
        return self.status in GenerationStatus.TERMINAL


@attrs.frozen(kw_only=True)
class ProjectGenerations:
    """Answer of ``list_project_generations``."""

    api_project_id: str
    generations: tuple[GenerationSummary, ...] = ()


# ---------------------------------------------------------------------------------------------
# Generations
# ---------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class CreateGenerationRequest:
    """Body of ``POST /v1/<model-endpoint>`` (the idempotency key is sent untrimmed)."""

    api_project_id: str
    sampling: Mapping[str, Any] | None = None
    params: Mapping[str, Any] | None = None
    idempotency_key: str | None = None


@attrs.frozen(kw_only=True)
class CreatedGeneration:
    """Answer of a generation create call."""

    generation_id: str
    api_project_id: str
    model_key: str
    status: str = attrs.field(metadata=_STATUS)
    idempotent_replay: bool = False


@attrs.frozen(kw_only=True)
class GenerationProgressRequest:
    """Body of ``POST /v1/get_generation_progress``."""

    generation_id: str
    api_project_id: str | None = None


@attrs.frozen(kw_only=True)
class Stage:
    """One processing stage of a progress answer (``preProcessing``, ``inference``, ...)."""

    job_id: str | None = None
    job_state: str | None = None
    status: str = attrs.field(default=StageStatus.PENDING, metadata=_STATUS)
    progress: int = 0
    status_message: str | None = None
    error: str | None = attrs.field(default=None, metadata=_TEXT)
    error_details: str | None = attrs.field(default=None, metadata=_TEXT)


@attrs.frozen(kw_only=True)
class Transcription:
    """Transcript state of a generation (``pending``, ``available``, ``unavailable``)."""

    status: str = attrs.field(default=TranscriptionStatus.PENDING, metadata=_STATUS)


@attrs.frozen(kw_only=True)
class StageProgress:
    """Era-B fine-grained progress (``stageProgress``); every field is optional."""

    overall_percent: float | None = None
    stage_percent: float | None = None
    bytes_done: int | None = None
    bytes_total: int | None = None
    available_through_seconds: float | None = None
    duration_seconds: float | None = None


@attrs.frozen(kw_only=True)
class QueueInfo:
    """Era-B worker queue information (``queue``) while a generation waits for a worker."""

    position: int | None = None
    connected_workers: int | None = None
    idle_workers: int | None = None
    busy_workers: int | None = None
    wait_reason: str | None = None
    message: str | None = None


@attrs.frozen(kw_only=True)
class GenerationProgress:
    """Answer of ``get_generation_progress``."""

    generation_id: str
    api_project_id: str
    status: str = attrs.field(metadata=_STATUS)
    pre_processing: Stage
    inference: Stage
    has_video: bool = False
    restored_video: Stage | None = None
    error: str | None = attrs.field(default=None, metadata=_TEXT)
    error_details: str | None = attrs.field(default=None, metadata=_TEXT)
    transcription: Transcription | None = None
    # era B
    stage: str | None = attrs.field(default=None, metadata=_STATUS)
    stage_progress: StageProgress | None = None
    queue: QueueInfo | None = None

    @property
    def is_terminal(self) -> bool:
        """True once the overall status is ``complete``, ``failed`` or ``error``.

        Unknown statuses are not terminal; stages at 100 % do not make a generation terminal.
        """
        return self.status in GenerationStatus.TERMINAL

    @property
    def is_complete(self) -> bool:
        """True when the generation finished successfully."""
        return self.status == GenerationStatus.COMPLETE

    @property
    def is_failed(self) -> bool:
        """True when the generation ended in ``failed`` (or ``error``)."""
        return self.status in GenerationStatus.FAILURES

    @property
    def stages(self) -> tuple[tuple[str, Stage], ...]:
        """The stages present, as ``(wire name, stage)`` pairs in processing order."""
        found = [("preProcessing", self.pre_processing), ("inference", self.inference)]
        if self.restored_video is not None:
            found.append(("restoredVideo", self.restored_video))
        return tuple(found)

    @property
    def percent(self) -> float:
        """Best estimate of overall progress, 0-100.

        The era-B ``stageProgress.overallPercent`` when present, 100 when complete, otherwise
        the mean of the stages' progress.
        """
        if self.stage_progress is not None and self.stage_progress.overall_percent is not None:
            return max(0.0, min(100.0, self.stage_progress.overall_percent))
        if self.is_complete:
            return 100.0
        values = [max(0, min(100, stage.progress)) for _, stage in self.stages]
        return sum(values) / len(values)

    @property
    def transcription_status(self) -> str | None:
        """``transcription.status``, or ``None`` when the server sent no transcription."""
        return None if self.transcription is None else self.transcription.status


@attrs.frozen(kw_only=True)
class GenerationDownloadRequest:
    """Body of ``POST /v1/get_generation_download``."""

    generation_id: str
    api_project_id: str
    download_type: str | None = None


@attrs.frozen(kw_only=True)
class DownloadInfo:
    """Answer of ``get_generation_download``: a signed (era A) or edge (era B) media URL."""

    generation_id: str
    api_project_id: str
    download_type: str
    download_url: str = attrs.field(repr=_url_repr)
    file_name: str | None = None
    storage_path: str | None = None
    bucket: str | None = None  # era A only
    mime_type: str | None = None


# ---------------------------------------------------------------------------------------------
# Webhooks
# ---------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class SendTestEventRequest:
    """Body of ``POST /v1/webhooks/send_test_event``."""

    event_type: str
    mode: str
    api_key_id: str | None = None
    sample_payload: Mapping[str, Any] | None = None


@attrs.frozen(kw_only=True)
class WebhookTestEvent:
    """Answer of ``webhooks/send_test_event``."""

    svix_message_id: str
    event_id: str
    event_type: str
    api_key_id: str | None = None
    mode: str | None = None


@attrs.frozen(kw_only=True)
class ConfigureWebhookRequest:
    """Body of ``POST /v1/webhooks/configure``."""

    mode: str
    url: str = attrs.field(repr=_url_repr)
    event_types: tuple[str, ...]
    api_key_id: str | None = None


@attrs.frozen(kw_only=True)
class WebhookEndpoint:
    """A webhook endpoint as described by ``webhooks/configure`` (``webhook``)."""

    api_key_id: str | None = None
    mode: str | None = None
    svix_env: str | None = None
    endpoint_id: str | None = None
    event_types: tuple[str, ...] = ()
    url: str | None = attrs.field(default=None, repr=_url_repr)
    signing: str | None = None
    updated_by_key_id: str | None = None


@attrs.frozen(kw_only=True)
class WebhookConfigureResponse:
    """Answer of ``webhooks/configure``."""

    webhook: WebhookEndpoint


@attrs.frozen(kw_only=True)
class AppPortalAccessRequest:
    """Body of the legacy ``POST /v1/webhooks/app_portal_access``."""

    mode: str
    api_key_id: str | None = None


@attrs.frozen(kw_only=True)
class AppPortalAccess:
    """Answer of the legacy ``webhooks/app_portal_access`` (a Svix App Portal URL)."""

    portal_url: str = attrs.field(repr=_url_repr)
    mode: str | None = None
    api_key_id: str | None = None


@attrs.frozen(kw_only=True)
class WebhookEvent:
    """A webhook delivery payload (flat JSON object, §6.2)."""

    event_type: str
    event_id: str
    created_at: datetime
    api_key_id: str
    generation_id: str
    status: str = attrs.field(metadata=_STATUS)
    api_project_id: str | None = None
    has_video: bool | None = None
    model_key: str | None = None
    error: str | None = attrs.field(default=None, metadata=_TEXT)
    error_details: str | None = attrs.field(default=None, metadata=_TEXT)
    transcription: Transcription | None = None

    @property
    def is_terminal(self) -> bool:
        """True for ``complete`` and ``error`` (and ``failed``) events."""
        return self.status in GenerationStatus.TERMINAL

    @property
    def is_failed(self) -> bool:
        """True for ``error`` (and ``failed``) events."""
        return self.status in GenerationStatus.FAILURES


# ---------------------------------------------------------------------------------------------
# API keys
# ---------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class CreateApiKeyRequest:
    """Body of ``POST /v1/api_keys/create`` (``resourceBounds`` is always sent, default ``{}``)."""

    label: str
    scopes: tuple[str, ...]
    resource_bounds: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class RotateApiKeyRequest:
    """Body of ``POST /v1/api_keys/rotate``."""

    key_id: str


@attrs.frozen(kw_only=True)
class RevokeApiKeyRequest:
    """Body of ``POST /v1/api_keys/revoke``."""

    key_id: str


@attrs.frozen(kw_only=True)
class ApiKeyPermissions:
    """Legacy read/write permissions implied by a key's scopes."""

    read: bool = False
    write: bool = False


@attrs.frozen(kw_only=True)
class ApiKey:
    """An API key; ``key`` (the plaintext secret) is set only by create and rotate."""

    key_id: str
    key: str | None = attrs.field(default=None, repr=_mask)
    label: str | None = None
    status: str = attrs.field(default=ApiKeyStatus.ACTIVE, metadata=_STATUS)
    key_prefix: str | None = None
    role: str = "scoped"
    scopes: tuple[str, ...] = ()
    resource_bounds: Mapping[str, Any] = attrs.field(factory=dict)
    parent_key_id: str | None = None
    permissions: ApiKeyPermissions | None = None
    created_at: datetime | None = None
    rotated_at: datetime | None = None
    revoked_at: datetime | None = None


@attrs.frozen(kw_only=True)
class ApiKeyList:
    """Answer of ``api_keys/list``."""

    keys: tuple[ApiKey, ...] = ()


# ---------------------------------------------------------------------------------------------
# Usage and account
# ---------------------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class UsageSummaryRequest:
    """Body of ``POST /v1/usage/summary``."""

    api_key_id: str | None = None


@attrs.frozen(kw_only=True)
class UsagePeriod:
    """One billing period of a usage summary (amounts in cents)."""

    period_id: str | None = None
    period_start: datetime | None = None
    period_end: datetime | None = None
    reserved_cents: int = 0
    finalized_cents: int = 0
    total_cents: int = 0
    model_seconds: Mapping[str, float] = attrs.field(factory=dict)
    model_cents: Mapping[str, int] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class Usage:
    """The ``usage`` part of a usage summary (periods newest first)."""

    api_key_id: str | None = None
    periods: tuple[UsagePeriod, ...] = ()


@attrs.frozen(kw_only=True)
class BillingPolicy:
    """An account's billing policy (``customerStripe`` or ``internalDiffio``)."""

    type: str
    reason: str | None = None


@attrs.frozen(kw_only=True)
class BillingSummary:
    """The ``billing`` part of a usage summary."""

    billing_policy: BillingPolicy | None = None
    lifetime_list_price_cents: int | None = None
    lifetime_billable_cents: int | None = None


@attrs.frozen(kw_only=True)
class UsageSummary:
    """Answer of ``usage/summary``."""

    usage: Usage = attrs.field(factory=Usage)
    billing: BillingSummary | None = None

    @property
    def api_key_id(self) -> str | None:
        """The key the usage belongs to."""
        return self.usage.api_key_id

    @property
    def periods(self) -> tuple[UsagePeriod, ...]:
        """The usage periods, newest first."""
        return self.usage.periods


@attrs.frozen(kw_only=True)
class Account:
    """An account's billing settings."""

    user_id: str | None = None
    billing_mode: str = "free"
    billing_status: str = "active"
    billing_policy: BillingPolicy | None = None
    currency: str | None = None
    updated_at: datetime | None = None


@attrs.frozen(kw_only=True)
class AccountSettings:
    """Answer of ``account/settings/get`` and ``account/settings/update``."""

    account: Account
    api_key_id: str | None = None


@attrs.frozen(kw_only=True)
class UpdateAccountSettingsRequest:
    """Body of ``POST /v1/account/settings/update``."""

    billing_policy: BillingPolicy
