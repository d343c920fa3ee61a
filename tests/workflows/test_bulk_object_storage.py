"""restore_many with sources and outputs on object storage: a local S3 (moto's server, see
``s3_server.py``) and the emulator, both on loopback, both API eras; and the workers of a
shared batch on the suite's PostgreSQL restoring objects bucket to bucket."""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import anyio
import pytest
from bulk_helpers import collect
from postgres_server import PostgresServer
from s3_server import SECRET, Buckets
from shared import AUDIO, ERAS, MEDIA, MIB

from diffio_async import BatchOptions, InvalidRequestError, OutputCollisionError
from diffio_async.cli import main
from diffio_async.testing import EmulatedDiffio, emulated_diffio
from diffio_async.workflows._shared_batch import work_batch
from diffio_async.workflows.bulk import ItemResult
from diffio_async.workflows.ledger import Ledger, PostgresStore

pytestmark = pytest.mark.anyio


def _emulated(era: str, part_size: int) -> AbstractAsyncContextManager[EmulatedDiffio]:
    return emulated_diffio(
        era=era,
        generation_seconds=0.05,
        part_size_bytes=part_size,
        client_options={"max_retries": 1},
    )


@pytest.fixture(params=ERAS)
async def env(request: pytest.FixtureRequest) -> AsyncIterator[EmulatedDiffio]:
    # Era B in parts of 4 KiB: a source of a few KiB is read from the bucket part by part.
    async with _emulated(request.param, 4096) as env:
        yield env


@pytest.fixture(params=ERAS)
async def large_env(request: pytest.FixtureRequest) -> AsyncIterator[EmulatedDiffio]:
    # Era B in parts of 1 MiB, for sources of several MiB (each part is one ranged GET).
    async with _emulated(request.param, MIB) as env:
        yield env


def _recording(seed: int, size: int = len(AUDIO)) -> bytes:
    block = hashlib.sha256(str(seed).encode()).digest()
    return (b"RIFF" + block * (size // len(block) + 1))[:size]


def _stored(env: EmulatedDiffio, kind: str, identifier: str | None) -> bytes:
    """What the emulator holds: an upload (``originals``, by project) or an output."""
    assert identifier is not None
    return (Path(env.emulator.storage_dir) / kind / identifier).read_bytes()


def _create_requests(env: EmulatedDiffio) -> int:
    return len(env.emulator.requests.find(path="/v1/create_project"))


async def test_a_prefix_restores_to_a_prefix_keeping_its_layout(
    env: EmulatedDiffio, s3: Buckets
) -> None:
    files = {
        "in/x.wav": _recording(1),
        "in/a/y.wav": _recording(2, 10_000),
        "in/a/b/z.flac": _recording(3, 9_000),
    }
    for key, data in files.items():
        s3.put(key, data)
    s3.put("in/.hidden.wav", b"RIFF-hidden")

    results = await collect(env, f"s3://{s3.source}/in", f"s3://{s3.output}/out", concurrency=3)

    assert all(r.ok for r in results), [(r.source, r.error) for r in results]
    assert sorted(r.source for r in results) == sorted(f"s3://{s3.source}/{k}" for k in files)
    assert s3.keys(s3.output) == ["out/a/b/z.mp3", "out/a/y.mp3", "out/x.mp3"]
    for result in results:
        key = result.source.removeprefix(f"s3://{s3.source}/")
        assert result.output == f"s3://{s3.output}/out/" + str(
            Path(key).relative_to("in").with_suffix(".mp3")
        )
        assert _stored(env, "originals", result.project_id) == files[key]  # streamed up
        assert isinstance(result.output, str)
        assert s3.get(result.output) == _stored(env, "outputs", result.generation_id)
        assert s3.get(result.output) == files[key]
    assert s3.unfinished_uploads(s3.output) == []
    assert len(env.emulator.generation_ids) == 3


async def test_a_rerun_with_a_ledger_skips_finished_objects_without_a_new_generation(
    env: EmulatedDiffio, s3: Buckets, tmp_path: Path
) -> None:
    sources = [s3.put("in/one.wav", _recording(4)), s3.put("in/two.wav", _recording(5))]
    ledger = tmp_path / "batch.sqlite"
    out = f"s3://{s3.output}/out"

    first = await collect(env, sources, out, ledger=ledger)
    assert all(r.ok and not r.skipped for r in first)
    generations = list(env.emulator.generation_ids)
    second = await collect(env, sources, out, ledger=ledger)

    assert all(r.ok and r.skipped for r in second), [(r.source, r.error) for r in second]
    assert env.emulator.generation_ids == generations
    assert _create_requests(env) == 2
    async with await Ledger.open(ledger) as opened:
        entries = {entry.source: entry for entry in await opened.entries()}
    assert sorted(entries) == sorted(sources)
    for source in sources:
        entry = entries[source]
        assert entry.state == "downloaded"
        assert entry.output_path == f"{out}/{Path(source).stem}.mp3"
        expected = hashlib.sha256(s3.get(source)).hexdigest()
        assert entry.content_hash == expected  # from the bytes, not the ETag

    # An output deleted since is written again from the finished generation, no new one.
    s3.fs.rm_file(f"{s3.output}/out/one.mp3")  # type: ignore[attr-defined]
    third = await collect(env, sources, out, ledger=ledger)
    rewritten = [r for r in third if not r.skipped]
    assert [r.source for r in rewritten] == [sources[0]]
    assert env.emulator.generation_ids == generations
    assert s3.get(f"s3://{s3.output}/out/one.mp3") == _recording(4)


async def test_a_download_failing_midway_leaves_no_object_and_the_rerun_writes_it(
    large_env: EmulatedDiffio, s3: Buckets, tmp_path: Path
) -> None:
    # 12 MiB: the first half of the cut body is more than one 5 MiB part of the output's
    # multipart upload, so a part is in the bucket when the download fails.
    data = _recording(6, 12 * MIB)
    source = s3.put("in/long.wav", data)
    media = MEDIA[large_env.emulator.era]
    large_env.emulator.add_fault(path=media, method="GET", truncate=True, count=1)
    large_env.emulator.add_fault(path=media, method="GET", status=500, count=None)
    ledger = tmp_path / "batch.sqlite"
    out = f"s3://{s3.output}/out"

    [failed] = await collect(large_env, [source], out, ledger=ledger, retry_for=0)

    assert not failed.ok and failed.stage == "download"
    assert s3.keys(s3.output) == []
    assert s3.unfinished_uploads(s3.output) == []  # the multipart upload was aborted
    large_env.emulator.clear_faults()
    [retried] = await collect(large_env, [source], out, ledger=ledger)
    assert retried.ok and retried.generation_id == failed.generation_id
    assert s3.get(f"{out}/long.mp3") == data
    assert len(large_env.emulator.generation_ids) == 1


async def test_two_batches_racing_on_one_output_leave_one_whole_object(
    large_env: EmulatedDiffio, s3: Buckets
) -> None:
    data = _recording(7, 6 * MIB)
    source = s3.put("in/race.wav", data)
    out = f"s3://{s3.output}/out"
    results: list[ItemResult] = []

    async def one() -> None:
        results.extend(await collect(large_env, [source], out))

    async with anyio.create_task_group() as group:
        group.start_soon(one)
        group.start_soon(one)

    assert [r.ok for r in results] == [True, True]
    assert s3.keys(s3.output) == ["out/race.mp3"]
    assert s3.get(f"{out}/race.mp3") == data
    assert s3.unfinished_uploads(s3.output) == []


async def test_local_files_restore_to_a_bucket_and_objects_to_a_folder(
    env: EmulatedDiffio, s3: Buckets, tmp_path: Path
) -> None:
    local = tmp_path / "in" / "local.wav"
    local.parent.mkdir()
    local.write_bytes(_recording(8))
    [up] = await collect(env, [local], f"s3://{s3.output}/from-disk")
    assert up.ok and up.output == f"s3://{s3.output}/from-disk/local.mp3"
    assert s3.get(up.output) == local.read_bytes()

    source = s3.put("in/remote.wav", _recording(9))
    [down] = await collect(env, source, tmp_path / "out")
    assert down.ok and down.output == tmp_path / "out" / "remote.mp3"
    assert (tmp_path / "out" / "remote.mp3").read_bytes() == _recording(9)
    assert _stored(env, "originals", down.project_id) == _recording(9)


async def test_bad_urls_fail_as_items_before_any_request(env: EmulatedDiffio, s3: Buckets) -> None:
    missing_bucket = "s3://diffio-no-such-bucket-8d2k/x.wav"
    bad = ["s3://", f"s3://{s3.source}/missing.wav", "nosuchproto://bucket/x.wav", missing_bucket]
    results = await collect(env, bad, f"s3://{s3.output}/out")

    errors = {r.source: r.error for r in results}
    assert all(not r.ok and r.stage == "source" for r in results)
    assert "names no bucket" in str(errors["s3://"])
    assert "no such object" in str(errors[f"s3://{s3.source}/missing.wav"])
    assert "unknown protocol 'nosuchproto'" in str(errors["nosuchproto://bucket/x.wav"])
    assert missing_bucket in str(errors[missing_bucket])
    assert len(env.emulator.requests) == 0


async def test_a_bad_output_url_is_refused_before_any_request(
    env: EmulatedDiffio, s3: Buckets
) -> None:
    source = s3.put("in/x.wav", _recording(10))
    for output_dir, message in [
        ("s3://", "names no bucket"),
        ("nosuchproto://bucket/out", "unknown protocol"),
        ("s3://diffio-no-such-bucket-7q/out", "no such bucket"),
    ]:
        with pytest.raises(InvalidRequestError, match=message):
            await collect(env, [source], output_dir)
    assert len(env.emulator.requests) == 0


async def test_two_objects_wanting_one_output_are_refused_or_renamed(
    env: EmulatedDiffio, s3: Buckets
) -> None:
    one, two = s3.put("a/take.wav", _recording(11)), s3.put("b/take.wav", _recording(12))
    out = f"s3://{s3.output}/out"
    with pytest.raises(OutputCollisionError, match="take"):
        await collect(env, [one, two], out)
    assert len(env.emulator.requests) == 0

    results = await collect(env, [one, two], out, on_collision="rename")
    assert all(r.ok for r in results)
    outputs = {r.source: r.output for r in results}
    assert len(set(outputs.values())) == 2 and all("take-" in str(o) for o in outputs.values())
    assert s3.get(str(outputs[one])) == _recording(11)
    assert s3.get(str(outputs[two])) == _recording(12)


async def test_an_output_prefix_inside_the_source_prefix_is_not_restored_again(
    env: EmulatedDiffio, s3: Buckets
) -> None:
    s3.put("in/x.wav", _recording(13))
    first = await collect(env, f"s3://{s3.source}/in", f"s3://{s3.source}/in/restored")
    assert [r.ok for r in first] == [True]
    second = await collect(env, f"s3://{s3.source}/in", f"s3://{s3.source}/in/restored")
    assert [r.source for r in second] == [f"s3://{s3.source}/in/x.wav"]
    with pytest.raises(InvalidRequestError, match="output_dir is the source folder"):
        await collect(env, f"s3://{s3.source}/in", f"s3://{s3.source}/in")


async def test_no_secret_in_the_ledger_errors_or_logs(
    env: EmulatedDiffio, s3: Buckets, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert os.environ["AWS_SECRET_ACCESS_KEY"] == SECRET
    good = s3.put("in/ok.wav", _recording(14))
    env.emulator.add_fault(path=MEDIA[env.emulator.era], method="GET", status=500, count=1)
    ledger = tmp_path / "batch.sqlite"
    caplog.set_level(logging.DEBUG)
    sources = [good, f"s3://{s3.source}/missing.wav", "s3://", f"s3://user:{SECRET}@x/y.wav"]
    results = await collect(env, sources, f"s3://{s3.output}/out", ledger=ledger)

    assert [r.ok for r in results].count(True) == 1
    shown = " ".join(f"{r.source} {r.error!r} {r.error} {r!r}" for r in results)
    assert SECRET not in shown
    assert SECRET not in caplog.text
    async for stored in anyio.Path(tmp_path).glob("batch.sqlite*"):  # with -wal, -shm
        assert SECRET.encode() not in await stored.read_bytes()


async def test_workers_of_a_shared_batch_restore_objects_bucket_to_bucket(
    env: EmulatedDiffio, s3: Buckets, postgres_server: PostgresServer
) -> None:
    """``batch add`` keys objects by URL, each with its place under the prefix; ``batch run``'s
    workers restore them once each and mirror the prefix's layout, as ``restore`` does (one
    object with the same name in two folders is no collision); a row registered without a
    place (an older diffio_async) keeps its bare name."""
    files = {
        "in/0/take.wav": _recording(100),
        "in/1/take.wav": _recording(101),
        "in/1/deep/more.wav": _recording(102),
        "in/top.wav": _recording(103),
    }
    sources = [s3.put(key, data) for key, data in files.items()]
    old = s3.put("old/bare.wav", _recording(104))
    batch, url = f"s3-{uuid.uuid4().hex[:10]}", postgres_server.url()
    prefix = f"s3://{s3.source}/in/"
    argv = ["batch", "add", batch, prefix, "--ledger", url]
    assert await anyio.to_thread.run_sync(main, argv) == 0
    registrar = PostgresStore(url, batch=batch, shared=True, owner="registrar")
    await registrar.open()
    try:
        assert await registrar.add_sources([old]) == 1  # no place: as a v3 row
    finally:
        await registrar.aclose()
    out = f"s3://{s3.output}/out"
    results: list[ItemResult] = []

    async def worker(owner: str, again: list[str]) -> None:
        store = PostgresStore(url, batch=batch, shared=True, owner=owner, lease_seconds=30)
        async with work_batch(
            env.client,
            env.client._transport,
            store,
            again,  # registered again by URL: idempotent
            output_dir=out,
            batch=BatchOptions(concurrency=2),
            renew_every=0.2,
            poll=0.02,
        ) as items:
            results.extend([item async for item in items])

    async with anyio.create_task_group() as group:
        group.start_soon(worker, "w1", [prefix])
        group.start_soon(worker, "w2", [])

    assert sorted(r.source for r in results if r.ok) == sorted([*sources, old])
    assert len(env.emulator.generation_ids) == len(files) + 1
    for key, data in files.items():
        relative = key.removeprefix("in/").removesuffix(".wav")
        assert s3.get(f"{out}/{relative}.mp3") == data
    assert s3.get(f"{out}/bare.mp3") == _recording(104)
    assert sorted(s3.keys(s3.output)) == [
        "out/0/take.mp3",
        "out/1/deep/more.mp3",
        "out/1/take.mp3",
        "out/bare.mp3",
        "out/top.mp3",
    ]
