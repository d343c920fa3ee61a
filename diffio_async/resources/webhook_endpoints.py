"""``client.webhooks``: send test events and configure webhook endpoints.

Verifying the signature of a delivery needs no client: see :mod:`diffio_async.webhooks`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .._checks import json_object, string_list
from .._http.transport import RequestOptions
from ..errors import InvalidRequestError
from ..types import (
    ConfigureWebhookRequest,
    SendTestEventRequest,
    WebhookConfigureResponse,
    WebhookEndpoint,
    WebhookEventType,
    WebhookEventTypeName,
    WebhookMode,
    WebhookModeName,
    WebhookTestEvent,
)
from ._base import Resource, optional_id

__all__ = ["Webhooks"]


def _check_event_type(event_type: str) -> str:
    if event_type not in WebhookEventType.ALL:
        raise InvalidRequestError(
            f"event type must be one of {', '.join(WebhookEventType.ALL)}, not {event_type!r}"
        )
    return event_type


def _check_mode(mode: str) -> str:
    if mode not in WebhookMode.ALL:
        raise InvalidRequestError(f"mode must be {' or '.join(WebhookMode.ALL)}, not {mode!r}")
    return mode


class Webhooks(Resource):
    """Webhook endpoints and test deliveries."""

    async def send_test_event(
        self,
        event_type: WebhookEventTypeName,
        *,
        mode: WebhookModeName = "test",
        api_key_id: str | None = None,
        sample_payload: Mapping[str, Any] | None = None,
        options: RequestOptions | None = None,
    ) -> WebhookTestEvent:
        """Ask Diffio to deliver a signed test event (``webhooks/send_test_event``).

        Not retried on ambiguous failures: a retry could deliver the test event twice.
        """
        body = SendTestEventRequest(
            event_type=_check_event_type(event_type),
            mode=_check_mode(mode),
            api_key_id=optional_id("api_key_id", api_key_id),
            sample_payload=json_object("sample_payload", sample_payload),
        )
        return await self._post_as(
            "webhooks/send_test_event", body, WebhookTestEvent, idempotent=False, options=options
        )

    async def configure(
        self,
        *,
        url: str,
        event_types: Iterable[WebhookEventTypeName] = WebhookEventType.ALL,
        mode: WebhookModeName = "live",
        api_key_id: str | None = None,
        options: RequestOptions | None = None,
    ) -> WebhookEndpoint:
        """Create or replace the webhook endpoint of a key and mode (``webhooks/configure``).

        Needs an admin key with ``webhooks:write``. The signing secret is not in the answer;
        it comes from the dashboard (or, for the emulator, ``Emulator.webhook_secret``).
        """
        if (
            not isinstance(url, str)
            or not url.startswith(("https://", "http://"))
            or not url.isprintable()
            or any(c.isspace() for c in url)
        ):
            raise InvalidRequestError("url must be an http(s) URL without spaces or controls")
        types = [_check_event_type(t) for t in string_list("event_types", event_types)]
        body = ConfigureWebhookRequest(
            mode=_check_mode(mode),
            url=url,
            event_types=tuple(types),
            api_key_id=optional_id("api_key_id", api_key_id),
        )
        result = await self._post_as(
            "webhooks/configure", body, WebhookConfigureResponse, idempotent=True, options=options
        )
        return result.webhook
