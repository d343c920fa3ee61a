"""``/v1/webhooks/*`` endpoints."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote, urlsplit

from ._api_account import target_key
from ._api_call import Call, optional_object, optional_string
from ._errors import ApiError
from ._state import WebhookEndpoint
from ._webhook_delivery import OutgoingMessage

__all__ = ["EVENT_TYPES", "app_portal_access", "configure", "send_test_event"]

EVENT_TYPES = (
    "generation.queued",
    "generation.processing",
    "generation.failed",
    "generation.completed",
)
_TEST_STATUS = {
    "generation.queued": "queued",
    "generation.processing": "processing",
    "generation.failed": "error",
    "generation.completed": "complete",
}


def _mode(body: dict[str, Any]) -> str:
    mode = body.get("mode")
    if mode not in ("test", "live"):
        raise ApiError(400, "mode must be test or live")
    return str(mode)


async def send_test_event(call: Call) -> dict[str, Any]:
    """``POST /v1/webhooks/send_test_event``: a signed sample event to the key's endpoint."""
    body = call.body
    event_type = body.get("eventType")
    if event_type is None or event_type == "":
        raise ApiError(400, "eventType is required")
    if event_type not in EVENT_TYPES:
        raise ApiError(400, "eventType is not supported")
    mode = _mode(body)
    sample = optional_object(body, "samplePayload") or {}
    key = target_key(call, optional_string(body, "apiKeyId"), "send test events")
    failed = event_type == "generation.failed"
    event: dict[str, Any] = {
        "eventType": event_type,
        "eventId": f"evt_{uuid.uuid4().hex[:20]}",
        "createdAt": call.core.iso(call.now),
        "apiKeyId": key.key_id,
        "apiProjectId": "proj_test",
        "generationId": f"gen_test_{uuid.uuid4().hex[:12]}",
        "status": _TEST_STATUS[event_type],
        "hasVideo": False,
        "modelKey": "diffio-4.6-flash" if call.core.era == "b" else "diffio-2",
        "error": "Test failure." if failed else None,
        "errorDetails": None,
    }
    event.update(sample)
    event["eventType"] = event_type
    message_id = f"msg_{uuid.uuid4().hex[:24]}"
    with call.core.state.lock:
        endpoint = call.core.state.webhooks.get((key.key_id, mode))
    if endpoint is not None and event_type in endpoint.event_types:
        call.messages.append(OutgoingMessage(message_id=message_id, url=endpoint.url, event=event))
    return {
        "svixMessageId": message_id,
        "eventId": event["eventId"],
        "eventType": event_type,
        "apiKeyId": key.key_id,
        "mode": mode,
    }


async def configure(call: Call) -> dict[str, Any]:
    """``POST /v1/webhooks/configure``: upsert the endpoint of a key and mode."""
    body = call.body
    mode = _mode(body)
    url = body.get("url")
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ApiError(400, "url must be an absolute HTTPS URL")
    event_types = body.get("eventTypes")
    if (
        not isinstance(event_types, list)
        or not event_types
        or not all(item in EVENT_TYPES for item in event_types)
    ):
        raise ApiError(400, "eventTypes must be a non-empty array of supported event types")
    key = target_key(call, optional_string(body, "apiKeyId"), "configure webhooks")
    state = call.core.state
    with state.lock:
        previous = state.webhooks.get((key.key_id, mode))
        endpoint = WebhookEndpoint(
            endpoint_id=previous.endpoint_id if previous else f"ep_{uuid.uuid4().hex[:20]}",
            api_key_id=key.key_id,
            mode=mode,
            url=str(url),
            event_types=list(dict.fromkeys(event_types)),
            updated_by_key_id=call.key.key_id,
            updated_at=call.now,
        )
        state.webhooks[(key.key_id, mode)] = endpoint
    return {
        "webhook": {
            "apiKeyId": endpoint.api_key_id,
            "mode": mode,
            "svixEnv": "production" if mode == "live" else "test",
            "endpointId": endpoint.endpoint_id,
            "eventTypes": endpoint.event_types,
            "url": endpoint.url,
            "signing": "svix",
            "updatedByKeyId": endpoint.updated_by_key_id,
        }
    }


async def app_portal_access(call: Call) -> dict[str, Any]:
    """``POST /v1/webhooks/app_portal_access`` (legacy): a portal URL on the emulator."""
    mode = _mode(call.body)
    key = target_key(call, optional_string(call.body, "apiKeyId"), "open the portal")
    return {
        "portalUrl": f"{call.base_url}/_emulator/webhooks/portal?mode={mode}"
        f"&apiKeyId={quote(key.key_id)}",
        "mode": mode,
        "apiKeyId": key.key_id,
    }
