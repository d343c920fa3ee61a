"""``AsyncDiffio``: configuration, lifecycle and the resource groups."""

from __future__ import annotations

import copy
import os
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from types import TracebackType

import httpx2

from ._http.retry import RetryPolicy
from ._http.transport import (
    DEFAULT_BASE_URL,
    DEFAULT_TIMEOUT,
    AuthHeader,
    RequestOptions,
    Timeout,
    Transport,
)
from ._media.upload import ProgressCallback, UploadSource
from .errors import ConfigurationError
from .resources import Account, ApiKeys, Generations, Projects, Usage, Webhooks
from .types import GenerationProgress
from .webhooks import WebhookRouter
from .workflows._options import BatchOptions, RestoreOptions
from .workflows._shared_batch import restore_shared_batch
from .workflows.bulk import ItemResult, Source, restore_many
from .workflows.restore import RestoreResult, restore

__all__ = ["AsyncDiffio"]


class AsyncDiffio:
    """An async client for the Diffio API (works on asyncio and trio).

    ``api_key`` defaults to ``$DIFFIO_API_KEY`` and ``base_url`` to ``$DIFFIO_API_BASE_URL``,
    then ``https://api.diffio.ai``; ``/v1`` is appended unless the base already ends with it.
    ``auth_header`` picks how the key is sent: ``"authorization"`` (``Bearer``, the default),
    ``"x-api-key"`` or ``"xi-api-key"``. ``timeout`` is seconds or a :class:`Timeout` (per
    phase, plus a ``total`` deadline per call); ``max_retries`` is a count or a
    :class:`RetryPolicy`. An ``http_client`` you pass stays yours: it is used with absolute
    URLs (so our base URL still applies) and never closed by us.

    Use it as ``async with AsyncDiffio() as client: ...`` or call :meth:`aclose`. Share one
    client per event loop; :meth:`with_options` makes cheap copies that share its pool.
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float | Timeout = DEFAULT_TIMEOUT,
        max_retries: int | RetryPolicy = 2,
        http_client: httpx2.AsyncClient | None = None,
        auth_header: AuthHeader = "authorization",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get("DIFFIO_API_KEY")
        if key is None or (isinstance(key, str) and not key.strip()):
            raise ConfigurationError(
                "no API key: pass api_key=... or set DIFFIO_API_KEY "
                "(for offline work, run the emulator: diffio-async emulator)"
            )
        url = base_url or os.environ.get("DIFFIO_API_BASE_URL") or DEFAULT_BASE_URL
        self._transport = Transport(
            api_key=key,
            base_url=url,
            auth_header=auth_header,
            timeout=timeout,
            max_retries=max_retries,
            headers=headers,
            http_client=http_client,
        )
        self._attach_resources()

    def _attach_resources(self) -> None:
        self.projects = Projects(self._transport)
        """Projects: create (with upload), list, list generations, complete upload."""
        self.generations = Generations(self._transport)
        """Generations: create, progress, download info, handles."""
        self.webhooks = Webhooks(self._transport)
        """Webhook endpoints and test events."""
        self.api_keys = ApiKeys(self._transport)
        """Scoped API keys (admin keys only)."""
        self.usage = Usage(self._transport)
        """Usage and billing counters."""
        self.account = Account(self._transport)
        """Account billing settings."""

    @property
    def base_url(self) -> str:
        """The API base URL in use."""
        return self._transport.base_url

    @property
    def closed(self) -> bool:
        """Whether the client has been closed."""
        return self._transport.closed

    def __repr__(self) -> str:
        return f"<AsyncDiffio base_url={self.base_url!r}>"

    def with_options(
        self,
        *,
        api_key: str | None = None,
        timeout: float | Timeout | None = None,
        max_retries: int | RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> AsyncDiffio:
        """A copy with some settings changed that shares this client's connection pool.

        Closing the copy does not close the pool; closing this client closes it for both.
        """
        options = RequestOptions(
            api_key=api_key, timeout=timeout, max_retries=max_retries, headers=headers
        )
        clone = copy.copy(self)  # the resource groups are rebuilt below, over the new transport
        clone._transport = self._transport.copy(options)
        clone._attach_resources()
        return clone

    async def restore(
        self,
        source: UploadSource,
        *,
        output: str | os.PathLike[str] | None,
        max_bytes: int | None = None,
        options: RestoreOptions | None = None,
        idempotency_key: str | None = None,
        on_progress: Callable[[GenerationProgress], object] | None = None,
        on_upload_progress: ProgressCallback | None = None,
    ) -> RestoreResult:
        """Restore one recording: upload, create a generation, wait, download.

        ``source`` is a path, bytes, a :class:`~diffio_async.MediaSource` or a readable binary
        file object, sync or async (an open file, ``io.BytesIO``, a FastAPI ``UploadFile``, an
        aiohttp multipart field: see ``MediaSource.from_file``); one that can be read only
        once is streamed in order, never held whole in memory.
        ``output`` is a file path, a folder (the server's file name is used), or ``None``:
        the result comes back in memory as ``result.content``, refused with a
        :class:`~diffio_async.DownloadError` cause once it passes ``max_bytes`` (128 MiB by
        default; only with ``output=None``). ``options`` (a
        :class:`~diffio_async.RestoreOptions`) picks the model, the download type, the
        project's and the generation's settings, the upload's content type and the wait; by
        default the current model of the server's API era and whatever the server serves by
        default (the video of a project with video, otherwise the MP3 audio; a file
        ``output`` then takes that suffix). On failure raises
        :class:`~diffio_async.RestoreError` whose ``stage``, ``project_id`` and
        ``generation_id`` say what exists on the server (and may be billed); ``__cause__`` is
        the original error.
        """
        return await restore(
            self,
            source,
            output=output,
            max_bytes=max_bytes,
            options=options,
            idempotency_key=idempotency_key,
            on_progress=on_progress,
            on_upload_progress=on_upload_progress,
        )

    def restore_many(
        self,
        sources: Source | Iterable[Source] | AsyncIterable[Source],
        *,
        output_dir: str | os.PathLike[str],
        options: RestoreOptions | None = None,
        batch: BatchOptions | None = None,
        on_stage: Callable[[str, str], object] | None = None,
        router: WebhookRouter | None = None,
    ) -> AbstractAsyncContextManager[AsyncIterator[ItemResult]]:
        """Restore many files with a bounded pool of workers; results in completion order.

        ``sources`` is a list, any (async) iterable of paths, or a folder (walked lazily).
        Outputs go to ``output_dir``, named after each source; folders keep their layout.
        One file is one item however often it is given; two sources that would write one
        output are refused up front (:class:`~diffio_async.OutputCollisionError`) unless
        ``batch.on_collision="rename"``. ``options`` (a :class:`~diffio_async.RestoreOptions`)
        applies to every file; ``batch`` (a :class:`~diffio_async.BatchOptions`) sets the
        concurrency, the ledger that makes the batch resumable and billing-safe, the tries
        per file and the collision rule. ``on_stage(source, stage)`` reports each item's
        progress. With a ``router`` (:class:`~diffio_async.webhooks.WebhookRouter`, fed by
        your webhook endpoint) each delivery wakes its file's wait at once, and polling slows
        to a safety net. See :mod:`diffio_async.workflows.bulk`::

            async with client.restore_many(paths, output_dir="out/") as results:
                async for item in results:
                    print(item.source, item.ok, item.error)

        With ``batch.name`` (and a ``postgresql://`` ``batch.ledger``) the call is one worker
        of a batch that many machines share: ``sources`` are registered once however many
        workers give them (``()`` joins the batch as it is), files are claimed under leases
        until the whole batch is finished, and the results are those of the files this worker
        finished. A 401, 402 or API 403 on any worker stops them all
        (:class:`~diffio_async.BatchAbortedError` naming it). See
        :mod:`diffio_async.workflows._shared_batch`::

            batch = BatchOptions(ledger="postgresql://host/db", name="nightly")
            async with client.restore_many((), output_dir="out/", batch=batch) as results:
                async for item in results: ...
        """
        if isinstance(batch, BatchOptions) and batch.name is not None:
            return restore_shared_batch(
                self,
                self._transport,
                sources,
                output_dir=output_dir,
                options=options,
                batch=batch,
                on_stage=on_stage,
                router=router,
            )
        return restore_many(
            self,
            self._transport,
            sources,
            output_dir=output_dir,
            options=options,
            batch=batch,
            on_stage=on_stage,
            router=router,
        )

    async def aclose(self) -> None:
        """Close the connection pool (if the SDK created it). Safe to call more than once."""
        await self._transport.aclose()

    async def __aenter__(self) -> AsyncDiffio:
        self._transport._check_open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
