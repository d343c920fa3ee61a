"""Downloads over loopback: atomic writes, URL refresh, resume, not-ready retries, cancellation.

``Generation.download`` streams the signed URL to a temp file beside the target and renames it
into place; an expired URL (403) is replaced by a fresh one and the transfer resumes with
``Range``; any failure or cancellation removes the temp file and leaves the target untouched.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import pytest
from shared import ERAS, FAST, MEDIA, MIB, QUICK_POLL
from virtual_clock import VIRTUAL_BACKENDS, virtual_backend

from diffio_async import (
    APIConnectionError,
    AsyncDiffio,
    ConflictError,
    DownloadError,
    Generation,
    InternalServerError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    TranscriptPendingError,
    TranscriptUnavailableError,
)
from diffio_async._media.download import temp_name, temp_prefix
from diffio_async.testing import EmulatedDiffio, emulated_diffio

pytestmark = pytest.mark.anyio
VIRTUAL = pytest.mark.parametrize("anyio_backend", VIRTUAL_BACKENDS, indirect=True)


def _data(size: int) -> bytes:
    block = hashlib.sha256(b"download").digest() * (MIB // 32)
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += bytes([counter % 251]) + block
        counter += 1
    return bytes(out[:size])


def busy_connections(client: AsyncDiffio) -> list[Any]:
    """Connections of the client's pool that are not idle, plus queued requests (httpcore2)."""
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
async def test_download_right_after_creation_is_refused_at_once_until_the_wait_is_over(
    era: str, tmp_path: Path
) -> None:
    """Virtual time: asked before the handle saw the generation complete, the download says
    "not ready" (409) at once instead of retrying; after ``wait`` it gets the output."""
    data = _data(MIB)
    async with emulated_diffio(era=era, loopback=False) as env:
        project = await env.client.projects.create(data, file_name="talk.wav")
        env.emulator.script_next_generation(duration=12)
        generation = await env.client.generations.create(project, model=_model(env))
        started = anyio.current_time()
        with pytest.raises(ConflictError):
            await generation.download(tmp_path)
        assert anyio.current_time() - started == pytest.approx(0, abs=0.01)
        requests = env.emulator.requests.find(path="/v1/get_generation_download")
        assert [e.status for e in requests] == [409]
        assert _names(tmp_path) == []
        await generation.wait()
        assert (await generation.download(tmp_path)).read_bytes() == data


@VIRTUAL
@pytest.mark.parametrize("era", ERAS)
async def test_downloading_an_unknown_generation_fails_at_once_with_not_found(
    era: str, tmp_path: Path
) -> None:
    """Virtual time: a handle for an id the server does not know sends one
    get_generation_download and raises NotFoundError, without the not-ready patience."""
    async with emulated_diffio(era=era, loopback=False) as env:
        project = await env.client.projects.create(_data(1000), file_name="talk.wav")
        handle = env.client.generations.get("gen-unknown", project_id=project.api_project_id)
        started = anyio.current_time()
        with pytest.raises(NotFoundError):
            await handle.download(tmp_path)
        assert anyio.current_time() - started == pytest.approx(0, abs=0.01)
        requests = env.emulator.requests.find(path="/v1/get_generation_download")
        assert [e.status for e in requests] == [404]
        assert _names(tmp_path) == []


@VIRTUAL
@pytest.mark.parametrize("era", ERAS)
async def test_a_handle_told_the_generation_completed_waits_out_a_late_output(
    era: str, tmp_path: Path
) -> None:
    """Virtual time: ``known_complete=True`` (e.g. a ledger said so) gives a rebuilt handle
    the not-ready patience of a handle that saw the completion itself."""
    data = _data(MIB)
    async with emulated_diffio(era=era, loopback=False) as env:
        done = await _completed(env, data)
        handle = env.client.generations.get(done.id, project_id=done.project_id)
        path = "/v1/get_generation_download"
        env.emulator.add_fault(path=path, status=404, count=2)
        started = anyio.current_time()
        assert (await handle.download(tmp_path, known_complete=True)).read_bytes() == data
        assert [e.status for e in env.emulator.requests.find(path=path)] == [404, 404, 200]
        assert anyio.current_time() - started == pytest.approx(1.5, abs=0.1)


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


# --- temp names ------------------------------------------------------------------------------

LONG_NAMES = {
    "ascii": "a" * 246 + ".mp3",  # 250 bytes
    "multibyte": "é" + "音声" * 41 + "ab.mp3",  # 2 + 246 + 6 = 254 bytes (2- and 3-byte chars)
}


@pytest.mark.parametrize("kind", list(LONG_NAMES))
async def test_a_target_name_near_the_255_byte_limit_downloads_through_a_short_temp_name(
    env: EmulatedDiffio, tmp_path: Path, kind: str
) -> None:
    """The temp file beside a 250-byte target name is short (``.<hash>.<head>.<token>.part``),
    where ``.<name>.<token>.part`` was too long for the file system (after billing)."""
    name = LONG_NAMES[kind]
    assert 250 <= len(name.encode()) <= 255
    data = _data(2 * MIB + 17)
    generation = await _completed(env, data)
    target = tmp_path / name
    temps: list[str] = []

    def look(done: int, total: int) -> None:
        temps.extend(n for n in _names(tmp_path) if n not in temps)

    assert await generation.download(target, on_progress=look) == target
    assert target.read_bytes() == data
    assert temps, "the temp file was seen while bytes arrived"
    for temp in temps:
        assert temp.startswith(temp_prefix(target)) and temp.endswith(".part")
        assert len(temp.encode()) <= 80
    assert _names(tmp_path) == [name]


def test_temp_prefixes_are_short_cut_on_characters_and_never_shared() -> None:
    folder = Path("/data/out")
    a, b = folder / ("x" * 200 + "a.mp3"), folder / ("x" * 200 + "b.mp3")
    assert temp_prefix(a) != temp_prefix(b)
    for target, other in ((a, b), (b, a)):
        name = temp_name(target)
        assert name.startswith(temp_prefix(target)) and name.endswith(".part")
        assert not name.startswith(temp_prefix(other))
        assert not temp_prefix(other).startswith(temp_prefix(target))
        assert temp_name(target) != name  # a fresh random token each time
    # A short name's temps are not matched by a longer name that begins like it, and back.
    short, longer = folder / "talk.mp3", folder / "talk.mp3.mp3"
    assert not temp_name(longer).startswith(temp_prefix(short))
    assert not temp_name(short).startswith(temp_prefix(longer))
    # Multi-byte names are cut between characters: the head is whole characters, <= 40 bytes.
    for name in ("音" * 100, "é" * 100, "a" + "🎵" * 60, "a" * 39 + "音" * 10):
        prefix = temp_prefix(folder / name)
        _, digest, head, _ = prefix.split(".")
        assert len(digest) == 16 and name.startswith(head)
        assert 37 <= len(head.encode()) <= 40
        assert len(temp_name(folder / name).encode()) <= 76


# --- compressed media ------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def gzip_media_server(body: bytes, *, length: bool) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A tiny HTTP server on loopback that answers every GET with ``body`` gzipped (with
    ``Content-Encoding: gzip``, and a ``Content-Length`` or not); yields its URL and the
    request heads it received."""
    compressed = gzip.compress(body)
    heads: list[bytes] = []

    async def answer(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            try:
                received = b""
                while b"\r\n\r\n" not in received:
                    received += await stream.receive()
                heads.append(received.partition(b"\r\n\r\n")[0])
                head = b"HTTP/1.1 200 OK\r\nContent-Type: audio/mpeg\r\nContent-Encoding: gzip\r\n"
                head += b"Content-Length: %d\r\n" % len(compressed) if length else b""
                await stream.send(head + b"Connection: close\r\n\r\n" + compressed)
            except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass  # the client hung up: it may refuse the answer after its head

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as group:
        group.start_soon(listener.serve, answer)
        yield f"http://127.0.0.1:{port}", heads
        group.cancel_scope.cancel()


@pytest.mark.parametrize("length", [True, False], ids=["content-length", "until-close"])
async def test_a_compressed_media_answer_is_refused_and_leaves_no_file(
    env: EmulatedDiffio, tmp_path: Path, length: bool
) -> None:
    """A media answer with ``Content-Encoding: gzip`` (despite ``Accept-Encoding: identity``)
    raises DownloadError before anything is inflated to disk; no file is left."""
    generation = await _completed(env, _data(1000))
    async with gzip_media_server(_data(4 * MIB), length=length) as (url, heads):
        info = {
            "generationId": generation.id,
            "apiProjectId": generation.project_id,
            "downloadType": "audio",
            "downloadUrl": f"{url}/m/tok/out.mp3?download=out.mp3",
            "fileName": "out.mp3",
        }
        env.emulator.add_fault(path="/v1/get_generation_download", status=200, body=info)
        with pytest.raises(DownloadError, match="Content-Encoding: 'gzip'") as caught:
            await generation.download(tmp_path)
    assert caught.value.generation_id == generation.id
    assert "tok" not in str(caught.value) and url not in str(caught.value)
    assert len(heads) == 1  # refused, not retried
    assert b"accept-encoding: identity" in heads[0].lower()
    assert _names(tmp_path) == []


# --- arguments -------------------------------------------------------------------------------


async def test_bad_download_arguments_are_refused_before_any_request(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    generation = await _completed(env, _data(1000))
    cases: list[tuple[dict[str, Any], str]] = [
        ({"dest": None}, "dest"),
        ({"dest": 5}, "dest"),
        ({"dest": b"out.mp3"}, "dest"),
        ({"dest": ""}, "dest"),
        ({"dest": tmp_path / "missing" / "out.mp3"}, "dest"),
        ({"dest": tmp_path / ("x" * 300)}, "dest"),
        ({"not_ready_patience": float("nan")}, "not_ready_patience"),
        ({"not_ready_patience": -1}, "not_ready_patience"),
        ({"not_ready_patience": "30"}, "not_ready_patience"),
        ({"not_ready_patience": None}, "not_ready_patience"),
        ({"on_progress": 5}, "on_progress"),
        ({"transfer_limiter": 4}, "transfer_limiter"),
        ({"known_complete": "yes"}, "known_complete"),
        ({"download_type": "wav"}, "download_type"),
    ]
    for arguments, name in cases:
        call = {"dest": tmp_path, **arguments}
        with pytest.raises(InvalidRequestError, match=name):
            await generation.download(**call)
    assert env.emulator.requests.find(path="/v1/get_generation_download") == []
    assert _names(tmp_path) == []


class _ListSink:
    """A sink in memory that says when it was opened, written and closed."""

    def __init__(self, events: list[str]) -> None:
        self.data = bytearray()
        self.events = events

    async def write(self, data: bytes) -> None:
        self.data += data

    async def restart(self) -> None:
        self.events.append("restart")
        self.data.clear()


async def test_download_to_sink_streams_resumes_and_names_the_sink_for_what_was_served(
    env: EmulatedDiffio,
) -> None:
    data = _data(3 * MIB)
    generation = await _completed(env, data)
    env.emulator.add_fault(path=MEDIA[env.emulator.era], method="GET", truncate=True, count=1)
    events: list[str] = []
    sinks: list[_ListSink] = []

    @contextlib.asynccontextmanager
    async def open_sink(info: Any) -> AsyncIterator[_ListSink]:
        events.append(f"open {info.download_type}")
        sink = _ListSink(events)
        sinks.append(sink)
        try:
            yield sink
        except BaseException:
            events.append("discard")
            raise
        events.append("commit")

    info = await generation._download_to_sink(open_sink)
    assert info is generation.last_download and info.download_type == "audio"
    assert events == ["open audio", "commit"]
    assert bytes(sinks[0].data) == data
    assert [e.header("range") for e in _media_gets(env)] == [None, f"bytes={len(data) // 2}-"]

    env.emulator.add_fault(path=MEDIA[env.emulator.era], method="GET", status=500, count=None)
    events.clear()
    with pytest.raises(InternalServerError):
        await generation._download_to_sink(open_sink)
    assert events == ["open audio", "discard"]
