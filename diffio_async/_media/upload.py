"""Media uploads: what can be uploaded (:class:`MediaSource`) and both upload protocols.

Era A answers ``create_project`` with a signed ``uploadUrl``: one PUT of the whole file.
Era B answers with an edge ``upload`` session: ``start``, parts of ``partSizeBytes`` sent in
parallel, ``complete``, then ``complete_project_upload``. Both stream the source in 1 MiB
chunks with an explicit ``Content-Length`` (never chunked encoding); each attempt re-opens the
source, so a retry sends the full body again. Neither ever sends the API key.

A source read in order (a stream, a file object that cannot seek, an async iterator) is read
once from start to end: era-B parts are cut from that one pass one after the other, and the
part in flight is kept in memory so a retry re-sends it from there (memory stays about one
part). Era A re-opens it for a retry (``from_stream``'s factory) or, when it can be read only
once, fails with :class:`UploadError` once bytes were sent (before sending the doomed retry).

A file source must be a regular file: FIFOs, devices and sockets are refused, and each open
(``O_NONBLOCK``, then ``fstat`` on the open descriptor) checks again, so a file swapped for a
FIFO is refused rather than read, and no read can block uncancellably. Every reader opened for
an attempt is closed by that attempt's owner (never left to the garbage collector).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import mimetypes
import os
import stat
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeAlias

import anyio
import attrs

from .._convert import structure, unstructure
from ..errors import APIError, DiffioError, InvalidRequestError, UploadError
from ..types import (
    CreateProjectResponse,
    EdgeAbortRequest,
    EdgeCompleteRequest,
    EdgePartReceipt,
    EdgeUploadStart,
    UploadSession,
)
from .file_objects import (
    AsyncChunkReader,
    AsyncReader,
    InOrderReader,
    describe_file_object,
    is_file_object,
    iterable_reader,
)

if TYPE_CHECKING:
    from .._http.transport import Transport

__all__ = [
    "CHUNK_SIZE",
    "MAX_UPLOAD_BYTES",
    "MediaSource",
    "ProgressCallback",
    "UploadSource",
    "closing_shielded",
    "upload_media",
]

CHUNK_SIZE = 1024 * 1024
"""Bytes read from a source (and written to a download) at a time."""

MAX_UPLOAD_BYTES = 2 * 1024**3
"""The largest upload the API accepts (2 GiB), checked before a project is created."""

ProgressCallback = Callable[[int, int], object]
"""``callback(done_bytes, total_bytes)``; may be sync or async."""

_Opener = Callable[[int, int], AsyncIterator[bytes]]

_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)  # a FIFO swapped in cannot block the open (or a read)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_BINARY", 0)
)


def _require_regular(
    file: Path, info: os.stat_result, error: type[DiffioError], *, size: int | None = None
) -> None:
    if stat.S_ISDIR(info.st_mode):
        raise error(f"{file} is a directory, not a media file")
    if not stat.S_ISREG(info.st_mode):
        raise error(f"{file} is not a regular file (a FIFO, device or socket); cannot upload it")
    if size is not None and info.st_size != size:
        raise error(f"{file} changed size ({size} bytes when chosen, {info.st_size} now)")


def _open_regular(file: Path, error: type[DiffioError], *, size: int | None = None) -> int:
    """Open ``file`` for reading without blocking and check the open descriptor is a regular
    file (of ``size`` bytes when given); return the descriptor. Raises ``error``."""
    try:
        info = os.stat(file)
    except FileNotFoundError:
        raise error(f"no such file: {file}") from None
    except OSError as exc:
        raise error(f"cannot read {file}: {exc.strerror}") from None
    _require_regular(file, info, error, size=size)  # before open: opening a device can act
    try:
        fd = os.open(file, _OPEN_FLAGS)
    except PermissionError:
        raise error(f"cannot read {file}: permission denied") from None
    except OSError as exc:
        raise error(f"cannot read {file}: {exc.strerror}") from None
    try:
        _require_regular(file, os.fstat(fd), error, size=size)  # it may have been swapped
    except BaseException:
        os.close(fd)
        raise
    return fd


def _probe_regular(file: Path, error: type[DiffioError], *, size: int | None = None) -> int:
    """Check ``file`` as :func:`_open_regular` does and return its size."""
    fd = _open_regular(file, error, size=size)
    try:
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


def _reader(fd: int) -> IO[bytes]:
    try:
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


@contextlib.asynccontextmanager
async def closing_shielded(generator: object) -> AsyncIterator[None]:
    """Close ``generator`` (anything with ``aclose``) on exit, even when cancelled."""
    try:
        yield
    finally:
        await _aclose(generator)


@attrs.frozen(kw_only=True)
class MediaSource:
    """Something to upload: its name, size and content type are known before any request.

    Build one with :meth:`from_path`, :meth:`from_bytes`, :meth:`from_file`,
    :meth:`from_stream` or :meth:`from_async_iterable`; ``client.restore`` and
    ``client.projects.create`` also accept a path, bytes or a file object directly.
    ``in_order`` is true for a source read from start to end in one pass (never two ranges
    at once), which an era-B upload sends one part after the other.
    """

    file_name: str
    size: int
    content_type: str
    in_order: bool = False
    _opener: _Opener = attrs.field(alias="opener", repr=False)
    _verify: Callable[[], None] | None = attrs.field(
        default=None, alias="verify", repr=False, eq=False
    )
    """Checks, just before a project is created, that the source is still what it was (a file
    source: still a regular file of the same size); raises :class:`InvalidRequestError`."""
    _check_start: Callable[[int], None] | None = attrs.field(
        default=None, alias="check_start", repr=False, eq=False
    )
    """Checks, before a request is sent, that a once-only source can still be read from an
    offset (not already read past it); raises :class:`UploadError`."""

    @classmethod
    def from_path(
        cls, path: str | os.PathLike[str], *, content_type: str | None = None
    ) -> MediaSource:
        """A regular file on disk; raises :class:`InvalidRequestError` if it is not one (a
        folder, FIFO, device or socket) or cannot be read."""
        if not isinstance(path, str | os.PathLike):
            raise InvalidRequestError(
                f"path must be a str or os.PathLike, not {type(path).__name__}"
            )
        raw = os.fspath(path)
        if not isinstance(raw, str) or not raw or "\0" in raw:
            raise InvalidRequestError("path must be a non-empty str path")
        file = Path(raw)
        _check_content_type(content_type)
        size = _probe_regular(file, InvalidRequestError)

        async def opener(offset: int, length: int) -> AsyncIterator[bytes]:
            with anyio.CancelScope(shield=True):  # the descriptor is closed even when cancelled
                fd = await anyio.to_thread.run_sync(
                    lambda: _open_regular(file, UploadError, size=size)
                )
            handle = anyio.wrap_file(_reader(fd))
            try:
                await handle.seek(offset)
                remaining = length
                while remaining > 0:
                    try:
                        chunk = await handle.read(min(CHUNK_SIZE, remaining))
                    except OSError as exc:
                        raise UploadError(f"cannot read {file}: {exc.strerror}") from None
                    if not chunk:
                        raise UploadError(f"{file} shrank while it was being uploaded")
                    remaining -= len(chunk)
                    yield chunk
            finally:
                with anyio.CancelScope(shield=True):  # closes even when cancelled
                    await handle.aclose()

        def verify() -> None:
            _probe_regular(file, InvalidRequestError, size=size)

        return cls(
            file_name=file.name,
            size=size,
            content_type=content_type or _guess_type(file.name),
            opener=opener,
            verify=verify,
        )

    @classmethod
    def from_bytes(
        cls, data: bytes, *, file_name: str, content_type: str | None = None
    ) -> MediaSource:
        """Bytes already in memory."""
        if not isinstance(data, bytes | bytearray | memoryview):
            raise InvalidRequestError(f"data must be bytes, not {type(data).__name__}")
        _check_content_type(content_type)
        view = memoryview(data)
        if view.ndim != 1 or view.itemsize != 1 or not view.c_contiguous:
            view = memoryview(view.tobytes())  # count (and slice) bytes, not items

        async def opener(offset: int, length: int) -> AsyncIterator[bytes]:
            for start in range(offset, offset + length, CHUNK_SIZE):
                yield bytes(view[start : min(start + CHUNK_SIZE, offset + length)])

        return cls(
            file_name=_check_name(file_name),
            size=len(view),
            content_type=content_type or _guess_type(file_name),
            opener=opener,
        )

    @classmethod
    def from_stream(
        cls,
        factory: Callable[[], AsyncIterable[bytes]],
        *,
        size: int,
        file_name: str,
        content_type: str | None = None,
    ) -> MediaSource:
        """A caller's stream of known ``size``, from a factory that starts it afresh.

        The factory contract: ``factory()`` is called once per upload, and the stream it
        returns is read from start to end, in order; era-B parts are cut from that one pass,
        never read concurrently, and a part that must be re-sent is re-sent from a copy of
        that part kept in memory (so memory stays about one part, 32 MiB on the live API).
        ``factory()`` is called again only to re-send a whole era-A upload (one request) after
        a failure; that call must return a new stream of the same bytes from byte 0. A factory
        that returns the same underlying handle each time (one open file, socket or generator)
        is therefore fine until such a re-send, which then fails with
        :class:`~diffio_async.UploadError` ("ended after N bytes") rather than sending other
        bytes. A stream that yields more than ``size`` bytes also fails the upload. For a
        stream that can be read only once, use :meth:`from_async_iterable`.
        """
        if not callable(factory):
            raise InvalidRequestError(f"factory must be callable, not {type(factory).__name__}")
        _check_size(size)
        _check_content_type(content_type)

        async def opener(offset: int, length: int) -> AsyncIterator[bytes]:
            position = 0
            end = offset + length
            stream = factory()
            try:
                async for chunk in stream:
                    chunk_end = position + len(chunk)
                    if chunk_end > offset and position < end:
                        yield bytes(
                            chunk[max(0, offset - position) : min(len(chunk), end - position)]
                        )
                    position = chunk_end
                    if position >= end:
                        break
                if position > size or (end == size and await _has_more(stream)):
                    raise UploadError(
                        f"the stream for {file_name} has more than its declared {size} bytes"
                    )
            finally:
                await _aclose(stream)  # the caller's generator runs its cleanup now
            if position < end:
                raise UploadError(f"the stream for {file_name} ended after {position} bytes")

        return cls(
            file_name=_check_name(file_name),
            size=size,
            content_type=content_type or _guess_type(file_name),
            in_order=True,
            opener=opener,
        )

    @classmethod
    def from_async_iterable(
        cls,
        chunks: AsyncIterable[bytes],
        *,
        size: int,
        file_name: str,
        content_type: str | None = None,
    ) -> MediaSource:
        """An async iterable of byte chunks that can be read only once, ``size`` bytes long.

        The upload reads it once, in order (era B: one part after the other, the part in
        flight kept in memory for a retry). Era A sends it in one request, which cannot be
        re-sent once bytes went out: such a failure raises :class:`~diffio_async.UploadError`.
        Fewer or more bytes than ``size``, or a chunk that is not bytes, fail the upload. The
        iterator is closed (``aclose``) once it is spent, or when the upload fails or is
        cancelled.
        """
        if not isinstance(chunks, AsyncIterable):
            raise InvalidRequestError(
                f"chunks must be an async iterable of bytes, not {type(chunks).__name__}"
            )
        _check_size(size)
        _check_content_type(content_type)
        read, close = iterable_reader(chunks)
        reader = InOrderReader(f"the stream for {file_name}", read, size, close)
        return cls(
            file_name=_check_name(file_name),
            size=size,
            content_type=content_type or _guess_type(file_name),
            in_order=True,
            opener=lambda offset, length: reader.stream(offset, length, CHUNK_SIZE),
            check_start=reader.check_start,
        )

    @classmethod
    def from_file(
        cls,
        file: IO[bytes] | AsyncReader | AsyncChunkReader,
        *,
        file_name: str | None = None,
        content_type: str | None = None,
        size: int | None = None,
    ) -> MediaSource:
        """A readable binary file object, sync or async, from its current position to its end.

        Sync: an open file, ``io.BytesIO``, ``tempfile.SpooledTemporaryFile``; async: an
        object with ``async read(n)`` (a Starlette/FastAPI ``UploadFile``, read through the
        file it wraps) or ``async read_chunk(n)`` (an aiohttp multipart ``BodyPartReader``).
        The name and type come from the object when it has them (``filename``, ``name``,
        ``content_type``); otherwise pass ``file_name``. A seekable sync file is measured
        and read at any offset (concurrent era-B parts share it; reads run in a worker
        thread; one that changes size while it is uploaded fails the upload); anything else is
        read once, in order, and needs ``size`` (or a ``size`` attribute). A text-mode file is
        refused (its ``read(0)`` gives no bytes). The caller keeps the object open while the
        upload runs and closes it. Calls the object's sync ``seek``/``tell``/``read(0)``: from
        async code, create it in a worker thread (``restore``/``projects.create`` do) when the
        file is on a slow disk.
        """
        if file_name is not None:
            _check_name(file_name)
        _check_content_type(content_type)
        if size is not None:
            _check_size(size)
        if not is_file_object(file):
            raise InvalidRequestError(
                f"cannot read a {type(file).__name__}: it has no read(n) or read_chunk(n)"
            )
        info = describe_file_object(file, file_name=file_name, content_type=content_type, size=size)
        name = info.file_name
        if info.read_at is not None:
            read_at = info.read_at

            async def opener(offset: int, length: int) -> AsyncIterator[bytes]:
                position, end = offset, offset + length
                while position < end:
                    try:
                        chunk = await read_at(position, min(CHUNK_SIZE, end - position))
                    except OSError as exc:
                        raise UploadError(f"cannot read {name}: {exc.strerror or exc}") from None
                    if not chunk:
                        raise UploadError(f"{name} shrank while it was being uploaded")
                    position += len(chunk)
                    yield chunk

            return cls(
                file_name=name,
                size=info.size,
                content_type=info.content_type or _guess_type(name),
                opener=opener,
            )
        assert info.read is not None
        reader = InOrderReader(name, info.read, info.size)
        return cls(
            file_name=name,
            size=info.size,
            content_type=info.content_type or _guess_type(name),
            in_order=True,
            opener=lambda offset, length: reader.stream(offset, length, CHUNK_SIZE),
            check_start=reader.check_start,
        )

    def open(self, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        """Stream ``length`` bytes from ``offset`` (the whole source by default)."""
        return self._opener(offset, self.size - offset if length is None else length)


async def _aclose(stream: object) -> None:
    """Close an async generator (or anything with ``aclose``) left part-way through."""
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        with anyio.CancelScope(shield=True):
            await aclose()


async def _has_more(stream: AsyncIterable[bytes]) -> bool:
    """Whether a stream read up to its declared end still yields bytes."""
    async for chunk in stream:
        if chunk:
            return True
    return False


def _check_size(size: object) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        shown = repr(size) if isinstance(size, int) else type(size).__name__
        raise InvalidRequestError(f"size must be an int >= 0, not {shown}")


UploadSource: TypeAlias = (
    str | os.PathLike[str] | bytes | MediaSource | IO[bytes] | AsyncReader | AsyncChunkReader
)
"""What ``restore`` and ``projects.create`` take: a path, bytes, a :class:`MediaSource` or a
readable binary file object, sync or async (see :meth:`MediaSource.from_file`)."""


def _check_name(file_name: str) -> str:
    if not isinstance(file_name, str) or not file_name.strip():
        raise InvalidRequestError("file_name must be a non-empty string")
    return file_name


def _check_content_type(content_type: object) -> None:
    if content_type is not None and not isinstance(content_type, str):
        raise InvalidRequestError(
            f"content_type must be a string or None, not {type(content_type).__name__}"
        )


def _guess_type(file_name: str) -> str:
    return mimetypes.guess_type(file_name)[0] or "application/octet-stream"


def as_media_source(
    source: UploadSource,
    *,
    file_name: str | None = None,
    content_type: str | None = None,
) -> MediaSource:
    """Turn what the caller passed into a :class:`MediaSource`, checking it is uploadable.

    Raises :class:`InvalidRequestError` (before any request) for what cannot be uploaded: an
    empty source ("nothing to restore"), one above 2 GiB, a file that is no longer a regular
    file of the size it had when chosen, a file object without a name or a known size. A
    file object may seek: call this in a worker thread.
    """
    if file_name is not None:
        _check_name(file_name)
    _check_content_type(content_type)
    if isinstance(source, MediaSource):
        media = source
        if file_name or content_type:
            media = attrs.evolve(
                media,
                file_name=file_name or media.file_name,
                content_type=content_type or media.content_type,
            )
    elif isinstance(source, bytes | bytearray | memoryview):
        media = MediaSource.from_bytes(
            bytes(source), file_name=file_name or "upload.bin", content_type=content_type
        )
    elif isinstance(source, str | os.PathLike):
        media = MediaSource.from_path(source, content_type=content_type)
        if file_name:
            media = attrs.evolve(media, file_name=file_name)
    elif is_file_object(source):
        media = MediaSource.from_file(source, file_name=file_name, content_type=content_type)
    elif isinstance(source, AsyncIterable):
        raise InvalidRequestError(
            f"cannot upload a {type(source).__name__} directly: its size is unknown; pass "
            "MediaSource.from_async_iterable(chunks, size=..., file_name=...)"
        )
    else:
        raise InvalidRequestError(
            f"cannot upload a {type(source).__name__}: pass a path, bytes, a readable binary "
            "file object or a MediaSource"
        )
    if media.size == 0:
        position = _position(source)
        at_end = f" (it is at position {position}: seek(0) first?)" if position else ""
        raise InvalidRequestError(f"{media.file_name} is empty; nothing to restore{at_end}")
    if media._verify is not None:
        media._verify()
    if media.size > MAX_UPLOAD_BYTES:
        raise InvalidRequestError(
            f"{media.file_name} is {media.size} bytes; the API accepts at most "
            f"{MAX_UPLOAD_BYTES} bytes (2 GiB)"
        )
    return media


def _position(source: object) -> int:
    """Where a sync file object stands (0 for anything else)."""
    tell = getattr(source, "tell", None)
    if not callable(tell) or inspect.iscoroutinefunction(tell):
        return 0
    try:
        position = tell()
    except (OSError, ValueError):
        return 0
    return position if isinstance(position, int) else 0


class _Progress:
    """Counts bytes sent across parallel parts; a retried part takes its count back first."""

    def __init__(self, total: int, callback: ProgressCallback | None) -> None:
        self.total = total
        self.done = 0
        self.callback = callback

    async def add(self, count: int) -> None:
        self.done += count
        if self.callback is not None:
            result = self.callback(self.done, self.total)
            if inspect.isawaitable(result):
                await result


class _Body:
    """A request body that re-opens its bytes (``reopen()``) each time httpx2 iterates it.

    Each iteration is an :class:`_Attempt`, a plain async iterator (not an async generator,
    which httpx2 would abandon half-way to the garbage collector when an attempt fails or is
    cancelled). The source reader an unfinished attempt left open (a file handle, the caller's
    stream) is closed by the next attempt or by :meth:`aclose`, which the sender calls when
    the request is over.
    """

    def __init__(self, reopen: Callable[[], AsyncIterator[bytes]], progress: _Progress) -> None:
        self.reopen = reopen
        self.progress = progress
        self.counted = 0
        self._reader: AsyncIterator[bytes] | None = None

    def __aiter__(self) -> AsyncIterator[bytes]:
        return _Attempt(self)

    async def restart(self) -> AsyncIterator[bytes]:
        """Close the previous attempt's reader, take back its progress, open a new reader."""
        await self.aclose()
        if self.counted:
            await self.progress.add(-self.counted)
            self.counted = 0
        self._reader = reader = self.reopen()
        return reader

    async def sent(self, count: int) -> None:
        """Count ``count`` bytes of the current attempt as sent."""
        self.counted += count
        await self.progress.add(count)

    async def aclose(self) -> None:
        """Close the source reader of an attempt that did not finish."""
        reader, self._reader = self._reader, None
        if reader is not None:
            await _aclose(reader)


class _Attempt:
    """One pass over a :class:`_Body`: reads its source, counting each chunk once httpx2 comes
    back for the next one (so progress follows what was sent, not what was read)."""

    def __init__(self, body: _Body) -> None:
        self._body = body
        self._reader: AsyncIterator[bytes] | None = None
        self._pending = 0

    def __aiter__(self) -> _Attempt:
        return self

    async def __anext__(self) -> bytes:
        body = self._body
        if self._pending:
            pending, self._pending = self._pending, 0
            await body.sent(pending)
        if self._reader is None:
            self._reader = await body.restart()
        chunk = await self._reader.__anext__()  # StopAsyncIteration ends the attempt
        self._pending = len(chunk)
        return chunk


async def upload_media(
    transport: Transport,
    project: CreateProjectResponse,
    media: MediaSource,
    *,
    on_progress: ProgressCallback | None = None,
    part_concurrency: int = 4,
    complete_upload: Callable[[str], Awaitable[object]],
) -> None:
    """Upload ``media`` for a project just created, by whichever protocol it answered with.

    ``complete_upload`` is called with the project id after an era-B upload. Raises
    :class:`UploadError` (with ``project_id`` and the cause chained) on failure.
    """
    progress = _Progress(media.size, on_progress)
    try:
        if project.upload is not None:
            await _upload_edge(transport, project.upload, media, progress, part_concurrency)
            await complete_upload(project.api_project_id)
        elif project.upload_url:
            await _upload_signed(transport, project, media, progress)
        else:
            raise UploadError(
                "create_project answered with neither uploadUrl nor upload",
                project_id=project.api_project_id,
            )
    except APIError as exc:
        raise UploadError(
            f"uploading {media.file_name} failed: {exc}", project_id=project.api_project_id
        ) from exc
    except UploadError as exc:
        if exc.project_id is None:
            exc.project_id = project.api_project_id
        raise


async def _upload_signed(
    transport: Transport, project: CreateProjectResponse, media: MediaSource, progress: _Progress
) -> None:
    assert project.upload_url is not None
    body = _Body(media.open, progress)
    headers = {"Content-Type": media.content_type, "Content-Length": str(media.size)}

    def content() -> _Body:
        if media._check_start is not None:  # a once-only source: no doomed re-send
            media._check_start(0)
        return body

    try:
        async with transport.send_media(
            (project.upload_method or "PUT").upper(),
            project.upload_url,
            endpoint="upload",
            headers=headers,
            content=content,
        ):
            pass
    finally:
        await body.aclose()


async def _upload_edge(
    transport: Transport,
    session: UploadSession,
    media: MediaSource,
    progress: _Progress,
    part_concurrency: int,
) -> None:
    if part_concurrency < 1:
        raise InvalidRequestError("part_concurrency must be at least 1")
    if session.max_bytes and media.size > session.max_bytes:
        raise InvalidRequestError(
            f"{media.file_name} is {media.size} bytes; this upload accepts at most "
            f"{session.max_bytes}"
        )
    edge = session.edge_base_url.rstrip("/")
    auth = {"Authorization": f"Bearer {session.upload_token}"}
    json_headers = {**auth, "Content-Type": "application/json"}

    async with transport.send_media(
        "POST",
        f"{edge}/v1/uploads/start",
        endpoint="edge:start",
        idempotent=False,
        headers=json_headers,
        content=lambda: b"{}",
    ) as response:
        started = structure(_json_body(response), EdgeUploadStart, endpoint="edge:start")
    part_size = started.part_size_bytes or session.part_size_bytes or 0
    if part_size <= 0:
        raise UploadError("the edge gave no part size")
    count = max(1, -(-media.size // part_size))
    receipts: list[EdgePartReceipt] = []
    limiter = anyio.CapacityLimiter(part_concurrency)

    async def send_part(number: int, reopen: Callable[[], AsyncIterator[bytes]]) -> None:
        length = min(part_size, media.size - (number - 1) * part_size)
        body = _Body(reopen, progress)
        headers = {
            **auth,
            "Content-Type": "application/octet-stream",
            "Content-Length": str(length),
        }
        try:
            async with (
                limiter,
                transport.send_media(
                    "PUT",
                    f"{edge}/v1/uploads/parts/{number}?uploadId={started.upload_id}",
                    endpoint=f"edge:part {number}",
                    headers=headers,
                    content=lambda: body,
                ) as response,
            ):
                receipt = structure(_json_body(response), EdgePartReceipt, endpoint="edge:part")
        finally:
            await body.aclose()
        if not receipt.etag:
            raise UploadError(f"the edge answered part {number} without an etag")
        receipts.append(receipt)

    def part_range(number: int) -> Callable[[], AsyncIterator[bytes]]:
        offset = (number - 1) * part_size
        return lambda: media.open(offset, min(part_size, media.size - offset))

    try:
        try:
            if media.in_order:
                await _send_parts_in_order(media, part_size, count, send_part)
            else:
                async with anyio.create_task_group() as group:
                    for number in range(1, count + 1):
                        group.start_soon(send_part, number, part_range(number))
        except BaseException as exc:
            # A failed part surfaces as an exception group: raise the part's own error, so
            # callers see the APIError/UploadError they expect (and upload_media wraps it).
            error = _first_error(exc)
            if error is exc:
                raise
            raise error from error.__cause__
        parts = tuple(sorted(receipts, key=lambda r: r.part_number))
        payload = _json(unstructure(EdgeCompleteRequest(upload_id=started.upload_id, parts=parts)))
        async with transport.send_media(
            "POST",
            f"{edge}/v1/uploads/complete",
            endpoint="edge:complete",
            headers=json_headers,
            content=lambda: payload,
        ):
            pass
    except BaseException:
        with anyio.CancelScope(shield=True), anyio.move_on_after(10):
            await _abort(transport, edge, json_headers, started.upload_id)
        raise


async def _send_parts_in_order(
    media: MediaSource,
    part_size: int,
    count: int,
    send_part: Callable[[int, Callable[[], AsyncIterator[bytes]]], Awaitable[None]],
) -> None:
    """Send the parts one after the other from one pass over ``media``; each part's bytes are
    kept until it is sent, so a retry re-sends them without reading the source again."""
    reader = media.open()
    async with closing_shielded(reader):
        pass_ = _InOrderParts(reader)
        for number in range(1, count + 1):
            length = min(part_size, media.size - (number - 1) * part_size)
            await send_part(number, functools.partial(pass_.part, [], length))
        await pass_.finish()


class _InOrderParts:
    """Cuts one in-order pass over a source into consecutive parts."""

    def __init__(self, reader: AsyncIterator[bytes]) -> None:
        self._reader = reader
        self._leftover = b""

    async def _take(self, limit: int) -> bytes:
        chunk = self._leftover
        if not chunk:
            try:
                chunk = await self._reader.__anext__()
            except StopAsyncIteration:
                raise UploadError("the source ended before its declared size") from None
        self._leftover = chunk[limit:]
        return chunk[:limit]

    async def part(self, kept: list[bytes], length: int) -> AsyncIterator[bytes]:
        """Yield a part of ``length`` bytes: first what ``kept`` holds (an earlier attempt's
        bytes), then the rest from the pass, each new chunk added to ``kept`` before it is
        sent."""
        done = 0
        for chunk in list(kept):
            yield chunk
            done += len(chunk)
        while done < length:
            chunk = await self._take(length - done)
            kept.append(chunk)
            done += len(chunk)
            yield chunk

    async def finish(self) -> None:
        """Run the pass to its end, so the source's own end checks apply."""
        async for _ in self._reader:
            raise UploadError("the source has more bytes than its declared size")


def _first_error(exc: BaseException) -> BaseException:
    """The first error inside a (nested) exception group other than a cancellation."""
    cancelled = anyio.get_cancelled_exc_class()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop(0)
        inner = getattr(current, "exceptions", None)
        if isinstance(inner, tuple) and hasattr(current, "split"):  # an exception group
            pending[:0] = [item for item in inner if isinstance(item, BaseException)]
        elif not isinstance(current, cancelled):
            return current
    return exc


async def _abort(transport: Transport, edge: str, headers: dict[str, str], upload_id: str) -> None:
    payload = _json(unstructure(EdgeAbortRequest(upload_id=upload_id)))
    try:
        async with transport.send_media(
            "POST",
            f"{edge}/v1/uploads/abort",
            endpoint="edge:abort",
            idempotent=False,
            headers=headers,
            content=lambda: payload,
        ):
            pass
    except Exception:  # the upload already failed; a failed abort must not hide why
        pass


def _json_body(response: Any) -> object:
    try:
        return response.json()
    except ValueError:
        return None


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()
