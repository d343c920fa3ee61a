"""Models of the webhooks group (configure, send a test event, the legacy app portal) and
:class:`WebhookEvent`, the payload of a webhook delivery."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from ._model import _Model
from ._parsing import _STATUS, _TEXT, _extra_field
from ._reprs import _url_repr
from ._vocabularies import GenerationStatus
from .generations import Transcription

__all__ = [
    "AppPortalAccess",
    "AppPortalAccessRequest",
    "ConfigureWebhookRequest",
    "SendTestEventRequest",
    "WebhookConfigureResponse",
    "WebhookEndpoint",
    "WebhookEvent",
    "WebhookTestEvent",
]


@attrs.frozen(kw_only=True)
class SendTestEventRequest(_Model):
    """Body of ``POST /v1/webhooks/send_test_event``."""

    event_type: str
    mode: str
    api_key_id: str | None = None
    sample_payload: Mapping[str, Any] | None = None


@attrs.frozen(kw_only=True)
class WebhookTestEvent(_Model):
    """Answer of ``webhooks/send_test_event``."""

    svix_message_id: str
    event_id: str
    event_type: str
    api_key_id: str | None = None
    mode: str | None = None
    extra: Mapping[str, Any] = _extra_field()


@attrs.frozen(kw_only=True)
class ConfigureWebhookRequest(_Model):
    """Body of ``POST /v1/webhooks/configure``."""

    mode: str
    url: str = attrs.field(repr=_url_repr)
    event_types: tuple[str, ...]
    api_key_id: str | None = None


@attrs.frozen(kw_only=True)
class WebhookEndpoint(_Model):
    """A webhook endpoint as described by ``webhooks/configure`` (``webhook``)."""

    api_key_id: str | None = None
    mode: str | None = None
    svix_env: str | None = None
    endpoint_id: str | None = None
    event_types: tuple[str, ...] = ()
    url: str | None = attrs.field(default=None, repr=_url_repr)
    signing: str | None = None
    updated_by_key_id: str | None = None
    extra: Mapping[str, Any] = _extra_field()


@attrs.frozen(kw_only=True)
class WebhookConfigureResponse(_Model):
    """Answer of ``webhooks/configure``."""

    webhook: WebhookEndpoint
    extra: Mapping[str, Any] = _extra_field()


@attrs.frozen(kw_only=True)
class AppPortalAccessRequest(_Model):
    """Body of the legacy ``POST /v1/webhooks/app_portal_access``."""

    mode: str
    api_key_id: str | None = None


@attrs.frozen(kw_only=True)
class AppPortalAccess(_Model):
    """Answer of the legacy ``webhooks/app_portal_access`` (a Svix App Portal URL)."""

    portal_url: str = attrs.field(repr=_url_repr)
    mode: str | None = None
    api_key_id: str | None = None
    extra: Mapping[str, Any] = _extra_field()


@attrs.frozen(kw_only=True)
class WebhookEvent(_Model):
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
    extra: Mapping[str, Any] = _extra_field()

    @property
    def is_terminal(self) -> bool:
        """True for ``complete`` and ``error`` (and ``failed``) events."""
        return self.status in GenerationStatus.TERMINAL

    @property
    def is_failed(self) -> bool:
        """True for ``error`` (and ``failed``) events."""
        return self.status in GenerationStatus.FAILURES
