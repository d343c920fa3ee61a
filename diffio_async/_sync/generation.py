""":class:`SyncGeneration`: the blocking face of a :class:`~diffio_async.Generation` handle."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .._http.transport import RequestOptions
from .._media.upload import ProgressCallback
from ..resources._polling import PollBudget, PollPolicy
from ..resources.generation_handle import Generation
from ..types import CreatedGeneration, DownloadInfo, DownloadTypeName, GenerationProgress
from ._loop import LoopThread, in_worker_thread

__all__ = ["SyncGeneration"]


class SyncGeneration:
    """A generation on the server, from the blocking :class:`~diffio_async.Diffio`: its ids,
    and blocking methods to follow it and fetch its result.

    It wraps the async handle (:attr:`handle`); each method runs the async method of the same
    name on the client's loop. Callbacks are plain functions, called in a worker thread.
    """

    def __init__(self, loop: LoopThread, handle: Generation) -> None:
        """Internal: handles come from ``client.generations`` of a :class:`Diffio`."""
        self._loop = loop
        self.handle = handle
        """The async :class:`~diffio_async.Generation` (use it only on the client's loop)."""

    @property
    def id(self) -> str:
        """The generation id."""
        return self.handle.id

    @property
    def project_id(self) -> str:
        """The id of the project the generation belongs to."""
        return self.handle.project_id

    @property
    def model_key(self) -> str:
        """The model key the server reported (empty when rebuilt from ids alone)."""
        return self.handle.model_key

    @property
    def created(self) -> CreatedGeneration:
        """The create answer (``idempotent_replay`` says whether it was a replay)."""
        return self.handle.created

    @property
    def idempotency_key(self) -> str | None:
        """The idempotency key sent with the create call (``None`` for rebuilt handles)."""
        return self.handle.idempotency_key

    @property
    def last_progress(self) -> GenerationProgress | None:
        """The most recent progress seen by any method of this handle."""
        return self.handle.last_progress

    @property
    def last_download(self) -> DownloadInfo | None:
        """The download answer the last :meth:`download` used (its ``download_type``,
        ``file_name`` and ``mime_type`` say what the server served)."""
        return self.handle.last_download

    @property
    def finished_after(self) -> float | None:
        """About how many seconds after the last wait began the generation ended."""
        return self.handle.finished_after

    def to_dict(self, *, include_secrets: bool = False) -> dict[str, Any]:
        """The handle as JSON-safe data, as :meth:`Generation.to_dict
        <diffio_async.Generation.to_dict>`."""
        return self.handle.to_dict(include_secrets=include_secrets)

    def __repr__(self) -> str:
        return (
            f"<SyncGeneration id={self.id!r} project_id={self.project_id!r} "
            f"model_key={self.model_key!r}>"
        )

    def progress(self, *, options: RequestOptions | None = None) -> GenerationProgress:
        """Poll the progress once."""
        return self._loop.call(lambda: self.handle.progress(options=options))

    def iter_progress(
        self,
        *,
        poll: PollPolicy | None = None,
        budget: PollBudget | None = None,
        expected_seconds: float | None = None,
    ) -> Iterator[GenerationProgress]:
        """Yield a progress snapshot each time something changed, until a terminal status
        (see :meth:`Generation.iter_progress <diffio_async.Generation.iter_progress>`; a
        ``budget`` may be shared by the waits of many threads). There is no ``router``: a
        :class:`~diffio_async.WebhookRouter` is fed by an async endpoint on your own loop."""
        snapshots = self.handle.iter_progress(
            poll=poll, budget=budget, expected_seconds=expected_seconds
        )
        try:
            yield from self._loop.iterate(snapshots)
        finally:
            with contextlib.suppress(Exception):  # a closed client has nothing to close
                self._loop.call(snapshots.aclose)

    def wait(
        self,
        *,
        timeout: float | None = 1800.0,
        on_progress: Callable[[GenerationProgress], object] | None = None,
        poll: PollPolicy | None = None,
        budget: PollBudget | None = None,
        expected_seconds: float | None = None,
    ) -> GenerationProgress:
        """Block until the generation completes; return the final progress.

        ``on_progress`` (a plain function, run in a worker thread) gets each changed
        snapshot. Raises :class:`~diffio_async.GenerationFailedError` when it fails and
        :class:`~diffio_async.WaitTimeoutError` when ``timeout`` seconds pass first (see
        :meth:`Generation.wait <diffio_async.Generation.wait>`). A ``budget`` may be shared
        by the waits of many threads. There is no ``router``: a
        :class:`~diffio_async.WebhookRouter` is fed by an async endpoint on your own loop.
        """
        callback = in_worker_thread("on_progress", on_progress)
        return self._loop.call(
            lambda: self.handle.wait(
                timeout=timeout,
                on_progress=callback,
                poll=poll,
                budget=budget,
                expected_seconds=expected_seconds,
            )
        )

    def download_info(
        self,
        *,
        download_type: DownloadTypeName | None = None,
        options: RequestOptions | None = None,
    ) -> DownloadInfo:
        """Ask for a fresh signed download URL (one request, no retry of 404/409); without
        ``download_type``, for what the server serves by default."""
        return self._loop.call(
            lambda: self.handle.download_info(download_type=download_type, options=options)
        )

    def download(
        self,
        dest: str | os.PathLike[str],
        *,
        download_type: DownloadTypeName | None = None,
        on_progress: ProgressCallback | None = None,
        not_ready_patience: float = 30.0,
        known_complete: bool = False,
        served_suffix: bool = False,
        overwrite_served: bool = False,
    ) -> Path:
        """Download the result to ``dest`` (a file path, or a folder for the server's name);
        return the path written.

        As :meth:`Generation.download <diffio_async.Generation.download>` (atomic and
        resumable; by default what the server serves, which :attr:`last_download` then
        says; ``served_suffix=True`` gives a file ``dest`` that suffix), except that
        ``on_progress(done, total)`` is a plain function, run in a worker thread, and there
        is no ``transfer_limiter`` (an anyio limiter belongs to one event loop).
        """
        callback = in_worker_thread("on_progress", on_progress)
        return self._loop.call(
            lambda: self.handle.download(
                dest,
                download_type=download_type,
                on_progress=callback,
                not_ready_patience=not_ready_patience,
                known_complete=known_complete,
                served_suffix=served_suffix,
                overwrite_served=overwrite_served,
            )
        )
