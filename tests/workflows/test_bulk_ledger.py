"""restore_many with a ledger in odd situations: server-side failures, a new output folder,
two batches on one ledger, a read-only ledger, and arguments checked before anything exists."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest
from bulk_helpers import FAST_POLL, collect
from shared import batch_arguments

from diffio_async import (
    MAX_CONCURRENCY,
    BatchOptions,
    GenerationFailedError,
    InvalidRequestError,
    LedgerLockedError,
    OutputCollisionError,
    RestoreOptions,
)
from diffio_async.testing import EmulatedDiffio, emulated_diffio
from diffio_async.workflows.ledger import Ledger

pytestmark = pytest.mark.anyio


@pytest.fixture
async def env() -> AsyncIterator[EmulatedDiffio]:
    async with emulated_diffio(generation_seconds=0.05) as env:
        yield env


def _source(tmp_path: Path, name: str = "talk.wav", content: bytes = b"RIFF-talk") -> Path:
    path = tmp_path / "in" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def _generation_keys(env: EmulatedDiffio) -> list[str]:
    return [
        entry.json["idempotencyKey"]
        for entry in env.emulator.requests
        if entry.path.endswith("-generation") and entry.json
    ]


async def test_a_generation_the_server_failed_is_created_anew_with_a_new_key_on_rerun(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    source = _source(tmp_path)
    ledger = tmp_path / "batch.sqlite"
    env.emulator.script_next_generation(fail_at="inference", error="bad audio")
    [first] = await collect(env, [source], tmp_path / "out", ledger=ledger)
    assert not first.ok and isinstance(first.error, GenerationFailedError)
    failed_generation = first.generation_id

    [second] = await collect(env, [source], tmp_path / "out", ledger=ledger)
    assert second.ok and not second.skipped
    assert second.generation_id != failed_generation
    keys = _generation_keys(env)
    assert len(set(keys)) == 2  # a new key: the server could not replay the failure
    assert len(env.emulator.generation_ids) == 2
    assert _create_project_count(env) == 1  # the upload was reused

    [third] = await collect(env, [source], tmp_path / "out", ledger=ledger)
    assert third.skipped and len(env.emulator.generation_ids) == 2


def _create_project_count(env: EmulatedDiffio) -> int:
    return len(env.emulator.requests.find(path="/v1/create_project"))


async def test_a_new_output_dir_gets_the_output_without_a_new_generation(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    source = _source(tmp_path)
    ledger = tmp_path / "batch.sqlite"
    [first] = await collect(env, [source], tmp_path / "out1", ledger=ledger)
    assert first.ok
    [second] = await collect(env, [source], tmp_path / "out2", ledger=ledger)
    assert second.ok and not second.skipped
    assert (tmp_path / "out2" / "talk.mp3").read_bytes() == b"RIFF-talk"
    assert len(env.emulator.generation_ids) == 1
    [third] = await collect(env, [source], tmp_path / "out2", ledger=ledger)
    assert third.skipped


async def test_a_deleted_output_is_downloaded_again_without_a_new_generation(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    source = _source(tmp_path)
    ledger = tmp_path / "batch.sqlite"
    await collect(env, [source], tmp_path / "out", ledger=ledger)
    (tmp_path / "out" / "talk.mp3").unlink()
    [again] = await collect(env, [source], tmp_path / "out", ledger=ledger)
    assert again.ok and not again.skipped
    assert (tmp_path / "out" / "talk.mp3").read_bytes() == b"RIFF-talk"
    assert len(env.emulator.generation_ids) == 1


async def test_a_second_batch_on_a_held_ledger_fails_up_front(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    source = _source(tmp_path)
    ledger = tmp_path / "batch.sqlite"
    async with env.client.restore_many(
        [source],
        output_dir=tmp_path / "out",
        options=RestoreOptions(poll=FAST_POLL),
        batch=BatchOptions(ledger=ledger),
    ) as items:
        with pytest.raises(LedgerLockedError, match="in use by another batch"):
            await collect(env, [source], tmp_path / "out2", ledger=ledger)
        results = [item async for item in items]
    assert [r.ok for r in results] == [True]
    assert len(env.emulator.generation_ids) == 1
    assert not (tmp_path / "out2").exists() or not any((tmp_path / "out2").iterdir())


def test_a_ledger_held_by_another_process_is_refused(tmp_path: Path) -> None:
    ledger = tmp_path / "batch.sqlite"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import anyio, sys\n"
            "from diffio_async.workflows.ledger import Ledger\n"
            "async def main():\n"
            f"    async with await Ledger.open({str(ledger)!r}):\n"
            "        print('held', flush=True)\n"
            "        sys.stdin.readline()\n"
            "anyio.run(main)\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"

        async def open_it() -> None:
            await Ledger.open(ledger)

        with pytest.raises(LedgerLockedError, match="in use"):
            anyio.run(open_it)
    finally:
        assert holder.stdin is not None and holder.stdout is not None
        holder.stdin.close()
        holder.wait(timeout=30)
        holder.stdout.close()

    async def open_after() -> None:
        async with await Ledger.open(ledger):
            pass

    anyio.run(open_after)  # released when the holder ended


def _chattr(flag: str, path: Path) -> bool:
    """Set or clear the immutable flag (root ignores file modes, but not this)."""
    return subprocess.run(["chattr", flag, str(path)], capture_output=True).returncode == 0


async def test_a_read_only_ledger_fails_up_front(env: EmulatedDiffio, tmp_path: Path) -> None:
    source = _source(tmp_path)
    ledger = tmp_path / "batch.sqlite"
    async with await Ledger.open(ledger):
        pass
    ledger.chmod(0o444)
    immutable = _chattr("+i", ledger)
    try:
        if not immutable and os.geteuid() == 0:
            pytest.skip("running as root without chattr: cannot make a read-only file")
        with pytest.raises(LedgerLockedError, match="cannot be written"):
            await collect(env, [source], tmp_path / "out", ledger=ledger)
    finally:
        if immutable:
            assert _chattr("-i", ledger)
    assert env.emulator.requests.find(path="/v1/create_project") == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"concurrency": 200_000}, "concurrency must be at least 1 and at most"),
        ({"concurrency": 0}, "concurrency"),
        ({"concurrency": 2.5}, "concurrency must be an int"),
        ({"retry_for": -1}, "retry_for"),
        ({"transfer_concurrency": -1}, "transfer_concurrency"),
        ({"timeout": math.nan}, "timeout"),
        ({"timeout": -1}, "timeout"),
        ({"model": "diffio-99"}, "diffio-99"),
        ({"sampling": {"steps": math.inf}}, "sampling is not valid JSON"),
        ({"params": ["not", "a", "mapping"]}, "params must be a mapping"),
        ({"download_type": "flac"}, "download_type"),
        ({"poll": 5}, "poll must be a PollPolicy"),
        ({"on_stage": "print"}, "on_stage must be callable"),
        ({"on_collision": "overwrite"}, "on_collision"),
        ({"ledger": 7}, "ledger must be a path"),
        ({"output_dir": None}, "output_dir must be a path"),
    ],
)
async def test_bad_batch_arguments_are_refused_before_any_request(
    env: EmulatedDiffio, tmp_path: Path, options: dict[str, object], message: str
) -> None:
    source = _source(tmp_path)
    arguments: dict[str, object] = {"output_dir": tmp_path / "out", **options}
    with pytest.raises(InvalidRequestError, match=message):
        # The options objects are built inside the raises block: a bad field fails there.
        async with env.client.restore_many([source], **batch_arguments(**arguments)) as items:
            async for _ in items:
                pass
    assert list(env.emulator.requests) == []


async def test_concurrency_has_a_documented_ceiling() -> None:
    assert MAX_CONCURRENCY == 1024


async def test_a_later_batch_on_the_ledger_never_overwrites_an_earlier_batchs_output(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    day1 = _source(tmp_path, "day1/take.wav", b"RIFF-day1")
    day2 = _source(tmp_path, "day2/take.wav", b"RIFF-day2")
    ledger = tmp_path / "batch.sqlite"
    [first] = await collect(env, [day1], tmp_path / "out", ledger=ledger)
    assert first.ok
    [second] = await collect(env, [day2], tmp_path / "out", ledger=ledger)
    assert not second.ok and isinstance(second.error, OutputCollisionError)
    assert (tmp_path / "out" / "take.mp3").read_bytes() == b"RIFF-day1"
    assert len(env.emulator.generation_ids) == 1
    [again] = await collect(env, [day1], tmp_path / "out", ledger=ledger)
    assert again.skipped


async def test_the_same_media_under_another_path_is_paid_once(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    original = _source(tmp_path, "a/x.wav", b"RIFF-same")
    link = tmp_path / "in" / "b" / "y.wav"
    link.parent.mkdir(parents=True)
    os.link(original, link)
    copy = _source(tmp_path, "c/z.wav", b"RIFF-same")
    ledger = tmp_path / "batch.sqlite"
    await collect(env, [original], tmp_path / "out", ledger=ledger)
    results = await collect(env, [link, copy], tmp_path / "out", ledger=ledger)
    assert all(r.ok for r in results)
    assert len(env.emulator.generation_ids) == 1  # replayed under the same key
    assert len(env.emulator.requests.find(path="/v1/create_project")) == 1
    assert {p.read_bytes() for p in (tmp_path / "out").iterdir()} == {b"RIFF-same"}


# --- second review of issue 9 --------------------------------------------------------------------


async def test_a_later_batch_never_overwrites_an_earlier_video_under_its_served_suffix(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    """Second review of issue 9: the ledger's owners are looked up under the planned name and
    its ``.mp3`` only. Day 1 restored ``take.mp4`` (a video) to ``out/take.mp4``; day 2's
    ``take`` (no suffix, ``content_type="video/mp4"``) is planned as ``out/take``, served as
    ``.mp4`` and, with ``overwrite_served=True``, replaces day 1's output, reported ok."""
    video = b"\x00\x00\x00\x18ftypmp42"
    day1 = _source(tmp_path, "day1/take.mp4", video + b"day1")
    day2 = _source(tmp_path, "day2/take", video + b"day2")
    ledger = tmp_path / "batch.sqlite"
    [first] = await collect(env, [day1], tmp_path / "out", ledger=ledger)
    assert first.ok and first.output == tmp_path / "out" / "take.mp4"
    [second] = await collect(env, [day2], tmp_path / "out", ledger=ledger, content_type="video/mp4")
    assert (tmp_path / "out" / "take.mp4").read_bytes() == video + b"day1"
    assert not second.ok or second.output != first.output
