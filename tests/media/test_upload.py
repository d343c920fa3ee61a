"""Media uploads over loopback: sources, both protocols, re-sends, progress, errors, cancellation.

Era A answers ``create_project`` with a signed URL (one streamed PUT); era B with an edge
session (parts in parallel, then ``complete`` and ``complete_project_upload``). Every body is
streamed with ``Content-Length`` (never chunked) and a retry re-opens the source (a stream's
era-B part is re-sent from the copy kept of that part). File objects, async iterators and
shared handles: ``test_upload_sources.py``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from shared import ERAS, FAST, MIB

from diffio_async import (
    AsyncDiffio,
    InvalidRequestError,
    MediaSource,
    PayloadTooLargeError,
    UploadError,
)
from diffio_async.emulator import LoggedRequest
from diffio_async.testing import TEST_API_KEY, EmulatedDiffio, emulated_diffio

pytestmark = pytest.mark.anyio


def _data(size: int, seed: int = 1) -> bytes:
    """Deterministic bytes that are not a repeating pattern."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest() * 512
        counter += 1
    return bytes(out[:size])


def _env(era: str, **options: Any) -> Any:
    options.setdefault("part_size_bytes", MIB)
    return emulated_diffio(
        era=era, generation_seconds=0.2, client_options={"max_retries": FAST}, **options
    )


def _stored(env: EmulatedDiffio, project_id: str) -> bytes:
    return (Path(env.emulator.storage_dir) / "originals" / project_id).read_bytes()


def _media_puts(env: EmulatedDiffio) -> list[LoggedRequest]:
    return [e for e in env.emulator.requests if e.method == "PUT"]


def busy_connections(client: AsyncDiffio) -> list[Any]:
    """Connections of the client's pool that are not idle, plus queued requests (httpcore2)."""
    pool = client._transport.http._transport._pool  # type: ignore[attr-defined]
    return [c for c in pool.connections if not c.is_idle()] + list(pool._requests)


def _stream(data: bytes, *, chunk: int = 256 * 1024, delay: float = 0.0) -> tuple[Any, list[int]]:
    """A ``from_stream`` factory over ``data`` and a list counting how often it was opened."""
    calls: list[int] = []

    def factory() -> AsyncIterator[bytes]:
        calls.append(1)

        async def gen() -> AsyncIterator[bytes]:
            for start in range(0, len(data), chunk):
                if delay:
                    await anyio.sleep(delay)
                yield data[start : start + chunk]

        return gen()

    return factory, calls


SOURCES: dict[str, Callable[[bytes, Path], Any]] = {
    "path": lambda data, tmp: _write(tmp / "talk.wav", data),
    "bytes": lambda data, tmp: data,
    "stream": lambda data, tmp: MediaSource.from_stream(
        _stream(data)[0], size=len(data), file_name="talk.wav"
    ),
    "media-path": lambda data, tmp: MediaSource.from_path(_write(tmp / "talk.wav", data)),
}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("era", ERAS)
@pytest.mark.parametrize("kind", list(SOURCES))
async def test_every_kind_of_source_uploads_its_exact_bytes(
    era: str, kind: str, tmp_path: Path
) -> None:
    data = _data(3 * MIB + 12345)
    async with _env(era) as env:
        source = SOURCES[kind](data, tmp_path)
        project = await env.client.projects.create(source, file_name="talk.wav")
        assert _stored(env, project.api_project_id) == data
        create = env.emulator.requests.find(path="/v1/create_project")[0].json
        assert create["contentLength"] == len(data)
        assert create["fileName"] == "talk.wav"
        puts = _media_puts(env)
        assert sum(e.body_size for e in puts) == len(data)
        for entry in puts:
            assert not entry.chunked and entry.header("transfer-encoding") is None
            assert int(entry.header("content-length") or -1) == entry.body_size
        if era == "a":
            (put,) = puts
            assert put.header("content-type") == create["contentType"] == "audio/x-wav"
        else:
            assert sorted(int(e.path.rsplit("/", 1)[1]) for e in puts) == [1, 2, 3, 4]
            complete = env.emulator.requests.find(path="/v1/uploads/complete")[0].json
            assert [p["partNumber"] for p in complete["parts"]] == [1, 2, 3, 4]
            assert set(complete) == {"uploadId", "parts"}  # exactly EdgeCompleteRequest
            assert all(set(p) == {"partNumber", "etag"} and p["etag"] for p in complete["parts"])
            assert env.emulator.requests.find(path="/v1/complete_project_upload")


@pytest.mark.parametrize("era", ERAS)
@pytest.mark.parametrize("failure", ["503", "drop"])
async def test_a_failure_mid_upload_is_followed_by_a_complete_resend(
    era: str, failure: str
) -> None:
    """Acceptance: a 503 in the middle of an upload is followed by a full-length re-send."""
    data = _data(3 * MIB + 7)
    factory, opened = _stream(data)
    source = MediaSource.from_stream(factory, size=len(data), file_name="talk.wav")
    async with _env(era) as env:
        # Era A: the one PUT fails after its body was sent. Era B: part 2 of 4 fails.
        path = "/_storage/*" if era == "a" else "/v1/uploads/parts/2"
        fault: dict[str, Any] = {"status": 503} if failure == "503" else {"drop": True}
        env.emulator.add_fault(path=path, method="PUT", **fault)
        project = await env.client.projects.create(source)
        assert _stored(env, project.api_project_id) == data

        hit = [e for e in _media_puts(env) if e.path == path or path.endswith("*")]
        assert [e.status for e in hit] == [503 if failure == "503" else None, 200]
        expected = len(data) if era == "a" else MIB
        for entry in env.emulator.requests:
            assert not entry.chunked, entry
            assert entry.header("transfer-encoding") is None, entry
        for entry in hit:  # the failed attempt and the re-send both carried the full body
            assert entry.body_size == expected
            assert entry.header("content-length") == str(expected)
        # Era A re-opened the stream for the re-send; era B read it once, in order, and
        # re-sent part 2 from the copy it kept of that part.
        assert len(opened) == (2 if era == "a" else 1)


@pytest.mark.parametrize("era", ERAS)
@pytest.mark.parametrize("style", ["sync", "async"])
async def test_upload_progress_callback(era: str, style: str) -> None:
    data = _data(2 * MIB + 99)
    seen: list[tuple[int, int]] = []

    def sync_cb(done: int, total: int) -> None:
        seen.append((done, total))

    async def async_cb(done: int, total: int) -> None:
        await anyio.lowlevel.checkpoint()
        seen.append((done, total))

    async with _env(era) as env:
        env.emulator.add_fault(
            path="/v1/uploads/parts/1" if era == "b" else "/_storage/*", drop=True
        )
        await env.client.projects.create(
            data, file_name="a.wav", on_progress=sync_cb if style == "sync" else async_cb
        )
    assert seen[-1] == (len(data), len(data))
    assert all(total == len(data) for _, total in seen)
    assert all(0 <= done <= len(data) for done, _ in seen)


async def test_invalid_sources_are_rejected_before_any_project_is_created(tmp_path: Path) -> None:
    huge = MediaSource.from_stream(lambda: _never(), size=2 * 1024**3 + 1, file_name="big.wav")
    (tmp_path / "folder").mkdir()
    async with _env("a") as env:
        cases: list[Any] = [tmp_path / "missing.wav", tmp_path / "folder", huge, 12345]
        for source in cases:
            with pytest.raises(InvalidRequestError):
                await env.client.projects.create(source)
        with pytest.raises(InvalidRequestError):
            MediaSource.from_stream(lambda: _never(), size=-1, file_name="x.wav")
        with pytest.raises(InvalidRequestError):
            MediaSource.from_bytes(b"x", file_name=" ")
        assert env.emulator.requests.find(path="/v1/create_project") == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
async def test_an_unreadable_file_is_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path / "secret.wav", b"RIFF")
    path.chmod(0)
    with pytest.raises(InvalidRequestError, match="permission"):
        MediaSource.from_path(path)


async def _never() -> AsyncIterator[bytes]:
    yield b""  # pragma: no cover


async def test_the_server_upload_limit_refuses_before_any_upload() -> None:
    async with _env("b", max_upload_bytes=MIB) as env:
        with pytest.raises(PayloadTooLargeError):
            await env.client.projects.create(_data(MIB + 1), file_name="a.wav")
        assert _media_puts(env) == []
        assert env.emulator.project_ids == []


async def test_a_stream_shorter_than_its_size_fails_the_upload() -> None:
    data = _data(MIB)
    factory, _ = _stream(data)
    source = MediaSource.from_stream(factory, size=len(data) + 10, file_name="short.wav")
    async with _env("a") as env:
        with pytest.raises(UploadError) as info:
            await env.client.projects.create(source)
        assert info.value.project_id == env.emulator.project_ids[0]


@pytest.mark.parametrize("era", ERAS)
async def test_a_refused_upload_raises_upload_error_with_the_project_id(era: str) -> None:
    async with _env(era) as env:
        path = "/_storage/*" if era == "a" else "/v1/uploads/parts/*"
        env.emulator.add_fault(path=path, method="PUT", status=403, count=None)
        with pytest.raises(UploadError) as info:
            await env.client.projects.create(_data(2 * MIB), file_name="a.wav")
        assert info.value.project_id == env.emulator.project_ids[0]
        assert info.value.__cause__ is not None
        if era == "b":  # the edge session is aborted, and the upload never completed
            (abort,) = env.emulator.requests.find(path="/v1/uploads/abort")
            assert abort.status == 200
            assert set(abort.json) == {"uploadId"}  # exactly EdgeAbortRequest
            assert env.emulator.requests.find(path="/v1/uploads/complete") == []
        assert not busy_connections(env.client)


async def test_part_concurrency_is_bounded() -> None:
    """Era B sends at most ``part_concurrency`` parts at once (each one delayed here)."""
    async with _env("b") as env:
        env.emulator.add_fault(path="/v1/uploads/parts/*", delay=0.3, count=None)
        started = anyio.current_time()
        await env.client.projects.create(_data(4 * MIB), file_name="a.wav", part_concurrency=2)
        assert anyio.current_time() - started >= 0.6  # four delayed parts, two at a time
        with pytest.raises(InvalidRequestError):
            await env.client.projects.create(b"x", file_name="a.wav", part_concurrency=0)


async def _wait_until(predicate: Callable[[], bool]) -> None:
    with anyio.fail_after(5):
        while not predicate():  # noqa: ASYNC110 - polling the emulator thread
            await anyio.sleep(0.01)


@pytest.mark.parametrize("era", ERAS)
async def test_cancelling_an_upload_leaves_nothing_open(era: str) -> None:
    """Acceptance: a cancelled upload leaves no open connection and no partial object."""
    data = _data(12 * MIB)
    factory, _ = _stream(data, chunk=MIB, delay=0.02)
    source = MediaSource.from_stream(factory, size=len(data), file_name="talk.wav")
    async with _env(era, part_size_bytes=4 * MIB) as env:
        with anyio.move_on_after(30) as scope:

            def cancel_midway(done: int, total: int) -> None:
                if done >= 3 * MIB:
                    scope.cancel()

            await env.client.projects.create(source, on_progress=cancel_midway)
        assert scope.cancel_called and scope.cancelled_caught
        assert not busy_connections(env.client)
        storage = Path(env.emulator.storage_dir)
        # The emulator saw each cut connection: it discarded the partial bodies.
        await _wait_until(lambda: not any((storage / "incoming").iterdir()))
        assert not any((storage / "originals").iterdir())
        if era == "b":
            (abort,) = env.emulator.requests.find(path="/v1/uploads/abort")
            assert abort.status == 200
            assert not any((storage / "uploads").iterdir())
        assert all(e.body_size < len(data) for e in _media_puts(env))
        # The client still works.
        project = await env.client.projects.create(b"RIFF0000", file_name="b.wav")
        assert _stored(env, project.api_project_id) == b"RIFF0000"


@pytest.mark.parametrize("era", ERAS)
async def test_uploads_never_carry_the_api_key(era: str) -> None:
    async with _env(era) as env:
        await env.client.projects.create(_data(2 * MIB + 1), file_name="a.wav")
        media = [
            e for e in env.emulator.requests if e.path.startswith(("/_storage/", "/v1/uploads/"))
        ]
        assert media
        for entry in media:
            assert all(TEST_API_KEY not in value for _, value in entry.headers), entry
            assert TEST_API_KEY not in entry.query
            assert entry.header("x-api-key") is None and entry.header("xi-api-key") is None


# --- what is not a media file ----------------------------------------------------------------


async def _release_blocked_readers(fifo: Path) -> None:
    """Safety net for a reader stuck opening ``fifo`` (what the SDK must never do): open and
    close its write end, so the reader sees end-of-file instead of hanging the test."""
    while True:
        with contextlib.suppress(OSError):  # ENXIO: nobody is reading
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        await anyio.sleep(0.01)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
async def test_a_fifo_is_refused_before_any_request(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    with pytest.raises(InvalidRequestError, match="not a regular file"):
        MediaSource.from_path(fifo)
    async with _env("a") as env:
        with pytest.raises(InvalidRequestError, match="not a regular file"):
            await env.client.projects.create(fifo)
        assert list(env.emulator.requests) == []


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="needs /dev/null")
def test_a_device_is_refused() -> None:
    with pytest.raises(InvalidRequestError, match="not a regular file"):
        MediaSource.from_path("/dev/null")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("era", ERAS)
async def test_a_file_swapped_for_a_fifo_is_refused_without_blocking(
    era: str, tmp_path: Path
) -> None:
    """The file is checked again when the project is created and when each attempt opens it
    (``O_NONBLOCK`` + ``fstat``): a FIFO swapped in is refused, never read or waited on."""
    path = _write(tmp_path / "talk.wav", _data(1000))
    media = MediaSource.from_path(path)
    path.unlink()
    os.mkfifo(path)
    async with _env(era) as env, anyio.create_task_group() as group:
        group.start_soon(_release_blocked_readers, path)
        with pytest.raises(InvalidRequestError, match="not a regular file"):
            await env.client.projects.create(media)
        assert list(env.emulator.requests) == []
        reader = media.open()
        try:
            with pytest.raises(UploadError, match="not a regular file"):
                await reader.__anext__()
        finally:
            await reader.aclose()
        group.cancel_scope.cancel()


async def test_a_file_that_changed_size_is_refused_before_any_request(tmp_path: Path) -> None:
    path = _write(tmp_path / "talk.wav", _data(1000))
    media = MediaSource.from_path(path)
    path.write_bytes(_data(2000))  # would upload its first 1000 bytes only
    async with _env("a") as env:
        with pytest.raises(InvalidRequestError, match="changed size"):
            await env.client.projects.create(media)
        assert list(env.emulator.requests) == []


@pytest.mark.parametrize("kind", ["path", "bytes", "stream", "media-path"])
async def test_an_empty_source_is_refused_before_any_request(kind: str, tmp_path: Path) -> None:
    source = SOURCES[kind](b"", tmp_path)
    async with _env("b") as env:
        with pytest.raises(InvalidRequestError, match="is empty; nothing to restore"):
            await env.client.projects.create(source, file_name="talk.wav")
        assert list(env.emulator.requests) == []


@pytest.mark.parametrize("path", [None, 5, 1.5, b"talk.wav", ""], ids=repr)
def test_from_path_refuses_what_is_not_a_path(path: Any) -> None:
    with pytest.raises(InvalidRequestError, match="path"):
        MediaSource.from_path(path)


def test_the_other_constructors_refuse_wrong_types() -> None:
    with pytest.raises(InvalidRequestError, match="data"):
        MediaSource.from_bytes("text", file_name="a.wav")  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError, match="factory"):
        MediaSource.from_stream(b"x", size=1, file_name="a.wav")  # type: ignore[arg-type]
    size: Any = "1"
    with pytest.raises(InvalidRequestError, match="size"):
        MediaSource.from_stream(lambda: _never(), size=size, file_name="a.wav")
    with pytest.raises(InvalidRequestError, match="content_type"):
        MediaSource.from_bytes(b"x", file_name="a.wav", content_type=5)  # type: ignore[arg-type]
    # A memoryview of another item size, or a strided one, counts bytes, not items.
    words = memoryview(bytearray(8)).cast("I")
    assert MediaSource.from_bytes(words, file_name="a.wav").size == 8
    strided = memoryview(bytes(range(10)))[::2]
    assert MediaSource.from_bytes(strided, file_name="a.wav").size == 5
