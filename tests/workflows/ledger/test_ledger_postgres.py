"""The PostgreSQL ledger store against a real server (``postgres_server.py``, one per session):
the store conformance suite, and what only PostgreSQL does (named batches in one database,
the advisory lock across processes, schema versions, lost connections, secrets)."""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import threading
import traceback
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import attrs
import psycopg
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from postgres_server import PASSWORD, REQUIRE_ENV, PostgresServer, unavailable
from store_conformance import LedgerStoreConformance

from diffio_async import BatchOptions
from diffio_async.errors import LedgerError, LedgerFormatError, LedgerLockedError
from diffio_async.testing import emulated_diffio
from diffio_async.workflows.bulk import ItemResult
from diffio_async.workflows.ledger import Ledger, LedgerEntry, LedgerStore, PostgresStore
from diffio_async.workflows.ledger._entry import fresh_entry
from diffio_async.workflows.ledger._postgres import POSTGRES_SCHEMA_VERSION

ENTRY_COLUMNS = (
    "source, size, content_hash, model, options, state, last_good_state, project_id, "
    "generation_id, idempotency_key, output_path, error, error_stage, attempts, created_at, "
    "updated_at"
)


def _admin(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url, autocommit=True)


class PostgresStores:
    """The conformance suite's factory: batches of one database, named apart per test."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.prefix = uuid.uuid4().hex[:12]

    def store(self, batch: str = "batch") -> LedgerStore:
        return PostgresStore(self.url, batch=f"{self.prefix}-{batch}")

    async def crash_copy(self, store: LedgerStore, batch: str, copy: str) -> None:
        """What a SIGKILL leaves: the committed rows (a commit is acknowledged only once the
        server flushed it), copied to another batch from another connection."""

        def copy_rows() -> None:
            with _admin(self.url) as admin, admin.transaction():
                admin.execute(
                    "INSERT INTO diffio_ledger_batches (name, epoch) VALUES (%s, 0)",
                    (f"{self.prefix}-{copy}",),
                )
                admin.execute(
                    f"INSERT INTO diffio_ledger_entries (batch, {ENTRY_COLUMNS}) "
                    f"SELECT %s, {ENTRY_COLUMNS} FROM diffio_ledger_entries WHERE batch = %s "
                    "ORDER BY seq",
                    (f"{self.prefix}-{copy}", f"{self.prefix}-{batch}"),
                )

        await anyio.to_thread.run_sync(copy_rows)


@pytest.fixture
def database(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a new, empty database (for tests that look at or break the whole schema)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with _admin(postgres_server.url()) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    yield postgres_server.url(name)
    with _admin(postgres_server.url()) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


class TestPostgresStore(LedgerStoreConformance):
    """Every test of the store contract, on PostgreSQL."""

    @pytest.fixture
    def stores(self, postgres_server: PostgresServer) -> PostgresStores:
        return PostgresStores(postgres_server.url())


def _entry(source: str, **fields: Any) -> LedgerEntry:
    return attrs.evolve(fresh_entry(source, 1_700_000_000.5), **fields)


@pytest.mark.anyio
async def test_ledger_open_selects_postgres_by_url_on_the_default_batch(database: str) -> None:
    digest = hashlib.sha256(b"a").hexdigest()
    async with await Ledger.open(database) as ledger:
        assert ledger.path is None
        entry = await ledger.register("/in/a.wav", size=1, content_hash=digest, model="m")
        assert entry.state == "hashed"
    with _admin(database) as admin:
        rows = admin.execute("SELECT batch, source, state FROM diffio_ledger_entries").fetchall()
    assert rows == [("default", "/in/a.wav", "hashed")]
    async with await Ledger.open(database) as ledger:  # resumes what it wrote
        assert await ledger.get("/in/a.wav") == entry


@pytest.mark.anyio
async def test_two_batches_in_one_database_are_independent(database: str) -> None:
    nightly = PostgresStore(database, batch="nightly")
    weekly = PostgresStore(database, batch="weekly")
    await nightly.open()
    await weekly.open()  # both held at once
    try:
        await nightly.update("/in/a.wav", lambda _: _entry("/in/a.wav", attempts=1))
        await weekly.update("/in/a.wav", lambda _: _entry("/in/a.wav", attempts=7))
        await weekly.update("/in/b.wav", lambda _: _entry("/in/b.wav", state="failed"))
        assert [(e.source, e.attempts) for e in await nightly.entries()] == [("/in/a.wav", 1)]
        assert [e.source for e in await weekly.entries()] == ["/in/a.wav", "/in/b.wav"]
        assert (await nightly.counts())["failed"] == 0
        assert (await weekly.counts())["failed"] == 1
        assert await nightly.get("/in/b.wav") is None
    finally:
        await nightly.aclose()
        await weekly.aclose()


HOLDER = """
import sys, anyio
from diffio_async.workflows.ledger import PostgresStore

async def main():
    store = PostgresStore(sys.argv[1], batch="shared")
    await store.open()
    print("held", flush=True)
    await anyio.to_thread.run_sync(sys.stdin.readline)  # until killed

anyio.run(main)
"""


@pytest.mark.anyio
async def test_a_batch_held_by_another_process_is_refused_until_that_process_dies(
    database: str,
) -> None:
    async with await anyio.open_process(
        [sys.executable, "-c", HOLDER, database],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[3])},
        stderr=None,
    ) as holder:
        try:
            assert holder.stdout is not None
            said = BufferedByteReceiveStream(holder.stdout)
            assert await said.receive_until(b"\n", 100) == b"held"
            with pytest.raises(LedgerLockedError, match="in use by another batch"):
                await PostgresStore(database, batch="shared").open()
            other = PostgresStore(database, batch="other")  # another batch is free
            await other.open()
            await other.aclose()
        finally:
            holder.kill()
            await holder.wait()
    # The server ends a dead client's session, and its lock with it (as soon as it notices
    # the closed socket: retry until then).
    with anyio.fail_after(30):
        while True:
            store = PostgresStore(database, batch="shared")
            try:
                await store.open()
                break
            except LedgerLockedError:
                await anyio.sleep(0.05)
    await store.aclose()


@pytest.mark.anyio
async def test_a_newer_schema_is_refused_and_a_damaged_one_too(database: str) -> None:
    store = PostgresStore(database)
    await store.open()  # creates the schema at this version
    await store.aclose()
    newer = POSTGRES_SCHEMA_VERSION + 1
    with _admin(database) as admin:
        found = admin.execute("SELECT version FROM diffio_ledger_schema").fetchall()
        assert found == [(POSTGRES_SCHEMA_VERSION,)]
        admin.execute("UPDATE diffio_ledger_schema SET version = %s", (newer,))
    with pytest.raises(LedgerFormatError, match=f"schema version {newer}, newer"):
        await PostgresStore(database).open()
    with _admin(database) as admin:
        admin.execute("DELETE FROM diffio_ledger_schema")
    with pytest.raises(LedgerFormatError, match="damaged"):
        await PostgresStore(database).open()


@pytest.mark.anyio
async def test_many_stores_creating_the_schema_at_once_create_it_once(database: str) -> None:
    stores = [PostgresStore(database, batch=f"b{i}") for i in range(4)]
    async with anyio.create_task_group() as tg:
        for store in stores:
            tg.start_soon(store.open)
    for store in stores:
        await store.aclose()


def _backends(url: str, state: str, last_query: str = "%") -> list[int]:
    """The server processes of this database's ledger connections in ``state`` (whose last
    query is like ``last_query``)."""
    with _admin(url) as admin:
        rows = admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name = 'diffio_async ledger' AND state = %s AND query LIKE %s",
            (state, last_query),
        ).fetchall()
    return [row[0] for row in rows]


def _terminate(url: str, pids: list[int]) -> None:
    with _admin(url) as admin:
        for pid in pids:
            admin.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,))


@pytest.mark.anyio
async def test_a_connection_killed_mid_update_loses_no_acknowledged_step(database: str) -> None:
    store = PostgresStore(database, batch="b", connections=1)
    await store.open()
    try:
        for i in range(5):
            await store.update(f"/in/{i}.wav", lambda _, i=i: _entry(f"/in/{i}.wav"))
        inside, release = threading.Event(), threading.Event()

        def stalled(current: LedgerEntry | None) -> LedgerEntry:
            inside.set()
            release.wait()
            return _entry("/in/lost.wav")

        async def kill_it() -> None:
            await anyio.to_thread.run_sync(inside.wait)
            pids = await anyio.to_thread.run_sync(_backends, database, "idle in transaction")
            assert len(pids) == 1
            await anyio.to_thread.run_sync(_terminate, database, pids)
            release.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(kill_it)
            with pytest.raises(LedgerError, match="failed"):
                await store.update("/in/lost.wav", stalled)
        # The next call connects again; every acknowledged step is there, the lost one not.
        assert [e.source for e in await store.entries()] == [f"/in/{i}.wav" for i in range(5)]
        await store.update("/in/lost.wav", lambda _: _entry("/in/lost.wav"))
        assert await store.get("/in/lost.wav") is not None
    finally:
        await store.aclose()


@pytest.mark.anyio
async def test_a_store_that_lost_its_lock_to_another_writes_nothing_more(database: str) -> None:
    first = PostgresStore(database, batch="b")
    await first.open()
    await first.update("/in/a.wav", lambda _: _entry("/in/a.wav"))
    # The lock's connection dies (a network cut, a restarted pooler); another store takes
    # the batch. The first one must not interleave its steps with the new holder's.
    lock = await anyio.to_thread.run_sync(
        _backends, database, "idle", "INSERT INTO diffio_ledger_batches%"
    )
    assert len(lock) == 1  # the connection that took the lock, and bumped the epoch
    await anyio.to_thread.run_sync(_terminate, database, lock)
    second = PostgresStore(database, batch="b")
    await second.open()
    try:
        with pytest.raises(LedgerLockedError, match="lost its lock"):
            await first.update("/in/a.wav", lambda _: _entry("/in/a.wav", attempts=9))
        assert (await second.get("/in/a.wav")) == _entry("/in/a.wav")
        await second.update("/in/a.wav", lambda _: _entry("/in/a.wav", attempts=1))
    finally:
        await first.aclose()
        await second.aclose()


def _everything_said(exc: BaseException) -> str:
    """The message, repr, chained exceptions and traceback of ``exc``: what a user may see."""
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)) + repr(exc)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "make_url",
    [
        pytest.param(lambda server: server.url(password="wrong-" + PASSWORD), id="bad password"),
        pytest.param(lambda server: server.url("no_such_db"), id="no database"),
        pytest.param(
            lambda server: server.url().replace(f":{server.port}/", ":1/"), id="nothing listens"
        ),
        pytest.param(lambda server: server.url() + "?sslmode=nonsense", id="bad option"),
        pytest.param(  # libpq quotes the whole URL in this message
            lambda server: server.url().replace("@127.0.0.1", "@[::1"), id="malformed"
        ),
        pytest.param(
            lambda server: (
                f"postgresql://diffio@127.0.0.1:{server.port}/postgres?password="
                f"{PASSWORD.replace('!', '%21').replace('@', '%40')}&bogus=1"
            ),
            id="password in the query",
        ),
    ],
)
async def test_the_password_never_appears_in_errors_or_reprs(
    postgres_server: PostgresServer, make_url: Any
) -> None:
    url = make_url(postgres_server)
    store = PostgresStore(url)
    with pytest.raises(LedgerError) as caught:
        await store.open()
    said = _everything_said(caught.value) + repr(store) + store.url
    said += repr(BatchOptions(ledger=url))
    secrets = {PASSWORD, "wrong-" + PASSWORD, "Zq7", "pw-Zq7%21x%40secret"}
    assert [secret for secret in secrets if secret in said] == []
    assert "***" in repr(store)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "url",
    [
        # libpq ends the user info at the first "/": host "diffio", port "Zq7", dbname "Wv9@..."
        pytest.param("postgresql://diffio:Zq7/Wv9@127.0.0.1:1/x", id="unencoded slash"),
        # libpq ends it at the first "@": password "Zq7", host "Wv9@127.0.0.1"
        pytest.param("postgresql://diffio:Zq7@Wv9@127.0.0.1:1/x", id="unencoded at"),
        # sslpassword: the passphrase of the client key, a secret as much as the password
        pytest.param(
            "postgresql://diffio@127.0.0.1:1/x?sslpassword=Zq7Wv9&sslmode=nonsense",
            id="sslpassword",
        ),
    ],
)
async def test_a_password_written_unencoded_is_hidden_too(url: str) -> None:
    """Second review of issue 9: a password with an unencoded "/" (libpq then reads a host
    and a port) was shown whole by ``redact_url``, one with an unencoded "@" half shown, and
    ``sslpassword=`` not hidden at all: in ``repr(store)``, ``BatchOptions``' repr and the
    errors of ``open()``. No server is needed: each fails before connecting."""
    store = PostgresStore(url)
    with pytest.raises(LedgerError) as caught:
        await store.open()
    said = _everything_said(caught.value) + repr(store) + store.url
    said += repr(BatchOptions(ledger=url))
    assert [secret for secret in ("Zq7", "Wv9") if secret in said] == [], said


@pytest.mark.anyio
async def test_a_closed_store_names_its_batch_without_the_password(database: str) -> None:
    store = PostgresStore(database, batch="b")
    with pytest.raises(LedgerError, match="closed") as caught:
        await store.get("/in/a.wav")
    assert "'b'" in str(caught.value) and PASSWORD not in str(caught.value)


BLOCKER = """
import sys

class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "psycopg":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Blocker())
"""

HINT = "pip install 'diffio-async[postgres]'"


def _without_psycopg(then: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DIFFIO_API_KEY": "dk_test_not_used"}
    env["PYTHONPATH"] = str(Path(__file__).parents[3])
    return subprocess.run(
        [sys.executable, "-c", BLOCKER + then],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=cwd,
    )


def test_without_psycopg_sqlite_works_and_a_postgres_url_names_the_extra(tmp_path: Path) -> None:
    done = _without_psycopg(
        "import anyio\n"
        "from diffio_async.workflows.ledger import Ledger\n"
        "async def main():\n"
        "    async with await Ledger.open('sqlite:///l.sqlite'):\n"
        "        print('sqlite ok')\n"
        "    await Ledger.open('postgresql://u:hunter2@127.0.0.1:1/db')\n"
        "anyio.run(main)\n",
        tmp_path,
    )
    assert done.stdout == "sqlite ok\n"
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("diffio_async.errors.LedgerError: ") and HINT in last
    assert "hunter2" not in done.stderr


def test_without_psycopg_the_command_names_the_extra_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "a.wav").write_bytes(b"RIFF")
    done = _without_psycopg(
        "import runpy\n"
        "sys.argv = ['diffio-async', 'restore', 'a.wav', '-o', 'out', '--ledger',"
        " 'postgresql://u:hunter2@127.0.0.1:1/db']\n"
        "runpy.run_module('diffio_async', run_name='__main__')\n",
        tmp_path,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and HINT in done.stderr, done.stderr
    assert "hunter2" not in done.stderr and "postgresql://u:***@" in done.stderr


@pytest.mark.anyio
async def test_restore_many_resumes_from_a_postgres_ledger(database: str, tmp_path: Path) -> None:
    sources = []
    for name in ("a", "b", "c"):
        sources.append(tmp_path / "in" / f"{name}.wav")
        sources[-1].parent.mkdir(exist_ok=True)
        sources[-1].write_bytes(b"RIFF-" + name.encode())
    async with emulated_diffio(generation_seconds=0.05) as env:

        async def restore_all() -> list[ItemResult]:
            batch = BatchOptions(ledger=database)
            async with env.client.restore_many(
                sources, output_dir=tmp_path / "out", batch=batch
            ) as items:
                return [item async for item in items]

        first = await restore_all()
        assert all(result.ok and not result.skipped for result in first)
        again = await restore_all()
        assert all(result.skipped for result in again)
        assert len(env.emulator.generation_ids) == 3  # the second run billed nothing
    async with await Ledger.open(database) as ledger:
        assert (await ledger.counts())["downloaded"] == 3


def test_the_command_reports_an_unreachable_postgres_ledger_without_its_password(
    tmp_path: Path,
) -> None:
    (tmp_path / "a.wav").write_bytes(b"RIFF")
    url = f"postgresql://diffio:{PASSWORD.replace('!', '%21').replace('@', '%40')}@127.0.0.1:1/x"
    command = ["restore", "a.wav", "-o", "out", "--emulator", "--ledger", url]
    done = subprocess.run(
        [sys.executable, "-m", "diffio_async", *command],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[3])},
    )
    assert done.returncode == 2
    assert done.stderr.startswith("diffio-async: ") and done.stderr.count("\n") == 1
    assert "cannot use --ledger postgresql://diffio:***@127.0.0.1:1/x" in done.stderr
    assert "Zq7" not in done.stderr


@pytest.mark.anyio
async def test_every_aclose_returns_only_once_running_calls_ended_and_the_lock_is_free(
    database: str,
) -> None:
    store = PostgresStore(database, batch="b")
    await store.open()
    inside, release = threading.Event(), threading.Event()
    finished: list[str] = []

    def stalled(current: LedgerEntry | None) -> LedgerEntry:
        inside.set()
        release.wait()
        return _entry("/in/a.wav")

    async def update() -> None:
        await store.update("/in/a.wav", stalled)
        finished.append("update")

    async def close(name: str) -> None:
        try:
            await store.aclose()
            assert finished[:1] == ["update"], f"{name} returned before the running update ended"
            finished.append(name)
        finally:
            release.set()  # a failure must not leave the update's thread waiting

    async with anyio.create_task_group() as tg:
        tg.start_soon(update)
        await anyio.to_thread.run_sync(inside.wait)
        tg.start_soon(close, "first")
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(close, "second")  # while the first waits
        await anyio.wait_all_tasks_blocked()
        release.set()
    assert sorted(finished) == ["first", "second", "update"] and store.closed
    again = PostgresStore(database, batch="b")
    await again.open()
    assert await again.get("/in/a.wav") == _entry("/in/a.wav")
    await again.aclose()


@pytest.mark.anyio
async def test_connections_the_server_ended_while_idle_are_replaced(database: str) -> None:
    store = PostgresStore(database, batch="b", connections=2)
    await store.open()
    try:
        async with anyio.create_task_group() as tg:  # two connections in the idle set
            for source in ("/in/a.wav", "/in/b.wav"):
                tg.start_soon(store.update, source, lambda _, s=source: _entry(s))
        idle = await anyio.to_thread.run_sync(_backends, database, "idle")
        lock = await anyio.to_thread.run_sync(
            _backends, database, "idle", "INSERT INTO diffio_ledger_batches%"
        )
        pooled = [pid for pid in idle if pid not in lock]
        assert pooled  # (a server restart, idle_session_timeout, a pooler's recycling)
        await anyio.to_thread.run_sync(_terminate, database, pooled)
        assert sorted(e.source for e in await store.entries()) == ["/in/a.wav", "/in/b.wav"]
        await store.update("/in/a.wav", lambda _: _entry("/in/a.wav", attempts=1))
        assert (await store.get("/in/a.wav")) == _entry("/in/a.wav", attempts=1)
    finally:
        await store.aclose()


def test_a_missing_server_fails_where_required_and_skips_elsewhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(REQUIRE_ENV, "1")  # what .ci/run sets
    with pytest.raises(pytest.fail.Exception, match="no PostgreSQL server: no initdb"):
        unavailable("no initdb")
    monkeypatch.delenv(REQUIRE_ENV)
    with pytest.raises(pytest.skip.Exception, match="no initdb"):
        unavailable("no initdb")


def test_the_command_names_a_postgres_ledger_to_resume_without_its_password() -> None:
    from diffio_async.cli._commands import _interrupted

    said = _interrupted(
        argparse.Namespace(command="restore", ledger="postgresql://u:hunter2@db/restores")
    )
    assert "--ledger 'postgresql://u:***@db/restores' to resume" in said and "hunter2" not in said


@pytest.mark.anyio
async def test_a_url_whose_scheme_is_written_in_capitals_opens_like_any_other(
    database: str,
) -> None:
    """Second review of issue 9: ``is_postgres_url`` selects the PostgreSQL store for
    ``POSTGRESQL://`` (schemes are case-insensitive), but the URL goes to libpq as written,
    which takes only lower-case schemes: ``missing "=" after "POSTGRESQL://..." in connection
    info string``."""
    url = "POSTGRESQL" + database[database.index("://") :]
    store = PostgresStore(url, batch="capitals")
    await store.open()
    try:
        assert await store.get("/in/a.wav") is None
    finally:
        await store.aclose()
