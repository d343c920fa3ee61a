"""The PostgreSQL ledger store: many batches in one database, one advisory lock per batch.

``PostgresStore("postgresql://user:password@host/db", batch="nightly")`` keeps the entries of
one named batch; any number of batches share the database (every row carries its batch name).
It needs the ``postgres`` extra (psycopg 3), imported only when such a store is made.

**Threads, not psycopg's async API.** psycopg's async connections run on asyncio only; this
store must run on trio too. So it uses psycopg's blocking API in anyio worker threads, at most
``connections`` at a time (a small set of connections, reused): the event loop never blocks,
and PostgreSQL runs the calls of many tasks in parallel.

**Schema.** Created on first use in the first schema of the connection's ``search_path`` (so
``?options=-csearch_path%3Dledgers`` puts it elsewhere), and versioned: the table
``diffio_ledger_schema`` holds the version, each later version is a migration applied in one
transaction under a transaction-level advisory lock (two processes starting at once migrate
once), and a database written by a newer diffio_async is refused (:class:`LedgerFormatError`).
Tables are ``diffio_ledger_batches`` (one row per batch name) and ``diffio_ledger_entries``
(keyed by batch and source). Version 2 adds each entry's lease (owner, expiry, version) for
many workers on one batch (``shared=True``: the rule is in ``_claims``); version 3 adds the
batch's stop (reason, worker, time: a fatal error seen by one worker stops them all);
version 4 adds each entry's ``output_relative``, where the walk that registered the source
placed its output under ``output_dir`` (``a/x.wav``: a shared batch's workers keep the layout
of the folders registered; ``NULL`` in older rows: the output is named after the file).

**Locking.** :meth:`PostgresStore.open` takes ``pg_try_advisory_lock`` on a hash of the schema
and batch name, on a dedicated connection held until :meth:`aclose`: a second store on the
batch (in any process, on any machine) is refused at once with :class:`LedgerLockedError`.
A shared store (many workers on one batch) takes that lock shared instead, and fences its
writes by per-item leases (see ``_claims``). Each single-process open also bumps the
batch's ``epoch``, and every write checks it in its transaction: if the lock's connection
dies and another store takes the batch, this store's writes are refused instead of
interleaving with the new holder's.

**Consistency and durability.** :meth:`update` reads the entry ``FOR UPDATE`` in a READ
COMMITTED transaction, calls the pure change, writes, and commits with
``synchronous_commit=on`` (the commit is flushed to the server's WAL before it is
acknowledged). Two first writes of one new source collide on the primary key; the loser
re-runs its change on the winner's entry (as on a serialization failure or deadlock). A
connection lost during a write raises :class:`LedgerError`: the step was not acknowledged, and
the next call connects again. An idle connection the server ended (a restart, a timeout) is
noticed before use and replaced, without a round trip.

**Secrets.** The password never appears in a message, a repr or an exception chain: errors
show the URL with ``***`` and scrub the driver's text.
"""

from __future__ import annotations

import os
import secrets
import selectors
import socket
import threading
import time
from collections.abc import Callable, Collection, Iterable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Final, TypeVar

import anyio
import anyio.to_thread
import attrs

from ...errors import LedgerError, LedgerFormatError, LedgerLockedError
from ._claims import BatchStatus, BatchStop, BatchStoppedError, LeaseLostError, WorkerStatus
from ._entry import ENTRY_COLUMNS, STATES, EntryState, Identity, LedgerEntry
from ._location import is_postgres_url, redact_url, scrub
from ._states import retry_failed
from ._store import EntryChange

if TYPE_CHECKING:
    import psycopg

__all__ = ["DEFAULT_BATCH", "POSTGRES_HINT", "POSTGRES_SCHEMA_VERSION", "PostgresStore"]

DEFAULT_BATCH: Final = "default"
"""The batch name of a PostgreSQL ledger given only by its URL."""

POSTGRES_HINT: Final = "pip install 'diffio-async[postgres]'"
"""The install that adds psycopg (named by the error a missing driver raises)."""

_GOOD_STATES: Final = (
    "'pending', 'hashed', 'project_created', 'uploaded', 'generation_created', 'complete', "
    "'downloaded'"
)

# Each item brings the schema from its index to its index + 1; never edit a shipped one
# (databases written with it exist), add the next instead.
_MIGRATIONS: Final[tuple[tuple[str, ...], ...]] = (
    (
        """CREATE TABLE diffio_ledger_schema (
            one_row boolean PRIMARY KEY DEFAULT true CHECK (one_row),
            version integer NOT NULL
        )""",
        """CREATE TABLE diffio_ledger_batches (
            name       text PRIMARY KEY CHECK (length(name) > 0),
            epoch      bigint NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        )""",
        f"""CREATE TABLE diffio_ledger_entries (
            batch           text NOT NULL REFERENCES diffio_ledger_batches (name),
            source          text NOT NULL CHECK (length(source) > 0),
            seq             bigint GENERATED ALWAYS AS IDENTITY,
            size            bigint,
            content_hash    text,
            model           text,
            options         text NOT NULL DEFAULT '{{}}',
            state           text NOT NULL CHECK (state IN ({_GOOD_STATES}, 'failed')),
            last_good_state text NOT NULL CHECK (last_good_state IN ({_GOOD_STATES})),
            project_id      text,
            generation_id   text,
            idempotency_key text,
            output_path     text,
            served_type     text,
            error           text,
            error_stage     text,
            attempts        integer NOT NULL DEFAULT 0,
            created_at      timestamptz NOT NULL,
            updated_at      timestamptz NOT NULL,
            PRIMARY KEY (batch, source)
        )""",
        "CREATE INDEX diffio_ledger_entries_by_seq ON diffio_ledger_entries (batch, seq)",
        "CREATE INDEX diffio_ledger_entries_by_state ON diffio_ledger_entries (batch, state)",
        "CREATE INDEX diffio_ledger_entries_by_output "
        "ON diffio_ledger_entries (batch, output_path)",
        "CREATE INDEX diffio_ledger_entries_by_content "
        "ON diffio_ledger_entries (batch, content_hash)",
    ),
    (
        "ALTER TABLE diffio_ledger_entries ADD COLUMN lease_owner text, "
        "ADD COLUMN lease_expires timestamptz, "
        "ADD COLUMN lease_version bigint NOT NULL DEFAULT 0",
    ),
    (
        "ALTER TABLE diffio_ledger_batches ADD COLUMN stop_reason text, "
        "ADD COLUMN stopped_by text, ADD COLUMN stopped_at timestamptz",
    ),
    ("ALTER TABLE diffio_ledger_entries ADD COLUMN output_relative text",),
)

POSTGRES_SCHEMA_VERSION: Final = len(_MIGRATIONS)
"""The schema version this module writes; a database with a newer one is refused."""

_SELECT: Final = f"SELECT {', '.join(ENTRY_COLUMNS)} FROM diffio_ledger_entries WHERE batch = %s"
_INSERT: Final = (
    f"INSERT INTO diffio_ledger_entries (batch, {', '.join(ENTRY_COLUMNS)}) "
    f"VALUES (%s, {', '.join('%s' for _ in ENTRY_COLUMNS)})"
)
_UPDATE: Final = (
    "UPDATE diffio_ledger_entries SET "
    + ", ".join(f"{column} = %s" for column in ENTRY_COLUMNS[1:])
    + " WHERE batch = %s AND source = %s"
)
_HELD: Final = "unnest(%s::text[], %s::bigint[]) AS held (source, version)"
_RELEASE: Final = (
    f"UPDATE diffio_ledger_entries AS e SET lease_expires = NULL FROM {_HELD} "
    "WHERE e.batch = %s AND e.source = held.source AND e.lease_version = held.version"
)
_MIGRATION_LOCK: Final = "diffio_async ledger schema"
_RETRIES: Final = 20  # re-runs of one change on write conflicts before giving up
_CONNECT_TIMEOUT: Final = "10"  # seconds, unless the URL says otherwise
_FINISHED: Final = "('downloaded', 'failed')"
_ADD_CHUNK: Final = 500  # sources registered per statement
_THROUGHPUT_WINDOW: Final = 600.0  # seconds of downloads that make the throughput
_REASON_LIMIT: Final = 1000  # characters of a stop's reason kept
_STOP: Final = (
    "SELECT stop_reason, stopped_by, stopped_at FROM diffio_ledger_batches "
    "WHERE name = %s AND stop_reason IS NOT NULL"
)

_T = TypeVar("_T")


def _psycopg() -> Any:
    """The psycopg module, or a one-line :class:`LedgerError` naming the extra to install."""
    try:
        import psycopg
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.partition(".")[0] != "psycopg":
            raise
        raise LedgerError(
            f"a postgresql:// ledger needs the 'postgres' extra (psycopg is not installed): "
            f"{POSTGRES_HINT}"
        ) from None
    return psycopg


class PostgresStore:
    """A :class:`LedgerStore` for one named batch in a PostgreSQL database (see the module
    docstring).

    ``PostgresStore(url, batch=...)`` does no I/O (it raises :class:`LedgerError` naming
    ``pip install 'diffio-async[postgres]'`` when psycopg is missing); :meth:`open` connects,
    creates or migrates the schema, and takes the batch's lock until :meth:`aclose`.
    ``connections`` bounds the connections (and worker threads) used at once, beside the one
    that holds the lock.

    ``shared=True`` makes it a :class:`ClaimingStore`: one of many workers on the batch, each
    write fenced by the item's lease (``lease_seconds`` long, claimed under ``owner``: by
    default the host name, process id and a random part).
    """

    def __init__(
        self,
        url: str,
        *,
        batch: str = DEFAULT_BATCH,
        connections: int = 4,
        shared: bool = False,
        owner: str | None = None,
        lease_seconds: float = 60.0,
    ) -> None:
        """Describe the store (nothing is opened yet)."""
        if not isinstance(url, str) or not is_postgres_url(url):
            raise LedgerError("a PostgreSQL ledger is a postgresql:// URL")
        if not isinstance(batch, str) or not batch:
            raise LedgerError("the batch name must be a non-empty string")
        if not isinstance(connections, int) or connections < 1:
            raise LedgerError("connections must be an integer >= 1")
        if not isinstance(lease_seconds, int | float) or not 0 < lease_seconds < 86400:
            raise LedgerError("lease_seconds must be a number of seconds above 0, below a day")
        if owner is not None and (not isinstance(owner, str) or not owner):
            raise LedgerError("owner must be a non-empty string")
        _psycopg()
        self._url = url
        self.shared = shared
        """Whether many workers share the batch (leases, no exclusive lock)."""
        self._owner = owner or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self._lease_seconds = float(lease_seconds)
        self._held: dict[str, int] = {}  # claimed source -> its lease version
        self._relatives: dict[str, str | None] = {}  # claimed source -> its output_relative
        self.batch = batch
        """The batch whose entries this store keeps."""
        self._limiter = anyio.CapacityLimiter(connections)
        self._idle: list[psycopg.Connection[Any]] = []
        self._idle_lock = threading.Lock()
        self._lock_connection: psycopg.Connection[Any] | None = None
        self._epoch = 0
        self._closing = False
        self._running = 0
        self._drained: anyio.Event | None = None
        self._disconnected: anyio.Event | None = None  # set while an aclose runs

    def __repr__(self) -> str:
        """The URL without its password, and the batch."""
        return f"PostgresStore({self.url!r}, batch={self.batch!r})"

    @property
    def url(self) -> str:
        """The database URL, its password shown as ``***``."""
        return redact_url(self._url)

    @property
    def closed(self) -> bool:
        """True unless the store is open."""
        return self._lock_connection is None or self._closing

    @property
    def owner(self) -> str:
        """This worker's id, recorded on the items it claims (shared stores)."""
        return self._owner

    def _name(self) -> str:
        return f"batch {self.batch!r} of the ledger {self.url}"

    async def open(self) -> None:
        """Connect, create or migrate the schema, and take the batch's lock.

        Raises :class:`LedgerLockedError` when another store holds the batch or the database
        is read-only, :class:`LedgerFormatError` when its ledger schema is newer than this
        diffio_async or damaged, and :class:`LedgerError` when it cannot be reached.
        """
        if self._lock_connection is not None:
            raise LedgerError(f"the {self._name()} is already open")
        # Not abandoned on cancellation: anyio waits for the thread and returns its result,
        # so a batch taken is always recorded here (and released by aclose).
        self._lock_connection, self._epoch = await anyio.to_thread.run_sync(self._take_batch)
        self._closing = False

    async def aclose(self) -> None:
        """Wait for running calls, then release the lock and disconnect. Idempotent,
        cancel-safe."""
        with anyio.CancelScope(shield=True):
            if self._lock_connection is None:
                return
            if self._disconnected is not None:  # another task is closing it: wait for that
                await self._disconnected.wait()
                return
            self._closing = True
            self._disconnected = disconnected = anyio.Event()
            try:
                while self._running:
                    self._drained = anyio.Event()
                    await self._drained.wait()
                await anyio.to_thread.run_sync(self._disconnect)
            finally:
                self._disconnected = None
                disconnected.set()

    async def get(self, source: str) -> LedgerEntry | None:
        """The committed entry of ``source``, or ``None``."""
        return await self._run(lambda connection: self._fetch(connection, source))

    async def entries(self, state: EntryState | None = None) -> list[LedgerEntry]:
        """Every entry (or those in ``state``), in the order they were first written."""

        def select(connection: psycopg.Connection[Any]) -> list[LedgerEntry]:
            if state is None:
                rows = connection.execute(f"{_SELECT} ORDER BY seq", (self.batch,)).fetchall()
            else:
                query = f"{_SELECT} AND state = %s ORDER BY seq"
                rows = connection.execute(query, (self.batch, state)).fetchall()
            return [_row_to_entry(row) for row in rows]

        return await self._run(select)

    async def counts(self) -> dict[EntryState, int]:
        """How many entries are in each state (every state is a key, zeros included)."""

        def count(connection: psycopg.Connection[Any]) -> dict[EntryState, int]:
            result = dict.fromkeys(STATES, 0)
            for state, number in connection.execute(
                "SELECT state, count(*) FROM diffio_ledger_entries WHERE batch = %s GROUP BY state",
                (self.batch,),
            ):
                result[state] = number
            return result

        return await self._run(count)

    async def update(self, source: str, change: EntryChange) -> LedgerEntry:
        """Replace the entry of ``source`` by ``change(committed entry)`` in one transaction
        (the row locked ``FOR UPDATE``); return once the commit is durable."""
        driver = _psycopg()
        conflicts = (
            driver.errors.UniqueViolation,
            driver.errors.SerializationFailure,
            driver.errors.DeadlockDetected,
        )

        def step(connection: psycopg.Connection[Any]) -> LedgerEntry:
            for attempt in range(_RETRIES + 1):
                try:
                    with connection.transaction():
                        entry = self._step(connection, source, change)
                    if self.shared and entry.state in ("downloaded", "failed"):
                        self._held.pop(source, None)
                    return entry
                except conflicts:
                    if attempt == _RETRIES:
                        raise
            raise AssertionError("unreachable: the last attempt raises")

        return await self._run(step)

    def _step(
        self, connection: psycopg.Connection[Any], source: str, change: EntryChange
    ) -> LedgerEntry:
        """One attempt at an update, inside its transaction."""
        if self.shared:
            return self._fenced_step(connection, source, change)
        row = connection.execute(
            "SELECT epoch FROM diffio_ledger_batches WHERE name = %s FOR SHARE", (self.batch,)
        ).fetchone()
        if row is None or row[0] != self._epoch:
            raise LedgerLockedError(
                f"the {self._name()} was taken by another store (this store lost its lock); "
                "it writes nothing more"
            )
        return self._write(connection, source, change, self._fetch(connection, source, lock=True))

    def _write(
        self,
        connection: psycopg.Connection[Any],
        source: str,
        change: EntryChange,
        current: LedgerEntry | None,
    ) -> LedgerEntry:
        entry = change(current)
        if entry.source != source:
            raise LedgerError(f"a ledger step for {source!r} returned {entry.source!r}")
        if entry != current:
            values = _entry_to_row(entry)
            if current is None:
                connection.execute(_INSERT, (self.batch, *values))
            else:
                connection.execute(_UPDATE, (*values[1:], self.batch, source))
        return entry

    def _fenced_step(
        self, connection: psycopg.Connection[Any], source: str, change: EntryChange
    ) -> LedgerEntry:
        """An update by one of many workers: only under this worker's lease on ``source``."""
        version = self._held.get(source)
        row = connection.execute(
            "SELECT lease_version FROM diffio_ledger_entries WHERE batch = %s AND source = %s "
            "FOR UPDATE",
            (self.batch, source),
        ).fetchone()
        if version is None or row is None or row[0] != version:
            self._held.pop(source, None)
            raise LeaseLostError(
                f"{source!r} of the {self._name()} is not leased to this worker "
                f"({self._owner}); it writes nothing more for it"
            )
        entry = self._write(connection, source, change, self._fetch(connection, source))
        if entry.state in ("downloaded", "failed"):  # finished: its lease ends with this write
            connection.execute(
                "UPDATE diffio_ledger_entries SET lease_expires = NULL "
                "WHERE batch = %s AND source = %s",
                (self.batch, source),
            )
        return entry

    async def output_owner(self, output_path: str, *, other_than: str) -> str | None:
        """A source other than ``other_than`` whose recorded output is ``output_path``."""

        def select(connection: psycopg.Connection[Any]) -> str | None:
            row = connection.execute(
                "SELECT source FROM diffio_ledger_entries WHERE batch = %s AND output_path = %s "
                "AND source != %s LIMIT 1",
                (self.batch, output_path, other_than),
            ).fetchone()
            return None if row is None else str(row[0])

        return await self._run(select)

    async def uploaded_twin_project(self, identity: Identity, *, other_than: str) -> str | None:
        """The project id of another entry with this identity whose upload finished."""

        def select(connection: psycopg.Connection[Any]) -> str | None:
            row = connection.execute(
                "SELECT project_id FROM diffio_ledger_entries WHERE batch = %s "
                "AND content_hash = %s AND model = %s AND options = %s AND source != %s "
                "AND project_id IS NOT NULL AND last_good_state "
                "IN ('uploaded', 'generation_created', 'complete', 'downloaded') "
                "ORDER BY seq LIMIT 1",
                (self.batch, identity.content_hash, identity.model, identity.options, other_than),
            ).fetchone()
            return None if row is None else str(row[0])

        return await self._run(select)

    # --- many workers on one batch (shared stores; the rule is in _claims) --------------------

    async def add_sources(self, sources: Iterable[str | tuple[str, str | None]]) -> int:
        """Register ``sources`` as ``pending`` entries, each a key or a ``(key, relative
        output path)`` pair (those known already are left as they are, relative path
        included); return how many were new."""
        chosen: dict[str, str | None] = {}
        for given in sources:
            source, relative = (given, None) if isinstance(given, str) else given
            if not isinstance(source, str) or not source:
                raise LedgerError("a source must be a non-empty string")
            if relative is not None and not isinstance(relative, str):
                raise LedgerError("a relative output path must be a string or None")
            chosen.setdefault(source, relative)
        keys, relatives = list(chosen), list(chosen.values())

        def insert(connection: psycopg.Connection[Any]) -> int:
            added = 0
            with connection.transaction():
                for start in range(0, len(keys), _ADD_CHUNK):
                    added += connection.execute(
                        "INSERT INTO diffio_ledger_entries (batch, source, output_relative, "
                        "state, last_good_state, created_at, updated_at) "
                        "SELECT %s, source, relative, 'pending', 'pending', now(), now() "
                        "FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY "
                        "AS given (source, relative, n) ORDER BY n "
                        "ON CONFLICT (batch, source) DO NOTHING",
                        (
                            self.batch,
                            keys[start : start + _ADD_CHUNK],
                            relatives[start : start + _ADD_CHUNK],
                        ),
                    ).rowcount
            return added

        return await self._run(insert)

    async def claim(self, limit: int, *, excluding: Collection[str] = ()) -> list[str]:
        """Lease up to ``limit`` unfinished items that no live lease holds, oldest first;
        never one this worker holds already, nor one of ``excluding``."""
        self._check_shared("claim")
        skipped = [*self._held, *excluding]

        def take(connection: psycopg.Connection[Any]) -> list[str]:
            with connection.transaction():
                self._refuse_stopped(connection)
                rows = connection.execute(
                    "WITH picked AS (SELECT source FROM diffio_ledger_entries "
                    f"WHERE batch = %s AND state NOT IN {_FINISHED} "
                    "AND (lease_expires IS NULL OR lease_expires < clock_timestamp()) "
                    "AND source != ALL(%s::text[]) "
                    "ORDER BY seq LIMIT %s FOR UPDATE SKIP LOCKED) "
                    "UPDATE diffio_ledger_entries AS e SET lease_owner = %s, "
                    "lease_expires = clock_timestamp() + %s * interval '1 second', "
                    "lease_version = e.lease_version + 1 FROM picked "
                    "WHERE e.batch = %s AND e.source = picked.source "
                    "RETURNING e.source, e.lease_version, e.seq, e.output_relative",
                    (self.batch, skipped, limit, self._owner, self._lease_seconds, self.batch),
                ).fetchall()
            rows.sort(key=lambda row: row[2])
            self._held.update((row[0], row[1]) for row in rows)
            self._relatives.update((row[0], row[3]) for row in rows)
            return [str(row[0]) for row in rows]

        return await self._run(take)

    def relative_output(self, source: str) -> str | None:
        """The relative output path registered with ``source``, as this worker's last claim
        of it read it (``None``: none was registered, or this worker never claimed it)."""
        return self._relatives.get(source)

    async def unfinished(self, *, excluding: Collection[str] = ()) -> int:
        """How many items are neither downloaded nor failed, leaving out ``excluding``."""

        def count(connection: psycopg.Connection[Any]) -> int:
            row = connection.execute(
                "SELECT count(*) FROM diffio_ledger_entries WHERE batch = %s "
                f"AND state NOT IN {_FINISHED} AND source != ALL(%s::text[])",
                (self.batch, list(excluding)),
            ).fetchone()
            return 0 if row is None else int(row[0])

        return await self._run(count)

    async def renew(self) -> list[str]:
        """Extend this worker's leases; return the items it lost (and holds no more)."""
        self._check_shared("renew")
        held = dict(self._held)

        def extend(connection: psycopg.Connection[Any]) -> list[str]:
            self._refuse_stopped(connection)
            if not held:
                return []
            rows = connection.execute(
                "UPDATE diffio_ledger_entries AS e "
                "SET lease_expires = clock_timestamp() + %s * interval '1 second' "
                f"FROM {_HELD} WHERE e.batch = %s AND e.source = held.source "
                f"AND e.lease_version = held.version AND e.state NOT IN {_FINISHED} "
                "RETURNING e.source",
                (self._lease_seconds, list(held), list(held.values()), self.batch),
            ).fetchall()
            kept = {row[0] for row in rows}
            lost = [source for source in held if source not in kept]
            for source in lost:  # lost, or finished meanwhile: not ours to renew any more
                if self._held.get(source) == held[source]:
                    del self._held[source]
            return lost

        return await self._run(extend)

    async def stop(self, reason: str) -> BatchStop:
        """Stop the batch for every worker (``reason`` is kept on one line, without the
        database password); a stopped batch keeps its first stop, which is returned."""
        self._check_shared("stop")
        text = scrub(" ".join(reason.split()), self._url)[:_REASON_LIMIT] or "stopped"

        def record(connection: psycopg.Connection[Any]) -> BatchStop:
            with connection.transaction():
                connection.execute(
                    "UPDATE diffio_ledger_batches SET stop_reason = %s, stopped_by = %s, "
                    "stopped_at = clock_timestamp() WHERE name = %s AND stop_reason IS NULL",
                    (text, self._owner, self.batch),
                )
                stop = self._stop(connection)
            assert stop is not None, "recorded just now, or earlier"
            return stop

        return await self._run(record)

    async def stopped(self) -> BatchStop | None:
        """Why the batch was stopped, or ``None``."""
        return await self._run(self._stop)

    async def resume(self) -> BatchStop | None:
        """Clear the batch's stop and move its failed items back to their last good step (to
        be claimed again); return the stop that was cleared, if any."""

        def clear(connection: psycopg.Connection[Any]) -> BatchStop | None:
            with connection.transaction():
                stop = self._stop(connection)
                connection.execute(
                    "UPDATE diffio_ledger_batches SET stop_reason = NULL, stopped_by = NULL, "
                    "stopped_at = NULL WHERE name = %s",
                    (self.batch,),
                )
                failed = connection.execute(
                    f"{_SELECT} AND state = 'failed' ORDER BY seq FOR UPDATE", (self.batch,)
                ).fetchall()
                now = time.time()
                for row in failed:
                    values = _entry_to_row(retry_failed(_row_to_entry(row), now))
                    connection.execute(_UPDATE, (*values[1:], self.batch, values[0]))
            return stop

        return await self._run(clear)

    def _stop(self, connection: psycopg.Connection[Any]) -> BatchStop | None:
        row = connection.execute(_STOP, (self.batch,)).fetchone()
        if row is None:
            return None
        return BatchStop(reason=str(row[0]), worker=str(row[1]), at=_utc(row[2]))

    def _refuse_stopped(self, connection: psycopg.Connection[Any]) -> None:
        stop = self._stop(connection)
        if stop is not None:
            raise BatchStoppedError(
                f"the {self._name()} was stopped by worker {stop.worker} at "
                f"{stop.at:%Y-%m-%d %H:%M:%S} UTC: {stop.reason} (resume it once that is "
                "fixed: diffio-async batch resume)",
                stop=stop,
            )

    async def status(self) -> BatchStatus:
        """Counts per state and per worker, throughput and ETA, and the batch's stop."""
        counts = await self.counts()
        stop = await self.stopped()

        def select(
            connection: psycopg.Connection[Any],
        ) -> tuple[list[tuple[Any, ...]], tuple[Any, ...] | None]:
            workers = connection.execute(
                "SELECT lease_owner, count(*) FILTER (WHERE lease_expires > clock_timestamp() "
                f"AND state NOT IN {_FINISHED}), count(*) FILTER (WHERE state = 'downloaded') "
                "FROM diffio_ledger_entries WHERE batch = %s AND lease_owner IS NOT NULL "
                "GROUP BY lease_owner ORDER BY lease_owner",
                (self.batch,),
            ).fetchall()
            pace = connection.execute(
                "SELECT count(*), extract(epoch FROM clock_timestamp() - min(updated_at)) "
                "FROM diffio_ledger_entries WHERE batch = %s AND state = 'downloaded' "
                "AND updated_at > clock_timestamp() - %s * interval '1 second'",
                (self.batch, _THROUGHPUT_WINDOW),
            ).fetchone()
            return workers, pace

        workers, pace = await self._run(select)
        recent, span = (0, None) if pace is None else (int(pace[0]), pace[1])
        per_second = recent / max(float(span), 1.0) if recent and span is not None else 0.0
        unfinished = sum(counts.values()) - counts["downloaded"] - counts["failed"]
        return BatchStatus(
            name=self.batch,
            counts=counts,
            workers=tuple(
                WorkerStatus(owner=str(owner), leased=int(leased), downloaded=int(done))
                for owner, leased, done in workers
            ),
            throughput=per_second * 60,
            eta_seconds=unfinished / per_second if per_second else None,
            stop=stop,
        )

    def _check_shared(self, what: str) -> None:
        if not self.shared:
            raise LedgerError(f"only a shared store can {what} items (PostgresStore(shared=True))")

    # --- connections (worker threads) --------------------------------------------------------

    async def _run(self, function: Callable[[psycopg.Connection[Any]], _T]) -> _T:
        if self.closed:
            raise LedgerError(f"the {self._name()} is closed")
        self._running += 1
        try:
            return await anyio.to_thread.run_sync(self._call, function, limiter=self._limiter)
        finally:
            self._running -= 1
            if not self._running and self._drained is not None:
                self._drained.set()

    def _call(self, function: Callable[[psycopg.Connection[Any]], _T]) -> _T:
        """Run ``function`` on an idle connection (or a new one); runs in a worker thread."""
        driver = _psycopg()
        with self._idle_lock:
            connection = self._idle.pop() if self._idle else None
        if connection is not None and not _still_connected(connection):
            connection.close()  # the server ended it while idle (a restart, a timeout)
            connection = None
        failure: LedgerError | None = None
        try:
            if connection is None:
                connection = self._connect()
            return function(connection)
        except driver.errors.ReadOnlySqlTransaction as exc:
            failure = LedgerLockedError(
                f"the {self._name()} cannot be written (a read-only server): {self._scrub(exc)}"
            )
        except driver.Error as exc:
            failure = LedgerError(f"the {self._name()} failed: {self._scrub(exc)}")
        finally:
            if connection is not None:
                self._release(connection)
        # Raised outside the except block: the driver's exception (and its unscrubbed text)
        # is not chained to ours.
        assert failure is not None, "only a failure gets here"
        raise failure

    def _release(self, connection: psycopg.Connection[Any]) -> None:
        """Keep a healthy connection for the next call; close a broken one."""
        driver = _psycopg()
        idle = driver.pq.TransactionStatus.IDLE
        if connection.closed or connection.broken or connection.info.transaction_status != idle:
            connection.close()
            return
        with self._idle_lock:
            self._idle.append(connection)

    def _connect(self) -> psycopg.Connection[Any]:
        """A new connection: autocommit (transactions are explicit), READ COMMITTED, and
        commits flushed before they are acknowledged."""
        driver = _psycopg()
        scheme, rest = self._url.split("://", 1)  # libpq takes lower-case schemes only
        params = driver.conninfo.conninfo_to_dict(f"{scheme.lower()}://{rest}")
        params.setdefault("connect_timeout", _CONNECT_TIMEOUT)
        params.setdefault("fallback_application_name", "diffio_async ledger")
        connection: psycopg.Connection[Any] = driver.connect(**params, autocommit=True)
        try:
            connection.isolation_level = driver.IsolationLevel.READ_COMMITTED
            connection.execute("SET synchronous_commit TO on")
        except BaseException:
            connection.close()
            raise
        return connection

    def _fetch(
        self, connection: psycopg.Connection[Any], source: str, *, lock: bool = False
    ) -> LedgerEntry | None:
        query = f"{_SELECT} AND source = %s" + (" FOR UPDATE" if lock else "")
        row = connection.execute(query, (self.batch, source)).fetchone()
        return None if row is None else _row_to_entry(row)

    def _scrub(self, exc: BaseException) -> str:
        """The driver's message on one line, without the password (libpq quotes the whole
        URL in some messages)."""
        return scrub(" ".join(str(exc).split()), self._url)

    # --- the batch's lock and the schema (worker threads) ------------------------------------

    def _take_batch(self) -> tuple[psycopg.Connection[Any], int]:
        """Connect, migrate, take the batch's advisory lock and bump its epoch."""
        driver = _psycopg()
        failure: LedgerError | None = None
        connection: psycopg.Connection[Any] | None = None
        try:
            connection = self._connect()
            self._migrate(connection)
            take = "pg_try_advisory_lock_shared" if self.shared else "pg_try_advisory_lock"
            locked = connection.execute(
                f"SELECT {take}(hashtextextended(current_schema() || ' ' || %s, 0))",
                (self._lock_name(),),
            ).fetchone()
            if locked is None or not locked[0]:
                failure = LedgerLockedError(
                    f"the {self._name()} is in use by another batch (another process, or "
                    "another restore_many in this one; or its shared workers, or a "
                    "single-process batch while workers want it); wait for it to end or use "
                    "another batch"
                )
            elif self.shared:  # the epoch is the single-process store's fence, not ours
                connection.execute(
                    "INSERT INTO diffio_ledger_batches (name, epoch) VALUES (%s, 0) "
                    "ON CONFLICT (name) DO NOTHING",
                    (self.batch,),
                )
                return connection, 0
            else:
                epoch = connection.execute(
                    "INSERT INTO diffio_ledger_batches (name, epoch) VALUES (%s, 1) "
                    "ON CONFLICT (name) DO UPDATE SET epoch = diffio_ledger_batches.epoch + 1 "
                    "RETURNING epoch",
                    (self.batch,),
                ).fetchone()
                assert epoch is not None, "INSERT ... RETURNING returns the row"
                return connection, int(epoch[0])
        except LedgerError as exc:
            failure = exc
        except driver.errors.ReadOnlySqlTransaction as exc:
            failure = LedgerLockedError(
                f"the {self._name()} cannot be written (a read-only server): {self._scrub(exc)}"
            )
        except driver.Error as exc:
            failure = LedgerError(f"cannot open the {self._name()}: {self._scrub(exc)}")
        if connection is not None:
            connection.close()
        raise failure

    def _lock_name(self) -> str:
        return f"diffio_async ledger batch {self.batch}"

    def _migrate(self, connection: psycopg.Connection[Any]) -> None:
        """Create the schema, or bring it to this version; refuse a newer or damaged one."""
        with connection.transaction():
            connection.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || ' ' || %s, 0))",
                (_MIGRATION_LOCK,),
            )
            found = connection.execute("SELECT to_regclass('diffio_ledger_schema')").fetchone()
            version = 0
            if found is not None and found[0] is not None:
                rows = connection.execute("SELECT version FROM diffio_ledger_schema").fetchall()
                if len(rows) != 1 or not isinstance(rows[0][0], int) or rows[0][0] < 1:
                    raise LedgerFormatError(
                        f"the ledger {self.url} has a damaged diffio_ledger_schema table"
                    )
                version = rows[0][0]
            if version > POSTGRES_SCHEMA_VERSION:
                raise LedgerFormatError(
                    f"the ledger {self.url} has schema version {version}, newer than this "
                    f"diffio_async supports ({POSTGRES_SCHEMA_VERSION}); upgrade diffio_async"
                )
            for statements in _MIGRATIONS[version:]:
                for statement in statements:
                    connection.execute(statement)
            if version < POSTGRES_SCHEMA_VERSION:
                connection.execute(
                    "INSERT INTO diffio_ledger_schema (version) VALUES (%s) "
                    "ON CONFLICT (one_row) DO UPDATE SET version = excluded.version",
                    (POSTGRES_SCHEMA_VERSION,),
                )

    def _disconnect(self) -> None:
        """Release the lock (so that a new store can take it at once) and close every
        connection; runs in a worker thread."""
        driver = _psycopg()
        lock_connection, self._lock_connection = self._lock_connection, None
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()
        if lock_connection is None:
            return
        unlock = "pg_advisory_unlock_shared" if self.shared else "pg_advisory_unlock"
        try:
            if self._held:  # a worker that stops hands its items on at once
                sources, versions = zip(*self._held.items(), strict=True)
                self._held = {}
                lock_connection.execute(_RELEASE, (list(sources), list(versions), self.batch))
            lock_connection.execute(
                f"SELECT {unlock}(hashtextextended(current_schema() || ' ' || %s, 0))",
                (self._lock_name(),),
            )
        except driver.Error:
            pass  # a lost connection: the server released the lock with it
        finally:
            lock_connection.close()


def _still_connected(connection: psycopg.Connection[Any]) -> bool:
    """Whether an idle connection is still up, as far as can be known without a round trip.

    An idle connection of ours is sent nothing (no LISTEN): if its socket has something to
    read, the server ended the session (its goodbye, then the close) or said something we do
    not wait for; either way a new connection is the safe choice.
    """
    if connection.closed or connection.broken:
        return False
    with selectors.DefaultSelector() as selector:
        selector.register(connection.fileno(), selectors.EVENT_READ)
        return not selector.select(timeout=0)


def _row_to_entry(row: tuple[Any, ...]) -> LedgerEntry:
    values = dict(zip(ENTRY_COLUMNS, row, strict=True))
    values["created_at"] = _utc(values["created_at"])
    values["updated_at"] = _utc(values["updated_at"])
    return LedgerEntry(**values)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc)


def _entry_to_row(entry: LedgerEntry) -> tuple[Any, ...]:
    values = attrs.asdict(entry, recurse=False)
    return tuple(values[column] for column in ENTRY_COLUMNS)
