"""The :class:`Generation` handle: follow a generation to its end and download its result."""

from __future__ import annotations

import contextlib
import errno
import inspect
import logging
import mimetypes
import numbers
import os
from collections.abc import AsyncGenerator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path, PurePath
from typing import Any, Protocol, TypeVar

import anyio

from .._http.transport import RequestOptions, Transport
from .._media.download import (
    SERVED_SUFFIX,
    DownloadSink,
    check_dest,
    download_to_path,
    download_to_sink,
    served_name,
)
from .._media.upload import ProgressCallback, closing_shielded
from ..errors import (
    APIConnectionError,
    ConflictError,
    DownloadError,
    GenerationFailedError,
    InternalServerError,
    InvalidRequestError,
    NotFoundError,
    RateLimitError,
    TranscriptPendingError,
    TranscriptUnavailableError,
    WaitTimeoutError,
    cap_message,
)
from ..types import (
    CreatedGeneration,
    DownloadInfo,
    DownloadTypeName,
    GenerationProgress,
    GenerationStatus,
)
from ..webhooks import WebhookRouter
from ._polling import PollBudget, PollPlanner, PollPolicy

__all__ = ["Generation", "GenerationCalls", "served_path"]

logger = logging.getLogger("diffio_async")


def _seconds(name: str, value: object, *, allow_none: bool) -> float | None:
    """``value`` as seconds (a number >= 0; infinity allowed), else :class:`InvalidRequestError`."""
    if value is None and allow_none:
        return None
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        seconds = float(value)
        if seconds >= 0:  # False for NaN
            return seconds
        shown = repr(value)
    else:
        shown = type(value).__name__
    none = " or None" if allow_none else ""
    raise InvalidRequestError(f"{name} must be a number of seconds >= 0{none}, not {shown}")


def _fingerprint(progress: GenerationProgress) -> tuple[object, ...]:
    """What counts as "something changed" between two polls."""
    stages = tuple((name, s.status, s.progress) for name, s in progress.stages)
    transcription = progress.transcription_status
    return (progress.status, progress.stage, stages, transcription, progress.percent)


_TRANSIENT = (APIConnectionError, InternalServerError, RateLimitError)
_JUST_CREATED = frozenset({GenerationStatus.QUEUED, GenerationStatus.PENDING})
_KNOWN_STATUSES = frozenset(
    {
        GenerationStatus.QUEUED,
        GenerationStatus.PENDING,
        GenerationStatus.PROCESSING,
        *GenerationStatus.TERMINAL,
    }
)


class GenerationCalls(Protocol):
    """The two API calls a :class:`Generation` handle makes (``client.generations`` has them)."""

    async def get_progress(
        self,
        generation_id: str,
        *,
        project_id: str | None = None,
        options: RequestOptions | None = None,
    ) -> GenerationProgress:
        """One ``get_generation_progress`` call."""
        ...

    async def get_download(
        self,
        generation_id: str,
        *,
        project_id: str,
        download_type: DownloadTypeName | None = None,
        options: RequestOptions | None = None,
    ) -> DownloadInfo:
        """One ``get_generation_download`` call."""
        ...


class Generation:
    """A generation on the server: its ids, and methods to follow and fetch it.

    Build one with ``client.generations.create(...)`` or, from saved ids,
    ``client.generations.get(generation_id, project_id=...)``. Cancelling a wait does not
    cancel the generation on the server (the API has no cancel endpoint).
    """

    def __init__(
        self,
        calls: GenerationCalls,
        http: Transport,
        *,
        created: CreatedGeneration,
        idempotency_key: str | None,
    ) -> None:
        """Internal: handles come from ``client.generations`` (``calls``), which also lends the
        transport (``http``) that media downloads go through."""
        self._calls = calls
        self._http = http
        self.created = created
        """The create answer (``idempotent_replay`` says whether it was a replay)."""
        self.idempotency_key = idempotency_key
        """The idempotency key sent with the create call (``None`` for rebuilt handles)."""
        self.last_progress: GenerationProgress | None = None
        """The most recent progress seen by any method of this handle."""
        self.last_download: DownloadInfo | None = None
        """The download answer the last :meth:`download` used (its ``download_type``,
        ``file_name`` and ``mime_type`` say what the server served)."""
        self.finished_after: float | None = None
        """Once a wait saw the generation end: about how many seconds after the wait began it
        ended on the server (between the last poll that saw it running and the one that saw
        it end; a batch learns the server's pace from this)."""

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

    def to_dict(self, *, include_secrets: bool = False) -> dict[str, Any]:
        """The handle as JSON-safe data (what a ``RestoreResult.to_dict()`` shows of it): the
        create answer, the idempotency key and ``finished_after``."""
        return {
            "created": self.created.to_dict(include_secrets=include_secrets),
            "idempotency_key": self.idempotency_key,
            "finished_after": self.finished_after,
        }

    def __repr__(self) -> str:
        return (
            f"<Generation id={self.id!r} project_id={self.project_id!r} "
            f"model_key={self.model_key!r}>"
        )

    async def progress(self, *, options: RequestOptions | None = None) -> GenerationProgress:
        """Poll the progress once."""
        progress = await self._calls.get_progress(
            self.id, project_id=self.project_id, options=options
        )
        self.last_progress = progress
        return progress

    async def iter_progress(
        self,
        *,
        poll: PollPolicy | None = None,
        router: WebhookRouter | None = None,
        budget: PollBudget | None = None,
        expected_seconds: float | None = None,
    ) -> AsyncGenerator[GenerationProgress, None]:
        """Yield a progress snapshot each time something changed, until a terminal status.

        Transient failures (connection problems, 5xx, 429) are logged and polled through; a
        429's ``Retry-After`` sets the next wait. The last snapshot yielded is terminal
        (``complete``, ``failed`` or ``error``); this iterator never raises for a failed
        generation (see :meth:`wait`). It has no deadline of its own. When to poll is
        planned by ``poll`` (see :class:`~diffio_async.PollPolicy`), aiming at the finish the
        progress predicts, or at ``expected_seconds`` from now before the progress says
        more. With a ``router`` (:class:`~diffio_async.webhooks.WebhookRouter`) a webhook
        about this generation cuts the current wait short and it polls at once. A ``budget``
        (:class:`~diffio_async.PollBudget`) shared by many waits caps their polls per second.
        """
        _check_type("poll", poll, PollPolicy)
        _check_type("router", router, WebhookRouter)
        _check_type("budget", budget, PollBudget)
        expected = _seconds("expected_seconds", expected_seconds, allow_none=True)
        started = anyio.current_time()
        self.finished_after = None
        planner = PollPlanner(poll or PollPolicy(), started=started, expected=expected)
        seen: tuple[object, ...] | None = None
        seen_status: str | None = None
        # A job of known pace, or one just created and queued (its create answer said so), is
        # not polled at once: its first poll is planned (below).
        just_created = self.last_progress is None and self.created.status in _JUST_CREATED
        skip = expected is not None or just_created
        while True:
            hint: float | None = None
            changed = False
            if not skip:
                if budget is not None:
                    await budget.acquire()
                try:
                    progress = await self.progress()
                except _TRANSIENT as exc:
                    logger.info("polling %s failed (%s); polling on", self.id, type(exc).__name__)
                    hint = getattr(exc, "retry_after", None)
                else:
                    fingerprint = _fingerprint(progress)
                    changed = seen_status is not None and progress.status != seen_status
                    if progress.status != seen_status and progress.status not in _KNOWN_STATUSES:
                        logger.warning(
                            "generation %s has an unknown status %r; polling on until it ends "
                            "or the deadline passes",
                            self.id,
                            progress.status,
                        )
                    seen_status = progress.status
                    planner.observe(anyio.current_time(), progress)
                    if planner.finished is not None and self.finished_after is None:
                        self.finished_after = planner.finished - started
                    if fingerprint != seen:
                        seen = fingerprint
                        yield progress
                    if progress.is_terminal:
                        return
            skip = False
            delay = max(planner.next_delay(anyio.current_time(), changed=changed), hint or 0.0)
            if router is None or hint is not None:
                await anyio.sleep(delay)
            else:
                with anyio.move_on_after(delay):
                    await router.wait_for(self.id)

    async def wait(
        self,
        *,
        timeout: float | None = 1800.0,  # noqa: ASYNC109 (the deadline is the API here)
        on_progress: Callable[[GenerationProgress], object] | None = None,
        poll: PollPolicy | None = None,
        router: WebhookRouter | None = None,
        budget: PollBudget | None = None,
        expected_seconds: float | None = None,
    ) -> GenerationProgress:
        """Poll until the generation completes; return the final progress.

        ``on_progress`` (sync or async) gets each changed snapshot. Raises
        :class:`GenerationFailedError` (with the last progress, whose stages, ``error`` and
        ``error_details`` say why) when it fails, and :class:`WaitTimeoutError` (with the
        generation id and last progress) when ``timeout`` seconds pass first. With a
        ``router`` (:class:`~diffio_async.webhooks.WebhookRouter`), a webhook about this
        generation makes it poll at once, so a slow ``poll`` policy is enough as a safety net.
        ``budget`` and ``expected_seconds``: see :meth:`iter_progress`.
        ``timeout`` is seconds (``None``: no deadline); a negative, NaN or non-number raises
        :class:`InvalidRequestError` before the first poll.
        """
        deadline = _seconds("timeout", timeout, allow_none=True)
        _check_callable("on_progress", on_progress)
        _check_type("poll", poll, PollPolicy)
        _check_type("router", router, WebhookRouter)
        _check_type("budget", budget, PollBudget)
        _seconds("expected_seconds", expected_seconds, allow_none=True)
        with anyio.move_on_after(deadline if deadline is not None else float("inf")) as scope:
            snapshots = self.iter_progress(
                poll=poll, router=router, budget=budget, expected_seconds=expected_seconds
            )
            async with closing_shielded(snapshots):
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
                            last_progress=progress,
                        )
        if scope.cancelled_caught:
            last = self.last_progress.status if self.last_progress else "unknown"
            raise WaitTimeoutError(
                cap_message(
                    f"generation {self.id} did not finish within {deadline:g} s "
                    f"(last status: {last})"
                ),
                generation_id=self.id,
                project_id=self.project_id,
                last_progress=self.last_progress,
            )
        raise AssertionError("iter_progress ended without a terminal status")  # pragma: no cover

    async def download_info(
        self,
        *,
        download_type: DownloadTypeName | None = None,
        options: RequestOptions | None = None,
    ) -> DownloadInfo:
        """Ask for a fresh signed download URL (one request, no retry of 404/409); ``None``:
        the server's default type (the video of a project with video, else the audio)."""
        return await self._calls.get_download(
            self.id, project_id=self.project_id, download_type=download_type, options=options
        )

    def _seen_complete(self) -> bool:
        """Whether this handle saw (or was built from) a completed generation."""
        if self.last_progress is not None and self.last_progress.is_complete:
            return True
        return self.created.status.strip().lower() == GenerationStatus.COMPLETE

    async def _ready_download_info(
        self, download_type: DownloadTypeName | None, patience: float, *, complete: bool
    ) -> DownloadInfo:
        """``download_info``; a 404/409 that can follow completion is retried for ``patience``
        seconds, but only for a generation known to be complete: for any other (an unknown
        id, one still running) "not found" or "not ready" is raised at once."""
        if not complete:
            return await self.download_info(download_type=download_type)
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
        download_type: DownloadTypeName | None = None,
        on_progress: ProgressCallback | None = None,
        not_ready_patience: float = 30.0,
        transfer_limiter: anyio.CapacityLimiter | None = None,
        known_complete: bool = False,
        served_suffix: bool = False,
        overwrite_served: bool = False,
    ) -> Path:
        """Download the result to ``dest`` (a file path, or a folder for the server's name).

        ``download_type`` is ``"audio"`` (also ``"mp3"``), ``"video"``, ``"transcript"``, or
        ``None`` (the default: the server's choice, the video of a project with video,
        otherwise the audio); :attr:`last_download` then says what was served. With
        ``served_suffix=True`` a file ``dest`` takes the suffix of what was served (``.mp3``,
        ``.json``, or the video's own): a media suffix (``.wav``, ``.mp3``, ``.mp4``, ...) is
        replaced, any other kept and the served one appended (``out/take.wav`` becomes
        ``out/take.mp3`` for audio, ``out/take.mp4`` for an MP4 video; ``out/take.1`` becomes
        ``out/take.1.mp3``). A file already at that other name is never replaced: the download
        raises :class:`DownloadError` before fetching (unless ``overwrite_served=True``: the
        caller owns the folder, as ``restore_many`` does its ``output_dir``); a folder there
        raises :class:`IsADirectoryError`.

        Streams to a temp file beside the target and renames it into place, so a failure or
        cancellation never leaves a partial file and never clobbers an existing one. An
        expired URL is refreshed and the transfer resumes. For a generation known to be
        complete (this handle saw it complete, or ``known_complete=True``, e.g. from a
        ledger) a 404/409 is retried for ``not_ready_patience`` seconds, since the output can
        lag completion; for any other generation (an unknown id, one not finished yet) it is
        raised at once (:class:`NotFoundError`, :class:`ConflictError`). ``transfer_limiter``,
        when given, is held only while bytes move. Returns the path written.

        Bad arguments (``dest`` not a path or in a missing folder, a negative or NaN
        ``not_ready_patience``, ...) raise :class:`InvalidRequestError` before any request.
        """
        await anyio.to_thread.run_sync(check_dest, dest)
        patience = _seconds("not_ready_patience", not_ready_patience, allow_none=False)
        assert patience is not None
        _check_callable("on_progress", on_progress)
        _check_type("transfer_limiter", transfer_limiter, anyio.CapacityLimiter)
        flags = (
            ("known_complete", known_complete),
            ("served_suffix", served_suffix),
            ("overwrite_served", overwrite_served),
        )
        for name, flag in flags:
            if not isinstance(flag, bool):
                raise InvalidRequestError(
                    f"{name} must be True or False, not {type(flag).__name__}"
                )
        info = await self._ready_download_info(
            download_type, patience, complete=known_complete or self._seen_complete()
        )
        self.last_download = info
        if served_suffix:
            dest = await anyio.to_thread.run_sync(
                _served_dest, dest, info, overwrite_served, self.id
            )
        async with transfer_limiter or contextlib.nullcontext():
            return await download_to_path(
                self._http,
                info=info,
                refresh=lambda: self.download_info(download_type=download_type),
                dest=dest,
                on_progress=on_progress,
            )

    async def _download_to_sink(
        self,
        open_sink: Callable[[DownloadInfo], AbstractAsyncContextManager[DownloadSink]],
        *,
        download_type: DownloadTypeName | None = None,
        not_ready_patience: float = 30.0,
        transfer_limiter: anyio.CapacityLimiter | None = None,
        known_complete: bool = False,
    ) -> DownloadInfo:
        """Stream the result into a sink instead of a file (``restore_many`` writes outputs on
        object storage this way; the sink protocol is the SDK's own, so this is not public);
        return what was served.

        ``open_sink(info)`` is given what the server serves (so the sink can be named for it)
        and returns an async context manager of the sink, which commits it on a normal exit
        and discards it on any other. Readiness, resume and URL refresh work as in
        :meth:`download`.
        """
        patience = _seconds("not_ready_patience", not_ready_patience, allow_none=False)
        assert patience is not None
        _check_type("transfer_limiter", transfer_limiter, anyio.CapacityLimiter)
        info = await self._ready_download_info(
            download_type, patience, complete=known_complete or self._seen_complete()
        )
        self.last_download = info
        async with transfer_limiter or contextlib.nullcontext(), open_sink(info) as sink:
            await download_to_sink(
                self._http,
                info=info,
                refresh=lambda: self.download_info(download_type=download_type),
                sink=sink,
            )
        return info


_FIXED_SUFFIXES = {"audio": ".mp3", "transcript": ".json"}


_P = TypeVar("_P", bound=PurePath)


def served_path(dest: _P, info: DownloadInfo) -> _P:
    """``dest`` named for what ``info`` served (:func:`served_name`): ``.mp3`` for audio,
    ``.json`` for a transcript; for a video (or a type this SDK does not know) the suffix of
    the answer's ``file_name``, else the one its ``mime_type`` suggests, else ``dest`` as is."""
    suffix = _FIXED_SUFFIXES.get(info.download_type)
    if suffix is None:
        named = PurePath(info.file_name or "").suffix
        guessed = mimetypes.guess_extension(info.mime_type or "") or ""
        suffix = next((s for s in (named, guessed) if SERVED_SUFFIX.fullmatch(s)), None)
    return served_name(dest, suffix) if suffix and dest.name else dest


def _served_dest(
    dest: str | os.PathLike[str], info: DownloadInfo, overwrite: bool, generation_id: str
) -> str | os.PathLike[str]:
    """``dest`` as :func:`served_path` names it, unless it is a folder (see
    ``resolve_target``: the server's own file name is used there). Another name than
    ``dest`` must not be a folder, nor (unless ``overwrite``) an existing file."""
    raw = os.fspath(dest)
    if raw.endswith((os.sep, "/")) or Path(raw).is_dir():
        return dest
    named = Path(raw)
    served = served_path(named, info)
    if served != named:
        if served.is_dir():
            raise IsADirectoryError(
                errno.EISDIR, "a folder is where the served output should go", str(served)
            )
        if not overwrite and os.path.lexists(served) and not _same_file(served, named):
            raise DownloadError(
                f"the result was served as {served.suffix} and {served} already exists; it "
                f"is not replaced, since you named {named}: move it away or name the output "
                f"{served.name}",
                generation_id=generation_id,
                existing=str(served),
            )
    return served


def _same_file(one: Path, other: Path) -> bool:
    """Whether both exist and are one file (``clip.MP4`` and ``clip.mp4`` on a
    case-insensitive file system)."""
    try:
        return os.path.samefile(one, other)
    except OSError:
        return False


def _check_callable(name: str, value: object) -> None:
    if value is not None and not callable(value):
        raise InvalidRequestError(f"{name} must be callable or None, not {type(value).__name__}")


def _check_type(name: str, value: object, kind: type[Any]) -> None:
    if value is not None and not isinstance(value, kind):
        raise InvalidRequestError(
            f"{name} must be a {kind.__name__} or None, not {type(value).__name__}"
        )


def _failure_message(progress: GenerationProgress) -> str:
    """Why a generation failed, from its progress (capped: ``error`` may be a large JSON text)."""
    parts = [f"generation {progress.generation_id} {progress.status}"]
    if progress.error:
        parts.append(f": {cap_message(progress.error)}")
    failed = [name for name, stage in progress.stages if stage.status == "failed"]
    if failed:
        parts.append(f" (failed stage: {', '.join(failed)})")
    if progress.error_details:
        parts.append(f" - {cap_message(progress.error_details)}")
    return cap_message("".join(parts))
