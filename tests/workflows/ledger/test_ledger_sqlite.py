"""The SQLite ledger store: the store conformance suite, and what only SQLite does (files,
group commit)."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import anyio
import pytest
from store_conformance import LedgerStoreConformance

from diffio_async.errors import InvalidTransitionError, LedgerError
from diffio_async.workflows.ledger import Ledger, LedgerStore, SQLiteLedgerStore


class SQLiteStores:
    """The conformance suite's factory: one ledger file per batch name in a temp folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def store(self, batch: str = "batch") -> LedgerStore:
        return SQLiteLedgerStore(self.folder / f"{batch}.sqlite")

    async def crash_copy(self, store: LedgerStore, batch: str, copy: str) -> None:
        """What a SIGKILL leaves: the file and its WAL as they are, not checkpointed."""
        for suffix in ("", "-wal"):
            shutil.copyfile(
                f"{self.folder / batch}.sqlite{suffix}", f"{self.folder / copy}.sqlite{suffix}"
            )


class TestSQLiteLedgerStore(LedgerStoreConformance):
    """Every test of the store contract, on SQLite."""

    @pytest.fixture
    def stores(self, tmp_path: Path) -> SQLiteStores:
        return SQLiteStores(tmp_path)


class _FailingCommits:
    """A connection proxy whose COMMIT fails while ``armed`` (a full disk, an I/O error)."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection
        self.armed = True

    def execute(self, sql: str, *args: Any) -> sqlite3.Cursor:
        if sql == "COMMIT" and self.armed:
            raise sqlite3.OperationalError("disk I/O error")
        return self.connection.execute(sql, *args)

    @property
    def in_transaction(self) -> bool:
        return self.connection.in_transaction

    def close(self) -> None:
        self.connection.close()


@pytest.mark.anyio
async def test_a_failed_commit_fails_every_write_of_the_group(tmp_path: Path) -> None:
    async with await Ledger.open(tmp_path / "l.sqlite") as ledger:
        await ledger.register(
            "/in/a.wav", size=10, content_hash=hashlib.sha256(b"a").hexdigest(), model="m"
        )
        store = ledger._store
        assert isinstance(store, SQLiteLedgerStore)
        proxy = _FailingCommits(store._connection)  # type: ignore[arg-type]
        store._connection = proxy  # type: ignore[assignment]
        outcomes: dict[str, BaseException] = {}

        async def write(source: str, state: Any) -> None:
            try:
                await ledger.record(source, state=state)
            except LedgerError as exc:
                outcomes[source] = exc

        async with anyio.create_task_group() as tg:
            tg.start_soon(write, "/in/a.wav", "pending")  # invalid: fails on its own
            for i in range(5):
                tg.start_soon(write, f"/in/{i}.wav", "pending")
        assert isinstance(outcomes.pop("/in/a.wav"), InvalidTransitionError)
        assert len(outcomes) == 5
        assert all("disk I/O error" in str(exc) for exc in outcomes.values())
        assert len({id(exc) for exc in outcomes.values()}) == 5  # one exception per task

        proxy.armed = False
        assert [entry.source for entry in await ledger.entries()] == ["/in/a.wav"]
        assert (await ledger.record("/in/0.wav")).state == "pending"


@pytest.mark.anyio
async def test_ledger_open_takes_a_store_and_opens_it(tmp_path: Path) -> None:
    store = SQLiteLedgerStore(tmp_path / "l.sqlite")
    async with await Ledger.open(store) as ledger:
        assert not store.closed and ledger.path == tmp_path / "l.sqlite"
        with pytest.raises(LedgerError, match="already open"):
            await store.open()
    assert store.closed and ledger.closed


@pytest.mark.anyio
@pytest.mark.parametrize("spelling", ["path", "sqlite:///relative", "sqlite:////absolute"])
async def test_ledger_open_takes_a_path_or_a_sqlite_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spelling: str
) -> None:
    monkeypatch.chdir(tmp_path)
    where = {
        "path": "l.sqlite",
        "sqlite:///relative": "sqlite:///l.sqlite",
        "sqlite:////absolute": f"sqlite:///{tmp_path / 'l.sqlite'}",
    }[spelling]
    async with await Ledger.open(where) as ledger:
        assert ledger.path is not None and ledger.path.resolve() == tmp_path / "l.sqlite"
        await ledger.record("/in/a.wav")
    assert (tmp_path / "l.sqlite").is_file()


@pytest.mark.anyio
async def test_a_sqlite_url_without_a_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="three slashes"):
        await Ledger.open("sqlite://l.sqlite")
