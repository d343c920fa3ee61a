"""The emulator's runtime: configuration, state, clock, storage and webhook plumbing."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Sequence
from typing import Any, Literal

import attrs
import httpx2

from ._clock import EmulatorClock
from ._faults import FaultSet
from ._lifecycle import GenerationScript
from ._media_store import MediaStore
from ._request_log import RequestLog
from ._signing import Signer
from ._state import Generation, Project, State
from ._webhook_delivery import OutgoingMessage, WebhookDispatcher
from ._webhook_schedule import WebhookScheduler

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
    seconds_per_mib: float = 0.0
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

    def generation_duration(self, script: GenerationScript, size_bytes: int | None) -> float:
        """Seconds a generation of a ``size_bytes`` upload takes: the script's duration if it
        has one, else ``generation_seconds`` plus ``seconds_per_mib`` per MiB of media."""
        if script.duration is not None:
            return script.duration
        return self.generation_seconds + self.seconds_per_mib * (size_bytes or 0) / MIB

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
        webhook_transport: httpx2.AsyncBaseTransport | None,
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
        self.scheduler = WebhookScheduler(
            clock=clock, deliver=self.dispatcher.deliver, announce_due=self.announce_due
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

    # --- status-change webhooks: decided here, and only here -----------------------------

    def _decide(self, generations: list[Generation], now: float) -> list[OutgoingMessage]:
        """Mark the overall status changes of ``generations`` reached by ``now`` announced and
        turn them into messages, earliest change first. Hold the state lock."""
        changes: list[tuple[float, Generation, Project, str]] = []
        for generation in generations:
            reached = generation.lifecycle.transitions(self.elapsed(generation, now))
            fresh = reached[generation.notified :]
            if not fresh:
                continue
            generation.notified = len(reached)
            project = self.state.projects.get(generation.project_id)
            if project is None:
                continue
            changes.extend(
                (generation.created_at + offset, generation, project, status)
                for status, offset in fresh
            )
        changes.sort(key=lambda change: change[0])
        endpoints = sorted(self.state.webhooks.items())
        messages: list[OutgoingMessage] = []
        for at, generation, project, status in changes:
            event = self.generation_event(generation, project, status, at)
            for (key_id, _mode), endpoint in endpoints:
                if key_id == generation.key_id and event["eventType"] in endpoint.event_types:
                    messages.append(
                        OutgoingMessage(
                            message_id=f"msg_{uuid.uuid4().hex[:24]}",
                            url=endpoint.url,
                            event=event,
                        )
                    )
        return messages

    def observe(self, generation: Generation, now: float | None = None) -> list[OutgoingMessage]:
        """Decide the status changes of ``generation`` not yet announced (a request looked).

        Returns the messages the caller must deliver: none while the scheduler runs, since
        it then delivers every status change itself, in the order they were decided.
        """
        now = self.now() if now is None else now
        with self.state.lock:
            messages = self._decide([generation], now)
            if self.scheduler.offer(messages) is not None:
                return []
        return messages

    def track(self, generation: Generation) -> None:
        """Have the scheduler look at a new generation when its next change is due."""
        with self.state.lock:
            offset = generation.lifecycle.next_change(generation.notified)
        if offset is not None:
            self.scheduler.schedule(generation.generation_id, generation.created_at + offset)

    def announce_due(self, now: float) -> None:
        """The scheduler's step: decide the changes due by ``now`` and queue their messages."""
        due = self.scheduler.pop_due(now)
        with self.state.lock:
            generations = [
                self.state.generations[key] for key in due if key in self.state.generations
            ]
            self.scheduler.offer(self._decide(generations, now))
            for generation in generations:
                offset = generation.lifecycle.next_change(generation.notified)
                if offset is not None:
                    # Never at or before now: a change not reached yet is looked at again.
                    at = max(generation.created_at + offset, now + 1e-6)
                    self.scheduler.schedule(generation.generation_id, at)

    async def deliver_due(self) -> int:
        """Decide every change due now, deliver the messages, and return how many there were.

        While the scheduler runs, the messages go through it (in order with what it is
        already sending) and this returns once they, and any it had pending, are delivered.
        """
        now = self.now()
        with self.state.lock:
            messages = self._decide(list(self.state.generations.values()), now)
            ticket = self.scheduler.offer(messages)
        if ticket is None:
            await self.dispatcher.deliver(messages)
        else:
            await self.scheduler.delivered(ticket)
        return len(messages)
