"""One worker of a shared batch (``diffio-async batch run``): claim items from the PostgreSQL
ledger, restore them with ``restore_many``'s per-item machinery, renew the leases meanwhile.

The items flow into ``restore_many`` as a lazy source: an item is claimed only when one of
the ``concurrency`` slots is about to take it (plus the one the source hands on next), so a
worker never sits on more leases than it works. When nothing is claimable but items are
unfinished (other workers hold them), it looks again every ``poll`` seconds: an expired lease
(a killed worker) is taken over then, and the worker ends once every item is finished. An
item whose lease this worker lost (paused past it) is left to the others for the rest of
the run (``restore_many`` takes each file once per run), so the worker also ends once only
such items are unfinished.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio

from ..client import AsyncDiffio
from ..errors import LedgerError
from ..workflows._options import BatchOptions, RestoreOptions
from ..workflows.bulk import ItemResult, restore_many
from ..workflows.ledger._claims import ClaimingStore

__all__ = ["work_batch"]


@asynccontextmanager
async def work_batch(
    client: AsyncDiffio,
    store: ClaimingStore,
    *,
    output_dir: str | os.PathLike[str],
    options: RestoreOptions | None = None,
    concurrency: int = 8,
    renew_every: float,
    poll: float,
    on_stage: Callable[[str, str], object] | None = None,
) -> AsyncIterator[AsyncIterator[ItemResult]]:
    """Work the batch of ``store`` (a shared store, not open yet) until every item is
    finished; yield the results of the items this worker finished, in completion order."""
    # restore_many opens the store; the claims and renewals below start once it is open.
    opened = anyio.Event()

    lost: set[str] = set()  # items whose lease this worker lost: the others finish them

    async def claimed() -> AsyncGenerator[str, None]:
        opened.set()
        while True:
            for source in await store.claim(1, excluding=lost):
                yield source
                break
            else:
                if await store.unfinished(excluding=lost) == 0:
                    return
                await anyio.sleep(poll)

    async def watched(results: AsyncIterator[ItemResult]) -> AsyncGenerator[ItemResult, None]:
        async for item in results:
            if item.stage == "lease":
                lost.add(item.source)
            yield item

    async def renew() -> None:
        await opened.wait()
        while True:
            await anyio.sleep(renew_every)
            if store.closed:
                continue
            with contextlib.suppress(LedgerError):  # the database is away: the next try may
                await store.renew()  # pass; a lost item is refused at its next write (fencing)

    batch = BatchOptions(concurrency=concurrency, on_collision="rename")
    async with anyio.create_task_group() as renewals:
        renewals.start_soon(renew)
        try:
            async with (
                restore_many(
                    client,
                    client._transport,  # the client's failure events (AsyncDiffio passes them)
                    claimed(),
                    output_dir=output_dir,
                    options=options,
                    batch=batch,
                    on_stage=on_stage,
                    router=None,
                    store=store,
                ) as results,
                contextlib.aclosing(watched(results)) as items,
            ):
                yield items
        finally:
            renewals.cancel_scope.cancel()
