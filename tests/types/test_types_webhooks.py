"""The webhooks models and the webhook event against every documented payload (§6)."""

from __future__ import annotations

from datetime import datetime

import pytest
from types_helpers import UTC

from diffio_async import types as m
from diffio_async._convert import structure, unstructure
from diffio_async.errors import APIResponseValidationError

WEBHOOK_EVENT = {
    "eventType": "generation.completed",
    "eventId": "evt_123",
    "createdAt": "2026-01-28T12:34:56Z",
    "apiKeyId": "key_123",
    "apiProjectId": "proj_123",
    "generationId": "gen_123",
    "status": "complete",
    "hasVideo": False,
    "modelKey": "diffio-2",
    "error": None,
    "errorDetails": None,
}


def test_webhook_event() -> None:
    e = structure(WEBHOOK_EVENT, m.WebhookEvent, endpoint="webhook")
    assert e.event_type == m.WebhookEventType.COMPLETED
    assert e.event_id == "evt_123" and e.api_key_id == "key_123"
    assert e.created_at == datetime(2026, 1, 28, 12, 34, 56, tzinfo=UTC)
    assert e.generation_id == "gen_123" and e.api_project_id == "proj_123"
    assert e.has_video is False and e.model_key == "diffio-2" and e.transcription is None
    assert e.is_terminal and not e.is_failed
    failed = structure({**WEBHOOK_EVENT, "status": "error"}, m.WebhookEvent, endpoint="webhook")
    assert failed.is_terminal and failed.is_failed


def test_webhook_event_optional_fields_and_transcription() -> None:
    required = ("eventType", "eventId", "createdAt", "apiKeyId", "generationId", "status")
    minimal = {k: WEBHOOK_EVENT[k] for k in required}
    e = structure(
        {**minimal, "transcription": {"status": "available"}}, m.WebhookEvent, endpoint="w"
    )
    assert e.has_video is None and e.api_project_id is None
    assert e.transcription == m.Transcription(status="available")
    with pytest.raises(APIResponseValidationError, match=r"@ \$\.createdAt"):
        structure({**minimal, "createdAt": "yesterday"}, m.WebhookEvent, endpoint="w")


def test_send_test_event() -> None:
    body = m.SendTestEventRequest(
        event_type="generation.completed", mode="live", sample_payload={"apiProjectId": "p"}
    )
    assert unstructure(body) == {
        "eventType": "generation.completed",
        "mode": "live",
        "samplePayload": {"apiProjectId": "p"},
    }
    data = {
        "svixMessageId": "msg_123",
        "eventId": "evt_123",
        "eventType": "generation.completed",
        "apiKeyId": "key_123",
        "mode": "live",
    }
    assert structure(data, m.WebhookTestEvent, endpoint="webhooks/send_test_event") == (
        m.WebhookTestEvent(
            svix_message_id="msg_123",
            event_id="evt_123",
            event_type="generation.completed",
            api_key_id="key_123",
            mode="live",
        )
    )
    del data["apiKeyId"]  # older docs version
    assert structure(data, m.WebhookTestEvent, endpoint="x").api_key_id is None


def test_configure_webhook() -> None:
    body = m.ConfigureWebhookRequest(
        mode="live",
        url="https://example.com/diffio-webhook",
        event_types=("generation.completed", "generation.failed"),
    )
    assert unstructure(body) == {
        "mode": "live",
        "url": "https://example.com/diffio-webhook",
        "eventTypes": ["generation.completed", "generation.failed"],
    }
    data = {
        "webhook": {
            "apiKeyId": "key_123",
            "mode": "live",
            "svixEnv": "production",
            "endpointId": "ep_123",
            "eventTypes": ["generation.completed", "generation.failed"],
            "url": "https://example.com/diffio-webhook",
            "signing": "svix",
            "updatedByKeyId": "key_admin_123",
        }
    }
    w = structure(data, m.WebhookConfigureResponse, endpoint="webhooks/configure").webhook
    assert w == m.WebhookEndpoint(
        api_key_id="key_123",
        mode="live",
        svix_env="production",
        endpoint_id="ep_123",
        event_types=("generation.completed", "generation.failed"),
        url="https://example.com/diffio-webhook",
        signing="svix",
        updated_by_key_id="key_admin_123",
    )


def test_app_portal_access_legacy() -> None:
    assert unstructure(m.AppPortalAccessRequest(mode="test")) == {"mode": "test"}
    data = {"portalUrl": "https://app.svix.com/app-portal/x", "mode": "test", "apiKeyId": "k"}
    a = structure(data, m.AppPortalAccess, endpoint="webhooks/app_portal_access")
    assert a.portal_url.startswith("https://app.svix.com") and a.api_key_id == "k"
