"""The caller's file objects and byte iterators as upload sources: name, type, size, reads.

A file object is anything with a binary ``read(n)``: sync (an open file, ``io.BytesIO``,
``tempfile.SpooledTemporaryFile``) or async (``read(n)`` or aiohttp's ``read_chunk(n)``). A
Starlette/FastAPI ``UploadFile`` is read through the seekable file it wraps (``.file``).

A seekable sync file is read at any offset (each read seeks under a lock, so concurrent era-B
parts may share the one handle; a read giving more than asked is cut, and the read reaching the
end checks the size is still the one measured); anything else is read once, in order. Sync
reads of anything but ``io.BytesIO`` run in a worker thread, so a slow disk never blocks the
event loop.
"""

from __future__ import annotations

import inspect
import io
import os
import threading
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping
from typing import IO, Any, Protocol

import anyio
import attrs

from ..errors import InvalidRequestError, UploadError

__all__ = [
    "AsyncChunkReader",
    "AsyncReader",
    "Closer",
    "FileObjectInfo",
    "InOrderReader",
    "describe_file_object",
    "is_file_object",
    "iterable_reader",
    "ReadFunction",
]

ReadFunction = Callable[[int], Awaitable[Any]]
"""``read(n)``: up to ``n`` bytes (more is tolerated), ``b""`` at the end."""

Closer = Callable[[], Awaitable[None]]
"""Closes what a reader holds."""


class AsyncReader(Protocol):
    """An object with an async ``read(n)`` (Starlette's ``UploadFile``, ``anyio.AsyncFile``)."""

    async def read(self, size: int = -1, /) -> bytes:
        """Up to ``size`` bytes; ``b""`` at the end."""
        ...


class AsyncChunkReader(Protocol):
    """An object with an async ``read_chunk(n)`` (an aiohttp multipart ``BodyPartReader``)."""

    async def read_chunk(self, size: int = ..., /) -> bytes:
        """Up to ``size`` bytes; ``b""`` at the end."""
        ...


@attrs.frozen(kw_only=True)
class FileObjectInfo:
    """What a file object tells of itself, and how to read it.

    Exactly one of ``read_at`` (random access: ``read_at(position, n)``, positions counted
    from where the upload starts) and ``read`` (in order, once) is set.
    """

    file_name: str
    content_type: str | None
    size: int
    read_at: Callable[[int, int], Awaitable[bytes]] | None = None
    read: ReadFunction | None = None


def _method(obj: object, name: str) -> Callable[..., Any] | None:
    method = getattr(obj, name, None)
    return method if callable(method) else None


def _is_async(method: Callable[..., Any]) -> bool:
    return inspect.iscoroutinefunction(method)


def _wrapped_file(obj: object) -> IO[bytes] | None:
    """The seekable sync file an async wrapper holds in ``.file`` (Starlette's UploadFile)."""
    inner = getattr(obj, "file", None)
    read, seekable = _method(inner, "read"), _method(inner, "seekable")
    if read is None or seekable is None or _is_async(read) or _is_async(seekable):
        return None
    try:
        return inner if seekable() else None
    except (OSError, ValueError):
        return None


def is_file_object(obj: object) -> bool:
    """True for an object with a ``read(n)`` or an async ``read_chunk(n)``."""
    if isinstance(obj, str | bytes | bytearray | memoryview | os.PathLike):
        return False
    chunk = _method(obj, "read_chunk")
    return (chunk is not None and _is_async(chunk)) or _method(obj, "read") is not None


def _name_of(obj: object) -> str | None:
    filename = getattr(obj, "filename", None)
    if isinstance(filename, str) and filename.strip():
        return os.path.basename(filename) or filename
    name = getattr(obj, "name", None)  # an open file's path; an int for a temporary file
    if isinstance(name, str) and name.strip() and not name.startswith("<"):
        return os.path.basename(name) or None
    return None


def _type_of(obj: object) -> str | None:
    content_type = getattr(obj, "content_type", None)
    if isinstance(content_type, str) and content_type.strip():
        return content_type
    headers = getattr(obj, "headers", None)  # an aiohttp BodyPartReader
    if isinstance(headers, Mapping):
        value = headers.get("Content-Type") or headers.get("content-type")
        if isinstance(value, str) and value.strip():
            return value
    return None


def _declared_size(obj: object, size: int | None, kind: str) -> int:
    if size is not None:
        return size
    known = getattr(obj, "size", None)
    if isinstance(known, int) and not isinstance(known, bool) and known >= 0:
        return known
    raise InvalidRequestError(
        f"the size of this {kind} is unknown (it cannot seek): pass "
        "MediaSource.from_file(obj, size=...) (uploads declare their length up front)"
    )


def describe_file_object(
    obj: object, *, file_name: str | None, content_type: str | None, size: int | None
) -> FileObjectInfo:
    """Inspect a file object (sync calls only: run it in a worker thread for a real file).

    Raises :class:`InvalidRequestError` for a text file, a name that cannot be found, an
    unknown size or a size that differs from what a seekable file holds.
    """
    kind = type(obj).__name__
    if isinstance(obj, io.TextIOBase):
        raise InvalidRequestError(f"this {kind} is a text file: open it in binary mode ('rb')")
    name = file_name or _name_of(obj)
    if name is None:
        raise InvalidRequestError(
            f"this {kind} has no file name: pass file_name= "
            "(or MediaSource.from_file(obj, file_name=...))"
        )
    content_type = content_type or _type_of(obj)
    chunk = _method(obj, "read_chunk")
    read = _method(obj, "read")
    if read is not None and _is_async(read) and (inner := _wrapped_file(obj)) is not None:
        obj, read, chunk = inner, inner.read, None  # an UploadFile: its spooled file
    if chunk is not None and _is_async(chunk):
        return FileObjectInfo(
            file_name=name,
            content_type=content_type,
            size=_declared_size(obj, size, kind),
            read=chunk,
        )
    assert read is not None
    if _is_async(read):
        return FileObjectInfo(
            file_name=name,
            content_type=content_type,
            size=_declared_size(obj, size, kind),
            read=read,
        )
    handle: IO[bytes] = obj  # type: ignore[assignment]
    in_memory = isinstance(handle, io.BytesIO)
    if _seekable(handle):
        start = handle.tell()
        _refuse_text(handle, start, kind)
        end = handle.seek(0, os.SEEK_END)
        handle.seek(start)
        if size is not None and size != end - start:
            raise InvalidRequestError(
                f"size={size} but this {kind} holds {end - start} bytes from its position"
            )
        return FileObjectInfo(
            file_name=name,
            content_type=content_type,
            size=end - start,
            read_at=_random_access(handle, name, start, end - start, in_memory=in_memory),
        )

    async def read_in_thread(count: int) -> Any:
        # A pipe may block: a cancelled upload gives up on the read (the source is spent).
        return await anyio.to_thread.run_sync(handle.read, count, abandon_on_cancel=True)

    return FileObjectInfo(
        file_name=name,
        content_type=content_type,
        size=_declared_size(obj, size, kind),
        read=read_in_thread,
    )


def _seekable(handle: IO[bytes]) -> bool:
    seekable = _method(handle, "seekable")
    try:
        return bool(seekable()) if seekable is not None else False
    except (OSError, ValueError):
        return False


def _refuse_text(handle: IO[bytes], start: int, kind: str) -> None:
    """Raise :class:`InvalidRequestError` when ``read(0)`` of a seekable file gives no bytes (a
    text file, even one wrapped like ``tempfile``'s are) or fails; the position is kept."""
    try:
        probe = handle.read(0)
    except Exception as exc:  # opened for writing only, closed, a read(n) it cannot take
        raise InvalidRequestError(
            f"cannot read this {kind}: read(0) raised {type(exc).__name__}: {exc}"
        ) from None
    finally:
        handle.seek(start)
    _checked_bytes(probe, error=InvalidRequestError)


def _random_access(
    handle: IO[bytes], name: str, start: int, size: int, *, in_memory: bool
) -> Callable[[int, int], Awaitable[bytes]]:
    """``read_at(position, count)``: at most ``count`` bytes (a read giving more is cut); the
    read reaching the end checks the file still holds ``size`` bytes from ``start``."""
    lock = threading.Lock()  # a seek and its read go together, whichever part (thread) asks

    def seek_and_read(position: int, count: int) -> bytes:
        with lock:
            handle.seek(start + position)
            data = _checked_bytes(handle.read(count))[:count]
            if position + count >= size and (now := handle.seek(0, os.SEEK_END) - start) != size:
                raise UploadError(
                    f"{name} changed size while it was being uploaded ({size} bytes when "
                    f"chosen, {now} now)"
                )
            return data

    async def read_at(position: int, count: int) -> bytes:
        if in_memory:  # no await between the seek and the read
            return seek_and_read(position, count)
        return await anyio.to_thread.run_sync(seek_and_read, position, count)

    return read_at


def _checked_bytes(
    data: object, *, error: type[UploadError | InvalidRequestError] = UploadError
) -> bytes:
    """``data`` as bytes; ``error`` saying what ``read()`` returned instead."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    if data is None:
        raise error(
            "read() returned None (a non-blocking file with no bytes ready): pass a file "
            "that blocks until it has bytes, or an async reader"
        )
    if isinstance(data, str):
        raise error("read() returned str, not bytes: open the file in binary mode ('rb')")
    raise error(f"read() returned {type(data).__name__}, not bytes")


def iterable_reader(
    chunks: AsyncIterable[bytes],
) -> tuple[ReadFunction, Callable[[], Awaitable[None]]]:
    """``read(n)`` over an async iterable of chunks, and a function closing its iterator."""
    iterator: AsyncIterator[bytes] | None = None

    async def read(count: int) -> bytes:
        nonlocal iterator
        if iterator is None:
            iterator = aiter(chunks)
        try:
            chunk = await anext(iterator)
        except StopAsyncIteration:
            return b""
        if not isinstance(chunk, bytes | bytearray | memoryview):
            raise UploadError(
                f"the async iterable yielded a {type(chunk).__name__}, not bytes: yield bytes "
                "chunks (encode text first)"
            )
        return bytes(chunk)

    async def close() -> None:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            with anyio.CancelScope(shield=True):
                await aclose()

    return read, close


class InOrderReader:
    """Reads a once-only source in order, in chunks of at most the size asked for.

    Tracks how far it has read, so a request to go back (a re-send of bytes already read)
    raises :class:`UploadError` rather than sending other bytes.
    """

    def __init__(
        self,
        label: str,
        read: ReadFunction,
        size: int,
        close: Closer | None = None,
    ) -> None:
        self._label = label
        self._read = read
        self._size = size
        self._close = close
        self._leftover = b""
        self.position = 0

    async def _next(self, count: int, read_size: int) -> bytes:
        """Up to ``count`` bytes; the source is asked for ``read_size`` (some readers, like
        aiohttp's, refuse tiny reads), what it gives beyond ``count`` is kept for later."""
        if self._leftover:
            data, self._leftover = self._leftover, b""
        else:
            data = _checked_bytes(await self._read(read_size))
        if len(data) > count:
            data, self._leftover = data[:count], data[count:]
        return data

    def check_start(self, offset: int) -> None:
        """Raise :class:`UploadError` unless ``offset`` is where the last read ended."""
        if offset != self.position:
            raise UploadError(
                f"{self._label} can be read only once, and re-sending it after a failed "
                f"attempt needs byte {offset} again ({self.position} bytes were already read); "
                "pass a path, bytes or a seekable file to allow re-sending it"
            )

    async def stream(self, offset: int, length: int, chunk_size: int) -> AsyncIterator[bytes]:
        """Yield ``length`` bytes from ``offset``, which must be where the last read ended."""
        self.check_start(offset)
        end = offset + length
        try:
            while self.position < end:
                chunk = await self._next(min(chunk_size, end - self.position), chunk_size)
                if not chunk:
                    raise UploadError(
                        f"{self._label} ended after {self.position} bytes, before its "
                        f"size of {self._size}"
                    )
                self.position += len(chunk)
                yield chunk
            if end == self._size:
                if await self._next(1, chunk_size):
                    raise UploadError(
                        f"{self._label} has more than its declared {self._size} bytes"
                    )
                await self._closed()  # spent: the caller's iterator runs its cleanup now
        except BaseException:  # refused, closed by a failure elsewhere or cancelled
            await self._closed()
            raise

    async def _closed(self) -> None:
        close, self._close = self._close, None
        if close is not None:
            await close()
