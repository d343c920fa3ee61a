"""One worker of a named batch that many machines share on a PostgreSQL ledger
(``restore_many(..., batch=BatchOptions(ledger="postgresql://...", name="nightly"))``, and
``diffio-async batch run``): register the sources, claim items, restore them with
``restore_many``'s per-item machinery, renew the leases meanwhile (the rule: ``ledger._claims``).

Each source is registered with where the walk placed its output (``a/x.wav`` for a folder's
file, ``x.wav`` for a file given directly: ``_sources.placements``), and a claimed item comes
back as a :class:`Placed` source, so every worker mirrors the folders registered, as
``restore`` does. The walk refuses a place that would leave ``output_dir`` (a hostile row);
that item, like any claimed item refused before a request, is recorded failed.

The items flow into ``restore_many`` as a lazy source: an item is claimed only when one of
the ``concurrency`` slots is free to take it, so a worker never sits on more leases than it
works. When nothing is claimable but items are unfinished (other workers hold them), it looks
again every ``poll`` seconds (a second by default) and whenever one of its own items ends: an
expired lease (a killed worker) is taken over then, and the worker ends once every item is
finished. An
item whose lease this worker lost (paused past it) is cancelled at once when a renewal says
so, and left to the others for the rest of the run (``restore_many`` takes each file once per
run), so the worker also ends once only such items are unfinished.

A failure that would fail every later file too (401, 402, an API 403) stops the batch for
every worker: this worker records it on the batch, the others see it at their next claim or
renewal (every third of a lease), cancel their work at once (what is recorded stays, so a
later run resumes it without paying twice) and end with :class:`BatchAbortedError` naming it.
A stopped batch gives no work until its stop is cleared (``ClaimingStore.resume``).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager

import anyio
import attrs

from ..errors import (
    AuthenticationError,
    BatchAbortedError,
    InvalidRequestError,
    LedgerError,
    PaymentRequiredError,
    PermissionDeniedError,
    UploadError,
)
from ..webhooks import WebhookRouter
from ._options import BatchOptions, RestoreOptions, checked_options
from ._services import FailureEvents, Services
from ._sources import Placed, placements
from .bulk import ItemResult, Source, _lone, restore_many
from .ledger import BatchStop, BatchStoppedError, ClaimingStore, Ledger, PostgresStore

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found, unused-ignore]

__all__ = ["restore_shared_batch", "work_batch"]

_MAX_POLL = 1.0  # seconds between looks for claimable items, at most


def restore_shared_batch(
    client: Services,
    failures: FailureEvents,
    sources: Source | Iterable[Source] | AsyncIterable[Source],
    *,
    output_dir: str | os.PathLike[str],
    options: RestoreOptions | None,
    batch: BatchOptions,
    on_stage: Callable[[str, str], object] | None,
    router: WebhookRouter | None,
) -> contextlib.AbstractAsyncContextManager[AsyncIterator[ItemResult]]:
    """``restore_many`` with a named batch (``batch.name``): one worker on the batch of the
    PostgreSQL ledger ``batch.ledger`` (see the module docstring)."""
    assert batch.name is not None and batch.ledger is not None, "BatchOptions checks a name"
    try:
        store = PostgresStore(
            batch.ledger, batch=batch.name, shared=True, lease_seconds=batch.lease_seconds
        )
    except LedgerError as exc:
        raise InvalidRequestError(str(exc)) from None
    return work_batch(
        client,
        failures,
        store,
        sources,
        output_dir=output_dir,
        options=options,
        batch=batch,
        on_stage=on_stage,
        router=router,
    )


@asynccontextmanager
async def work_batch(
    client: Services,
    failures: FailureEvents,
    store: ClaimingStore,
    sources: Source | Iterable[Source] | AsyncIterable[Source] = (),
    *,
    output_dir: str | os.PathLike[str],
    options: RestoreOptions | None = None,
    batch: BatchOptions | None = None,
    on_stage: Callable[[str, str], object] | None = None,
    router: WebhookRouter | None = None,
    renew_every: float | None = None,
    poll: float | None = None,
) -> AsyncIterator[AsyncIterator[ItemResult]]:
    """Register ``sources`` on the batch of ``store`` (a shared store, not open yet), then work
    it until every item is finished; yield the results of the items this worker finished, in
    completion order. Leases are renewed every ``renew_every`` seconds and claimable items
    looked for every ``poll`` seconds (by default a third of ``batch.lease_seconds``, the
    latter at most 1). Raises :class:`BatchAbortedError` when the batch stops (see the module
    docstring)."""
    batch = checked_options(BatchOptions, "batch", batch)
    if renew_every is None:
        renew_every = batch.lease_seconds / 3
    if poll is None:
        poll = min(batch.lease_seconds / 3, _MAX_POLL)
    placed = await _placements(sources)  # the files, by the ledger's keys, before any request
    # Outputs are named as "rename" names them: collisions cannot be checked up front across
    # machines, and those names are the same on every machine.
    batch = attrs.evolve(batch, on_collision="rename")
    opened = anyio.Event()  # restore_many opens the store: the work below starts then
    lost: set[str] = set()  # items whose lease this worker lost: the others finish them
    scopes: dict[str, anyio.CancelScope] = {}  # the items in flight, by key (restore_many's)
    stops: list[BatchStop] = []
    finished = [anyio.Event()]  # set when an item of this worker ends (then a new one)

    try:
        async with anyio.create_task_group() as worker:

            def abort(stop: BatchStop) -> None:
                stops.append(stop)
                worker.cancel_scope.cancel()

            async def claimed() -> AsyncGenerator[str | Placed, None]:
                opened.set()
                try:
                    stop = await store.stopped()
                    if stop is None:
                        await store.add_sources(placed)
                        while True:
                            for source in await store.claim(1, excluding=lost):
                                relative = store.relative_output(source)
                                # Named where the walk that registered it placed it (an
                                # older row has no place: named after the file).
                                yield (
                                    source
                                    if relative is None
                                    else Placed(source=source, relative=relative)
                                )
                                break
                            else:
                                if await store.unfinished(excluding=lost) == 0:
                                    return
                                # Look again after ``poll``, or once an item of this worker
                                # ends: its last one ending may finish the batch.
                                with anyio.move_on_after(poll):
                                    await finished[0].wait()
                                finished[0] = anyio.Event()
                    abort(stop)
                except BatchStoppedError as exc:
                    abort(exc.stop)
                await anyio.sleep_forever()  # cancelled at once by the abort

            async def watched(
                results: AsyncIterator[ItemResult],
            ) -> AsyncGenerator[ItemResult, None]:
                try:
                    async for item in results:
                        if item.stage == "lease":
                            lost.add(item.source)
                        elif item.stage == "source" and item.error is not None:
                            await _record_refusal(store, item.source, item.error)
                        finished[0].set()
                        yield item
                except BatchAbortedError as exc:  # seen here first: every worker stops
                    if _stops_every_worker(exc.cause):
                        with anyio.CancelScope(shield=True), contextlib.suppress(LedgerError):
                            await store.stop(f"{type(exc.cause).__name__}: {exc.cause}")
                    raise

            async def renew() -> None:
                await opened.wait()
                while True:
                    await anyio.sleep(renew_every)
                    if store.closed:
                        continue
                    try:
                        taken = await store.renew()
                    except BatchStoppedError as exc:
                        abort(exc.stop)
                        return
                    except LedgerError:  # the database is away: the next try may pass; a lost
                        continue  # item is refused at its next write (fencing)
                    for source in taken:  # another worker has it: this one stops at once
                        lost.add(source)
                        scope = scopes.get(source)
                        if scope is not None:
                            scope.cancel()

            worker.start_soon(renew)
            claims = claimed()
            try:
                async with (
                    restore_many(
                        client,
                        failures,
                        claims,
                        output_dir=output_dir,
                        options=options,
                        batch=batch,
                        on_stage=on_stage,
                        router=router,
                        store=store,
                        item_scopes=scopes,
                    ) as results,
                    contextlib.aclosing(watched(results)) as items,
                ):
                    yield items
            finally:
                worker.cancel_scope.cancel()
                with anyio.CancelScope(shield=True):
                    await claims.aclose()  # left where the walk stopped: closed here, not by GC
    except BaseExceptionGroup as group:
        # The caller's own exception (BatchAbortedError, or whatever its loop raised) comes
        # back wrapped by the task group: give it back as it was raised.
        lone = _lone(group)
        if lone is not group:
            raise lone from None
        raise
    if stops:
        stop = stops[0]
        raise BatchAbortedError(
            f"the batch {store.batch!r} was stopped by worker {stop.worker} "
            f"at {stop.at:%Y-%m-%d %H:%M:%S} UTC: {stop.reason}",
            cause=BatchStoppedError(f"the batch was stopped: {stop.reason}", stop=stop),
        )


async def _record_refusal(store: ClaimingStore, source: str, error: BaseException) -> None:
    """Record a claimed item refused before any request (a file gone, an output path that
    would leave ``output_dir``) as failed, so that the batch can finish; ``restore_many``
    records nothing for it. A source that is not this worker's item is left alone."""
    with contextlib.suppress(LedgerError):
        await Ledger(store).record(source, state="failed", error=str(error), error_stage="source")


def _stops_every_worker(error: BaseException) -> bool:
    """Whether the API refused this worker for the account or key (401, 402, an API 403:
    see ``bulk._is_fatal``), which stops the batch, not a fault of this process alone (an
    event loop mismatch)."""
    cause = error.__cause__ if isinstance(error, UploadError) else error
    return isinstance(cause, AuthenticationError | PaymentRequiredError | PermissionDeniedError)


async def _placements(
    sources: Source | Iterable[Source] | AsyncIterable[Source],
) -> list[tuple[str, str]]:
    """The files ``sources`` names, by the ledger's keys, each with where its output goes
    under ``output_dir`` (``_sources.placements``); a refused source raises."""
    if isinstance(sources, bytes) or not isinstance(
        sources, str | os.PathLike | Iterable | AsyncIterable
    ):
        raise InvalidRequestError("sources must be a path, or an (async) iterable of paths")
    return await placements(sources)
