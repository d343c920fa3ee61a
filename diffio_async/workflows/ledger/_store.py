"""What the ledger needs from storage: the ``LedgerStore`` protocol (SQLite is in ``_sqlite``).

The state machine decides; a store only keeps entries. A store never validates a step: it hands
the committed entry to a pure function (``update``) and persists what that returns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ._entry import EntryState, Identity, LedgerEntry

__all__ = ["EntryChange", "LedgerStore"]

EntryChange = Callable[[LedgerEntry | None], LedgerEntry]
"""A step of the state machine: the committed entry (``None`` for a new source) -> the new one.

Pure: a store may call it more than once (to retry a write conflict, say). It raises to refuse
the step; the exception reaches the caller of :meth:`LedgerStore.update` and nothing is written.
"""


class LedgerStore(Protocol):
    """Durable storage for the entries of one batch.

    **Lifecycle.** A store is built without I/O, then :meth:`open` connects to its storage and
    takes the batch's lock; :meth:`aclose` releases it. Calls on a store that is not open raise
    :class:`LedgerError` (whose message says "closed").

    **Locking.** One running batch per ledger: while one open store holds a batch, opening it
    again (from another process, or another store in this one) raises
    :class:`LedgerLockedError` at once, never waits. A store that cannot be written (read-only
    storage) raises it too. The lock is the only thing that keeps two batches apart; a store
    that lets many machines share one batch (per-item leases) documents its own rule, and every
    other method below must then still hold per entry.

    **Consistency.** Every method may be called from many tasks at once. :meth:`update` is
    atomic per entry: its function sees the committed entry, no other update of that entry
    interleaves, and the result is all written or not at all. A call returns only once its
    write is durable: a crash at any point (SIGKILL, power loss) loses no acknowledged step and
    leaves no half entry.

    **Errors.** Storage failures raise :class:`LedgerError`; an unusable or foreign storage
    (another database, a newer schema) raises :class:`LedgerFormatError` from :meth:`open`.
    """

    @property
    def closed(self) -> bool:
        """True unless the store is open."""
        ...

    async def open(self) -> None:
        """Connect (creating the schema for new storage) and take the batch's lock."""
        ...

    async def aclose(self) -> None:
        """Wait for running calls, then release the lock and disconnect. Idempotent, cancel-safe."""
        ...

    async def get(self, source: str) -> LedgerEntry | None:
        """The committed entry of ``source``, or ``None`` if the store has never seen it."""
        ...

    async def entries(self, state: EntryState | None = None) -> list[LedgerEntry]:
        """Every entry (or those in ``state``), in the order they were first written."""
        ...

    async def counts(self) -> dict[EntryState, int]:
        """How many entries are in each state; every state is a key, zeros included."""
        ...

    async def update(self, source: str, change: EntryChange) -> LedgerEntry:
        """Replace the entry of ``source`` by ``change(committed entry)`` atomically and return
        the new entry once it is durable.

        A result equal to the committed entry is not written (and is returned as it is). The
        result must keep ``source``; ``change``'s own exception propagates unchanged.
        """
        ...

    async def output_owner(self, output_path: str, *, other_than: str) -> str | None:
        """A source other than ``other_than`` whose recorded ``output_path`` is this one."""
        ...

    async def uploaded_twin_project(self, identity: Identity, *, other_than: str) -> str | None:
        """The project id of the first-written entry, other than ``other_than``, with this
        content hash, model and options whose upload finished (``last_good_state`` at
        ``uploaded`` or later, project id recorded), or ``None``."""
        ...
