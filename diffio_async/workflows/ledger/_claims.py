"""Many workers on one batch: the ``ClaimingStore`` protocol beside ``LedgerStore``, and what
``batch status`` shows (:class:`BatchStatus`).

**The rule.** A store opened *shared* (``PostgresStore(url, batch=..., shared=True)``) lets any
number of workers, on any machines, work one batch. Sources are registered ``pending``
(:meth:`ClaimingStore.add_sources`, idempotent), each with where its output goes under the
worker's ``output_dir`` (its relative path in the folder walked, so that the workers keep the
layout; see ``workflows._shared_batch``). A worker takes items with :meth:`claim`: each
claimed item gets a lease (the worker's owner id, an expiry, and a lease version bumped by
every claim). The worker renews its leases (:meth:`renew`) while it works. An item whose
lease expired (a killed or partitioned worker) is claimable again; the next worker resumes it
from its last recorded step, with the same idempotency key, so a generation is never created
(and billed) twice. Every write (:meth:`LedgerStore.update`) checks, in its transaction, that
the item's lease version is still the one this worker claimed (fencing): a worker whose item
was claimed by another gets :class:`LeaseLostError` and must stop touching the item. A write
that finishes an item (``downloaded`` or ``failed``) ends its lease.

**Stopping every worker.** A failure that would fail every later file too (a 401, a 402, an
API 403) seen by one worker stops the whole batch: that worker records it on the batch
(:meth:`ClaimingStore.stop`: the reason, scrubbed of secrets, which worker, when), and every
worker looks at it on each :meth:`claim` and :meth:`renew` (both raise
:class:`BatchStoppedError`), so all of them stop within one lease period. The items in flight
keep their recorded step (a later run resumes them under the same idempotency keys). A stopped
batch gives no new work until :meth:`ClaimingStore.resume` clears the stop (after billing is
fixed), which also gives its failed items another try.

The batch lock of ``LedgerStore`` becomes two: a single-process store takes the batch's
advisory lock exclusively, shared stores take it shared. So workers of one batch run side by
side, and a single-process ``restore_many`` on that batch is refused while they do.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import Protocol

import attrs

from ...errors import LedgerError, LedgerLockedError
from ._entry import EntryState
from ._store import LedgerStore

__all__ = [
    "BatchStatus",
    "BatchStop",
    "BatchStoppedError",
    "ClaimingStore",
    "LeaseLostError",
    "WorkerStatus",
]


class LeaseLostError(LedgerLockedError):
    """This worker's lease on an item was taken by another worker: it writes nothing more
    for that item."""


@attrs.frozen(kw_only=True)
class BatchStop:
    """Why a batch was stopped: ``reason`` (the error, without secrets), the worker that saw
    it (``worker``, its owner id) and when (``at``, UTC)."""

    reason: str
    worker: str
    at: datetime


class BatchStoppedError(LedgerError):
    """The batch was stopped (``stop`` says why): this worker takes no more work from it."""

    stop: BatchStop


@attrs.frozen(kw_only=True)
class WorkerStatus:
    """One worker of a batch: items it holds under a live lease, and items it finished."""

    owner: str
    leased: int
    downloaded: int


@attrs.frozen(kw_only=True)
class BatchStatus:
    """A batch at a glance: entries per state, per worker, throughput and ETA.

    ``throughput`` is files downloaded per minute over the last ``window`` seconds (or since
    the first download, when that is more recent); ``eta_seconds`` is the unfinished files
    at that pace (``None`` when nothing was downloaded lately); ``stop`` is why the batch was
    stopped (``None`` while it runs).
    """

    name: str
    counts: Mapping[EntryState, int]
    workers: tuple[WorkerStatus, ...]
    throughput: float
    eta_seconds: float | None
    stop: BatchStop | None = None

    @property
    def total(self) -> int:
        """Every registered source."""
        return sum(self.counts.values())

    @property
    def unfinished(self) -> int:
        """Sources neither downloaded nor failed."""
        return self.total - self.counts["downloaded"] - self.counts["failed"]


class ClaimingStore(LedgerStore, Protocol):
    """A :class:`LedgerStore` whose batch many workers share (see the module docstring)."""

    @property
    def batch(self) -> str:
        """The batch's name."""
        ...

    @property
    def owner(self) -> str:
        """This worker's id, recorded on the items it claims."""
        ...

    async def add_sources(self, sources: Iterable[str | tuple[str, str | None]]) -> int:
        """Register ``sources`` as ``pending`` entries, each a key or a ``(key, relative
        output path)`` pair: where the walk that found it placed its output under
        ``output_dir`` (``a/x.wav``); a source registered already keeps what it has. Return
        how many were new."""
        ...

    async def claim(self, limit: int, *, excluding: Collection[str] = ()) -> list[str]:
        """Lease up to ``limit`` unfinished items that no live lease holds, oldest first
        (``SELECT ... FOR UPDATE SKIP LOCKED``: workers never wait on each other); never
        one this worker holds already (even if its lease ran out), nor one of ``excluding``."""
        ...

    def relative_output(self, source: str) -> str | None:
        """The relative output path registered with ``source``, as this worker's last
        :meth:`claim` of it read it (``None``: none was registered, or not claimed here).
        Nothing checks it: a worker refuses one that would leave ``output_dir``."""
        ...

    async def unfinished(self, *, excluding: Collection[str] = ()) -> int:
        """How many items are neither downloaded nor failed, leaving out ``excluding``."""
        ...

    async def renew(self) -> list[str]:
        """Extend the leases this worker holds; return the items it lost (now another
        worker's), which it holds no more. Raises :class:`BatchStoppedError` once the batch
        was stopped (as :meth:`claim` does)."""
        ...

    async def stop(self, reason: str) -> BatchStop:
        """Stop the batch for every worker, recording ``reason`` and this worker; a batch
        stopped already keeps its first stop, which is returned."""
        ...

    async def stopped(self) -> BatchStop | None:
        """Why the batch was stopped, or ``None``."""
        ...

    async def resume(self) -> BatchStop | None:
        """Clear the stop (and move the failed items back to their last good step, to be
        claimed again); return the stop that was cleared, if any."""
        ...

    async def status(self) -> BatchStatus:
        """Counts per state and per worker, throughput and ETA."""
        ...
