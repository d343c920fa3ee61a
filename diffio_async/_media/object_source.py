"""An object on storage as an upload source: streamed from the bucket, never copied locally.

Each read of the upload (an era-A attempt, an era-B part, a retry) opens the object afresh at
its offset (:func:`open_range`) and reads it 1 MiB at a time in worker threads, so memory
stays a few MiB per read in flight and a retry re-reads the bytes it needs. On S3 (s3fs) a
read is one ranged ``GetObject`` whose body is streamed; on any other filesystem, fsspec's
file with a small read-ahead (:data:`BLOCK_SIZE`; s3fs's default would be tens of MiB).
"""

from __future__ import annotations

import importlib
import mimetypes
import posixpath
from collections.abc import AsyncIterator
from typing import Any, Protocol

import anyio

from ..errors import UploadError
from .object_store import StoredObject
from .upload import CHUNK_SIZE, MediaSource

__all__ = ["BLOCK_SIZE", "ObjectReader", "object_media_source", "open_range"]

BLOCK_SIZE = 1024 * 1024
"""The read-ahead of an object opened through fsspec's buffered file."""


class ObjectReader(Protocol):
    """Blocking reads of an object from where it was opened."""

    def read(self, size: int, /) -> bytes:
        """Up to ``size`` bytes; ``b""`` at the end."""
        ...

    def close(self) -> None:
        """Release the connection or the file."""
        ...


class _S3Body:
    """The streamed body of one ranged ``GetObject`` (s3fs's own client, on its loop)."""

    def __init__(self, fs: Any, path: str, offset: int, length: int | None) -> None:
        sync = importlib.import_module("fsspec.asyn").sync
        self._sync = sync
        self._loop = fs.loop
        bucket, key, version = fs.split_path(path)
        end = "" if length is None else str(offset + length - 1)
        extra = {"VersionId": version} if version else {}
        answer = sync(
            fs.loop,
            fs._call_s3,
            "get_object",
            Bucket=bucket,
            Key=key,
            Range=f"bytes={offset}-{end}",
            **extra,
        )
        self._body = answer["Body"]

    def read(self, size: int, /) -> bytes:
        return bytes(self._sync(self._loop, self._body.read, size))

    def close(self) -> None:
        self._sync(self._loop, self._body.aclose)


def _streams_s3(fs: Any) -> bool:
    protocol = getattr(fs, "protocol", ())
    protocols = (protocol,) if isinstance(protocol, str) else tuple(protocol)
    return "s3" in protocols and all(
        callable(getattr(fs, name, None)) for name in ("_call_s3", "split_path")
    )


def open_range(target: StoredObject, offset: int = 0, length: int | None = None) -> ObjectReader:
    """``target`` opened for sequential reads from ``offset`` (to its end, or ``length``
    bytes: reading past them is the caller's to avoid). Blocking: run it in a thread."""
    fs = target.fs
    if length != 0 and _streams_s3(fs):
        return _S3Body(fs, target.path, offset, length)
    handle = fs.open(target.path, "rb", block_size=BLOCK_SIZE, cache_type="readahead")
    try:
        handle.seek(offset)
    except BaseException:
        handle.close()
        raise
    return handle  # type: ignore[no-any-return]


def object_media_source(
    target: StoredObject, *, size: int, content_type: str | None = None
) -> MediaSource:
    """A :class:`MediaSource` reading ``target`` (``size`` bytes, as listed)."""
    name = posixpath.basename(target.path)

    async def opener(offset: int, length: int) -> AsyncIterator[bytes]:
        try:
            with anyio.CancelScope(shield=True):  # an open finishing after a cancel is closed
                reader = await anyio.to_thread.run_sync(open_range, target, offset, length)
        except Exception as exc:
            raise UploadError(f"cannot read {target.url} ({type(exc).__name__})") from None
        try:
            remaining = length
            while remaining > 0:
                try:
                    chunk = await anyio.to_thread.run_sync(reader.read, min(CHUNK_SIZE, remaining))
                except Exception as exc:
                    raise UploadError(f"cannot read {target.url} ({type(exc).__name__})") from None
                if not chunk:
                    raise UploadError(f"{target.url} shrank while it was being uploaded")
                remaining -= len(chunk)
                yield chunk
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(reader.close)

    return MediaSource(
        file_name=name,
        size=size,
        content_type=content_type or mimetypes.guess_type(name)[0] or "application/octet-stream",
        opener=opener,
    )
