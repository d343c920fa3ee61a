"""A shared batch keeps the folder layout of what was registered (``batch add``, or the sources
given to a worker): each source is recorded with where the walk placed its output, and every
worker names the output by it; a hostile recorded place is that item's failure, and rows of a
schema v3 database (no place) keep their bare names. Real PostgreSQL, one emulator."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import anyio
import anyio.to_thread
import psycopg
import pytest
from postgres_server import PostgresServer

from diffio_async import BatchOptions
from diffio_async.cli import main
from diffio_async.testing import EmulatedDiffio, emulated_diffio
from diffio_async.workflows._shared_batch import work_batch
from diffio_async.workflows._sources import Placed, Walker
from diffio_async.workflows.bulk import ItemResult
from diffio_async.workflows.ledger import Ledger, PostgresStore
from diffio_async.workflows.ledger._postgres import _MIGRATIONS

pytestmark = pytest.mark.anyio

HOSTILE = ["../escape.wav", "/etc/escape.wav", "", "a/../../escape.wav", "./x.wav", "a//x.wav"]


@pytest.fixture
def url(postgres_server: PostgresServer) -> str:
    return postgres_server.url()


@pytest.fixture
def batch() -> str:
    return f"layout-{uuid.uuid4().hex[:12]}"


def _write(path: Path, tag: str) -> str:
    """A small WAV-named file holding ``tag``; its real path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF" + os.urandom(32) + tag.encode())
    return os.path.realpath(path)


def _read(path: str | Path) -> bytes:
    return Path(path).read_bytes()


def _tree_of(root: Path, folder: str) -> list[str]:
    """Every file under ``root / folder``, relative to ``root``, sorted."""
    return [f"{folder}/{name}" for name in _tree(root / folder)]


def _tree(root: Path) -> list[str]:
    """Every file under ``root``, relative, sorted."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


async def _work(
    env: EmulatedDiffio, url: str, batch: str, out: Path, owners: int = 2, sources: object = ()
) -> list[ItemResult]:
    """Run ``owners`` workers on the batch until it is finished; every result."""
    results: list[ItemResult] = []

    async def worker(owner: str, given: object) -> None:
        store = PostgresStore(url, batch=batch, shared=True, owner=owner, lease_seconds=30)
        async with work_batch(
            env.client,
            env.client._transport,
            store,
            given,  # type: ignore[arg-type]
            output_dir=out,
            batch=BatchOptions(concurrency=2),
            renew_every=0.2,
            poll=0.02,
        ) as items:
            results.extend([item async for item in items])

    async with anyio.create_task_group() as group:
        for number in range(owners):
            group.start_soon(worker, f"w{number}", sources if number == 0 else ())
    return results


async def test_batch_add_of_folders_and_a_file_keeps_the_layout_on_every_worker(
    url: str, batch: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in"
    data = {
        "0/take.wav": _write(source / "0" / "take.wav", "zero"),
        "1/take.wav": _write(source / "1" / "take.wav", "one"),
        "1/deep/er/x.wav": _write(source / "1" / "deep" / "er" / "x.wav", "deep"),
        "top.wav": _write(source / "top.wav", "top"),
    }
    solo = _write(tmp_path / "elsewhere" / "solo.wav", "solo")
    argv = ["batch", "add", batch, str(source), solo, "--ledger", url, "--json"]
    assert await anyio.to_thread.run_sync(main, argv) == 0
    out = tmp_path / "out"
    async with emulated_diffio(generation_seconds=0.05) as env:
        results = await _work(env, url, batch, out)
        generations = len(env.emulator.generation_ids)
    assert all(r.ok for r in results), [r.error for r in results]
    assert sorted(r.source for r in results) == sorted([*data.values(), solo])
    # mirrored as `restore in/ elsewhere/solo.wav -o out` does: no hashed names
    assert _tree(out) == ["0/take.mp3", "1/deep/er/x.mp3", "1/take.mp3", "solo.mp3", "top.mp3"]
    for relative, path in [*data.items(), ("solo.wav", solo)]:
        output = out / PurePosixPath(relative).with_suffix(".mp3")
        assert _read(output) == _read(path)
    assert generations == 5
    assert _tree(tmp_path / "elsewhere") == ["solo.wav"]
    capsys.readouterr()
    status = ["batch", "status", batch, "--ledger", url, "--json"]
    assert await anyio.to_thread.run_sync(main, status) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["total"], shown["unfinished"], shown["counts"]["downloaded"]) == (5, 0, 5)


async def test_sources_given_to_restore_many_keep_their_layout(
    url: str, batch: str, tmp_path: Path
) -> None:
    source = tmp_path / "in"
    _write(source / "a" / "x.wav", "a")
    _write(source / "b" / "x.wav", "b")
    options = BatchOptions(ledger=url, name=batch, concurrency=2, lease_seconds=5)
    out = tmp_path / "out"
    async with (
        emulated_diffio(generation_seconds=0.05) as env,
        env.client.restore_many(source, output_dir=out, batch=options) as items,
    ):
        results = [item async for item in items]
    assert all(r.ok for r in results), [r.error for r in results]
    assert _tree(out) == ["a/x.mp3", "b/x.mp3"]
    assert _read(out / "a" / "x.mp3") == _read(source / "a" / "x.wav")


async def test_a_hostile_recorded_place_fails_its_item_and_writes_nothing_outside(
    url: str, batch: str, tmp_path: Path
) -> None:
    good = _write(tmp_path / "in" / "good.wav", "good")
    bad = [_write(tmp_path / "in" / f"bad{n}.wav", str(n)) for n in range(len(HOSTILE))]
    registrar = PostgresStore(url, batch=batch, shared=True, owner="registrar")
    async with await Ledger.open(registrar):
        pairs = [(good, "kept/good.wav"), *zip(bad, HOSTILE, strict=True)]
        assert await registrar.add_sources(pairs) == len(pairs)
    out = tmp_path / "work" / "out"
    async with emulated_diffio(generation_seconds=0.05) as env:
        results = await _work(env, url, batch, out)  # ends: the refused items are finished
        uploads = len(env.emulator.generation_ids)
    by_source = {r.source: r for r in results}
    assert by_source[good].ok and by_source[good].output == out / "kept" / "good.mp3"
    for path, relative in zip(bad, HOSTILE, strict=True):
        result = by_source[path]
        assert not result.ok and result.stage == "source", (relative, result)
        assert "output_dir" in str(result.error) or "empty" in str(result.error)
    assert uploads == 1  # refused before any request
    assert _tree(tmp_path / "work") == ["out/kept/good.mp3"]
    assert _tree(tmp_path) == sorted(["work/out/kept/good.mp3", *_tree_of(tmp_path, "in")])
    assert not await anyio.Path("/etc/escape.mp3").exists()
    store = PostgresStore(url, batch=batch, shared=True)
    async with await Ledger.open(store):
        status = await store.status()
        entry = await store.get(bad[0])
    assert (status.counts["downloaded"], status.counts["failed"]) == (1, len(HOSTILE))
    assert entry is not None and entry.error_stage == "source"


@pytest.fixture
def v3_database(postgres_server: PostgresServer) -> Iterator[str]:
    """A new database at ledger schema version 3 (before output_relative)."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server.url(), autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    try:
        with psycopg.connect(postgres_server.url(name), autocommit=True) as old:
            for statements in _MIGRATIONS[:3]:
                for statement in statements:
                    old.execute(statement)
            old.execute("INSERT INTO diffio_ledger_schema (version) VALUES (3)")
        yield postgres_server.url(name)
    finally:
        with psycopg.connect(postgres_server.url(), autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


async def test_rows_of_a_version_3_database_keep_their_bare_names(
    v3_database: str, tmp_path: Path
) -> None:
    deep = _write(tmp_path / "in" / "sub" / "x.wav", "x")
    with psycopg.connect(v3_database, autocommit=True) as old:
        old.execute("INSERT INTO diffio_ledger_batches (name, epoch) VALUES ('b', 0)")
        old.execute(
            "INSERT INTO diffio_ledger_entries (batch, source, state, last_good_state, "
            "created_at, updated_at) VALUES ('b', %s, 'pending', 'pending', now(), now())",
            (deep,),
        )
    out = tmp_path / "out"
    async with emulated_diffio(generation_seconds=0.05) as env:
        # registered again with its place: the old row keeps what it has (no place)
        results = await _work(env, v3_database, "b", out, owners=1, sources=[tmp_path / "in"])
    assert [(r.ok, r.output) for r in results] == [(True, out / "x.mp3")]
    assert _tree(out) == ["x.mp3"]
    with psycopg.connect(v3_database, autocommit=True) as admin:
        assert admin.execute("SELECT version FROM diffio_ledger_schema").fetchall() == [(4,)]
        assert admin.execute("SELECT output_relative FROM diffio_ledger_entries").fetchall() == [
            (None,)
        ]


async def test_the_walker_places_a_placed_source_only_inside_output_dir(tmp_path: Path) -> None:
    source = _write(tmp_path / "in" / "take.wav", "t")
    out = tmp_path / "out"
    walker = Walker(out, ".mp3", "rename")
    placed = [Placed(source=source, relative=r) for r in ["a/b/take.wav", *HOSTILE]]
    jobs = [job async for job in walker.jobs(placed)]
    assert jobs[0].refused is None and jobs[0].output == out / "a" / "b" / "take.mp3"
    assert jobs[0].key == source and walker.relative(jobs[0]) == "a/b/take.mp3"
    assert [job.refused is not None for job in jobs[1:]] == [True] * len(HOSTILE)
    assert {job.output for job in jobs[1:]} == {out}  # a refused job names no output
    # the name's length is checked as any output's; a folder is not the file registered
    (long,) = [
        job
        async for job in Walker(out, ".mp3", "rename").jobs(
            [Placed(source=source, relative="n" * 300 + ".wav")]
        )
    ]
    assert long.refused is not None and "over 255 bytes" in str(long.refused)
    (folder,) = [
        job
        async for job in Walker(out, ".mp3", "rename").jobs(
            [Placed(source=str(tmp_path / "in"), relative="in.wav")]
        )
    ]
    assert folder.refused is not None and "not the file registered" in str(folder.refused)


async def test_a_source_keeps_the_place_it_was_first_registered_with(url: str, batch: str) -> None:
    store = PostgresStore(url, batch=batch, shared=True, owner="w1")
    async with await Ledger.open(store):
        assert await store.add_sources([("/a", "x/a.wav"), "/b", ("/a", "other.wav")]) == 2
        assert await store.add_sources([("/a", "y/a.wav"), ("/b", "b.wav"), "/c"]) == 1
        assert store.relative_output("/a") is None  # not claimed yet
        assert await store.claim(3) == ["/a", "/b", "/c"]
        places = [store.relative_output(source) for source in ("/a", "/b", "/c")]
    assert places == ["x/a.wav", None, None]
