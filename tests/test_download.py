"""Downloads over loopback: atomic writes, URL refresh, resume, not-ready retries, cancellation.

``Generation.download`` streams the signed URL to a temp file beside the target and renames it
into place; an expired URL (403) is replaced by a fresh one and the transfer resumes with
``Range``; any failure or cancellation removes the temp file and leaves the target untouched.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from virtual_clock import VIRTUAL_BACKENDS, virtual_backend

from diffio_async import (
    APIConnectionError,
    AsyncDiffio,
    ConflictError,
    Generation,
    InternalServerError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    PollPolicy,
    RetryPolicy,
    TranscriptPendingError,
    TranscriptUnavailableError,
)
from diffio_async.testing import EmulatedDiffio, emulated_diffio

pytestmark = pytest.mark.anyio
VIRTUAL = pytest.mark.parametrize("anyio_backend", VIRTUAL_BACKENDS, indirect=True)

MIB = 1024 * 1024
FAST = RetryPolicy(max_retries=2, initial_delay=0.01, max_delay=0.02)
QUICK_POLL = PollPolicy(initial=0.05, maximum=0.2)
ERAS = ["a", "b"]
MEDIA = {"a": "/_storage/*", "b": "/m/*"}


def _data(size: int) -> bytes:
    block = hashlib.sha256(b"download").digest() * (MIB // 32)
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += bytes([counter % 251]) + block
        counter += 1
    return bytes(out[:size])


def busy_connections(client: AsyncDiffio) -> list[Any]:
    """Connections of the client's pool that are not idle, plus queued requests (httpcore)."""
    pool = client._transport.http._transport._pool  # type: ignore[attr-defined]
    return [c for c in pool.connections if not c.is_idle()] + list(pool._requests)


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def _leftovers(folder: Path) -> list[str]:
    return [name for name in _names(folder) if name.endswith(".part")]


async def _completed(env: EmulatedDiffio, data: bytes, **script: Any) -> Generation:
    project = await env.client.projects.create(data, file_name="talk.wav")
    if script:
        env.emulator.script_next_generation(**script)
    generation = await env.client.generations.create(project, model=_model(env))
    await generation.wait(timeout=30, poll=QUICK_POLL)
    env.emulator.requests.clear()
    return generation


def _model(env: EmulatedDiffio) -> str:
    return "diffio-3.5" if env.emulator.era == "a" else "diffio-4.6-flash"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    """Both backends; tests marked ``VIRTUAL`` get them on virtual time (see virtual_clock)."""
    return virtual_backend(request.param)


@pytest.fixture(params=ERAS)
async def env(request: pytest.FixtureRequest) -> AsyncIterator[EmulatedDiffio]:
    async with emulated_diffio(
        era=request.param, generation_seconds=0.1, client_options={"max_retries": FAST}
    ) as env:
        yield env


def _media_gets(env: EmulatedDiffio) -> list[Any]:
    prefix = "/_storage/" if env.emulator.era == "a" else "/m/"
    return [e for e in env.emulator.requests if e.method == "GET" and e.path.startswith(prefix)]


async def test_download_to_a_folder_uses_the_server_file_name(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    data = _data(3 * MIB + 5)
    generation = await _completed(env, data)
    path = await generation.download(tmp_path)
    assert path == tmp_path / "diffio_ai_talk.mp3"
    assert path.read_bytes() == data
    # A folder that does not exist yet (trailing separator) is created.
    nested = await generation.download(f"{tmp_path}/new/folder/")
    assert nested == tmp_path / "new" / "folder" / "diffio_ai_talk.mp3"
    assert nested.read_bytes() == data
    # A file path is used as given.
    named = await generation.download(tmp_path / "mine.mp3")
    assert named.read_bytes() == data
    assert _leftovers(tmp_path) == []
    with pytest.raises(InvalidRequestError):
        await generation.download(tmp_path / "missing" / "x.mp3")


@pytest.mark.parametrize("style", ["sync", "async"])
async def test_download_progress_callback(env: EmulatedDiffio, tmp_path: Path, style: str) -> None:
    data = _data(2 * MIB + 1)
    generation = await _completed(env, data)
    seen: list[tuple[int, int]] = []

    def sync_cb(done: int, total: int) -> None:
        seen.append((done, total))

    async def async_cb(done: int, total: int) -> None:
        await anyio.lowlevel.checkpoint()
        seen.append((done, total))

    await generation.download(tmp_path, on_progress=sync_cb if style == "sync" else async_cb)
    assert seen[-1] == (len(data), len(data))
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert {total for _, total in seen} == {len(data)}


async def test_an_expired_url_mid_download_is_refreshed(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    """Acceptance: the URL expires mid-download; a fresh one finishes it with correct bytes."""
    data = _data(4 * MIB + 321)
    generation = await _completed(env, data)
    env.emulator.add_fault(path=MEDIA[env.emulator.era], method="GET", truncate=True)
    expired: list[bool] = []

    def expire_on_first_chunk(done: int, total: int) -> None:
        if not expired:
            expired.append(True)
            env.emulator.advance(7 * 3600)  # beyond the media URL lifetime of both eras

    path = await generation.download(tmp_path, on_progress=expire_on_first_chunk)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()
    gets = _media_gets(env)
    assert [e.status for e in gets] == [200, 403, 206]
    assert gets[0].fault == "truncate"
    # The cut answer delivered half of the body; the whole 1 MiB chunks of it were kept.
    resumed_at = (len(data) // 2) // MIB * MIB
    assert gets[1].header("range") == gets[2].header("range") == f"bytes={resumed_at}-"
    assert gets[1].path != gets[2].path or gets[1].query != gets[2].query  # a fresh URL
    assert len(env.emulator.requests.find(path="/v1/get_generation_download")) == 2
    assert _leftovers(tmp_path) == []


async def test_a_cut_transfer_resumes_with_range(env: EmulatedDiffio, tmp_path: Path) -> None:
    data = _data(4 * MIB)
    generation = await _completed(env, data)
    env.emulator.add_fault(path=MEDIA[env.emulator.era], method="GET", truncate=True, count=2)
    path = await generation.download(tmp_path / "out.mp3")
    assert path.read_bytes() == data
    gets = _media_gets(env)
    assert [e.status for e in gets] == [200, 206, 206]
    assert [e.header("range") for e in gets] == [None, "bytes=2097152-", "bytes=3145728-"]
    assert {e.header("accept-encoding") for e in gets} == {"identity"}  # offsets are bytes
    assert len(env.emulator.requests.find(path="/v1/get_generation_download")) == 1


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ({"status": 500, "count": None}, InternalServerError),
        ({"status": 403, "count": None}, PermissionDeniedError),
        ({"truncate": True, "count": None}, APIConnectionError),
    ],
    ids=["500", "403-forever", "cut-forever"],
)
async def test_a_failed_download_leaves_no_file(
    env: EmulatedDiffio, tmp_path: Path, fault: dict[str, Any], error: type[Exception]
) -> None:
    """Acceptance: a failed download leaves no file at the destination, and clobbers none."""
    generation = await _completed(env, _data(2 * MIB))
    env.emulator.add_fault(path=MEDIA[env.emulator.era], method="GET", **fault)
    with pytest.raises(error):
        await generation.download(tmp_path)
    assert _names(tmp_path) == []
    existing = tmp_path / "keep.mp3"
    existing.write_bytes(b"precious")
    with pytest.raises(error):
        await generation.download(existing)
    assert existing.read_bytes() == b"precious"
    assert _names(tmp_path) == ["keep.mp3"]
    assert not busy_connections(env.client)


@VIRTUAL
@pytest.mark.parametrize("era", ERAS)
@pytest.mark.parametrize("status", [404, 409])
async def test_not_ready_just_after_completion_is_retried_briefly(
    era: str, status: int, tmp_path: Path
) -> None:
    """Virtual time: a 404/409 from get_generation_download is retried for a short while."""
    data = _data(MIB)
    async with emulated_diffio(era=era, loopback=False) as env:
        generation = await _completed(env, data)
        path = "/v1/get_generation_download"
        env.emulator.add_fault(path=path, status=status, count=2)
        started = anyio.current_time()
        assert (await generation.download(tmp_path)).read_bytes() == data
        assert [e.status for e in env.emulator.requests.find(path=path)] == [status, status, 200]
        assert anyio.current_time() - started == pytest.approx(1.5, abs=0.1)  # 0.5 s, then 1 s
        # Not ready for longer than the patience: the last error is raised then.
        env.emulator.add_fault(path=path, status=status, count=None)
        started = anyio.current_time()
        with pytest.raises(NotFoundError if status == 404 else ConflictError) as info:
            await generation.download(tmp_path / "late.mp3", not_ready_patience=20)
        assert info.value.status_code == status
        assert 20 <= anyio.current_time() - started <= 21
        assert _names(tmp_path) == ["diffio_ai_talk.mp3"]


@VIRTUAL
@pytest.mark.parametrize("era", ERAS)
async def test_download_right_after_creation_waits_for_the_output(era: str, tmp_path: Path) -> None:
    """Virtual time: asked before the generation completes, the download waits (409s) for it."""
    data = _data(MIB)
    async with emulated_diffio(era=era, loopback=False) as env:
        project = await env.client.projects.create(data, file_name="talk.wav")
        env.emulator.script_next_generation(duration=12)
        generation = await env.client.generations.create(project, model=_model(env))
        started = anyio.current_time()
        path = await generation.download(tmp_path)
        assert path.read_bytes() == data
        assert 12 <= anyio.current_time() - started <= 17
        requests = env.emulator.requests.find(path="/v1/get_generation_download")
        assert [e.status for e in requests][-1] == 200
        assert {e.status for e in requests[:-1]} == {409}


@pytest.mark.parametrize(
    ("outcome", "error"),
    [("pending", TranscriptPendingError), ("unavailable", TranscriptUnavailableError)],
)
async def test_transcript_not_available_raises_its_typed_error(
    env: EmulatedDiffio, tmp_path: Path, outcome: Any, error: type[Exception]
) -> None:
    generation = await _completed(env, _data(1000), transcript=outcome)
    with pytest.raises(error):
        await generation.download(tmp_path, download_type="transcript")
    assert len(env.emulator.requests.find(path="/v1/get_generation_download")) == 1
    assert _names(tmp_path) == []


async def test_transcript_download(env: EmulatedDiffio, tmp_path: Path) -> None:
    generation = await _completed(env, _data(1000))
    path = await generation.download(tmp_path, download_type="transcript")
    assert path.name == "word_timestamps.json"
    assert b'"words"' in path.read_bytes()


async def test_cancelling_a_download_midway_leaves_nothing(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    """Acceptance: a download cancelled mid-stream leaves no temp file and no open connection."""
    generation = await _completed(env, _data(8 * MIB))
    existing = tmp_path / "diffio_ai_talk.mp3"
    existing.write_bytes(b"old")
    with anyio.move_on_after(30) as scope:

        def cancel_midway(done: int, total: int) -> None:
            if done >= 2 * MIB:
                scope.cancel()

        await generation.download(tmp_path, on_progress=cancel_midway)
    assert scope.cancelled_caught
    assert _names(tmp_path) == ["diffio_ai_talk.mp3"]
    assert existing.read_bytes() == b"old"
    assert not busy_connections(env.client)


async def test_cancelling_a_download_waiting_for_the_server_leaves_nothing(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    generation = await _completed(env, _data(MIB))
    env.emulator.add_fault(path=MEDIA[env.emulator.era], method="GET", delay=10)
    started = anyio.current_time()
    with anyio.move_on_after(0.3) as scope:
        await generation.download(tmp_path)
    assert scope.cancelled_caught
    assert anyio.current_time() - started < 2  # promptly
    assert _names(tmp_path) == []
    assert not busy_connections(env.client)
    # The client is still usable afterwards.
    assert (await generation.download(tmp_path)).read_bytes() == _data(MIB)
