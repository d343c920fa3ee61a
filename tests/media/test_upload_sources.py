"""Uploads from where users' bytes are: file objects (sync and async), async iterators, and
streams whose factory hands out one shared handle, over loopback in both eras.

A seekable file is read at any offset (era-B parts in parallel); anything else is read once,
in order: era B sends its parts one after the other and re-sends a failed part from the copy
kept of that part; era A cannot re-send it once bytes went out.
"""

from __future__ import annotations

import io
import tempfile
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from shared import ERAS, MIB
from starlette.datastructures import Headers, UploadFile
from test_upload import _data, _env, _media_puts, _stored

from diffio_async import InvalidRequestError, MediaSource, UploadError

pytestmark = pytest.mark.anyio


class AsyncReader:
    """An async ``read(n)`` (like ``anyio.AsyncFile``) that cannot seek; checks that no two
    reads overlap and records where each read started."""

    def __init__(self, data: bytes, *, chunk: int | None = None) -> None:
        self._data = data
        self._chunk = chunk
        self.position = 0
        self.starts: list[int] = []
        self._reading = False

    async def read(self, size: int = -1) -> bytes:
        assert not self._reading, "two reads at once"
        self._reading = True
        self.starts.append(self.position)
        try:
            await anyio.lowlevel.checkpoint()
            size = self._chunk or size
            data = self._data[self.position : self.position + size]
            self.position += len(data)
            return data
        finally:
            self._reading = False


class ChunkReader(AsyncReader):
    """Like an aiohttp ``BodyPartReader``: ``read()`` would read everything, ``read_chunk(n)``
    reads a chunk; the name and type come from its headers."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.filename = "field.wav"
        self.headers = {"Content-Type": "audio/wav"}

    async def read(self, size: int = -1) -> bytes:  # the whole part: must not be used
        raise AssertionError("read() of a multipart field reads the whole part")

    async def read_chunk(self, size: int = 8192) -> bytes:
        return await super().read(size)


class Unseekable(io.RawIOBase):
    """A sync binary stream that cannot seek (a pipe, a socket file); records the threads
    its reads ran in."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.threads: set[int] = set()
        self.name = "/somewhere/pipe.wav"

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self.threads.add(threading.get_ident())
        return self._data.readinto(buffer)


def _spooled(data: bytes, max_size: int) -> Any:
    spooled = tempfile.SpooledTemporaryFile(max_size=max_size)  # noqa: SIM115 - the test closes it
    spooled.write(data)
    spooled.seek(0)
    return spooled


def _upload_file(data: bytes) -> UploadFile:
    return UploadFile(
        _spooled(data, MIB),
        filename="from-form.wav",
        headers=Headers({"content-type": "audio/wav"}),
    )


async def _chunks(data: bytes, chunk: int = 300_000) -> AsyncIterator[bytes]:
    for start in range(0, len(data), chunk):
        await anyio.lowlevel.checkpoint()
        yield data[start : start + chunk]


# kind -> (build(data, tmp) -> source, file name the project gets, content type it gets)
KINDS: dict[str, tuple[Any, str, str]] = {
    "bytesio": (lambda d, t: io.BytesIO(d), "talk.wav", "audio/x-wav"),
    "open-file": (lambda d, t: _opened(t / "disk.wav", d), "disk.wav", "audio/x-wav"),
    "spooled-memory": (lambda d, t: _spooled(d, 64 * MIB), "talk.wav", "audio/x-wav"),
    "spooled-disk": (lambda d, t: _spooled(d, 1024), "talk.wav", "audio/x-wav"),
    "upload-file": (lambda d, t: _upload_file(d), "from-form.wav", "audio/wav"),
    "unseekable": (
        lambda d, t: MediaSource.from_file(Unseekable(d), size=len(d)),
        "pipe.wav",
        "audio/x-wav",
    ),
    "async-read": (
        lambda d, t: MediaSource.from_file(AsyncReader(d), size=len(d), file_name="talk.wav"),
        "talk.wav",
        "audio/x-wav",
    ),
    "async-read-chunk": (
        lambda d, t: MediaSource.from_file(ChunkReader(d), size=len(d)),
        "field.wav",
        "audio/wav",
    ),
    "async-iterable": (
        lambda d, t: MediaSource.from_async_iterable(_chunks(d), size=len(d), file_name="i.wav"),
        "i.wav",
        "audio/x-wav",
    ),
}


def _opened(path: Path, data: bytes) -> Any:
    path.write_bytes(data)
    return path.open("rb")


@pytest.mark.parametrize("era", ERAS)
@pytest.mark.parametrize("kind", list(KINDS))
async def test_every_file_object_uploads_its_exact_bytes(
    era: str, kind: str, tmp_path: Path
) -> None:
    data = _data(3 * MIB + 4321)
    build, name, content_type = KINDS[kind]
    source = build(data, tmp_path)
    async with _env(era) as env:
        # a name the object does not carry is given the way restore() callers give it
        file_name = "talk.wav" if kind in ("bytesio", "spooled-memory", "spooled-disk") else None
        project = await env.client.projects.create(source, file_name=file_name)
        assert _stored(env, project.api_project_id) == data
        create = env.emulator.requests.find(path="/v1/create_project")[0].json
        assert (create["fileName"], create["contentType"]) == (name, content_type)
        assert create["contentLength"] == len(data)
        puts = _media_puts(env)
        assert sum(e.body_size for e in puts) == len(data)
        assert all(int(e.header("content-length") or -1) == e.body_size for e in puts)
        if era == "b":
            assert sorted(int(e.path.rsplit("/", 1)[1]) for e in puts) == [1, 2, 3, 4]
    if not isinstance(source, MediaSource):
        handle = source.file if kind == "upload-file" else source
        assert not handle.closed  # the caller's object stays the caller's to close
        handle.close()


async def test_restore_takes_a_file_object_directly(tmp_path: Path) -> None:
    data = _data(MIB + 5)
    upload = _upload_file(data)
    async with _env("b") as env:
        result = await env.client.restore(upload, output=tmp_path)
        await upload.close()
        assert _stored(env, result.project_id) == data
        create = env.emulator.requests.find(path="/v1/create_project")[0].json
        assert create["fileName"] == "from-form.wav"


@pytest.mark.parametrize("era", ERAS)
async def test_a_file_object_uploads_from_its_current_position(era: str) -> None:
    data = _data(2 * MIB + 1)
    buffer = io.BytesIO(b"header to skip" + data)
    buffer.seek(len(b"header to skip"))
    async with _env(era) as env:
        project = await env.client.projects.create(buffer, file_name="a.wav")
        assert _stored(env, project.api_project_id) == data


async def test_sync_reads_of_a_real_file_run_in_worker_threads() -> None:
    data = _data(2 * MIB)
    stream = Unseekable(data)
    async with _env("a") as env:
        project = await env.client.projects.create(MediaSource.from_file(stream, size=len(data)))
        assert _stored(env, project.api_project_id) == data
    assert stream.threads and threading.get_ident() not in stream.threads


@pytest.mark.parametrize("failure", ["503", "drop"])
async def test_a_once_only_source_goes_part_by_part_and_a_failed_part_is_resent_from_its_copy(
    failure: str,
) -> None:
    """Era B: the source is read once, never two reads at once, never more than one part
    ahead of what was sent; part 2 fails once and is re-sent without reading the source."""
    data = _data(4 * MIB + 17)
    reader = AsyncReader(data, chunk=200_000)
    sent: list[int] = []
    ahead: list[int] = []

    def progress(done: int, total: int) -> None:
        sent.append(done)

    original_read = reader.read

    async def read(size: int = -1) -> bytes:
        ahead.append(reader.position - (sent[-1] if sent else 0))
        return await original_read(size)

    reader.read = read  # type: ignore[method-assign]
    source = MediaSource.from_file(reader, size=len(data), file_name="talk.wav")
    fault: dict[str, Any] = {"status": 503} if failure == "503" else {"drop": True}
    async with _env("b") as env:
        env.emulator.add_fault(path="/v1/uploads/parts/2", method="PUT", **fault)
        project = await env.client.projects.create(source, on_progress=progress)
        assert _stored(env, project.api_project_id) == data
        numbers = [int(e.path.rsplit("/", 1)[1]) for e in _media_puts(env)]
        assert numbers == [1, 2, 2, 3, 4, 5]  # in order, part 2 twice
        assert all(e.body_size == MIB for e in _media_puts(env)[:5])
    # every byte read once (plus the check that nothing follows), in order
    assert reader.starts == sorted(reader.starts) and len(set(reader.starts)) == len(reader.starts)
    assert reader.position == len(data)
    assert max(ahead) <= MIB  # never read more than one part ahead of what was sent
    assert sent[-1] == len(data)


async def test_era_a_cannot_resend_a_once_only_source_and_says_so() -> None:
    data = _data(2 * MIB)
    source = MediaSource.from_async_iterable(_chunks(data), size=len(data), file_name="a.wav")
    async with _env("a") as env:
        env.emulator.add_fault(path="/_storage/*", method="PUT", status=503)
        with pytest.raises(UploadError, match="can be read only once") as info:
            await env.client.projects.create(source)
        assert info.value.project_id == env.emulator.project_ids[0]
        assert [e.status for e in _media_puts(env)] == [503]


@pytest.mark.parametrize("era", ERAS)
async def test_from_stream_over_one_shared_handle_completes(era: str, tmp_path: Path) -> None:
    """Issue 9: a factory that returns the same open file each call (parts used to call it
    concurrently and fail with "the stream for big.wav ended after ...")."""
    data = _data(5 * MIB + 3)
    path = tmp_path / "big.wav"
    path.write_bytes(data)
    with path.open("rb") as shared:

        async def chunks() -> AsyncIterator[bytes]:
            while chunk := await anyio.to_thread.run_sync(shared.read, 300_000):
                yield chunk

        source = MediaSource.from_stream(chunks, size=len(data), file_name="big.wav")
        async with _env(era) as env:
            project = await env.client.projects.create(source, part_concurrency=4)
            assert _stored(env, project.api_project_id) == data
            if era == "b":
                assert len(_media_puts(env)) == 6


def test_only_sources_that_cannot_seek_are_read_in_order(tmp_path: Path) -> None:
    """Seekable ones keep parallel era-B parts (any offset at any time)."""
    data = b"RIFF" * 100
    in_order = {kind: build(data, tmp_path) for kind, (build, _, _) in KINDS.items()}
    seekable = {"bytesio", "open-file", "spooled-memory", "spooled-disk", "upload-file"}
    for kind, source in in_order.items():
        media = MediaSource.from_file(source, file_name="a.wav") if kind in seekable else source
        assert media.in_order is (kind not in seekable), kind
        if kind in seekable:
            (source.file if kind == "upload-file" else source).close()
    assert MediaSource.from_stream(lambda: _chunks(data), size=400, file_name="a.wav").in_order


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (lambda: io.BytesIO(b"RIFF"), "has no file name: pass file_name="),
        (lambda: Unseekable(b"RIFF"), "size of this Unseekable is unknown"),
        (lambda: io.StringIO("RIFF"), "text file: open it in binary mode"),
        (lambda: _chunks(b"RIFF"), "MediaSource.from_async_iterable"),
        (lambda: _at_end(b"RIFF"), r"is empty; nothing to restore \(it is at position 4"),
        (lambda: object(), "readable binary file object"),
    ],
    ids=["no-name", "no-size", "text", "async-iterator", "at-end", "not-a-file"],
)
async def test_what_cannot_be_uploaded_is_refused_before_any_request(
    source: Any, message: str
) -> None:
    async with _env("a") as env:
        with pytest.raises(InvalidRequestError, match=message):
            await env.client.projects.create(source())
        assert list(env.emulator.requests) == []


class _Named(io.BytesIO):
    name = "x.wav"


def _at_end(data: bytes) -> Any:
    written = _Named()
    written.write(data)  # and not rewound
    return written


def test_a_declared_size_must_match_a_seekable_file() -> None:
    with pytest.raises(InvalidRequestError, match="size=5 but this BytesIO holds 4 bytes"):
        MediaSource.from_file(io.BytesIO(b"RIFF"), size=5, file_name="a.wav")


@pytest.mark.parametrize("extra", [1, 0], ids=["longer", "shorter"])
@pytest.mark.parametrize("era", ERAS)
async def test_a_stream_not_of_its_declared_size_fails(era: str, extra: int) -> None:
    data = _data(MIB + 10)
    size = len(data) - extra if extra else len(data) + 10
    source = MediaSource.from_async_iterable(_chunks(data), size=size, file_name="a.wav")
    async with _env(era) as env:
        with pytest.raises(UploadError, match="more than its declared" if extra else "ended"):
            await env.client.projects.create(source)
        assert env.emulator.requests.find(path="/v1/complete_project_upload") == []


async def test_the_iterator_is_closed_once_spent() -> None:
    closed: list[bool] = []

    async def chunks() -> AsyncIterator[bytes]:
        try:
            yield b"RIFF" * 1000
        finally:
            closed.append(True)

    source = MediaSource.from_async_iterable(chunks(), size=4000, file_name="a.wav")
    async with _env("b") as env:
        await env.client.projects.create(source)
    assert closed == [True]


# --- review of issue 9 ---------------------------------------------------------------------------


def _text_named_temporary() -> Any:
    handle = tempfile.NamedTemporaryFile("w+", suffix=".wav")  # noqa: SIM115 - closed below
    handle.write("RIFF" * 1000)
    handle.seek(0)
    return handle


def _text_spooled() -> Any:
    handle = tempfile.SpooledTemporaryFile(mode="w+")  # noqa: SIM115 - closed below
    handle.write("RIFF" * 1000)
    handle.seek(0)
    return handle


@pytest.mark.parametrize("era", ERAS)
@pytest.mark.parametrize(
    "build", [_text_named_temporary, _text_spooled], ids=["named-temporary", "spooled"]
)
async def test_a_text_mode_file_object_is_refused_before_any_request(era: str, build: Any) -> None:
    """FAILS (review of issue 9): only ``io.TextIOBase`` instances are recognised as text
    files; ``tempfile``'s wrappers opened in ``"w+"`` are not, so a project is created (and in
    era B an upload session started and aborted) before ``read()`` returns ``str`` and the
    upload fails with UploadError."""
    handle = build()
    try:
        async with _env(era) as env:
            with pytest.raises(InvalidRequestError, match="binary mode"):
                await env.client.projects.create(handle, file_name="a.wav")
            assert list(env.emulator.requests) == []
    finally:
        handle.close()


class _Greedy(io.BytesIO):
    """A seekable binary file whose ``read(n)`` returns a few bytes more than asked (a file
    wrapper with its own buffering)."""

    name = "greedy.wav"

    def read(self, size: int | None = -1) -> bytes:
        return super().read(size if size is None or size < 0 else size + 7)


async def test_a_seekable_file_that_reads_more_than_asked_still_sends_exact_parts() -> None:
    """FAILS (review of issue 9): a random-access read is not cut to the length asked for, so
    an era-B part gets more bytes than its Content-Length and the upload dies with httpx2's
    raw ``LocalProtocolError`` ("Too much data for declared Content-Length"), not even a
    DiffioError (``restore`` would not wrap it in RestoreError)."""
    data = _data(2 * MIB + 3)
    async with _env("b") as env:
        project = await env.client.projects.create(_Greedy(data))
        assert _stored(env, project.api_project_id) == data


@pytest.mark.parametrize("era", ERAS)
async def test_the_iterator_is_closed_when_the_upload_fails(era: str) -> None:
    """FAILS in era B (review of issue 9): when a part is refused, the caller's async iterator
    is left open for the garbage collector (``InOrderReader.stream`` closes its source only on
    its own UploadError, not when the pass is closed by a failure elsewhere); era A closes it."""
    closed: list[bool] = []

    async def chunks() -> AsyncIterator[bytes]:
        try:
            for _ in range(4):
                await anyio.lowlevel.checkpoint()
                yield bytes(MIB)
        finally:
            closed.append(True)

    source = MediaSource.from_async_iterable(chunks(), size=4 * MIB, file_name="a.wav")
    async with _env(era) as env:
        refused = "/v1/uploads/parts/2" if era == "b" else "/_storage/*"
        env.emulator.add_fault(path=refused, method="PUT", status=400)
        with pytest.raises(UploadError):
            await env.client.projects.create(source)
        assert closed == [True]


async def test_the_iterator_is_closed_when_the_era_b_upload_is_cancelled() -> None:
    closed: list[bool] = []
    async with _env("b") as env:
        with anyio.CancelScope() as scope:

            async def chunks() -> AsyncIterator[bytes]:
                try:
                    for number in range(4):
                        await anyio.lowlevel.checkpoint()
                        if number == 2:  # cancelled half-way, while this waits at its yield
                            scope.cancel()
                        yield bytes(MIB)
                finally:
                    closed.append(True)

            source = MediaSource.from_async_iterable(chunks(), size=4 * MIB, file_name="a.wav")
            await env.client.projects.create(source)
        assert scope.cancelled_caught
        assert closed == [True]


class _NoBytesReady(io.RawIOBase):
    """A non-blocking pipe with nothing to read yet: ``read(n)`` returns ``None``."""

    name = "pipe.wav"

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> None:
        return None


async def _text_chunks() -> AsyncIterator[Any]:
    yield "RIFF" * 1000


@pytest.mark.parametrize("era", ERAS)
@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: MediaSource.from_file(_NoBytesReady(), size=4000),
            r"read\(\) returned None \(a non-blocking file",
        ),
        (
            lambda: MediaSource.from_async_iterable(_text_chunks(), size=4000, file_name="a.wav"),
            "the async iterable yielded a str, not bytes",
        ),
    ],
    ids=["read-gives-none", "iterator-yields-str"],
)
async def test_a_source_giving_no_bytes_fails_saying_what_it_gave(
    era: str, build: Any, message: str
) -> None:
    async with _env(era) as env:
        with pytest.raises(UploadError, match=message) as info:
            await env.client.projects.create(build())
        assert "'rb'" not in str(info.value)


class _Growing(io.BytesIO):
    """A seekable file another writer appends to once the upload has started."""

    name = "growing.wav"

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.grown = False

    def read(self, size: int | None = -1) -> bytes:
        if size and not self.grown:
            self.grown, position = True, self.tell()
            self.seek(0, io.SEEK_END)
            self.write(b"more")
            self.seek(position)
        return super().read(size)


@pytest.mark.parametrize("era", ERAS)
async def test_a_seekable_file_that_grows_during_the_upload_fails(era: str) -> None:
    data = _data(2 * MIB + 3)
    async with _env(era) as env:
        with pytest.raises(UploadError, match=r"changed size .*\(2097155 bytes when chosen"):
            await env.client.projects.create(_Growing(data))
        assert env.emulator.requests.find(path="/v1/complete_project_upload") == []


async def test_a_file_opened_for_writing_only_is_refused_before_any_request(
    tmp_path: Path,
) -> None:
    with (tmp_path / "w.wav").open("wb") as handle:
        handle.write(b"RIFF" * 1000)
        async with _env("b") as env:
            with pytest.raises(InvalidRequestError, match="cannot read this BufferedWriter"):
                await env.client.projects.create(handle)
            assert list(env.emulator.requests) == []


# --- second review of issue 9 --------------------------------------------------------------------


class _SeekableNoSizeRead(io.BytesIO):
    """A seekable file object whose ``read`` takes no size (some hand-written wrappers)."""

    name = "a.wav"

    def read(self) -> bytes:  # type: ignore[override]
        return super().read()


class _SeekableBrokenRead(io.BytesIO):
    """A seekable file object whose ``read`` fails with something not an OSError (a device
    wrapper raising its own error)."""

    name = "a.wav"

    def read(self, size: int | None = -1) -> bytes:
        raise RuntimeError("device gone")


@pytest.mark.parametrize("kind", [_SeekableNoSizeRead, _SeekableBrokenRead])
async def test_a_file_object_whose_probe_read_fails_oddly_is_refused_clearly(kind: Any) -> None:
    """Second review of issue 9: the ``read(0)`` probe turns only OSError/ValueError into
    InvalidRequestError; a ``read`` that takes no size (TypeError) or raises its own error
    escapes ``projects.create``/``restore`` raw (not a DiffioError) instead of the clear
    refusal before any request that bad input gets."""
    async with _env("b") as env:
        with pytest.raises(InvalidRequestError, match="cannot read"):
            await env.client.projects.create(kind(b"RIFF" + bytes(100)))
        assert list(env.emulator.requests) == []
