"""A durable journal of a bulk restore, so that a killed batch resumes safely.

One entry per source file records how far its restoration got; the moves between its states
are the table in ``_states`` (``TRANSITIONS``)::

    pending -> hashed -> project_created -> uploaded -> generation_created -> complete -> downloaded
         \\________________________________________________________________________/
                                   any of them -> failed -> retry

The parts, one job each: ``_states`` (the pure state machine), ``_keys`` (idempotency keys),
``_store`` (the ``LedgerStore`` protocol), ``_sqlite`` (the SQLite store), ``_postgres`` (the
PostgreSQL store, with the ``postgres`` extra), ``_claims`` (many workers on one batch:
leases), ``_location`` (which store a path or URL names),
``_hashing`` (the content hash of a file). :class:`Ledger` puts them together.

Every write returns only once it is durable, so a batch killed at any point (SIGKILL, power
loss) finds every acknowledged step, and never half an entry.

Usage, the anyio way (like ``anyio.open_file``)::

    async with await Ledger.open("batch.sqlite") as ledger:
        size, digest = await hash_file(path)
        entry = await ledger.register(str(path), size=size, content_hash=digest,
                                      model="diffio-3.5", options={"params": {}})
        if entry.state == "hashed":
            project_id = ...  # create the project and upload (the bulk layer's step)
            entry = await ledger.record(str(path), state="uploaded", project_id=project_id)
        # entry.idempotency_key is now fixed: send it with the generation request
        ...
"""

from __future__ import annotations

import enum
import os
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Final

from ...errors import InvalidRequestError, LedgerError
from ._claims import (
    BatchStatus,
    BatchStop,
    BatchStoppedError,
    ClaimingStore,
    LeaseLostError,
    WorkerStatus,
)
from ._entry import STATES, EntryState, Identity, LedgerEntry
from ._hashing import hash_file
from ._keys import canonical_options, check_content_hash, idempotency_key_for
from ._location import is_postgres_url, sqlite_path
from ._postgres import PostgresStore
from ._sqlite import SCHEMA_VERSION, SQLiteLedgerStore
from ._states import (
    apply_changes,
    count_attempt,
    register_identity,
    renew_generation,
    retry_failed,
)
from ._store import LedgerStore

__all__ = [
    "SCHEMA_VERSION",
    "STATES",
    "BatchStatus",
    "BatchStop",
    "BatchStoppedError",
    "ClaimingStore",
    "EntryState",
    "Identity",
    "Ledger",
    "LedgerEntry",
    "LedgerStore",
    "LeaseLostError",
    "PostgresStore",
    "SQLiteLedgerStore",
    "WorkerStatus",
    "canonical_options",
    "hash_file",
    "idempotency_key_for",
]


class _Unset(enum.Enum):
    UNSET = enum.auto()


_UNSET: Final = _Unset.UNSET


class Ledger:
    """The durable journal of a batch: one :class:`LedgerEntry` per source.

    Open it with ``await Ledger.open(path)`` and close it with :meth:`aclose`, or use it as an
    async context manager: ``async with await Ledger.open(path) as ledger: ...``. All methods
    are safe to call from many tasks at once; each write is atomic and durable when it returns.
    The rules live in the state machine (``_states``), the storage behind a
    :class:`LedgerStore`.
    """

    def __init__(self, store: LedgerStore) -> None:
        """Internal: use :meth:`open`, which opens the store first."""
        self._store = store

    @classmethod
    async def open(cls, where: str | os.PathLike[str] | LedgerStore) -> Ledger:
        """Open the ledger at ``where``: a SQLite file (a path, or ``sqlite:///path``; created
        with its schema if new), a PostgreSQL database (a ``postgresql://`` URL: its batch
        ``"default"``, see :class:`PostgresStore` for named batches; needs the ``postgres``
        extra), or a :class:`LedgerStore` that is not open yet.

        Raises :class:`LedgerLockedError` when another batch holds it or it cannot be written,
        :class:`LedgerFormatError` when the file is not a diffio_async ledger (another SQLite
        database, garbage) or was written by a newer version, and :class:`LedgerError` when it
        cannot be opened at all.
        """
        store = _store_at(where) if isinstance(where, str | os.PathLike) else where
        await store.open()
        return cls(store)

    async def __aenter__(self) -> Ledger:
        """Return the ledger itself."""
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the ledger (see :meth:`aclose`)."""
        await self.aclose()

    @property
    def path(self) -> Path | None:
        """The ledger file (``None`` for a store that is not a SQLite file)."""
        return self._store.path if isinstance(self._store, SQLiteLedgerStore) else None

    @property
    def closed(self) -> bool:
        """True after :meth:`aclose`."""
        return self._store.closed

    async def aclose(self) -> None:
        """Wait for the running call, then close the store. Idempotent, cancel-safe."""
        await self._store.aclose()

    async def get(self, source: str) -> LedgerEntry | None:
        """Return the entry of ``source``, or ``None`` if the ledger has never seen it."""
        _check_source(source)
        return await self._store.get(source)

    async def entries(self, state: EntryState | None = None) -> list[LedgerEntry]:
        """Return every entry (or those in ``state``), in the order they were first recorded."""
        if state is not None and state not in STATES:
            raise InvalidRequestError(f"unknown state {state!r}; expected one of {STATES}")
        return await self._store.entries(state)

    async def counts(self) -> dict[EntryState, int]:
        """Return how many entries are in each state (every state is a key, zeros included)."""
        return await self._store.counts()

    async def record(
        self,
        source: str,
        *,
        state: EntryState | _Unset = _UNSET,
        size: int | _Unset | None = _UNSET,
        content_hash: str | _Unset | None = _UNSET,
        model: str | _Unset | None = _UNSET,
        options: Mapping[str, Any] | str | _Unset | None = _UNSET,
        project_id: str | _Unset | None = _UNSET,
        generation_id: str | _Unset | None = _UNSET,
        idempotency_key: str | _Unset | None = _UNSET,
        output_path: str | os.PathLike[str] | _Unset | None = _UNSET,
        served_type: str | _Unset | None = _UNSET,
        error: str | _Unset | None = _UNSET,
        error_stage: str | _Unset | None = _UNSET,
    ) -> LedgerEntry:
        """Create or update the entry of ``source`` and commit it; return the new entry.

        Only the given fields change. The rules (:class:`InvalidTransitionError` otherwise):

        - ``state`` only moves forward (skipping states is allowed), except ``failed``, which
          any state but ``downloaded`` may enter, and which leaves only for the entry's
          ``last_good_state`` or an earlier state (the results of later steps are forgotten:
          going back before ``project_created`` drops the project id and its key, before
          ``generation_created`` the generation id). Leaving ``failed`` clears ``error``.
        - ``downloaded`` is final.
        - A state needs the results of its steps: ``hashed`` needs size, content hash and
          model; ``project_created`` a project id; ``generation_created`` a generation id;
          ``downloaded`` an output path.
        - Identity fields (size, content hash, model, options) change only while ``pending``;
          use :meth:`register` for a file or options that changed.
        - Server ids (project id, generation id, idempotency key) are write-once.

        When a project id is recorded, the idempotency key is derived from it (unless given):
        see :func:`idempotency_key_for`.
        """
        _check_source(source)
        given: dict[str, Any] = {
            "state": state,
            "size": size,
            "content_hash": content_hash,
            "model": model,
            "options": options,
            "project_id": project_id,
            "generation_id": generation_id,
            "idempotency_key": idempotency_key,
            "output_path": output_path,
            "served_type": served_type,
            "error": error,
            "error_stage": error_stage,
        }
        changes = {name: value for name, value in given.items() if value is not _UNSET}
        if "options" in changes:
            changes["options"] = canonical_options(changes["options"])
        if changes.get("output_path") is not None:
            changes["output_path"] = os.fspath(changes["output_path"])
        return await self._store.update(
            source, lambda old: apply_changes(old, source, changes, time.time())
        )

    async def register(
        self,
        source: str,
        *,
        size: int,
        content_hash: str,
        model: str,
        options: Mapping[str, Any] | str | None = None,
    ) -> LedgerEntry:
        """Record the identity of ``source`` and return the entry to resume from.

        - A new (or ``pending``) entry is recorded at ``hashed``.
        - An entry with the same size, content hash, model and options is returned unchanged,
          whatever its state: a ``downloaded`` entry is done, a ``failed`` one waits for
          :meth:`retry`, any other resumes where it stopped.
        - A new entry whose content, model and options equal those of another entry that was
          already uploaded *adopts that project* and starts at ``uploaded``: it then derives
          the same idempotency key, so its generation request replays the other's generation
          instead of billing a second one (two hard links, or two copies of one recording,
          are paid once).
        - An entry whose file changed (size or hash differs) or that was made with another
          model or other options *restarts*: everything the old run learned is forgotten
          (project, generation, key, output path, error, attempts) and the entry is recorded at
          ``hashed`` with the new identity. The ledger describes one batch, and re-running it
          with another model means "restore these files with that model", so the source keeps
          one row; the new project gives the entry a new idempotency key, so the old key never
          meets a different request.
        """
        _check_source(source)
        check_content_hash(content_hash)
        if not model:
            raise InvalidRequestError("model must be a non-empty string")
        identity = Identity(
            size=size, content_hash=content_hash, model=model, options=canonical_options(options)
        )
        twin = await self._store.uploaded_twin_project(identity, other_than=source)
        return await self._store.update(
            source, lambda old: register_identity(old, source, identity, twin, time.time())
        )

    async def retry(self, source: str) -> LedgerEntry:
        """Move a ``failed`` entry back to its ``last_good_state``; other entries are returned
        unchanged. Raises :class:`LedgerError` for an unknown source."""
        _check_source(source)
        return await self._store.update(
            source, lambda old: retry_failed(_existing(old, source), time.time())
        )

    async def mark_attempt(self, source: str) -> LedgerEntry:
        """Count one more attempt at ``source`` (atomically) and return the entry.

        Raises :class:`LedgerError` for an unknown source.
        """
        _check_source(source)
        return await self._store.update(
            source, lambda old: count_attempt(_existing(old, source), time.time())
        )

    async def output_owner(self, output_path: str, *, other_than: str) -> str | None:
        """The source, other than ``other_than``, whose recorded output is ``output_path``
        (so that a later batch on this ledger does not overwrite it), or ``None``."""
        return await self._store.output_owner(output_path, other_than=other_than)

    async def renew_generation(self, source: str, *, error: str | None = None) -> LedgerEntry:
        """Record that the server failed the item's generation, so the next try makes a new one.

        The entry becomes ``failed`` (``error_stage`` ``"wait"``) with ``last_good_state``
        ``uploaded``: :meth:`retry` goes back to the uploaded project. The failed generation's
        id is forgotten and the idempotency key is derived anew from it (see
        :func:`idempotency_key_for`), so the next create request is a new generation, and a
        crash anywhere afterwards replays that request rather than duplicating it. Raises
        :class:`InvalidTransitionError` when the entry has no generation or is ``downloaded``.
        """
        _check_source(source)
        return await self._store.update(
            source, lambda old: renew_generation(_existing(old, source), error, time.time())
        )


def _store_at(where: str | os.PathLike[str]) -> LedgerStore:
    """The store a path or URL names (see :meth:`Ledger.open`)."""
    if is_postgres_url(where):
        return PostgresStore(os.fspath(where))
    return SQLiteLedgerStore(sqlite_path(where))


def _check_source(source: str) -> None:
    if not isinstance(source, str) or not source:
        raise InvalidRequestError(
            "source must be a non-empty string (a path or a caller-given key)"
        )


def _existing(entry: LedgerEntry | None, source: str) -> LedgerEntry:
    if entry is None:
        raise LedgerError(f"the ledger has no entry for {source!r}")
    return entry
