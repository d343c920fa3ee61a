"""A durable SQLite journal of a bulk restore, so that a killed batch resumes safely.

One row per source file records how far its restoration got::

    pending -> hashed -> project_created -> uploaded -> generation_created -> complete -> downloaded
         \\________________________________________________________________________/
                                   any of them -> failed -> retry

- ``pending``: the source is known, nothing else is.
- ``hashed``: size, sha256, model and options are recorded (the item's *identity*).
- ``project_created``: the project id is recorded, and with it the idempotency key that every
  generation request for this item will carry (see :func:`idempotency_key_for`).
- ``uploaded``: the media is on the server.
- ``generation_created``: the generation id is recorded; a resumed run waits on it, it never
  creates another one.
- ``complete``: the generation finished on the server.
- ``downloaded``: the output file is in place; the item is done (terminal).
- ``failed``: the last attempt failed (``error``, ``error_stage``); ``last_good_state`` remembers
  where to resume, and :meth:`Ledger.retry` goes back there.

Every write returns only once it is committed and fsynced (``synchronous=FULL`` in WAL mode), so
a batch killed at any point (SIGKILL, power loss) finds every acknowledged step on disk, and never
half a row: each write is atomic (all its fields or none).

Usage, the anyio way (like ``anyio.open_file``)::

    async with await Ledger.open("batch.sqlite") as ledger:
        size, digest = await hash_file(path)
        entry = await ledger.register(str(path), size=size, content_hash=digest,
                                      model="diffio-3.5", options={"params": {}})
        if entry.state == "hashed":
            project_id = ...  # create the project (the bulk layer's step)
            entry = await ledger.record(str(path), state="project_created",
                                        project_id=project_id)
        # entry.idempotency_key is now fixed: send it with the generation request
        ...

All SQLite work runs in a worker thread on one dedicated connection, one call at a time, so the
event loop is never blocked and the calls of many tasks are serialized. Writes that queue up
while a commit runs are committed together (group commit: one fsync for many steps, each step in
its own savepoint, so one step's error never undoes another's).
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Literal, TypeVar, cast, get_args

import anyio
import anyio.to_thread
import attrs

from .errors import InvalidTransitionError, LedgerError, LedgerFormatError, LedgerLockedError

__all__ = [
    "SCHEMA_VERSION",
    "STATES",
    "EntryState",
    "InvalidTransitionError",
    "Ledger",
    "LedgerEntry",
    "LedgerError",
    "LedgerFormatError",
    "canonical_options",
    "hash_file",
    "idempotency_key_for",
]

EntryState = Literal[
    "pending",
    "hashed",
    "project_created",
    "uploaded",
    "generation_created",
    "complete",
    "downloaded",
    "failed",
]
"""The state of one ledger entry (see the module docstring for the state machine)."""

STATES: Final[tuple[EntryState, ...]] = get_args(EntryState)
"""Every state, in progress order, ``failed`` last."""

_PROGRESS: Final[tuple[EntryState, ...]] = STATES[:-1]
_RANK: Final[dict[EntryState, int]] = {state: rank for rank, state in enumerate(_PROGRESS)}

SCHEMA_VERSION: Final = 1
"""The schema this module writes (``PRAGMA user_version``); newer files are refused."""

_APPLICATION_ID: Final = 0x44664C67  # "DfLg": marks the file as a diffio_async ledger.
_KEY_PREFIX: Final = "diffio-async-"
_HEX_DIGITS: Final = frozenset("0123456789abcdef")

_SCHEMA: Final = f"""
CREATE TABLE entries (
    source          TEXT PRIMARY KEY NOT NULL CHECK (length(source) > 0),
    size            INTEGER,
    content_hash    TEXT,
    model           TEXT,
    options         TEXT NOT NULL DEFAULT '{{}}',
    state           TEXT NOT NULL CHECK (state IN ({", ".join(f"'{s}'" for s in STATES)})),
    last_good_state TEXT NOT NULL CHECK (last_good_state IN (
                        {", ".join(f"'{s}'" for s in _PROGRESS)})),
    project_id      TEXT,
    generation_id   TEXT,
    idempotency_key TEXT,
    output_path     TEXT,
    error           TEXT,
    error_stage     TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0,
    created_at      REAL NOT NULL,
    updated_at      REAL NOT NULL
);
CREATE INDEX entries_by_state ON entries (state);
"""

# Added after schema 1 was written: created when a ledger is opened, old files included.
_LATER_INDEXES: Final = (
    "CREATE INDEX IF NOT EXISTS entries_by_output ON entries (output_path)",
    "CREATE INDEX IF NOT EXISTS entries_by_content ON entries (content_hash)",
)

_COLUMNS: Final = (
    "source",
    "size",
    "content_hash",
    "model",
    "options",
    "state",
    "last_good_state",
    "project_id",
    "generation_id",
    "idempotency_key",
    "output_path",
    "error",
    "error_stage",
    "attempts",
    "created_at",
    "updated_at",
)
_SELECT: Final = f"SELECT {', '.join(_COLUMNS)} FROM entries"
_UPSERT: Final = (
    f"INSERT INTO entries ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)}) "
    f"ON CONFLICT (source) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS if c != "source")
)

# Fields that name the item's identity: only a pending entry (or register()) may change them.
_IDENTITY: Final = ("size", "content_hash", "model", "options")
# Server ids are write-once: a recorded project or generation is never replaced by another one.
_WRITE_ONCE: Final = ("project_id", "generation_id", "idempotency_key")

_T = TypeVar("_T")


class _Unset(enum.Enum):
    UNSET = enum.auto()


_UNSET: Final = _Unset.UNSET


def _utc(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc)


@attrs.frozen(kw_only=True)
class LedgerEntry:
    """One source's row in the ledger (immutable snapshot; the ledger holds the truth).

    ``options`` is canonical JSON text (see :func:`canonical_options`); ``last_good_state`` is
    the last state before ``failed`` (equal to ``state`` otherwise); ``attempts`` counts
    :meth:`Ledger.mark_attempt` calls; times are timezone-aware UTC.
    """

    source: str
    size: int | None = None
    content_hash: str | None = None
    model: str | None = None
    options: str = "{}"
    state: EntryState = "pending"
    last_good_state: EntryState = "pending"
    project_id: str | None = None
    generation_id: str | None = None
    idempotency_key: str | None = None
    output_path: str | None = None
    error: str | None = None
    error_stage: str | None = None
    attempts: int = 0
    created_at: datetime
    updated_at: datetime

    @property
    def done(self) -> bool:
        """True once the output file is in place (state ``downloaded``)."""
        return self.state == "downloaded"

    @property
    def options_dict(self) -> dict[str, Any]:
        """``options`` parsed back into a dict."""
        return cast("dict[str, Any]", json.loads(self.options))


def canonical_options(options: Mapping[str, Any] | str | None) -> str:
    """Return the canonical JSON text of generation options (sorted keys, compact, UTF-8).

    ``options`` is a mapping, JSON text of an object, or ``None`` (no options: ``"{}"``). Equal
    options always give the same text, whatever their key order, so the text can be compared
    and hashed.
    """
    if options is None:
        return "{}"
    value: object = json.loads(options) if isinstance(options, str) else options
    if not isinstance(value, Mapping):
        raise ValueError("options must be a JSON object")
    try:
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(f"options are not JSON-serializable: {exc}") from exc


def _check_sha256(content_hash: str) -> str:
    if len(content_hash) != 64 or not set(content_hash) <= _HEX_DIGITS:
        raise ValueError("content_hash must be a lowercase sha256 hex digest (64 characters)")
    return content_hash


def idempotency_key_for(
    content_hash: str,
    model: str,
    options: Mapping[str, Any] | str | None,
    project_id: str,
    *,
    after: str | None = None,
) -> str:
    """Derive the generation request's idempotency key for one item (53 characters).

    The key is ``"diffio-async-"`` plus 40 hex digits of the sha256 of the file's content hash,
    the model, the canonical options and the project id. It is a pure function of what the
    ledger records, so a resumed run recomputes the very same key without having stored it.

    Why the project id is part of it: the server scopes keys per API key and answers 409
    ``idempotencyConflict`` when a key is reused for a *different* project. A run killed between
    ``create_project`` and the ledger write of the project id creates a new project when it
    resumes; a key of (content, model, options) alone would then conflict and the item would be
    stuck. The project id is always committed to the ledger before the generation request is
    sent, so a run killed between that request and the ledger write of the generation id
    resumes with the same project, hence the same key, and the server replays the generation it
    already created instead of creating (and billing) a second one.

    Why nothing else (no attempt counter, no time): the key must be identical across every
    retry and every resume of the same request. The one exception is ``after``: the id of a
    generation the server *failed*. A new attempt at the item must not replay that failure,
    so :meth:`Ledger.renew_generation` derives a new key from the failed id (which is the
    only way one file is billed twice).
    """
    if not model:
        raise ValueError("model must be a non-empty string")
    if not project_id:
        raise ValueError("project_id must be a non-empty string")
    material = json.dumps(
        [
            "diffio-async/idempotency/v1",
            _check_sha256(content_hash),
            model,
            canonical_options(options),
            project_id,
            *([after] if after else []),
        ],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return _KEY_PREFIX + hashlib.sha256(material.encode()).hexdigest()[:40]


async def hash_file(
    path: str | os.PathLike[str], *, chunk_size: int = 1024 * 1024
) -> tuple[int, str]:
    """Return ``(size in bytes, sha256 hex digest)`` of a file, streamed chunk by chunk.

    Never holds more than one chunk in memory; every read and hash update runs in a worker
    thread (hashlib releases the GIL), and the call can be cancelled between chunks. The size
    is the number of bytes hashed, so the pair is consistent even if the file grows meanwhile.
    """
    if chunk_size <= 0:
        raise ValueError("chunk_size must be positive")
    digest = hashlib.sha256()
    size = 0
    handle = await anyio.to_thread.run_sync(open, os.fspath(path), "rb")
    try:

        def step() -> int:
            chunk = handle.read(chunk_size)
            digest.update(chunk)
            return len(chunk)

        while read := await anyio.to_thread.run_sync(step):
            size += read
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(handle.close)
    return size, digest.hexdigest()


def _row_to_entry(row: tuple[Any, ...]) -> LedgerEntry:
    values = dict(zip(_COLUMNS, row, strict=True))
    values["created_at"] = _utc(values["created_at"])
    values["updated_at"] = _utc(values["updated_at"])
    return LedgerEntry(**values)


def _entry_to_row(entry: LedgerEntry) -> tuple[Any, ...]:
    values = attrs.asdict(entry, recurse=False)
    values["created_at"] = entry.created_at.timestamp()
    values["updated_at"] = entry.updated_at.timestamp()
    return tuple(values[column] for column in _COLUMNS)


def _check_invariants(entry: LedgerEntry) -> None:
    """Refuse an entry whose state claims a step whose result is not recorded."""
    state = entry.last_good_state if entry.state == "failed" else entry.state
    rank = _RANK[state]
    missing: list[str] = []
    if rank >= _RANK["hashed"]:
        missing += [f for f in ("size", "content_hash", "model") if getattr(entry, f) is None]
    if rank >= _RANK["project_created"]:
        missing += [f for f in ("project_id", "idempotency_key") if getattr(entry, f) is None]
    if rank >= _RANK["generation_created"] and entry.generation_id is None:
        missing.append("generation_id")
    if rank >= _RANK["downloaded"] and entry.output_path is None:
        missing.append("output_path")
    if missing:
        raise InvalidTransitionError(
            f"{entry.source!r}: state {entry.state!r} needs {', '.join(missing)} recorded"
        )
    if entry.size is not None and entry.size < 0:
        raise InvalidTransitionError(f"{entry.source!r}: size must not be negative")
    if entry.content_hash is not None:
        try:
            _check_sha256(entry.content_hash)
        except ValueError as exc:
            raise InvalidTransitionError(f"{entry.source!r}: {exc}") from None


def _clear_above(values: dict[str, Any], state: EntryState) -> None:
    """Forget the results of the steps after ``state`` (a retry from an earlier step)."""
    if _RANK[state] < _RANK["project_created"]:
        values.update(project_id=None, idempotency_key=None)
    if _RANK[state] < _RANK["generation_created"]:
        values["generation_id"] = None


def _apply(
    old: LedgerEntry | None, source: str, changes: dict[str, Any], now: float
) -> LedgerEntry:
    """Validate ``changes`` against ``old`` and return the new entry (pure; no I/O)."""
    if old is None:
        old = LedgerEntry(source=source, created_at=_utc(now), updated_at=_utc(now))
        fresh = True
    else:
        fresh = False
    new_state: EntryState = changes.pop("state", old.state)
    if new_state not in STATES:
        raise InvalidTransitionError(f"unknown state {new_state!r}; expected one of {STATES}")
    values = attrs.asdict(old, recurse=False)

    # The state machine: forward only; failed -> back to the last good state (or earlier).
    last_good: EntryState = old.last_good_state
    if new_state == old.state and not fresh:
        pass
    elif old.state == "downloaded":
        raise InvalidTransitionError(
            f"{source!r} is 'downloaded' (done); it cannot move to {new_state!r}"
        )
    elif new_state == "failed":
        pass
    elif old.state == "failed":
        if _RANK[new_state] > _RANK[last_good]:
            raise InvalidTransitionError(
                f"{source!r} failed after {last_good!r}; a retry resumes at {last_good!r} "
                f"or earlier, not at {new_state!r}"
            )
        _clear_above(values, new_state)
        values.update(error=None, error_stage=None)
        last_good = new_state
    elif _RANK[new_state] < _RANK[old.state]:
        raise InvalidTransitionError(
            f"{source!r} cannot move back from {old.state!r} to {new_state!r}"
        )
    else:
        last_good = new_state
    values.update(state=new_state, last_good_state=last_good)

    for field in _IDENTITY:
        if field in changes and changes[field] != values[field]:
            if old.last_good_state != "pending":
                raise InvalidTransitionError(
                    f"{source!r}: {field} cannot change once the entry is past 'pending' "
                    "(Ledger.register() restarts an entry whose file or options changed)"
                )
            values[field] = changes[field]
    explicit_key = "idempotency_key" in changes
    for field in _WRITE_ONCE:
        if field in changes and changes[field] != values[field]:
            if values[field] is not None:
                raise InvalidTransitionError(
                    f"{source!r}: {field} is already {values[field]!r}; a recorded server id "
                    "is never replaced (retry from 'hashed' to start over)"
                )
            values[field] = changes[field]
    for field in ("output_path", "error", "error_stage"):
        if field in changes:
            values[field] = changes[field]
    if "attempts" in changes:
        values["attempts"] = changes["attempts"]
    if (
        not explicit_key
        and values["idempotency_key"] is None
        and values["project_id"] is not None
        and values["content_hash"] is not None
        and values["model"] is not None
    ):
        values["idempotency_key"] = idempotency_key_for(
            values["content_hash"], values["model"], values["options"], values["project_id"]
        )
    values["updated_at"] = _utc(now)
    entry = LedgerEntry(**values)
    _check_invariants(entry)
    return entry


class Ledger:
    """The durable journal of a batch: one :class:`LedgerEntry` per source.

    Open it with ``await Ledger.open(path)`` and close it with :meth:`aclose`, or use it as an
    async context manager: ``async with await Ledger.open(path) as ledger: ...``. All methods
    are safe to call from many tasks at once; each is one SQLite transaction, run in a worker
    thread on the ledger's single connection, one at a time, in arrival order.
    """

    def __init__(
        self, path: Path, connection: sqlite3.Connection, limiter: anyio.CapacityLimiter
    ) -> None:
        """Internal: use :meth:`open`."""
        self.path = path
        """The ledger file."""
        self._connection: sqlite3.Connection | None = connection
        # One worker thread at a time on the connection, in arrival order.
        self._limiter = limiter
        # Group commit: writes queue up here; the task holding _commit_lock commits every
        # queued write in one transaction (one fsync), each in its own savepoint.
        self._queue: list[_Write] = []
        self._commit_lock = anyio.Lock()

    @classmethod
    async def open(cls, path: str | os.PathLike[str]) -> Ledger:
        """Open the ledger at ``path``, creating it (and its schema) if the file is new.

        Raises :class:`LedgerFormatError` when the file is not a diffio_async ledger (another
        SQLite database, garbage) or was written by a newer version, and :class:`LedgerError`
        when it cannot be opened at all.
        """
        file = Path(path)
        connection = await anyio.to_thread.run_sync(_connect, file)
        return cls(file, connection, anyio.CapacityLimiter(1))

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
    def closed(self) -> bool:
        """True after :meth:`aclose`."""
        return self._connection is None

    async def aclose(self) -> None:
        """Wait for the running call, then close the connection. Idempotent, cancel-safe."""
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self._close, limiter=self._limiter)

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    async def _run(self, function: Callable[[sqlite3.Connection], _T]) -> _T:
        def call() -> _T:
            connection = self._connection
            if connection is None:
                raise LedgerError(f"the ledger {str(self.path)!r} is closed")
            try:
                return function(connection)
            except sqlite3.Error as exc:
                raise LedgerError(f"the ledger {str(self.path)!r} failed: {exc}") from exc

        return await anyio.to_thread.run_sync(call, limiter=self._limiter)

    async def _write(
        self, function: Callable[[sqlite3.Connection], tuple[LedgerEntry, bool]]
    ) -> LedgerEntry:
        """Apply ``function`` in a write transaction and return once it is durably committed.

        Writes that arrive while a commit is running are committed together by the next one
        (group commit): one fsync for many steps, each in its own savepoint, so one write's
        error never undoes another's. Every caller still returns only after its commit.
        """
        write = _Write(function)
        self._queue.append(write)
        try:
            await self._commit_lock.acquire()
        except BaseException:
            # Cancelled while waiting: withdraw the write unless a commit already took it.
            if write in self._queue:
                self._queue.remove(write)
            raise
        try:
            if not write.finished:
                batch, self._queue = self._queue, []
                # Shielded: a commit that started is seen through, so every write of the batch
                # gets its outcome; a cancellation of this task is delivered afterwards.
                with anyio.CancelScope(shield=True):
                    try:
                        await self._run(lambda connection: _commit(connection, batch))
                    except BaseException as exc:
                        for other in batch:
                            other.fail(_commit_error(exc))
                        if not isinstance(exc, Exception):
                            raise
        finally:
            self._commit_lock.release()
        return write.outcome()

    async def get(self, source: str) -> LedgerEntry | None:
        """Return the entry of ``source``, or ``None`` if the ledger has never seen it."""
        _check_source(source)
        return await self._run(lambda connection: _fetch(connection, source))

    async def entries(self, state: EntryState | None = None) -> list[LedgerEntry]:
        """Return every entry (or those in ``state``), in the order they were first recorded."""
        if state is not None and state not in STATES:
            raise ValueError(f"unknown state {state!r}; expected one of {STATES}")

        def select(connection: sqlite3.Connection) -> list[LedgerEntry]:
            if state is None:
                rows = connection.execute(f"{_SELECT} ORDER BY rowid").fetchall()
            else:
                query = f"{_SELECT} WHERE state = ? ORDER BY rowid"
                rows = connection.execute(query, (state,)).fetchall()
            return [_row_to_entry(row) for row in rows]

        return await self._run(select)

    async def counts(self) -> dict[EntryState, int]:
        """Return how many entries are in each state (every state is a key, zeros included)."""

        def count(connection: sqlite3.Connection) -> dict[EntryState, int]:
            result = dict.fromkeys(STATES, 0)
            for state, number in connection.execute(
                "SELECT state, count(*) FROM entries GROUP BY state"
            ):
                result[state] = number
            return result

        return await self._run(count)

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
            "error": error,
            "error_stage": error_stage,
        }
        changes = {name: value for name, value in given.items() if value is not _UNSET}
        if "options" in changes:
            changes["options"] = canonical_options(changes["options"])
        if changes.get("output_path") is not None:
            changes["output_path"] = os.fspath(changes["output_path"])

        def update(connection: sqlite3.Connection) -> tuple[LedgerEntry, bool]:
            return _apply(_fetch(connection, source), source, dict(changes), time.time()), True

        return await self._write(update)

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
        _check_sha256(content_hash)
        if not model:
            raise ValueError("model must be a non-empty string")
        text = canonical_options(options)
        identity: dict[str, Any] = {
            "size": size,
            "content_hash": content_hash,
            "model": model,
            "options": text,
        }

        def upsert(connection: sqlite3.Connection) -> tuple[LedgerEntry, bool]:
            now = time.time()
            old = _fetch(connection, source)
            if old is not None and old.state != "pending":
                if all(getattr(old, name) == value for name, value in identity.items()):
                    return old, False
                # The file or the options changed: start over (created_at is kept).
                old = LedgerEntry(source=source, created_at=old.created_at, updated_at=_utc(now))
            start: dict[str, Any] = {**identity, "state": "hashed"}
            donor = _uploaded_twin(connection, source, content_hash, model, text)
            if donor is not None:  # the same media and options: reuse that upload (and key)
                start.update(state="uploaded", project_id=donor)
            return _apply(old, source, start, now), True

        return await self._write(upsert)

    async def retry(self, source: str) -> LedgerEntry:
        """Move a ``failed`` entry back to its ``last_good_state``; other entries are returned
        unchanged. Raises :class:`LedgerError` for an unknown source."""
        _check_source(source)

        def update(connection: sqlite3.Connection) -> tuple[LedgerEntry, bool]:
            old = _require(connection, source)
            if old.state != "failed":
                return old, False
            return _apply(old, source, {"state": old.last_good_state}, time.time()), True

        return await self._write(update)

    async def mark_attempt(self, source: str) -> LedgerEntry:
        """Count one more attempt at ``source`` (atomically) and return the entry.

        Raises :class:`LedgerError` for an unknown source.
        """
        _check_source(source)

        def update(connection: sqlite3.Connection) -> tuple[LedgerEntry, bool]:
            old = _require(connection, source)
            return _apply(old, source, {"attempts": old.attempts + 1}, time.time()), True

        return await self._write(update)

    async def output_owner(self, output_path: str, *, other_than: str) -> str | None:
        """The source, other than ``other_than``, whose recorded output is ``output_path``
        (so that a later batch on this ledger does not overwrite it), or ``None``."""

        def select(connection: sqlite3.Connection) -> str | None:
            row = connection.execute(
                "SELECT source FROM entries WHERE output_path = ? AND source != ? LIMIT 1",
                (output_path, other_than),
            ).fetchone()
            return None if row is None else str(row[0])

        return await self._run(select)

    async def renew_generation(self, source: str, *, error: str | None = None) -> LedgerEntry:
        """Record that the server failed the item's generation, so the next try makes a new one.

        The entry becomes ``failed`` (``error_stage`` ``"wait"``) with ``last_good_state``
        ``uploaded``: :meth:`retry` goes back to the uploaded project. The failed generation's
        id is forgotten and the idempotency key is derived anew from it (see
        :func:`idempotency_key_for`), so the next create request is a new generation, and a
        crash anywhere afterwards replays that request rather than duplicating it. Raises
        :class:`InvalidTransitionError` when the entry has no generation.
        """
        _check_source(source)

        def update(connection: sqlite3.Connection) -> tuple[LedgerEntry, bool]:
            old = _require(connection, source)
            if old.generation_id is None or old.project_id is None:
                raise InvalidTransitionError(f"{source!r} has no generation to renew")
            assert old.content_hash is not None and old.model is not None
            key = idempotency_key_for(
                old.content_hash, old.model, old.options, old.project_id, after=old.generation_id
            )
            entry = attrs.evolve(
                old,
                state="failed",
                last_good_state="uploaded",
                generation_id=None,
                idempotency_key=key,
                error=error,
                error_stage="wait",
                updated_at=_utc(time.time()),
            )
            _check_invariants(entry)
            return entry, True

        return await self._write(update)


class _Write:
    """One queued write of the group commit: its function, then its entry or its error."""

    def __init__(self, function: Callable[[sqlite3.Connection], tuple[LedgerEntry, bool]]) -> None:
        self.function = function
        self.finished = False
        self._entry: LedgerEntry | None = None
        self._error: Exception | None = None

    def succeed(self, entry: LedgerEntry) -> None:
        self.finished, self._entry = True, entry

    def fail(self, error: Exception) -> None:
        """Record ``error`` unless the write already failed on its own (it keeps that error)."""
        if self._error is None:
            self.finished, self._entry, self._error = True, None, error

    def outcome(self) -> LedgerEntry:
        if self._error is not None:
            raise self._error
        assert self._entry is not None, "a write is only returned once it finished"
        return self._entry


def _commit_error(error: BaseException) -> LedgerError:
    """A fresh exception per write (one instance must not be raised in many tasks)."""
    if isinstance(error, LedgerError):
        copy = type(error)(str(error))
        copy.__cause__ = error.__cause__
        return copy
    copy = LedgerError(f"the ledger could not commit: {error}")
    copy.__cause__ = error
    return copy


def _commit(connection: sqlite3.Connection, batch: list[_Write]) -> None:
    """Commit every write of ``batch`` in one transaction, each in its own savepoint.

    A write whose function raises is rolled back to its savepoint and fails alone; a failed
    ``COMMIT`` fails them all (the caller turns the exception into each write's error).
    """
    connection.execute("BEGIN IMMEDIATE")
    try:
        for write in batch:
            connection.execute("SAVEPOINT step")
            try:
                entry, changed = write.function(connection)
                if changed:
                    connection.execute(_UPSERT, _entry_to_row(entry))
            except Exception as exc:
                connection.execute("ROLLBACK TO step")
                connection.execute("RELEASE step")
                if isinstance(exc, sqlite3.Error):
                    exc = LedgerError(f"the ledger failed: {exc}")
                write.fail(exc)
            else:
                connection.execute("RELEASE step")
                write.succeed(entry)
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise


def _check_source(source: str) -> None:
    if not isinstance(source, str) or not source:
        raise ValueError("source must be a non-empty string (a path or a caller-given key)")


def _uploaded_twin(
    connection: sqlite3.Connection, source: str, content_hash: str, model: str, options: str
) -> str | None:
    """The project id of another entry with this identity whose upload finished, if any."""
    row = connection.execute(
        "SELECT project_id FROM entries WHERE content_hash = ? AND model = ? AND options = ? "
        "AND source != ? AND project_id IS NOT NULL AND last_good_state IN "
        "('uploaded', 'generation_created', 'complete', 'downloaded') ORDER BY rowid LIMIT 1",
        (content_hash, model, options, source),
    ).fetchone()
    return None if row is None else str(row[0])


def _fetch(connection: sqlite3.Connection, source: str) -> LedgerEntry | None:
    row = connection.execute(f"{_SELECT} WHERE source = ?", (source,)).fetchone()
    return None if row is None else _row_to_entry(row)


def _require(connection: sqlite3.Connection, source: str) -> LedgerEntry:
    entry = _fetch(connection, source)
    if entry is None:
        raise LedgerError(f"the ledger has no entry for {source!r}")
    return entry


def _connect(path: Path) -> sqlite3.Connection:
    """Open (and if new, initialize) the ledger file; runs in a worker thread."""
    try:
        # isolation_level=None: no implicit transactions; every write is an explicit
        # BEGIN IMMEDIATE ... COMMIT. check_same_thread=False: the worker threads take turns.
        # timeout=0: the file is held exclusively (see _initialize), so waiting for a lock
        # only ever means waiting for another batch to end; fail at once instead.
        connection = sqlite3.connect(path, timeout=0, isolation_level=None, check_same_thread=False)
    except sqlite3.OperationalError as exc:
        raise _open_error(path, exc) from exc
    except sqlite3.Error as exc:
        raise LedgerError(f"cannot open the ledger {str(path)!r}: {exc}") from exc
    try:
        _initialize(connection, path)
    except BaseException:
        connection.close()
        raise
    return connection


def _header(connection: sqlite3.Connection) -> tuple[int, int, int]:
    application_id = connection.execute("PRAGMA application_id").fetchone()[0]
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    tables = connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    return int(application_id), int(version), int(tables)


def _check_header(path: Path, application_id: int, version: int, tables: int) -> bool:
    """Return True when the file is a ledger this module can use, False when it is empty."""
    if application_id == 0 and version == 0 and tables == 0:
        return False
    if application_id != _APPLICATION_ID:
        raise LedgerFormatError(
            f"{str(path)!r} is an SQLite database but not a diffio_async ledger"
        )
    if version > SCHEMA_VERSION:
        raise LedgerFormatError(
            f"the ledger {str(path)!r} has schema version {version}, newer than this "
            f"diffio_async supports ({SCHEMA_VERSION}); upgrade diffio_async"
        )
    if version < 1:
        raise LedgerFormatError(f"the ledger {str(path)!r} has no schema version; damaged?")
    return True


def _initialize(connection: sqlite3.Connection, path: Path) -> None:
    try:
        # One batch per ledger: in EXCLUSIVE locking mode the connection keeps its file locks
        # until it closes, so a second process (or a second Ledger in this one) is refused
        # at its first read instead of interleaving steps with ours.
        connection.execute("PRAGMA locking_mode=EXCLUSIVE")
        # Check before writing anything: a foreign database must not be modified.
        is_ledger = _check_header(path, *_header(connection))
        # WAL: readers never block the writer, and a commit is one append to the WAL.
        # synchronous=FULL: each commit is fsynced, so an acknowledged step survives power loss
        # too, not only a killed process (NORMAL would be enough for SIGKILL, but losing the
        # last project id to a power cut means a second project, a second key and a second
        # billed generation). Group commit (Ledger._write) pays one fsync for all the writes
        # that queue up meanwhile. Measured on a virtio disk (fsync ~0.5 ms): 2,000 entries x
        # 6 steps from 32 workers take ~1.1 s; strictly one write at a time ~8 s, 0.7 ms a step.
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute("BEGIN IMMEDIATE")  # take the write lock now: read-only fails here
        if is_ledger:
            for statement in _LATER_INDEXES:
                connection.execute(statement)
            connection.execute("COMMIT")
            return
        try:
            # Another process may have initialized the file while we were looking.
            if not _check_header(path, *_header(connection)):
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        connection.execute(statement)
                for statement in _LATER_INDEXES:
                    connection.execute(statement)
                connection.execute(f"PRAGMA application_id = {_APPLICATION_ID}")
                connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
    except sqlite3.OperationalError as exc:
        raise _open_error(path, exc) from exc
    except sqlite3.DatabaseError as exc:
        raise LedgerFormatError(
            f"{str(path)!r} is not a diffio_async ledger (not a usable SQLite file: {exc})"
        ) from exc
    except sqlite3.Error as exc:
        raise LedgerError(f"cannot open the ledger {str(path)!r}: {exc}") from exc


def _open_error(path: Path, exc: sqlite3.OperationalError) -> LedgerError:
    """A held or read-only ledger gets its own error: it is not damaged, just not ours."""
    text = str(exc).lower()
    if path.is_dir():
        return LedgerError(f"the ledger {str(path)!r} is a folder; name a file")
    if "locked" in text or "busy" in text:
        return LedgerLockedError(
            f"the ledger {str(path)!r} is in use by another batch (another process, or another "
            "restore_many in this one); wait for it to end or use another ledger file"
        )
    if "readonly" in text or "read-only" in text or _read_only(path):
        return LedgerLockedError(
            f"the ledger {str(path)!r} cannot be written (a read-only file or folder): {exc}"
        )
    return LedgerError(f"cannot open the ledger {str(path)!r}: {exc}")


def _read_only(path: Path) -> bool:
    """Whether the ledger file exists but cannot be opened for writing (a read-only mode for
    this user, an immutable file, a read-only mount)."""
    if path.parent.is_dir() and not os.access(path.parent, os.W_OK):
        return True  # the file could be written, but not the journal beside it
    try:
        os.close(os.open(path, os.O_WRONLY))
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return False
