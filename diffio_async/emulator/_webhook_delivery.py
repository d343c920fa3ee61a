"""Webhook delivery: flat JSON events signed like Svix, POSTed with a short retry schedule."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import anyio
import attrs
import httpx2

from ._signing import svix_signature

__all__ = ["OutgoingMessage", "WebhookDelivery", "WebhookDispatcher"]


@attrs.frozen(kw_only=True)
class OutgoingMessage:
    """One event to deliver to one endpoint (the ``svix-id`` is fixed across retries)."""

    message_id: str
    url: str
    event: dict[str, Any]


@attrs.frozen(kw_only=True)
class WebhookDelivery:
    """One delivery attempt, as recorded in :attr:`Emulator.webhook_deliveries`.

    Attributes:
        message_id: the ``svix-id`` (identical for every attempt of one message).
        event_type: ``generation.queued`` / ``.processing`` / ``.failed`` / ``.completed``.
        url: the endpoint URL.
        attempt: 1 for the first try, 2 for the first retry, ...
        status_code: the receiver's HTTP status, or ``None`` when the request itself failed.
        error: the transport error text when ``status_code`` is ``None``.
        body: the exact bytes sent (what the signature covers).
        headers: the ``svix-*`` and content headers sent.
        event: the event as a dict.
    """

    message_id: str
    event_type: str
    url: str
    attempt: int
    status_code: int | None
    error: str | None
    body: bytes
    headers: dict[str, str]
    event: dict[str, Any]

    @property
    def ok(self) -> bool:
        """Whether the receiver answered 2xx."""
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookDispatcher:
    """Signs and delivers events; keeps a log of every attempt."""

    def __init__(
        self,
        *,
        secret: str,
        retry_delays: Sequence[float],
        transport: httpx2.AsyncBaseTransport | None,
        timestamp: Callable[[], float] = time.time,
    ) -> None:
        """Deliver with ``len(retry_delays)`` attempts, sleeping ``retry_delays[i]`` first."""
        self.secret = secret
        self.retry_delays = tuple(retry_delays) or (0.0,)
        self.transport = transport
        self.timestamp = timestamp
        self._lock = threading.Lock()
        self._deliveries: list[WebhookDelivery] = []

    @property
    def deliveries(self) -> list[WebhookDelivery]:
        """A snapshot of every attempt so far."""
        with self._lock:
            return list(self._deliveries)

    def sign(self, message_id: str, body: bytes) -> dict[str, str]:
        """The headers of one attempt (fresh timestamp and signature)."""
        stamp = int(self.timestamp())
        return {
            "content-type": "application/json",
            "user-agent": "diffio-emulator-webhooks",
            "svix-id": message_id,
            "svix-timestamp": str(stamp),
            "svix-signature": svix_signature(self.secret, message_id, stamp, body),
        }

    async def deliver(self, messages: Sequence[OutgoingMessage]) -> None:
        """Deliver every message (in order), retrying each on failure."""
        if not messages:
            return
        async with httpx2.AsyncClient(transport=self.transport, timeout=15.0) as client:
            for message in messages:
                await self._deliver_one(client, message)

    async def _deliver_one(self, client: httpx2.AsyncClient, message: OutgoingMessage) -> None:
        body = json.dumps(message.event, separators=(",", ":")).encode()
        for attempt, delay in enumerate(self.retry_delays, start=1):
            if delay:
                await anyio.sleep(delay)
            headers = self.sign(message.message_id, body)
            status: int | None = None
            error: str | None = None
            try:
                response = await client.post(message.url, content=body, headers=headers)
                status = response.status_code
            except httpx2.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            record = WebhookDelivery(
                message_id=message.message_id,
                event_type=str(message.event.get("eventType")),
                url=message.url,
                attempt=attempt,
                status_code=status,
                error=error,
                body=body,
                headers=headers,
                event=message.event,
            )
            with self._lock:
                self._deliveries.append(record)
            if record.ok:
                return
