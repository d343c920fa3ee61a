"""Many workers on one PostgreSQL batch: claiming with leases, fencing, handing items on (the
rule in ``diffio_async.workflows.ledger._claims``), against the suite's real server. Expiry is
simulated by moving a lease's expiry into the past, not by waiting."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import quote

import anyio
import psycopg
import pytest
from postgres_server import PASSWORD, PostgresServer

from diffio_async.errors import LedgerError, LedgerLockedError
from diffio_async.workflows.ledger import BatchStoppedError, LeaseLostError, Ledger, PostgresStore
from diffio_async.workflows.ledger._postgres import _MIGRATIONS

DIGEST = hashlib.sha256(b"a").hexdigest()


@pytest.fixture
def url(postgres_server: PostgresServer) -> str:
    return postgres_server.url()


@pytest.fixture
def batch() -> str:
    return f"claims-{uuid.uuid4().hex[:12]}"


@asynccontextmanager
async def worker(url: str, batch: str, owner: str, **settings: Any) -> AsyncIterator[PostgresStore]:
    store = PostgresStore(url, batch=batch, shared=True, owner=owner, **settings)
    await store.open()
    try:
        yield store
    finally:
        await store.aclose()


def _expire(url: str, batch: str, source: str) -> None:
    """What the passing of a lease's time does (no waiting in tests)."""
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(
            "UPDATE diffio_ledger_entries SET lease_expires = now() - interval '1 second' "
            "WHERE batch = %s AND source = %s",
            (batch, source),
        )


def _lease(url: str, batch: str, source: str) -> tuple[Any, ...]:
    with psycopg.connect(url, autocommit=True) as admin:
        row = admin.execute(
            "SELECT lease_owner, lease_version, lease_expires IS NOT NULL "
            "FROM diffio_ledger_entries WHERE batch = %s AND source = %s",
            (batch, source),
        ).fetchone()
    assert row is not None
    return tuple(row)


@pytest.mark.anyio
async def test_workers_claim_disjoint_items_oldest_first(url: str, batch: str) -> None:
    async with worker(url, batch, "w1") as one, worker(url, batch, "w2") as two:
        assert await one.add_sources(["/a", "/b", "/c", "/d", "/e"]) == 5
        assert await two.add_sources(["/e", "/a", "/f"]) == 1  # idempotent
        claims: dict[str, list[str]] = {}

        async def claim(store: PostgresStore) -> None:
            claims[store.owner] = await store.claim(2)

        async with anyio.create_task_group() as tg:
            tg.start_soon(claim, one)
            tg.start_soon(claim, two)
        taken = claims["w1"] + claims["w2"]
        assert len(taken) == 4 and len(set(taken)) == 4
        assert sorted(taken) == ["/a", "/b", "/c", "/d"]
        assert await one.claim(5) == ["/e", "/f"]
        assert await two.claim(5) == []  # every item is held under a live lease
        status = await one.status()
        assert {w.owner: w.leased for w in status.workers} == {"w1": 4, "w2": 2}
        assert status.unfinished == 6


@pytest.mark.anyio
async def test_an_expired_lease_moves_on_and_fences_the_late_worker(url: str, batch: str) -> None:
    async with worker(url, batch, "slow") as slow, worker(url, batch, "fast") as fast:
        await slow.add_sources(["/a"])
        assert await slow.claim(1) == ["/a"]
        ledger = Ledger(slow)
        entry = await ledger.register("/a", size=1, content_hash=DIGEST, model="m")
        entry = await ledger.record("/a", state="uploaded", project_id="p1")
        key = entry.idempotency_key
        assert key is not None
        assert await fast.claim(1) == []  # slow's lease is live
        _expire(url, batch, "/a")  # slow stopped renewing (killed, partitioned)
        assert await slow.claim(1) == []  # never its own item again while it works on it
        assert await fast.claim(1, excluding=["/a"]) == []
        assert (await fast.unfinished(), await fast.unfinished(excluding=["/a"])) == (1, 0)
        assert await fast.claim(1) == ["/a"]
        assert _lease(url, batch, "/a") == ("fast", 2, True)
        # the new holder resumes from the last recorded step, under the same key
        taken = Ledger(fast)
        resumed = await taken.register("/a", size=1, content_hash=DIGEST, model="m")
        assert (resumed.state, resumed.project_id, resumed.idempotency_key) == (
            "uploaded",
            "p1",
            key,
        )
        # the late worker's writes are refused, and its renewal says it lost the item
        with pytest.raises(LeaseLostError, match="not leased to this worker"):
            await ledger.record("/a", state="generation_created", generation_id="g-late")
        assert isinstance(LeaseLostError("x"), LedgerLockedError)
        assert await slow.renew() == []  # it already forgot the item on the refused write
        await taken.record("/a", state="generation_created", generation_id="g1")
        assert await fast.renew() == []
        final = await fast.get("/a")
        assert final is not None and final.generation_id == "g1"


@pytest.mark.anyio
async def test_renewing_reports_items_another_worker_took(url: str, batch: str) -> None:
    async with worker(url, batch, "w1") as one, worker(url, batch, "w2") as two:
        await one.add_sources(["/a", "/b"])
        assert await one.claim(2) == ["/a", "/b"]
        assert await one.renew() == []
        _expire(url, batch, "/b")
        assert await two.claim(2) == ["/b"]
        assert await one.renew() == ["/b"]
        assert await one.renew() == []  # forgotten
        assert _lease(url, batch, "/a")[0] == "w1"


@pytest.mark.anyio
async def test_a_finished_item_ends_its_lease_and_is_never_claimed_again(
    url: str, batch: str
) -> None:
    async with worker(url, batch, "w1") as one, worker(url, batch, "w2") as two:
        await one.add_sources(["/a", "/b"])
        assert await one.claim(2) == ["/a", "/b"]
        ledger = Ledger(one)
        await ledger.register("/a", size=1, content_hash=DIGEST, model="m")
        await ledger.record("/a", state="uploaded", project_id="p")
        await ledger.record("/a", state="generation_created", generation_id="g")
        await ledger.record("/a", state="downloaded", output_path="/out/a")
        await ledger.record("/b", state="failed", error="bad", error_stage="upload")
        assert _lease(url, batch, "/a") == ("w1", 1, False)
        assert await two.claim(5) == []
        assert await one.renew() == []
        status = await two.status()
        assert [(w.owner, w.leased, w.downloaded) for w in status.workers] == [("w1", 0, 1)]
        assert status.counts["downloaded"] == 1 and status.counts["failed"] == 1
        assert status.unfinished == 0 and status.eta_seconds == 0.0
        assert status.throughput > 0


@pytest.mark.anyio
async def test_a_worker_that_stops_hands_its_items_on_at_once(url: str, batch: str) -> None:
    async with worker(url, batch, "w2") as two:
        async with worker(url, batch, "w1") as one:
            await one.add_sources(["/a"])
            assert await one.claim(1) == ["/a"]
            assert await two.claim(1) == []
        assert await two.claim(1) == ["/a"]


@pytest.mark.anyio
async def test_a_write_without_a_claim_is_refused(url: str, batch: str) -> None:
    async with worker(url, batch, "w1") as one:
        await one.add_sources(["/a"])
        with pytest.raises(LeaseLostError):
            await Ledger(one).register("/a", size=1, content_hash=DIGEST, model="m")
        with pytest.raises(LeaseLostError):
            await Ledger(one).register("/new", size=1, content_hash=DIGEST, model="m")
        assert await one.get("/new") is None


@pytest.mark.anyio
async def test_shared_workers_and_a_single_process_batch_exclude_each_other(
    url: str, batch: str
) -> None:
    single = PostgresStore(url, batch=batch)
    await single.open()
    try:
        with pytest.raises(LedgerLockedError, match="in use"):
            async with worker(url, batch, "w1"):
                pass
    finally:
        await single.aclose()
    async with worker(url, batch, "w1"), worker(url, batch, "w2"):  # side by side
        with pytest.raises(LedgerLockedError, match="in use"):
            await PostgresStore(url, batch=batch).open()
        with pytest.raises(LedgerError, match="only a shared store"):
            await single.claim(1)


@pytest.mark.anyio
async def test_a_version_1_database_gains_leases_and_keeps_its_entries(
    postgres_server: PostgresServer,
) -> None:
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server.url(), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    database = postgres_server.url(name)
    try:
        with psycopg.connect(database, autocommit=True) as old:
            for statement in _MIGRATIONS[0]:
                old.execute(statement)
            old.execute("INSERT INTO diffio_ledger_schema (version) VALUES (1)")
            old.execute("INSERT INTO diffio_ledger_batches (name, epoch) VALUES ('b', 1)")
            old.execute(
                "INSERT INTO diffio_ledger_entries (batch, source, state, last_good_state, "
                "created_at, updated_at) VALUES ('b', '/a', 'pending', 'pending', now(), now())"
            )
        async with worker(database, "b", "w1") as store:
            assert await store.claim(1) == ["/a"]
        with psycopg.connect(database, autocommit=True) as admin:
            assert admin.execute("SELECT version FROM diffio_ledger_schema").fetchall() == [
                (len(_MIGRATIONS),)
            ]
    finally:
        with psycopg.connect(postgres_server.url(), autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.mark.anyio
async def test_a_stop_reaches_every_worker_at_its_claim_and_renewal(url: str, batch: str) -> None:
    async with worker(url, batch, "w1") as one, worker(url, batch, "w2") as two:
        await one.add_sources(["/a", "/b", "/c"])
        assert await one.claim(1) == ["/a"]
        assert await two.claim(1) == ["/b"]
        await Ledger(two).record("/b", state="failed", error="402", error_stage="upload")
        assert await one.stopped() is None
        # the reason keeps one line, without the database password
        stop = await two.stop(f"PaymentFailedError: no\nmoney {PASSWORD} {quote(PASSWORD)}")
        assert (stop.worker, stop.reason) == ("w2", "PaymentFailedError: no money *** ***")
        assert await one.stop("a later one") == stop  # the first stop stays
        with pytest.raises(BatchStoppedError, match="stopped by worker w2") as caught:
            await one.renew()
        assert caught.value.stop == stop
        with pytest.raises(BatchStoppedError, match="no money"):
            await one.claim(1)
        assert (await two.status()).stop == stop
        # resumed: the stop is gone, the failed item is claimable again from its last step
        assert await one.resume() == stop
        assert await one.resume() is None
        assert await one.renew() == []
        assert sorted(await one.claim(5)) == ["/b", "/c"]
        entry = await one.get("/b")
        assert entry is not None and (entry.state, entry.error) == ("pending", None)


@pytest.mark.anyio
async def test_a_version_2_database_gains_the_batch_stop(postgres_server: PostgresServer) -> None:
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server.url(), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    database = postgres_server.url(name)
    try:
        with psycopg.connect(database, autocommit=True) as old:
            for statement in (*_MIGRATIONS[0], *_MIGRATIONS[1]):
                old.execute(statement)
            old.execute("INSERT INTO diffio_ledger_schema (version) VALUES (2)")
            old.execute("INSERT INTO diffio_ledger_batches (name, epoch) VALUES ('b', 0)")
        async with worker(database, "b", "w1") as store:
            assert await store.stopped() is None
            assert (await store.stop("PaymentFailedError: x")).worker == "w1"
        with psycopg.connect(database, autocommit=True) as admin:
            assert admin.execute("SELECT version FROM diffio_ledger_schema").fetchall() == [
                (len(_MIGRATIONS),)
            ]
    finally:
        with psycopg.connect(postgres_server.url(), autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
