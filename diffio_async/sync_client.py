"""``Diffio``: the blocking client, for scripts, web apps and notebooks.

It runs one event loop in a background thread (anyio's blocking portal), owns an
:class:`~diffio_async.AsyncDiffio` on that loop, and turns each call into a blocking one.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType

from ._http.retry import RetryPolicy
from ._http.transport import DEFAULT_TIMEOUT, AuthHeader, Timeout
from ._media.upload import ProgressCallback
from ._sync._loop import Backend, LoopThread, checked_backend, in_worker_thread
from ._sync.resources import (
    SyncAccount,
    SyncApiKeys,
    SyncGenerations,
    SyncProjects,
    SyncUploadSource,
    SyncUsage,
    SyncWebhooks,
    checked_sync_source,
)
from .client import AsyncDiffio
from .errors import ClientClosedError
from .types import GenerationProgress
from .workflows._options import BatchOptions, RestoreOptions
from .workflows.bulk import ItemResult, Source
from .workflows.restore import RestoreResult

__all__ = ["Diffio"]


class Diffio:
    """A blocking client for the Diffio API, safe to share between threads.

    Takes the settings of :class:`~diffio_async.AsyncDiffio` (``api_key`` from
    ``$DIFFIO_API_KEY``, ``base_url`` from ``$DIFFIO_API_BASE_URL``, ``timeout``,
    ``max_retries``, ``auth_header``, ``headers``) and ``backend`` (``"asyncio"`` or
    ``"trio"``), the event loop it runs in its own thread. There is no ``http_client``: an
    ``httpx2.AsyncClient`` belongs to the loop that uses it, and this loop is private.

    Every method of ``client.projects``, ``client.generations``, ... and :meth:`restore`
    blocks until its answer; any number of threads may call one client at once (one
    module-level client serves a whole web app). Callbacks (``on_progress``, ...) are plain
    functions, run in a worker thread. It works from inside a running event loop too (a
    notebook cell), blocking that loop for the call.

    Use it as ``with Diffio() as client: ...`` or call :meth:`close`, which cancels calls
    still running in other threads and stops the loop's thread.
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float | Timeout = DEFAULT_TIMEOUT,
        max_retries: int | RetryPolicy = 2,
        auth_header: AuthHeader = "authorization",
        headers: Mapping[str, str] | None = None,
        backend: Backend = "asyncio",
    ) -> None:
        checked_backend(backend)
        self._async = AsyncDiffio(
            api_key,
            base_url,
            timeout=timeout,
            max_retries=max_retries,
            auth_header=auth_header,
            headers=headers,
        )
        self._loop = LoopThread(self._async, backend=backend)
        self._owns_loop = True
        self._attach_resources()

    def _attach_resources(self) -> None:
        self.projects = SyncProjects(self._loop, self._async.projects)
        """Projects: create (with upload), list, list generations, complete upload."""
        self.generations = SyncGenerations(self._loop, self._async.generations)
        """Generations: create, progress, download info, handles."""
        self.webhooks = SyncWebhooks(self._loop, self._async.webhooks)
        """Webhook endpoints and test events."""
        self.api_keys = SyncApiKeys(self._loop, self._async.api_keys)
        """Scoped API keys (admin keys only)."""
        self.usage = SyncUsage(self._loop, self._async.usage)
        """Usage and billing counters."""
        self.account = SyncAccount(self._loop, self._async.account)
        """Account billing settings."""

    @property
    def base_url(self) -> str:
        """The API base URL in use."""
        return self._async.base_url

    @property
    def closed(self) -> bool:
        """Whether the client (or the one it was copied from) has been closed."""
        return self._loop.closed or self._async.closed

    def __repr__(self) -> str:
        return f"<Diffio base_url={self.base_url!r}>"

    def with_options(
        self,
        *,
        api_key: str | None = None,
        timeout: float | Timeout | None = None,
        max_retries: int | RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Diffio:
        """A copy with some settings changed that shares this client's loop and pool.

        Closing the copy does not close them; closing this client closes them for both.
        """
        clone = copy.copy(self)  # the resource groups are rebuilt below, over the new client
        clone._async = self._async.with_options(
            api_key=api_key, timeout=timeout, max_retries=max_retries, headers=headers
        )
        clone._owns_loop = False
        clone._attach_resources()
        return clone

    def restore(
        self,
        source: SyncUploadSource,
        *,
        output: str | os.PathLike[str] | None,
        max_bytes: int | None = None,
        options: RestoreOptions | None = None,
        idempotency_key: str | None = None,
        on_progress: Callable[[GenerationProgress], object] | None = None,
        on_upload_progress: ProgressCallback | None = None,
    ) -> RestoreResult:
        """Restore one recording: upload, create a generation, wait, download.

        As :meth:`AsyncDiffio.restore <diffio_async.AsyncDiffio.restore>`, blocking:
        ``source`` is a path, bytes, a :class:`~diffio_async.MediaSource` or a readable
        binary file object with a sync ``read`` (an open file, ``io.BytesIO``, a FastAPI
        ``UploadFile``'s ``.file``); one whose reads are async is refused with
        :class:`~diffio_async.InvalidRequestError`. ``output`` is a file, a folder or
        ``None`` (the bytes come back as ``result.content``, at most ``max_bytes``). The
        callbacks are plain functions, run in a worker thread. The result's ``generation``
        is the async handle: to follow it from blocking code, rebuild one with
        ``client.generations.get(result.generation_id, project_id=result.project_id)``.
        """
        checked_sync_source(source)
        progress = in_worker_thread("on_progress", on_progress)
        upload_progress = in_worker_thread("on_upload_progress", on_upload_progress)
        return self._loop.call(
            lambda: self._async.restore(
                source,
                output=output,
                max_bytes=max_bytes,
                options=options,
                idempotency_key=idempotency_key,
                on_progress=progress,
                on_upload_progress=upload_progress,
            )
        )

    @contextmanager
    def restore_many(
        self,
        sources: Source | Iterable[Source],
        *,
        output_dir: str | os.PathLike[str],
        options: RestoreOptions | None = None,
        batch: BatchOptions | None = None,
        on_stage: Callable[[str, str], object] | None = None,
    ) -> Iterator[Iterator[ItemResult]]:
        """Restore many files with a bounded pool of workers; results in completion order.

        A context manager yielding a plain iterator of :class:`~diffio_async.ItemResult`::

            with client.restore_many(paths, output_dir="out/") as results:
                for item in results:
                    print(item.source, item.ok, item.error)

        The workers run on the client's loop while you iterate; leaving the ``with`` block
        early cancels the files still running (no partial output is left). Everything else
        is :meth:`AsyncDiffio.restore_many <diffio_async.AsyncDiffio.restore_many>`:
        ``sources`` (a list, an iterable or a folder), ``options``, ``batch`` (concurrency,
        ledger, retries; with a ``name``, one worker of a batch shared on PostgreSQL), and
        ``on_stage(source, stage)``, here a plain function run in a worker thread. To have
        all results at once: ``list(results)`` inside the block. There is no ``router``: a
        :class:`~diffio_async.WebhookRouter` is fed by an async webhook endpoint on your
        event loop; the batch polls (use ``AsyncDiffio`` to be woken by webhooks).
        """
        stage = in_worker_thread("on_stage", on_stage)
        batch_run = self._async.restore_many(
            sources, output_dir=output_dir, options=options, batch=batch, on_stage=stage
        )
        with self._loop.enter(batch_run) as results:
            yield self._loop.iterate(results)

    def close(self) -> None:
        """Close the client: cancel calls still running, close the connection pool, stop the
        loop and its thread. Safe to call twice; a copy only closes itself."""
        if not self._owns_loop:
            if not self._loop.closed:
                self._loop.call(self._async.aclose)
            return
        self._loop.close()

    def __enter__(self) -> Diffio:
        if self.closed:
            raise ClientClosedError("the Diffio client is closed")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
