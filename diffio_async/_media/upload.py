"""Media uploads: what can be uploaded (:class:`MediaSource`) and both upload protocols.

Era A answers ``create_project`` with a signed ``uploadUrl``: one PUT of the whole file.
Era B answers with an edge ``upload`` session: ``start``, parts of ``partSizeBytes`` sent in
parallel, ``complete``, then ``complete_project_upload``. Both stream the source in 1 MiB
chunks with an explicit ``Content-Length`` (never chunked encoding); each attempt re-opens the
source, so a retry sends the full body again. Neither ever sends the API key.

A file source must be a regular file: FIFOs, devices and sockets are refused, and each open
(``O_NONBLOCK``, then ``fstat`` on the open descriptor) checks again, so a file swapped for a
FIFO is refused rather than read, and no read can block uncancellably. Every reader opened for
an attempt is closed by that attempt's owner (never left to the garbage collector).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import mimetypes
import os
import stat
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from .._http.transport import Transport

__all__ = [
    "CHUNK_SIZE",
    "MAX_UPLOAD_BYTES",
    "MediaSource",
    "ProgressCallback",
    "closing_shielded",
    "upload_media",
]

CHUNK_SIZE = 1024 * 1024
"""Bytes read from a source (and written to a download) at a time."""

MAX_UPLOAD_BYTES = 2 * 1024**3
"""The largest upload the API accepts (2 GiB), checked before a project is created."""

ProgressCallback = Callable[[int, int], Any]
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

    Build one with :meth:`from_path`, :meth:`from_bytes` or :meth:`from_stream`;
    ``client.projects.create`` also accepts a path or bytes directly.
    """

    file_name: str
    size: int
    content_type: str
    _opener: _Opener = attrs.field(alias="opener", repr=False)
    _verify: Callable[[], None] | None = attrs.field(
        default=None, alias="verify", repr=False, eq=False
    )
    """Checks, just before a project is created, that the source is still what it was (a file
    source: still a regular file of the same size); raises :class:`InvalidRequestError`."""

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
        """A caller's stream of known ``size``; ``factory()`` must start it afresh each call.

        Each attempt (and each era-B part) calls ``factory()`` again and skips to where it
        needs to start, so the factory must yield the same bytes every time.
        """
        if not callable(factory):
            raise InvalidRequestError(f"factory must be callable, not {type(factory).__name__}")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            shown = repr(size) if isinstance(size, int) else type(size).__name__
            raise InvalidRequestError(f"size must be an int >= 0, not {shown}")
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
            finally:
                await _aclose(stream)  # the caller's generator runs its cleanup now
            if position < end:
                raise UploadError(f"the stream for {file_name} ended after {position} bytes")

        return cls(
            file_name=_check_name(file_name),
            size=size,
            content_type=content_type or _guess_type(file_name),
            opener=opener,
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
    source: str | os.PathLike[str] | bytes | MediaSource,
    *,
    file_name: str | None = None,
    content_type: str | None = None,
) -> MediaSource:
    """Turn what the caller passed into a :class:`MediaSource`, checking it is uploadable.

    Raises :class:`InvalidRequestError` (before any request) for what cannot be uploaded: an
    empty source ("nothing to restore"), one above 2 GiB, a file that is no longer a regular
    file of the size it had when chosen.
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
    else:
        raise InvalidRequestError(
            f"cannot upload a {type(source).__name__}: pass a path, bytes or a MediaSource"
        )
    if media.size == 0:
        raise InvalidRequestError(f"{media.file_name} is empty; nothing to restore")
    if media._verify is not None:
        media._verify()
    if media.size > MAX_UPLOAD_BYTES:
        raise InvalidRequestError(
            f"{media.file_name} is {media.size} bytes; the API accepts at most "
            f"{MAX_UPLOAD_BYTES} bytes (2 GiB)"
        )
    return media


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
    """A request body that re-opens its source range each time httpx2 iterates it.

    Each iteration is an :class:`_Attempt`, a plain async iterator (not an async generator,
    which httpx2 would abandon half-way to the garbage collector when an attempt fails or is
    cancelled). The source reader an unfinished attempt left open (a file handle, the caller's
    stream) is closed by the next attempt or by :meth:`aclose`, which the sender calls when
    the request is over.
    """

    def __init__(self, media: MediaSource, offset: int, length: int, progress: _Progress) -> None:
        self.media = media
        self.offset = offset
        self.length = length
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
        self._reader = reader = self.media.open(self.offset, self.length)
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
    body = _Body(media, 0, media.size, progress)
    headers = {"Content-Type": media.content_type, "Content-Length": str(media.size)}
    try:
        async with transport.send_media(
            (project.upload_method or "PUT").upper(),
            project.upload_url,
            endpoint="upload",
            headers=headers,
            content=lambda: body,
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

    async def send_part(number: int) -> None:
        offset = (number - 1) * part_size
        length = min(part_size, media.size - offset)
        body = _Body(media, offset, length, progress)
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

    try:
        try:
            async with anyio.create_task_group() as group:
                for number in range(1, count + 1):
                    group.start_soon(send_part, number)
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
