"""Known values of the wire models' status and type fields (``GenerationStatus``, ...).

They are plain ``str`` constants: the server may send others, which are kept. Each vocabulary
is defined here once; a class's ``ALL`` tuple is what the resources check caller input against,
so there is no second list of the same values.

Where a vocabulary is closed (what a caller may send: download types, webhook event types and
modes, billing policy types), a ``Literal`` alias beside it types the parameters that take it,
so ``download_type="mp4"`` fails the type checker as well as the call. What the server answers
(statuses, stages) stays ``str``: it is open, and an unknown value is kept, not refused.
"""

from __future__ import annotations

from typing import Final, Literal

__all__ = [
    "ApiKeyStatus",
    "BillingPolicyType",
    "BillingPolicyTypeName",
    "DownloadType",
    "DownloadTypeName",
    "GenerationStatus",
    "ProgressStage",
    "ProjectStatus",
    "StageStatus",
    "TranscriptionStatus",
    "WebhookEventType",
    "WebhookEventTypeName",
    "WebhookMode",
    "WebhookModeName",
]


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


DownloadTypeName = Literal["audio", "mp3", "video", "transcript"]
"""What a ``download_type`` parameter takes (``"mp3"`` is sent as ``"audio"``)."""


class DownloadType:
    """Values of ``downloadType`` (``mp3`` is a client-side alias of ``audio``, never sent)."""

    AUDIO: Final = "audio"
    VIDEO: Final = "video"
    TRANSCRIPT: Final = "transcript"
    #: Every value, in documented order: what ``get_download`` (and the CLI) accepts.
    ALL: Final = (AUDIO, VIDEO, TRANSCRIPT)


WebhookEventTypeName = Literal[
    "generation.queued", "generation.processing", "generation.failed", "generation.completed"
]
"""A webhook event type a subscription may name."""


class WebhookEventType:
    """Webhook ``eventType`` values."""

    QUEUED: Final = "generation.queued"
    PROCESSING: Final = "generation.processing"
    FAILED: Final = "generation.failed"
    COMPLETED: Final = "generation.completed"
    #: Every event type Diffio sends (the default subscription of ``webhooks.configure``).
    ALL: Final = (QUEUED, PROCESSING, FAILED, COMPLETED)


WebhookModeName = Literal["test", "live"]
"""A webhook ``mode``."""


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


BillingPolicyTypeName = Literal["customerStripe", "internalDiffio"]
"""A ``billingPolicy.type`` that ``account.update_settings`` accepts."""


class BillingPolicyType:
    """Known values of ``billingPolicy.type``."""

    CUSTOMER_STRIPE: Final = "customerStripe"
    INTERNAL_DIFFIO: Final = "internalDiffio"
    #: Every type the API documents (what ``account.update_settings`` accepts).
    ALL: Final = (CUSTOMER_STRIPE, INTERNAL_DIFFIO)
