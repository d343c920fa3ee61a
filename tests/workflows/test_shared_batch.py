"""``restore_many`` on a named batch shared on PostgreSQL (``BatchOptions(name=...)``): workers
in one process against one emulator and the suite's real server; a fatal error on one worker
stops them all through the ledger, and ``resume`` lets the batch finish without paying twice."""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path

import anyio
import psycopg
import pytest
from postgres_server import PostgresServer
from shared_batch_helpers import files, generations_per_file, register

from diffio_async import AsyncDiffio, BatchAbortedError, BatchOptions, InvalidRequestError
from diffio_async.errors import EventLoopMismatchError
from diffio_async.testing import TEST_API_KEY, EmulatedDiffio, emulated_diffio
from diffio_async.workflows._shared_batch import _stops_every_worker, work_batch
from diffio_async.workflows.bulk import ItemResult
from diffio_async.workflows.ledger import BatchStoppedError, PostgresStore


@pytest.fixture
def url(postgres_server: PostgresServer) -> str:
    return postgres_server.url()


@pytest.fixture
def batch() -> str:
    return f"shared-{uuid.uuid4().hex[:12]}"


def test_a_named_batch_needs_a_postgresql_ledger(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequestError, match=r"PostgreSQL ledger.*not no ledger"):
        BatchOptions(name="nightly")
    with pytest.raises(InvalidRequestError, match=r"not ledger='.*b\.sqlite'"):
        BatchOptions(name="nightly", ledger=tmp_path / "b.sqlite")
    with pytest.raises(InvalidRequestError, match="name must be a non-empty string"):
        BatchOptions(name=" ", ledger="postgresql://h/db")
    with pytest.raises(InvalidRequestError, match="lease_seconds"):
        BatchOptions(name="n", ledger="postgresql://h/db", lease_seconds=0)
    options = BatchOptions(name="n", ledger="postgresql://u:secret@h/db", lease_seconds=9)
    assert (options.name, options.lease_seconds) == ("n", 9.0)
    assert "secret" not in repr(options)


def test_only_an_api_refusal_stops_every_worker() -> None:
    # a fault of one process (its client used on another event loop) stops that worker only
    assert not _stops_every_worker(EventLoopMismatchError("another loop"))
    assert not _stops_every_worker(InvalidRequestError("bad input"))


@pytest.mark.anyio
async def test_two_workers_through_restore_many_finish_one_batch(
    url: str, batch: str, tmp_path: Path
) -> None:
    sources = files(tmp_path / "in", 6)
    out = tmp_path / "out"
    options = BatchOptions(ledger=url, name=batch, concurrency=2, lease_seconds=3)
    results: list[list[ItemResult]] = []

    async def worker(env: EmulatedDiffio) -> None:
        # each gives every source: registering them is idempotent
        async with env.client.restore_many(sources, output_dir=out, batch=options) as items:
            results.append([item async for item in items])

    async with emulated_diffio(generation_seconds=0.2) as env:
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker, env)
            tg.start_soon(worker, env)
        # a worker that joins a finished batch with no sources of its own ends at once
        async with env.client.restore_many((), output_dir=out, batch=options) as items:
            assert [item async for item in items] == []
        per_file = generations_per_file(env)
    done = [item for items in results for item in items]
    assert sorted(item.source for item in done) == sorted(sources)  # each once, by one worker
    assert all(item.ok for item in done), [item.error for item in done]
    assert per_file == Counter({Path(source).name: 1 for source in sources})
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{Path(s).stem}.mp3" for s in sources)
    store = PostgresStore(url, batch=batch, shared=True)
    await store.open()
    try:
        status = await store.status()
    finally:
        await store.aclose()
    assert status.counts["downloaded"] == 6 and status.stop is None


@pytest.mark.anyio
async def test_a_402_on_one_worker_stops_every_worker_and_resume_finishes_the_batch(
    url: str, batch: str, tmp_path: Path
) -> None:
    sources = files(tmp_path / "in", 4)
    out = tmp_path / "out"
    await register(url, batch, sources)
    outcomes: dict[str, BaseException] = {}

    async def worker(client: AsyncDiffio, owner: str) -> None:
        store = PostgresStore(url, batch=batch, shared=True, owner=owner, lease_seconds=30)
        try:
            async with work_batch(
                client,
                client._transport,
                store,
                output_dir=out,
                batch=BatchOptions(concurrency=2),
                renew_every=0.05,
                poll=0.05,
            ) as items:
                async for _ in items:
                    pass
        except BatchAbortedError as exc:
            outcomes[owner] = exc

    # generations take long: the held worker's 402 comes while the other waits on its own
    async with emulated_diffio(generation_seconds=5) as env:
        minted = env.emulator.mint_key(admin=True)
        env.emulator.set_billing_hold(key_id=minted.key_id)
        async with AsyncDiffio(minted.key, env.base_url) as held, anyio.create_task_group() as tg:
            tg.start_soon(worker, env.client, "paying")
            tg.start_soon(worker, held, "held")
        assert sorted(outcomes) == ["held", "paying"]  # both stopped
        assert "Payment" in str(outcomes["held"])  # it saw the 402 itself
        stopped = outcomes["paying"]
        assert "stopped by worker held" in str(stopped) and "Payment" in str(stopped)
        assert isinstance(stopped.cause, BatchStoppedError)
        assert stopped.cause.stop.worker == "held"
        store = PostgresStore(url, batch=batch, shared=True, owner="admin")
        await store.open()
        try:
            status = await store.status()
            assert status.stop is not None and status.stop.worker == "held"
            assert "status 402, code paymentFailed" in status.stop.reason
            assert TEST_API_KEY not in status.stop.reason and minted.key not in status.stop.reason
            assert status.counts["downloaded"] == 0
            # a new worker is refused with the reason, before any request
            before = len(env.emulator.requests)
            with pytest.raises(BatchAbortedError, match="stopped by worker held"):
                await worker_once(env.client, url, batch, out)
            assert len(env.emulator.requests) == before
            # billing fixed, the batch resumed: every file restored, one generation each
            env.emulator.set_billing_hold(False, key_id=minted.key_id)
            cleared = await store.resume()
            assert cleared == status.stop
            assert await store.stopped() is None
        finally:
            await store.aclose()
        done = await worker_once(env.client, url, batch, out)
        per_file = generations_per_file(env)
    assert sorted(item.source for item in done) == sorted(sources)
    assert all(item.ok for item in done), [item.error for item in done]
    assert per_file == Counter({Path(source).name: 1 for source in sources})


async def worker_once(client: AsyncDiffio, url: str, batch: str, out: Path) -> list[ItemResult]:
    options = BatchOptions(ledger=url, name=batch, concurrency=4, lease_seconds=3)
    async with client.restore_many((), output_dir=out, batch=options) as items:
        return [item async for item in items]


@pytest.mark.anyio
async def test_a_renewal_that_finds_a_lease_lost_cancels_the_item_at_once(
    url: str, batch: str, tmp_path: Path
) -> None:
    (source,) = files(tmp_path / "in", 1)
    await register(url, batch, [source])

    async def taken_while_waiting(where: str, stage: str) -> None:
        # paused (a partition) while its generation runs: another worker took the item
        if stage == "wait":
            await anyio.to_thread.run_sync(_steal, url, batch)

    # the generation would take ten minutes: only the cancellation ends the item sooner
    async with emulated_diffio(generation_seconds=600) as env:
        store = PostgresStore(url, batch=batch, shared=True, owner="late", lease_seconds=30)
        with anyio.fail_after(60):
            async with work_batch(
                env.client,
                env.client._transport,
                store,
                output_dir=tmp_path / "out",
                on_stage=taken_while_waiting,
                renew_every=0.05,
                poll=0.05,
            ) as items:
                (late,) = [item async for item in items]
    assert (late.ok, late.stage, type(late.error).__name__) == (False, "lease", "LeaseLostError")
    assert "lost its lease" in str(late.error)
    with psycopg.connect(url, autocommit=True) as admin:
        row = admin.execute(
            "SELECT state, lease_owner FROM diffio_ledger_entries WHERE batch = %s", (batch,)
        ).fetchone()
    assert row == ("generation_created", "thief")  # its recorded step stays for the thief
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def _steal(url: str, batch: str) -> None:
    """What another worker's claim after the lease ran out does (no waiting in tests)."""
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(
            "UPDATE diffio_ledger_entries SET lease_owner = 'thief', "
            "lease_version = lease_version + 1, lease_expires = now() + interval '600 seconds' "
            "WHERE batch = %s",
            (batch,),
        )


@pytest.mark.anyio
async def test_an_output_another_worker_wrote_is_never_replaced_without_the_lease(
    url: str, batch: str, tmp_path: Path
) -> None:
    (source,) = files(tmp_path / "in", 1)
    await register(url, batch, [source])
    out = tmp_path / "out"
    written = out / "take0.mp3"

    async def taken_before_the_download(where: str, stage: str) -> None:
        # paused before its download: another worker took the item and wrote its output
        if stage == "download":
            await anyio.to_thread.run_sync(_steal, url, batch)
            out.mkdir(exist_ok=True)
            written.write_bytes(b"the other worker's output")

    async with emulated_diffio(generation_seconds=0.05) as env:
        store = PostgresStore(url, batch=batch, shared=True, owner="late", lease_seconds=30)
        async with work_batch(
            env.client,
            env.client._transport,
            store,
            output_dir=out,
            on_stage=taken_before_the_download,
            renew_every=600,  # no renewal tells it: the fenced check before the replace does
            poll=0.05,
        ) as items:
            (late,) = [item async for item in items]
        uploads, downloads = (
            [
                r
                for r in env.emulator.requests
                if r.method == method and r.path.startswith("/_storage")
            ]
            for method in ("PUT", "GET")
        )
    assert (late.ok, late.stage, type(late.error).__name__) == (False, "lease", "LeaseLostError")
    assert "not leased to this worker" in str(late.error)
    assert written.read_bytes() == b"the other worker's output"
    assert sorted(p.name for p in out.iterdir()) == ["take0.mp3"]  # no temp file left
    assert len(uploads) == 1 and downloads == []  # refused before fetching a byte


@pytest.mark.anyio
async def test_a_worker_claims_an_item_only_for_a_free_slot(
    url: str, batch: str, tmp_path: Path
) -> None:
    # An item claimed ahead of a free slot would wait a whole item's time while another
    # machine's worker had nothing to do: at every step, the live leases this worker holds
    # are at most its concurrency.
    sources = files(tmp_path / "in", 7)
    await register(url, batch, sources)
    held: list[int] = []

    def leases() -> int:
        with psycopg.connect(url, autocommit=True) as admin:
            row = admin.execute(
                "SELECT count(*) FROM diffio_ledger_entries WHERE batch = %s "
                "AND lease_owner = 'one' AND lease_expires > clock_timestamp()",
                (batch,),
            ).fetchone()
        assert row is not None
        return int(row[0])

    async def look(source: str, stage: str) -> None:
        held.append(await anyio.to_thread.run_sync(leases))

    async with emulated_diffio(generation_seconds=0.2) as env:
        store = PostgresStore(url, batch=batch, shared=True, owner="one", lease_seconds=30)
        async with work_batch(
            env.client,
            env.client._transport,
            store,
            output_dir=tmp_path / "out",
            batch=BatchOptions(concurrency=2),
            on_stage=look,
        ) as items:
            done = [item async for item in items]
    assert sorted(item.source for item in done) == sorted(sources)
    assert all(item.ok for item in done)
    assert held and max(held) == 2, held  # both slots used, never a third item leased
