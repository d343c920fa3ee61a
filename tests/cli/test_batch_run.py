"""Many workers on one shared batch (``batch run``'s worker) against one emulator and the
suite's real PostgreSQL: every file restored once, one generation per file, and a killed
worker's items finished by the others once its leases expire."""

from __future__ import annotations

import json
import sys
import uuid
from collections import Counter
from pathlib import Path

import anyio
import pytest
from postgres_server import PostgresServer
from shared_batch_helpers import files, generations_per_file, register

from diffio_async import BatchOptions, RestoreOptions
from diffio_async._catalog import DEFAULT_MODEL_BY_ERA
from diffio_async.testing import TEST_API_KEY, EmulatedDiffio, emulated_diffio
from diffio_async.workflows._shared_batch import work_batch
from diffio_async.workflows.bulk import ItemResult
from diffio_async.workflows.ledger import Ledger, PostgresStore, hash_file

pytestmark = pytest.mark.anyio


@pytest.fixture
def url(postgres_server: PostgresServer) -> str:
    return postgres_server.url()


async def _workers(
    env: EmulatedDiffio, url: str, batch: str, out: Path, count: int
) -> dict[str, list[ItemResult]]:
    results: dict[str, list[ItemResult]] = {}

    async def worker(owner: str) -> None:
        store = PostgresStore(url, batch=batch, shared=True, owner=owner, lease_seconds=30)
        async with work_batch(
            env.client,
            env.client._transport,
            store,
            output_dir=out,
            batch=BatchOptions(concurrency=2),
            renew_every=0.2,
            poll=0.02,
        ) as items:
            results[owner] = [item async for item in items]

    async with anyio.create_task_group() as tg:
        for number in range(count):
            tg.start_soon(worker, f"w{number}")
    return results


async def test_three_workers_restore_every_file_exactly_once(url: str, tmp_path: Path) -> None:
    batch = f"run-{uuid.uuid4().hex[:12]}"
    sources = files(tmp_path / "in", 9)
    await register(url, batch, sources)
    async with emulated_diffio(generation_seconds=0.05) as env:
        results = await _workers(env, url, batch, tmp_path / "out", 3)
        per_file = generations_per_file(env)
    done = [item for items in results.values() for item in items]
    assert sorted(item.source for item in done) == sorted(sources)  # each once, by one worker
    assert all(item.ok and not item.skipped for item in done), [i.error for i in done]
    assert per_file == Counter({Path(source).name: 1 for source in sources})
    outputs = sorted((tmp_path / "out").iterdir())
    assert [p.name for p in outputs] == sorted(f"{Path(s).stem}.mp3" for s in sources)
    assert all(p.stat().st_size > 0 for p in outputs)
    assert sorted(str(item.output) for item in done) == [str(p) for p in outputs]
    store = PostgresStore(url, batch=batch, shared=True)
    async with await Ledger.open(store):
        status = await store.status()
    assert status.counts["downloaded"] == 9 and status.unfinished == 0
    assert sum(worker.downloaded for worker in status.workers) == 9
    assert {worker.owner for worker in status.workers} <= {"w0", "w1", "w2"}


async def test_a_killed_workers_items_are_finished_by_the_others(url: str, tmp_path: Path) -> None:
    batch = f"run-{uuid.uuid4().hex[:12]}"
    sources = files(tmp_path / "in", 4)
    await register(url, batch, sources)
    async with emulated_diffio(generation_seconds=0.05) as env:
        # The worker that dies: it claimed two items, created the generation of the first
        # (under the ledger's key) and hashed the second, then was SIGKILLed: its leases
        # were never handed on and run out after 0.3 s.
        dead = PostgresStore(url, batch=batch, shared=True, owner="dead", lease_seconds=0.3)
        ledger = await Ledger.open(dead)
        first, second = await dead.claim(2)
        settings = RestoreOptions().generation_settings()
        for source in (first, second):
            size, digest = await hash_file(source)
            await ledger.register(
                source, size=size, content_hash=digest, model="auto", options=settings
            )
        project = await env.client.projects.create(first)
        entry = await ledger.record(first, state="uploaded", project_id=project.api_project_id)
        generation = await env.client.generations.create(
            project.api_project_id,
            model=DEFAULT_MODEL_BY_ERA["a"],
            idempotency_key=entry.idempotency_key,
        )
        await ledger.record(first, state="generation_created", generation_id=generation.id)
        dead._held.clear()  # what a SIGKILL leaves: no lease is handed on
        await ledger.aclose()

        results = await _workers(env, url, batch, tmp_path / "out", 2)
        per_file = generations_per_file(env)
    done = {item.source: item for items in results.values() for item in items}
    assert sorted(done) == sorted(sources)
    assert all(item.ok for item in done.values()), [i.error for i in done.values()]
    assert done[first].generation_id == generation.id  # resumed, not created again
    assert per_file == Counter({Path(source).name: 1 for source in sources})
    assert all((tmp_path / "out" / f"{Path(s).stem}.mp3").is_file() for s in sources)


async def test_a_worker_that_lost_its_lease_writes_nothing_more_for_the_item(
    url: str, tmp_path: Path
) -> None:
    batch = f"run-{uuid.uuid4().hex[:12]}"
    (source,) = files(tmp_path / "in", 1)
    await register(url, batch, [source])
    taken = False

    async def pause_past_the_lease(where: str, stage: str) -> None:
        # The worker is paused (SIGSTOP, a partition) once the generation is complete: its
        # lease runs out and another worker takes the item, then dies itself (its short
        # lease runs out too).
        nonlocal taken
        if stage != "download" or taken:
            return
        taken = True
        await anyio.to_thread.run_sync(_expire_all, url, batch)
        thief = PostgresStore(url, batch=batch, shared=True, owner="thief", lease_seconds=0.2)
        await thief.open()
        assert await thief.claim(1) == [source]
        thief._held.clear()
        await thief.aclose()

    async with emulated_diffio(generation_seconds=0.05) as env:
        store = PostgresStore(url, batch=batch, shared=True, owner="paused", lease_seconds=30)
        async with work_batch(
            env.client,
            env.client._transport,
            store,
            output_dir=tmp_path / "out",
            renew_every=600,  # paused: it renews nothing while the others move on
            poll=0.02,
            on_stage=pause_past_the_lease,
        ) as items:
            (late,) = [item async for item in items]  # it leaves the lost item to the others
        others = await _workers(env, url, batch, tmp_path / "out", 1)
        per_file = generations_per_file(env)
    assert taken
    # its late write ("downloaded") was refused: the item's result says so, the batch went on
    assert (late.ok, late.stage, type(late.error).__name__) == (False, "lease", "LeaseLostError")
    # once the other worker's lease ran out, the item was claimed again and finished, from
    # its recorded generation: one generation in all
    (again,) = others["w0"]
    assert again.ok and again.source == source
    assert per_file == Counter({Path(source).name: 1})
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["take0.mp3"]


def _expire_all(url: str, batch: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(
            "UPDATE diffio_ledger_entries SET lease_expires = now() - interval '1 second' "
            "WHERE batch = %s",
            (batch,),
        )


async def test_worker_processes_finish_a_sigkilled_workersfiles(url: str, tmp_path: Path) -> None:
    batch = f"run-{uuid.uuid4().hex[:12]}"
    sources = files(tmp_path / "in", 6)
    await register(url, batch, sources)
    async with emulated_diffio(generation_seconds=0.3) as env:
        argv = [sys.executable, "-m", "diffio_async", "batch", "run", batch, "--ledger", url]
        argv += ["-o", str(tmp_path / "out"), "--lease", "1", "--concurrency", "2", "--json"]
        argv += ["--api-key", TEST_API_KEY, "--base-url", env.base_url]
        async with await anyio.open_process(argv) as doomed:
            assert doomed.stdout is not None
            first = await doomed.stdout.receive()  # one file done, the next ones in flight
            assert b'"ok": true' in first
            doomed.kill()  # SIGKILL: its leases are never handed on
        async with await anyio.open_process(argv) as one, await anyio.open_process(argv) as two:
            outs = []
            for process in (one, two):
                assert process.stdout is not None
                out = b"".join([chunk async for chunk in process.stdout])
                outs.append(out)
                assert await process.wait() == 0
        per_file = generations_per_file(env)
    lines = [json.loads(line) for out in outs for line in out.splitlines()]
    assert all(line["ok"] for line in lines)
    assert per_file == Counter({Path(source).name: 1 for source in sources})
    outputs = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert outputs == sorted(f"{Path(s).stem}.mp3" for s in sources)
