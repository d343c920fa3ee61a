"""The emulator's runtime: configuration, state, clock, storage and webhook plumbing."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Sequence
from typing import Any, Literal

import attrs
import httpx

from ._clock import EmulatorClock
from ._faults import FaultSet
from ._media_store import MediaStore
from ._request_log import RequestLog
from ._signing import Signer
from ._state import Generation, Project, State
from ._webhook_delivery import OutgoingMessage, WebhookDispatcher

__all__ = [
    "ERA_A_MODELS",
    "ERA_B_MODELS",
    "GIB",
    "MIB",
    "Config",
    "Runtime",
    "model_endpoints",
]

MIB = 1024 * 1024
GIB = 1024 * MIB

ERA_A_MODELS: dict[str, str] = {
    "diffio-2.0-flash": "diffio-2-flash",
    "diffio-2.0": "diffio-2",
    "diffio-3.4": "diffio-3.4",
    "diffio-3.5": "diffio-3.5",
    "diffio-4.0-flash": "diffio-4.0-flash",
    "diffio-4.0-pro": "diffio-4.0-pro",
    "diffio-3.0": "diffio-3",
}
"""Era A: endpoint stem (``/v1/<stem>-generation``) -> ``modelKey``."""

ERA_B_MODELS: dict[str, str] = {
    "diffio-4.5-flash": "diffio-4.5-flash",
    "diffio-4.5-pro": "diffio-4.5-pro",
    "diffio-4.6-flash": "diffio-4.6-flash",
    "diffio-4.6-pro": "diffio-4.6-pro",
}
"""Era B: endpoint stem -> ``modelKey``."""

_ERA_A_TRANSCRIBING = frozenset({"diffio-2", "diffio-3.5", "diffio-4.0-flash", "diffio-4.0-pro"})

_WEBHOOK_STATUS = {
    "queued": ("generation.queued", "queued"),
    "processing": ("generation.processing", "processing"),
    "complete": ("generation.completed", "complete"),
    "failed": ("generation.failed", "error"),
}


def model_endpoints(era: str) -> dict[str, str]:
    """The generation endpoints served in ``era`` (stem -> modelKey)."""
    return dict(ERA_B_MODELS if era == "b" else ERA_A_MODELS)


@attrs.frozen(kw_only=True)
class Config:
    """Emulator settings (see :class:`Emulator` for their meaning)."""

    era: Literal["a", "b"] = "a"
    generation_seconds: float = 3.0
    part_size_bytes: int = 32 * MIB
    max_upload_bytes: int = 2 * GIB
    upload_url_ttl: float = 3600.0
    download_url_ttl: float | None = None
    upload_method: Literal["PUT", "POST"] = "PUT"
    cents_per_second: float = 1.0
    webhook_retry_delays: Sequence[float] = (0.0, 0.1, 0.5)
    webhook_timestamps: Literal["wall", "emulator"] = "wall"

    @property
    def media_url_ttl(self) -> float:
        """Download URL lifetime: the configured one, else 2 h (era A) or 6 h (era B)."""
        if self.download_url_ttl is not None:
            return self.download_url_ttl
        return 6 * 3600.0 if self.era == "b" else 2 * 3600.0

    def transcribes(self, model_key: str) -> bool:
        """Whether generations of ``model_key`` report a transcription."""
        return self.era == "b" or model_key in _ERA_A_TRANSCRIBING


class Runtime:
    """Shared runtime of one emulator instance (used by the app and the public facade)."""

    def __init__(
        self,
        *,
        config: Config,
        clock: EmulatorClock,
        store: MediaStore,
        webhook_secret: str,
        webhook_transport: httpx.AsyncBaseTransport | None,
    ) -> None:
        """Wire the pieces together."""
        self.config = config
        self.clock = clock
        self.store = store
        self.state = State()
        self.signer = Signer()
        self.faults = FaultSet()
        self.log = RequestLog()
        self.admin_key_id = "key_admin"
        self.open_admin = False
        self.dispatcher = WebhookDispatcher(
            secret=webhook_secret,
            retry_delays=config.webhook_retry_delays,
            transport=webhook_transport,
            timestamp=clock.now if config.webhook_timestamps == "emulator" else time.time,
        )

    @property
    def era(self) -> str:
        """``"a"`` or ``"b"``."""
        return self.config.era

    def now(self) -> float:
        """Current emulator time (Unix seconds)."""
        return self.clock.now()

    def iso(self, epoch: float | None) -> str | None:
        """ISO-8601 or ``None``."""
        return None if epoch is None else self.clock.isoformat(epoch)

    # --- generations -------------------------------------------------------------------

    def elapsed(self, generation: Generation, now: float | None = None) -> float:
        """Seconds since the generation was created."""
        return (self.now() if now is None else now) - generation.created_at

    def status(self, generation: Generation, now: float | None = None) -> str:
        """Overall status right now."""
        return generation.lifecycle.status(self.elapsed(generation, now))

    def charge_cents(self, billed_seconds: int) -> int:
        """Cents for ``billed_seconds`` at the configured rate (rounded up)."""
        return math.ceil(billed_seconds * self.config.cents_per_second)

    def spent_cents(self, key_id: str, now: float) -> int:
        """Cents reserved or finalized by a key (failed generations cost nothing)."""
        with self.state.lock:
            return sum(
                self.charge_cents(gen.billed_seconds)
                for gen in self.state.generations.values()
                if gen.key_id == key_id and self.status(gen, now) != "failed"
            )

    def generation_event(
        self, generation: Generation, project: Project, status: str, at: float
    ) -> dict[str, Any]:
        """The webhook payload (§6.2) for an overall status reached at ``at``."""
        event_type, wire_status = _WEBHOOK_STATUS[status]
        lifecycle = generation.lifecycle
        event: dict[str, Any] = {
            "eventType": event_type,
            "eventId": f"evt_{uuid.uuid4().hex[:20]}",
            "createdAt": self.clock.isoformat(at),
            "apiKeyId": generation.key_id,
            "apiProjectId": project.project_id,
            "generationId": generation.generation_id,
            "status": wire_status,
            "hasVideo": project.has_video,
            "modelKey": generation.model_key,
            "error": lifecycle.error_text if status == "failed" else None,
            "errorDetails": lifecycle.script.error_details if status == "failed" else None,
        }
        transcription = lifecycle.transcription(at - generation.created_at)
        if transcription is not None:
            event["transcription"] = {"status": transcription}
        return event

    def observe(self, generation: Generation, now: float | None = None) -> list[OutgoingMessage]:
        """Turn overall status changes not yet announced into webhook messages."""
        now = self.now() if now is None else now
        messages: list[OutgoingMessage] = []
        with self.state.lock:
            reached = generation.lifecycle.transitions(self.elapsed(generation, now))
            fresh = reached[generation.notified :]
            if not fresh:
                return messages
            generation.notified = len(reached)
            project = self.state.projects.get(generation.project_id)
            if project is None:
                return messages
            endpoints = [
                endpoint
                for (key_id, _mode), endpoint in sorted(self.state.webhooks.items())
                if key_id == generation.key_id
            ]
            for status, offset in fresh:
                event = self.generation_event(
                    generation, project, status, generation.created_at + offset
                )
                for endpoint in endpoints:
                    if event["eventType"] in endpoint.event_types:
                        messages.append(
                            OutgoingMessage(
                                message_id=f"msg_{uuid.uuid4().hex[:24]}",
                                url=endpoint.url,
                                event=event,
                            )
                        )
        return messages

    def observe_all(self) -> list[OutgoingMessage]:
        """:meth:`observe` every generation."""
        now = self.now()
        with self.state.lock:
            generations = list(self.state.generations.values())
        messages: list[OutgoingMessage] = []
        for generation in generations:
            messages.extend(self.observe(generation, now))
        return messages
