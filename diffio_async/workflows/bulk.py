"""Restore many files: a fixed pool of workers, per-item results, adaptive concurrency, resume.

``client.restore_many(sources, output_dir=...)`` is an async context manager yielding an async
iterator of :class:`ItemResult` in completion order::

    batch = BatchOptions(concurrency=16, ledger="batch.sqlite")
    async with client.restore_many(paths, output_dir="out/", batch=batch) as results:
        async for item in results:
            print(item.source, item.ok, item.error)

How it is built:

* A producer walks ``sources`` lazily (a list, any iterable or async iterable, or a folder)
  into an unbuffered channel; ``concurrency`` workers pull from it. Memory is
  O(concurrency), not O(files).
* Each worker runs one item at a time: upload, create the generation, wait, download. Uploads
  and downloads also need a slot of the transfer limiter (``transfer_concurrency``), so a file
  waiting for the server never holds bandwidth. Sustained 429s cut the items in flight by a
  quarter, at most once per typical item duration; finished items grow it back quickly (the
  rule: :mod:`diffio_async.workflows._adaptive`).
* An item's failure is its own :class:`ItemResult`. A transient failure (connection, 5xx, 429,
  a broken transfer) is retried from the item's last finished step, with capped, jittered
  backoff, for ``BatchOptions.retry_for`` seconds (15 minutes by default).
  Failures that would hit every later item too (401, 402 ``paymentFailed`` /
  ``spendLimitExceeded``, an API 403) stop the batch: the workers are cancelled and the
  iterator raises :class:`BatchAbortedError` after the results already made.
* With a ``ledger`` (a SQLite file, see :mod:`diffio_async.workflows.ledger`) each step is recorded
  before the next begins, and the idempotency key of a generation is derived from the file's
  content hash, model, options and project id: re-running the same batch skips finished
  files, reuses uploaded projects and waits on created generations, and even a crash between
  a create request and its ledger write cannot create (and bill) a second generation.
* Cancelling (leaving the ``async with`` early, or cancelling the surrounding scope) stops the
  workers at once; downloads remove their temp files, so no partial output is left.
* Sources and ``output_dir`` may be URLs on object storage (``s3://bucket/in/``, any fsspec
  protocol; the ``cloud`` extra): a source streams from the bucket into the upload, an output
  from the media URL into the bucket, committed only when whole (``_media.object_sink``); the
  content hash is read from the object's bytes, its ledger key is its URL.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import inspect
import json
import math
import os
import sys
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Collection,
    Iterable,
    Mapping,
)
from contextlib import asynccontextmanager
from pathlib import Path, PurePath, PurePosixPath
from typing import Any

import anyio
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from .._catalog import DEFAULT_MODEL_BY_ERA
from .._checks import path_like
from .._http.retry import RetryPolicy, delays, hinted_delay
from .._media.download import DownloadSink, is_served_name, served_name, temp_prefix
from .._media.object_sink import object_sink
from .._media.object_source import object_media_source
from .._media.object_store import StoredObject, bucket_missing, is_url, locate, object_exists
from ..errors import (
    APIConnectionError,
    AuthenticationError,
    BatchAbortedError,
    DiffioError,
    DownloadError,
    EventLoopMismatchError,
    GenerationFailedError,
    InternalServerError,
    InvalidRequestError,
    ModelRetiredError,
    OutputCollisionError,
    PaymentRequiredError,
    PermissionDeniedError,
    RateLimitError,
    UploadError,
    WaitTimeoutError,
)
from ..resources._polling import PollBudget, PollPolicy
from ..resources.generation_handle import Generation, served_path
from ..resources.generations import new_idempotency_key
from ..types._model import _HandedOn
from ..webhooks import WebhookRouter
from ._adaptive import AdaptiveLimit
from ._options import BatchOptions, RestoreOptions, checked_options, without_download_type
from ._pace import Pace
from ._services import FailureEvents, Services
from ._sources import Job, Walker, collision_error, find_collisions, uploads_audio
from .ledger import (
    LeaseLostError,
    Ledger,
    LedgerEntry,
    LedgerStore,
    canonical_options,
    hash_file,
)
from .ledger._hashing import hash_object

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found, unused-ignore]

__all__ = ["ItemResult", "Source", "restore_many"]

Source = str | os.PathLike[str]
"""A file to restore: a path, or a URL on object storage (``s3://bucket/key``)."""

_SUFFIXES = {"audio": ".mp3", "transcript": ".json"}
"""The suffix of each download type's outputs (a video keeps its source's). With the default
download type (``None``) the server chooses what to serve, so an output's suffix is chosen at
its download (see ``_sources``): the planned name keeps the source's suffix, outputs are told
apart by their names without a media suffix, and the ledger records the name actually written
and what was served (``served_type``)."""

_SERVED_GUESSES = (".mp3",)
"""Beside the planned name, what an output with a served suffix is most likely called (the
audio; a video keeps its source's suffix): ledger owners and a killed run's temp files are
looked for under these names too."""

SAFETY_NET = PollPolicy(initial=10, factor=2, maximum=120, follow_progress=False)
"""How a batch with a webhook ``router`` polls (unless ``RestoreOptions.poll`` says): webhooks
wake each wait at once, and these slow polls only catch a delivery that never came."""


@attrs.frozen(kw_only=True)
class ItemResult(_HandedOn):
    """The outcome of one source.

    ``ok`` is true when the output is in place (``skipped`` when a ledger said it already
    was). On failure ``error`` is the exception and ``stage`` where it happened (``hash``,
    ``upload``, ``generation``, ``wait``, ``download``). ``project_id`` and ``generation_id``
    are whatever exists on the server; ``attempts`` counts tries of this item; ``timings``
    maps stages to seconds. ``output`` is the file written, or its URL (a ``str``) when
    ``output_dir`` is on object storage.
    """

    source: str
    ok: bool
    stage: str
    error: BaseException | None = None
    project_id: str | None = None
    generation_id: str | None = None
    output: Path | str | None = None
    attempts: int = 1
    skipped: bool = False
    timings: Mapping[str, float] = attrs.field(factory=dict)


def _is_fatal(error: BaseException) -> bool:
    """Whether ``error`` would fail every later item too (so the batch should stop)."""
    cause = error.__cause__ if isinstance(error, UploadError) else error
    if isinstance(cause, AuthenticationError | PaymentRequiredError | EventLoopMismatchError):
        return True
    if isinstance(cause, PermissionDeniedError):
        # A 403 from a signed URL or the edge host is about that URL (expired), not the key.
        return cause.api_call
    return False


_TRANSIENT = (
    APIConnectionError,
    InternalServerError,
    RateLimitError,
    DownloadError,
    UploadError,
    WaitTimeoutError,
)


@attrs.define
class _Settings:
    client: Services
    options: RestoreOptions
    retry_for: float | None
    ledger: Ledger | None
    transfers: anyio.CapacityLimiter
    adaptive: AdaptiveLimit
    on_stage: Callable[[str, str], object] | None
    budget: PollBudget
    pace: Pace
    router: WebhookRouter | None
    output_store: StoredObject | None = None
    """``output_dir`` on object storage (outputs are then paths on its filesystem)."""
    era_hint: str | None = None
    item_scopes: dict[str, anyio.CancelScope] | None = None  # see restore_many's item_scopes


class _Item:
    """One source going through the stages, with its progress kept in memory (and ledger)."""

    def __init__(self, job: Job, settings: _Settings) -> None:
        self.job = job
        self.settings = settings
        self.key = job.key
        self.project_id: str | None = None
        self.project_era: str | None = None
        self.generation: Generation | None = None
        self.generation_id: str | None = None
        self.idempotency_key: str | None = None
        self.complete = False
        self.output: Path | str | None = None  # the file (or object URL) written
        self.sweep_stale_parts = False
        self.timings: dict[str, float] = {}
        self.stage = "hash"

    async def _enter(self, stage: str) -> None:
        self.stage = stage
        if self.settings.on_stage is not None:
            result = self.settings.on_stage(self.job.source, stage)
            if inspect.isawaitable(result):
                await result

    async def _record(self, **changes: Any) -> None:
        if self.settings.ledger is not None:
            await self.settings.ledger.record(self.key, **changes)

    def _written_name(self, output: PurePath) -> str:
        """How the ledger records ``output``: its path, or its URL on object storage."""
        store = self.settings.output_store
        return str(output) if store is None else store.at(str(output)).url

    def _recorded_output(self, recorded: str) -> PurePath | None:
        """A recorded output as a path on the output filesystem (``None``: not on it)."""
        store = self.settings.output_store
        if store is None:
            return Path(recorded)
        prefix = f"{store.protocol}://"
        return PurePosixPath(recorded.removeprefix(prefix)) if recorded.startswith(prefix) else None

    async def _refuse_an_output_of_another(self, output: PurePath) -> None:
        """Raise if the ledger records ``output`` as another source's: an earlier batch on
        this ledger wrote there, and it is never overwritten."""
        ledger = self.settings.ledger
        name = self._written_name(output)
        owner = None if ledger is None else await ledger.output_owner(name, other_than=self.key)
        if owner is not None:
            raise OutputCollisionError(
                f"{self.job.source} would be written to {name}, which the ledger "
                f"records as the output of {owner}; use another output_dir",
                clashes={name: (owner, self.job.source)},
            )

    async def load(self) -> ItemResult | None:
        """Hash the file and read its ledger entry; a finished item returns its result."""
        ledger = self.settings.ledger
        if ledger is None:
            return None
        await self._enter("hash")
        for output in self._likely_outputs():
            await self._refuse_an_output_of_another(output)
        stored = self.job.stored
        size, digest = await (hash_file(self.key) if stored is None else hash_object(stored))
        entry = await ledger.register(
            self.key,
            size=size,
            content_hash=digest,
            model=self.settings.options.model or "auto",
            options=_recorded_settings(
                await ledger.get(self.key), self.settings.options.generation_settings()
            ),
        )
        if entry.state == "failed":
            entry = await ledger.retry(self.key)
        return await self._resume(entry)

    @property
    def _served_suffix(self) -> bool:
        """Whether the server chooses the output's type, hence its suffix."""
        return self.settings.options.download_type is None

    def _likely_outputs(self) -> list[PurePath]:
        """The planned output, and with a served suffix its likely other names."""
        planned = self.job.output
        if not self._served_suffix:
            return [planned]
        guesses = (served_name(planned, suffix) for suffix in _SERVED_GUESSES)
        return [planned, *(guess for guess in guesses if guess != planned)]

    def _is_planned(self, entry: LedgerEntry) -> bool:
        """Whether ``entry``'s recorded output is this item's planned output: the same path;
        with a served suffix, the same path but for the served suffix (``served_name``) when
        the server chose then too (``served_type`` recorded), or else (an explicit type, an
        older ledger) the MP3 of a source uploaded as audio, which is what the server serves
        it. So a transcript, or the MP3 of a video project, never stands for the default
        output."""
        recorded = None if entry.output_path is None else self._recorded_output(entry.output_path)
        if recorded is None:
            return False
        planned = self.job.output
        if not self._served_suffix:
            return recorded == planned
        if entry.served_type is not None:
            return recorded == planned or is_served_name(recorded, planned)
        content_type = self.settings.options.content_type
        audio = uploads_audio(self.key, content_type)
        return audio and recorded == served_name(planned, _SUFFIXES["audio"])

    async def _output_exists(self, recorded: str) -> Path | str | None:
        """The recorded output (a path, or a URL) when it is still there."""
        store = self.settings.output_store
        if store is None:
            return Path(recorded) if await anyio.Path(recorded).is_file() else None
        written = self._recorded_output(recorded)
        assert written is not None  # _is_planned checked it is on the output filesystem
        there = await anyio.to_thread.run_sync(object_exists, store.at(str(written)))
        return recorded if there else None

    async def _resume(self, entry: LedgerEntry) -> ItemResult | None:
        recorded = entry.output_path
        if entry.state == "downloaded" and self._is_planned(entry):
            assert recorded is not None
            output = await self._output_exists(recorded)
            if output is not None:
                self.output = output
                return ItemResult(
                    source=self.job.source,
                    ok=True,
                    stage="done",
                    project_id=entry.project_id,
                    generation_id=entry.generation_id,
                    output=output,
                    attempts=0,
                    skipped=True,
                )
        # An upload is reused only once it finished; a created generation is never created
        # again (its key is derived from the recorded project: idempotency_key_for).
        # A downloaded item whose output is gone, or that goes to a new output_dir now, is
        # downloaded again (that costs nothing: the generation is done).
        if entry.state in ("uploaded", "generation_created", "complete", "downloaded"):
            self.project_id = entry.project_id
            self.idempotency_key = entry.idempotency_key
        if entry.state in ("generation_created", "complete", "downloaded"):
            self.generation_id = entry.generation_id
        self.complete = entry.state in ("complete", "downloaded")
        # A run killed mid-download left a temp file beside the output: sweep it first.
        self.sweep_stale_parts = self.complete
        return None

    async def run(self) -> None:
        """Run the remaining stages once (raises on failure)."""
        client = self.settings.client
        if self.project_id is None:
            await self._enter("upload")
            started = anyio.current_time()
            options = self.settings.options
            stored = self.job.stored
            project = await client.projects.create(
                self.key
                if stored is None
                else object_media_source(stored, size=self.job.size, content_type=None),
                content_type=options.content_type,
                file_format=options.file_format,
                params=options.project_params,
                transfer_limiter=self.settings.transfers,
            )
            self.project_id, self.project_era = project.api_project_id, project.era
            self.timings["upload"] = anyio.current_time() - started
            if self.settings.ledger is not None:
                entry = await self.settings.ledger.record(
                    self.key, state="uploaded", project_id=self.project_id
                )
                self.idempotency_key = entry.idempotency_key
        if self.generation_id is None:
            await self._enter("generation")
            if self.idempotency_key is None:  # no ledger: one key for every try of this item
                self.idempotency_key = new_idempotency_key()
            started = anyio.current_time()
            self.generation = await self._create_generation()
            self.generation_id = self.generation.id
            self.timings["generation"] = anyio.current_time() - started
            await self._record(state="generation_created", generation_id=self.generation_id)
        fresh = self.generation is not None  # created just now: its whole run is ahead
        if self.generation is None:
            self.generation = client.generations.get(self.generation_id, project_id=self.project_id)
        if not self.complete:
            await self._enter("wait")
            started = anyio.current_time()
            options, pace = self.settings.options, self.settings.pace
            model = self.generation.model_key or options.model or "auto"
            size = self.job.size
            router = self.settings.router
            await self.generation.wait(
                timeout=options.timeout,
                poll=options.poll or (SAFETY_NET if router is not None else None),
                router=router,
                budget=self.settings.budget,
                expected_seconds=pace.expect(model, size) if fresh and size else None,
            )
            self.timings["wait"] = anyio.current_time() - started
            took = self.generation.finished_after
            if fresh and size and took is not None:
                pace.learn(model, size, took)
            self.complete = True
            await self._record(state="complete")
        await self._enter("download")
        started = anyio.current_time()
        if self.settings.output_store is not None:
            await self._download_object(self.generation, self.settings.output_store)
        else:
            await self._download_file(self.generation)
        self.timings["download"] = anyio.current_time() - started
        served = self.generation.last_download
        served_type = served.download_type if self._served_suffix and served else None
        await self._record(
            state="downloaded", output_path=str(self.output), served_type=served_type
        )

    async def _download_file(self, generation: Generation) -> None:
        planned = Path(self.job.output)
        sweep = [Path(name) for name in self._likely_outputs()] if self.sweep_stale_parts else []
        await anyio.to_thread.run_sync(_prepare_output, planned, sweep)
        download = functools.partial(
            generation.download,
            planned,
            download_type=self.settings.options.download_type,
            transfer_limiter=self.settings.transfers,
            known_complete=True,  # waited on above, or recorded complete by the ledger
            served_suffix=self._served_suffix,
        )
        try:
            self.output = await download()
        except DownloadError as exc:
            # A file at the served name: output_dir is the batch's, so it is replaced (an
            # earlier run's output), unless the ledger records it as another source's.
            if exc.existing is None:
                raise
            await self._refuse_an_output_of_another(Path(exc.existing))
            await self._record()  # fenced on a shared ledger: only the item's lease holder
            self.output = await download(overwrite_served=True)  # replaces an output

    async def _download_object(self, generation: Generation, store: StoredObject) -> None:
        """Stream the output into an object named for what is served; the object appears
        only once whole (``object_sink``), and only if this worker still holds the item (a
        ledger write, fenced on a shared ledger, just before the commit). Another source's
        recorded output is refused, any other object there (an earlier run's) is replaced."""
        planned = self.job.output

        @contextlib.asynccontextmanager
        async def open_sink(info: Any) -> AsyncIterator[DownloadSink]:
            target = served_path(planned, info) if self._served_suffix else planned
            if target != planned:
                await self._refuse_an_output_of_another(target)
            async with object_sink(store.at(str(target))) as sink:
                yield sink
                await self._record()  # a lost lease raises here: the object is discarded
            self.output = self._written_name(target)

        await generation._download_to_sink(
            open_sink,
            download_type=self.settings.options.download_type,
            transfer_limiter=self.settings.transfers,
            known_complete=True,  # waited on above, or recorded complete by the ledger
        )

    async def _create_generation(self) -> Generation:
        assert self.project_id is not None
        options = self.settings.options
        era = self.project_era or self.settings.era_hint or "a"
        if self.project_era:
            self.settings.era_hint = self.project_era
        create = self.settings.client.generations.create
        try:
            return await create(
                self.project_id,
                model=options.model or DEFAULT_MODEL_BY_ERA[era],
                sampling=options.sampling,
                params=options.params,
                idempotency_key=self.idempotency_key,
            )
        except ModelRetiredError as exc:
            # Only for the default model of a resumed item whose API era is unknown: the
            # server says which models it has (nothing was created, so the key is free).
            fallback = DEFAULT_MODEL_BY_ERA["b"]
            if options.model or fallback not in exc.supported_models:
                raise
            self.settings.era_hint = "b"
            return await create(
                self.project_id,
                model=fallback,
                sampling=options.sampling,
                params=options.params,
                idempotency_key=self.idempotency_key,
            )

    def result(self, *, ok: bool, error: BaseException | None, attempts: int) -> ItemResult:
        return ItemResult(
            source=self.job.source,
            ok=ok,
            stage="done" if ok else self.stage,
            error=error,
            project_id=self.project_id,
            generation_id=self.generation_id,
            output=self.output if ok else None,
            attempts=attempts,
            timings=dict(self.timings),
        )


async def _process(job: Job, settings: _Settings) -> ItemResult:
    scopes = settings.item_scopes
    with anyio.CancelScope() as scope:
        if scopes is not None:
            scopes[job.key] = scope
        try:
            return await _process_item(job, settings)
        except LeaseLostError as exc:
            # One of many workers on a shared ledger lost the item's lease: another worker has
            # it now, so this one writes nothing more for it (see ledger._claims).
            return ItemResult(source=job.source, ok=False, stage="lease", error=exc)
        finally:
            if scopes is not None:
                del scopes[job.key]
    # Cancelled through item_scopes: a renewal said the lease was lost.
    lost = LeaseLostError(f"{job.key!r}: this worker lost its lease; another worker has it")
    return ItemResult(source=job.source, ok=False, stage="lease", error=lost)


async def _process_item(job: Job, settings: _Settings) -> ItemResult:
    item = _Item(job, settings)
    if job.refused is not None:  # refused before any request (see _sources)
        item.stage = "source"
        return item.result(ok=False, error=job.refused, attempts=0)
    try:
        skipped = await item.load()
    except (OSError, DiffioError) as exc:
        return item.result(ok=False, error=exc, attempts=1)
    if skipped is not None:
        return skipped
    attempts = 0
    budget = settings.retry_for if settings.retry_for is not None else math.inf
    # The retry window opens at a transient failure and opens again whenever a later try got
    # further (finished a step): waiting in the limiter or for a long generation uses none of it.
    window: tuple[float, int] | None = None  # (when it opened, the stage it opened at)
    pauses = delays(_ITEM_BACKOFF)
    async with settings.adaptive.limiter:
        while True:
            attempts += 1
            try:
                if settings.ledger is not None:
                    await settings.ledger.mark_attempt(item.key)
                await item.run()
            except _TRANSIENT as exc:
                now, step = anyio.current_time(), _STAGE_ORDER.get(item.stage, 0)
                if window is None or step > window[1]:
                    window = (now, step)
                hint = getattr(exc, "retry_after", None)
                if hint is not None:
                    pause = hinted_delay(min(hint, _ITEM_BACKOFF.max_delay))
                else:
                    pause = next(pauses)
                if _is_fatal(exc) or now + pause > window[0] + budget:
                    await item._record(state="failed", error=str(exc), error_stage=item.stage)
                    return item.result(ok=False, error=exc, attempts=attempts)
                await anyio.sleep(pause)
                continue
            except GenerationFailedError as exc:
                # The server failed the generation: the next run creates a new one under a
                # new key (the only way one file is billed twice, see the module docstring).
                if settings.ledger is not None:
                    await settings.ledger.renew_generation(item.key, error=str(exc))
                return item.result(ok=False, error=exc, attempts=attempts)
            except (DiffioError, OSError) as exc:
                await item._record(state="failed", error=str(exc), error_stage=item.stage)
                return item.result(ok=False, error=exc, attempts=attempts)
            settings.adaptive.on_success()
            await item._enter("done")
            return item.result(ok=True, error=None, attempts=attempts)


_STAGE_ORDER = {"hash": 0, "upload": 1, "generation": 2, "wait": 3, "download": 4}
_ITEM_BACKOFF = RetryPolicy(initial_delay=0.5, max_delay=30.0)
"""The pause between tries of one item: the transport's backoff (doubling from 0.5 s, capped
at 30 s, jittered); a server hint is waited out instead, up to the same cap."""


def _prepare_output(output: Path, sweep: list[Path]) -> None:
    """Create the output's folder; delete the temp files that a killed earlier run left for
    the names in ``sweep`` (see ``_download.temp_prefix``; no glob: fnmatch caches one
    compiled pattern per name, which grows with the batch)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.is_dir():  # a download into a folder would put the file inside it
        raise IsADirectoryError(errno.EISDIR, "a folder is where the output should go", output)
    if not sweep:
        return
    prefixes = tuple(temp_prefix(name) for name in sweep)
    with os.scandir(output.parent) as entries:
        stale = [
            e.path for e in entries if e.name.startswith(prefixes) and e.name.endswith(".part")
        ]
    for path in stale:
        with contextlib.suppress(OSError):
            os.unlink(path)


@asynccontextmanager
async def restore_many(
    client: Services,
    failures: FailureEvents,
    sources: Source | Iterable[Source] | AsyncIterable[Source],
    *,
    output_dir: str | os.PathLike[str],
    options: RestoreOptions | None,
    batch: BatchOptions | None,
    on_stage: Callable[[str, str], object] | None,
    router: WebhookRouter | None,
    store: LedgerStore | None = None,
    item_scopes: dict[str, anyio.CancelScope] | None = None,
) -> AsyncIterator[AsyncIterator[ItemResult]]:
    """Restore every source; see the module docstring and ``AsyncDiffio.restore_many``.

    ``store``, a ledger store not open yet, is the ledger instead of ``batch.ledger`` (a
    shared store's worker: see ``ledger._claims``). ``item_scopes`` is filled with the cancel
    scope of each item in flight (by its key): cancelling one ends that item at once with a
    ``"lease"`` result (a shared store's worker that lost the item's lease)."""
    if isinstance(sources, bytes | Mapping) or not isinstance(
        sources, str | os.PathLike | Iterable | AsyncIterable
    ):
        raise InvalidRequestError("sources must be a path, or an (async) iterable of paths")
    options = checked_options(RestoreOptions, "options", options)
    batch = checked_options(BatchOptions, "batch", batch)
    if on_stage is not None and not callable(on_stage):
        raise InvalidRequestError("on_stage must be callable")
    if router is not None and not isinstance(router, WebhookRouter):
        raise InvalidRequestError(f"router must be a WebhookRouter, not {type(router).__name__}")
    out, output_store = await _output_root(output_dir)
    listed = [sources] if isinstance(sources, str) else sources
    if isinstance(listed, Collection) and (url := next(filter(is_url, listed), None)) is not None:
        await anyio.to_thread.run_sync(_url_usable, url)  # before any request
    suffix = None if options.download_type is None else _SUFFIXES.get(options.download_type, "")
    clashes: dict[str, list[str]] = {}
    if isinstance(sources, str | os.PathLike | Collection):  # not lazy: look at it all first
        clashes = await find_collisions(
            sources, out, suffix, options.content_type, output_store=output_store
        )
        if clashes and batch.on_collision == "error":
            raise collision_error(clashes)

    where = store if store is not None else batch.ledger
    opened = await Ledger.open(where) if where is not None else None
    pace = Pace()
    adaptive = AdaptiveLimit(batch.concurrency, typical_seconds=pace.typical)
    fatal: list[BaseException] = []
    settings = _Settings(
        client=client,
        options=options,
        retry_for=batch.retry_for,
        ledger=opened,
        transfers=anyio.CapacityLimiter(batch.transfers),
        adaptive=adaptive,
        on_stage=on_stage,
        budget=PollBudget(batch.polls_per_second),
        pace=pace,
        router=router,
        output_store=output_store,
        item_scopes=item_scopes,
    )
    send_results, receive_results = anyio.create_memory_object_stream[ItemResult](batch.concurrency)
    failures.add_failure_listener(adaptive.on_failure)
    try:
        async with anyio.create_task_group() as outer:
            walker = Walker(
                out,
                suffix,
                batch.on_collision,
                contested=clashes,
                content_type=options.content_type,
                output_store=output_store,
            )
            outer.start_soon(
                _run_pool, walker.jobs(sources), settings, batch.concurrency, send_results, fatal
            )
            results = _results(receive_results, fatal)
            try:
                yield results
            finally:
                outer.cancel_scope.cancel()
                with anyio.CancelScope(shield=True):
                    await results.aclose()
    except BaseExceptionGroup as group:
        # The caller's own exception (BatchAbortedError, or whatever its loop raised), or a
        # source refused while walking, comes back wrapped by the task groups (one or two
        # deep); give it back as it was raised.
        lone = _lone(group)
        if lone is not group:
            raise lone from None
        raise
    finally:
        send_results.close()  # no-ops when the pool and the iterator closed them already
        receive_results.close()
        failures.remove_failure_listener(adaptive.on_failure)
        if opened is not None:
            with anyio.CancelScope(shield=True):
                await opened.aclose()


async def _output_root(
    output_dir: str | os.PathLike[str],
) -> tuple[PurePath, StoredObject | None]:
    """``output_dir`` checked: a local folder (created, writable), or a URL on object storage
    (its filesystem known; nothing is created there until an output is whole)."""
    if isinstance(output_dir, str) and is_url(output_dir):
        store = await anyio.to_thread.run_sync(
            functools.partial(locate, output_dir, what="output_dir")
        )
        if await anyio.to_thread.run_sync(bucket_missing, store):
            # Else every item would be paid for, then fail at its download.
            raise InvalidRequestError(f"output_dir {store.url}: no such bucket")
        return PurePosixPath(store.path), store
    out = Path(path_like("output_dir", output_dir))
    try:
        await anyio.Path(out).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidRequestError(f"cannot create output_dir {out}: {exc.strerror}") from None
    if not os.access(out, os.W_OK):
        raise InvalidRequestError(f"cannot write to {out}")
    return out, None


def _url_usable(url: str) -> None:
    """Raise :class:`ConfigurationError` when the ``cloud`` extra (or the package of
    ``url``'s protocol) is missing; any other problem of the URL fails its own item."""
    with contextlib.suppress(InvalidRequestError):
        locate(url)


def _recorded_settings(
    entry: LedgerEntry | None, wanted: dict[str, Any]
) -> Mapping[str, Any] | str:
    """The settings to register an item with: ``wanted``, or what ``entry`` recorded when the
    two differ only by the ``downloadType`` that ledgers kept before the download type stopped
    deciding a generation (so a batch started then resumes on its project and generation, under
    its idempotency key, instead of paying again)."""
    if entry is None:
        return wanted
    recorded = without_download_type(entry.options)
    if recorded is not None and recorded == json.loads(canonical_options(wanted)):
        return entry.options
    return wanted


def _lone(error: BaseException) -> BaseException:
    """The one exception inside nested single-exception groups (else ``error`` itself)."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error


async def _results(
    receive: MemoryObjectReceiveStream[ItemResult], fatal: list[BaseException]
) -> AsyncGenerator[ItemResult, None]:
    async with receive:
        async for result in receive:
            yield result
    if fatal:
        raise BatchAbortedError(
            f"the batch stopped: {fatal[0]} (every later file would fail the same way)",
            cause=fatal[0],
        )


async def _run_pool(
    jobs: AsyncGenerator[Job, None],
    settings: _Settings,
    workers: int,
    results: MemoryObjectSendStream[ItemResult],
    fatal: list[BaseException],
) -> None:
    send_jobs, receive_jobs = anyio.create_memory_object_stream[Job](0)
    # The next source is taken only once a worker is free for it, never one ahead: a shared
    # batch's source claims an item when taken, and an item claimed ahead would wait a whole
    # item's time while another machine's worker sat idle.
    idle = anyio.Semaphore(workers)
    async with results, anyio.create_task_group() as pool:

        async def produce() -> None:
            async with send_jobs, contextlib.aclosing(jobs):
                while True:
                    await idle.acquire()
                    try:
                        job = await anext(jobs)
                    except StopAsyncIteration:
                        return
                    await send_jobs.send(job)

        async def work(jobs: MemoryObjectReceiveStream[Job]) -> None:
            async with jobs:
                async for job in jobs:
                    result = await _process(job, settings)
                    await results.send(result)
                    idle.release()
                    if result.error is not None and _is_fatal(result.error):
                        fatal.append(result.error)
                        pool.cancel_scope.cancel()
                        return

        pool.start_soon(produce)
        async with receive_jobs:
            for _ in range(workers):
                pool.start_soon(work, receive_jobs.clone())
