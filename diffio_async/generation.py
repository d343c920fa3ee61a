"""The :class:`Generation` handle: follow a generation to its end and download its result."""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import random
from collections.abc import AsyncGenerator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import attrs

from ._download import download_to_path
from ._transport import RequestOptions
from ._upload import ProgressCallback
from .errors import (
    APIConnectionError,
    ConflictError,
    DownloadError,
    GenerationFailedError,
    InternalServerError,
    NotFoundError,
    RateLimitError,
    TranscriptPendingError,
    TranscriptUnavailableError,
    WaitTimeoutError,
)
from .models import CreatedGeneration, DownloadInfo, GenerationProgress, GenerationStatus
from .webhooks import WebhookRouter

if TYPE_CHECKING:
    from .client import AsyncDiffio

__all__ = ["Generation", "PollPolicy"]

logger = logging.getLogger("diffio_async")


@attrs.frozen(kw_only=True)
class PollPolicy:
    """How :meth:`Generation.wait` polls.

    The first wait is ``initial`` seconds; each poll multiplies it by ``factor`` up to
    ``maximum``; ``jitter`` spreads it (±10 % by default, never above ``maximum``). When the
    overall status changes (``queued`` -> ``processing``) the interval halves, so the work is
    followed closely without starting the ramp over; stage changes are reported but do not
    speed polling up. With the defaults a job that finishes at 300 s costs 27 polls on average
    and at most 29, and is noticed at most ``maximum`` seconds late.
    """

    initial: float = attrs.field(default=1.0, validator=attrs.validators.gt(0))
    factor: float = attrs.field(default=1.5, validator=attrs.validators.ge(1))
    maximum: float = attrs.field(default=15.0, validator=attrs.validators.gt(0))
    jitter: float = attrs.field(default=0.1, validator=attrs.validators.ge(0))

    def schedule(self, *, rng: random.Random | None = None) -> PollSchedule:
        """A fresh schedule following this policy."""
        return PollSchedule(self, rng or random.Random())


class PollSchedule:
    """The running state of a :class:`PollPolicy`: call :meth:`next_delay` after each poll."""

    def __init__(self, policy: PollPolicy, rng: random.Random) -> None:
        self.policy = policy
        self._rng = rng
        self._interval = policy.initial

    def next_delay(self, *, changed: bool) -> float:
        """The wait before the next poll; ``changed`` says whether the last poll had news."""
        policy = self.policy
        if changed:
            self._interval = max(policy.initial, self._interval / 2)
        delay = self._interval * self._rng.uniform(1 - policy.jitter, 1 + policy.jitter)
        self._interval = min(policy.maximum, self._interval * policy.factor)
        return max(0.0, min(policy.maximum, delay))


def _fingerprint(progress: GenerationProgress) -> tuple[object, ...]:
    """What counts as "something changed" between two polls."""
    stages = tuple((name, s.status, s.progress) for name, s in progress.stages)
    transcription = progress.transcription_status
    return (progress.status, progress.stage, stages, transcription, progress.percent)


_TRANSIENT = (APIConnectionError, InternalServerError, RateLimitError)
_KNOWN_STATUSES = frozenset(
    {
        GenerationStatus.QUEUED,
        GenerationStatus.PENDING,
        GenerationStatus.PROCESSING,
        *GenerationStatus.TERMINAL,
    }
)


class Generation:
    """A generation on the server: its ids, and methods to follow and fetch it.

    Build one with ``client.generations.create(...)`` or, from saved ids,
    ``client.generations.get(generation_id, project_id=...)``. Cancelling a wait does not
    cancel the generation on the server (the API has no cancel endpoint).
    """

    def __init__(
        self,
        client: AsyncDiffio,
        *,
        created: CreatedGeneration,
        idempotency_key: str | None,
    ) -> None:
        self._client = client
        self.created = created
        """The create answer (``idempotent_replay`` says whether it was a replay)."""
        self.idempotency_key = idempotency_key
        """The idempotency key sent with the create call (``None`` for rebuilt handles)."""
        self.last_progress: GenerationProgress | None = None
        """The most recent progress seen by any method of this handle."""

    @property
    def id(self) -> str:
        """The generation id."""
        return self.created.generation_id

    @property
    def project_id(self) -> str:
        """The id of the project the generation belongs to."""
        return self.created.api_project_id

    @property
    def model_key(self) -> str:
        """The model key the server reported (empty when rebuilt from ids alone)."""
        return self.created.model_key

    def __repr__(self) -> str:
        return (
            f"<Generation id={self.id!r} project_id={self.project_id!r} "
            f"model_key={self.model_key!r}>"
        )

    async def progress(self, *, options: RequestOptions | None = None) -> GenerationProgress:
        """Poll the progress once."""
        progress = await self._client.generations.get_progress(
            self.id, project_id=self.project_id, options=options
        )
        self.last_progress = progress
        return progress

    async def iter_progress(
        self, *, poll: PollPolicy | None = None, router: WebhookRouter | None = None
    ) -> AsyncGenerator[GenerationProgress, None]:
        """Yield a progress snapshot each time something changed, until a terminal status.

        Transient failures (connection problems, 5xx, 429) are logged and polled through; a
        429's ``Retry-After`` sets the next wait. The last snapshot yielded is terminal
        (``complete``, ``failed`` or ``error``); this iterator never raises for a failed
        generation (see :meth:`wait`). It has no deadline of its own. With a ``router``
        (:class:`~diffio_async.webhooks.WebhookRouter`) a webhook about this generation
        cuts the current wait short and it polls at once.
        """
        schedule = (poll or PollPolicy()).schedule()
        seen: tuple[object, ...] | None = None
        seen_status: str | None = None
        while True:
            hint: float | None = None
            try:
                progress = await self.progress()
            except _TRANSIENT as exc:
                logger.info("polling %s failed (%s); polling on", self.id, type(exc).__name__)
                hint = getattr(exc, "retry_after", None)
                changed = False
            else:
                fingerprint = _fingerprint(progress)
                changed = seen_status is not None and progress.status != seen_status
                if progress.status != seen_status and progress.status not in _KNOWN_STATUSES:
                    logger.warning(
                        "generation %s has an unknown status %r; polling on until it ends or "
                        "the deadline passes",
                        self.id,
                        progress.status,
                    )
                seen_status = progress.status
                if fingerprint != seen:
                    seen = fingerprint
                    yield progress
                if progress.is_terminal:
                    return
            delay = max(schedule.next_delay(changed=changed), hint or 0.0)
            if router is None or hint is not None:
                await anyio.sleep(delay)
            else:
                with anyio.move_on_after(delay):
                    await router.wait_for(self.id)

    async def wait(
        self,
        *,
        timeout: float | None = 1800.0,  # noqa: ASYNC109 (the deadline is the API here)
        on_progress: Callable[[GenerationProgress], Any] | None = None,
        poll: PollPolicy | None = None,
        router: WebhookRouter | None = None,
    ) -> GenerationProgress:
        """Poll until the generation completes; return the final progress.

        ``on_progress`` (sync or async) gets each changed snapshot. Raises
        :class:`GenerationFailedError` (with the last progress, whose stages, ``error`` and
        ``error_details`` say why) when it fails, and :class:`WaitTimeoutError` (with the
        generation id and last progress) when ``timeout`` seconds pass first. With a
        ``router`` (:class:`~diffio_async.webhooks.WebhookRouter`), a webhook about this
        generation makes it poll at once, so a slow ``poll`` policy is enough as a safety net.
        """
        with anyio.move_on_after(timeout if timeout is not None else float("inf")) as scope:
            async with contextlib.aclosing(
                self.iter_progress(poll=poll, router=router)
            ) as snapshots:
                async for progress in snapshots:
                    if on_progress is not None:
                        result = on_progress(progress)
                        if inspect.isawaitable(result):
                            await result
                    if progress.is_complete:
                        return progress
                    if progress.is_terminal:
                        raise GenerationFailedError(
                            _failure_message(progress),
                            generation_id=self.id,
                            project_id=self.project_id,
                            progress=progress,
                        )
        if scope.cancelled_caught:
            raise WaitTimeoutError(
                f"generation {self.id} did not finish within {timeout:g} s "
                f"(last status: {self.last_progress.status if self.last_progress else 'unknown'})",
                generation_id=self.id,
                project_id=self.project_id,
                last_progress=self.last_progress,
            )
        raise AssertionError("iter_progress ended without a terminal status")  # pragma: no cover

    async def download_info(
        self, *, download_type: str = "audio", options: RequestOptions | None = None
    ) -> DownloadInfo:
        """Ask for a fresh signed download URL (one request, no retry of 404/409)."""
        return await self._client.generations.get_download(
            self.id, project_id=self.project_id, download_type=download_type, options=options
        )

    async def _ready_download_info(self, download_type: str, patience: float) -> DownloadInfo:
        """``download_info``, retrying a 404/409 that can follow completion for a short while."""
        delay = 0.5
        last: Exception | None = None
        with anyio.move_on_after(patience):
            while True:
                try:
                    return await self.download_info(download_type=download_type)
                except (TranscriptPendingError, TranscriptUnavailableError):
                    raise
                except (NotFoundError, ConflictError) as exc:
                    last = exc
                    logger.info("download of %s not ready yet (%s)", self.id, exc.status_code)
                await anyio.sleep(delay)
                delay = min(delay * 2, 5.0)
        if last is not None:
            raise last
        raise DownloadError(
            f"no download URL for generation {self.id} within {patience:g} s",
            generation_id=self.id,
        )

    async def download(
        self,
        dest: str | os.PathLike[str],
        *,
        download_type: str = "audio",
        on_progress: ProgressCallback | None = None,
        not_ready_patience: float = 30.0,
        transfer_limiter: anyio.CapacityLimiter | None = None,
    ) -> Path:
        """Download the result to ``dest`` (a file path, or a folder for the server's name).

        Streams to a temp file beside the target and renames it into place, so a failure or
        cancellation never leaves a partial file and never clobbers an existing one. An
        expired URL is refreshed and the transfer resumes. A 404/409 just after completion is
        retried for ``not_ready_patience`` seconds. ``transfer_limiter``, when given, is held
        only while bytes move. Returns the path written.
        """
        info = await self._ready_download_info(download_type, not_ready_patience)
        async with transfer_limiter or contextlib.nullcontext():
            return await download_to_path(
                self._client._transport,
                info=info,
                refresh=lambda: self.download_info(download_type=download_type),
                dest=dest,
                on_progress=on_progress,
            )


def _failure_message(progress: GenerationProgress) -> str:
    parts = [f"generation {progress.generation_id} {progress.status}"]
    if progress.error:
        parts.append(f": {progress.error}")
    failed = [name for name, stage in progress.stages if stage.status == "failed"]
    if failed:
        parts.append(f" (failed stage: {', '.join(failed)})")
    if progress.error_details:
        parts.append(f" - {progress.error_details}")
    return "".join(parts)
