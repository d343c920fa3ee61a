"""An object on storage as an upload source: streamed from the bucket, never copied locally.

Each read of the upload (an era-A attempt, an era-B part, a retry) opens the object afresh at
its offset with a small read-ahead (:data:`BLOCK_SIZE`; s3fs's default is tens of MiB) and
reads it 1 MiB at a time in worker threads, so memory stays a few MiB per read in flight and a
retry re-reads the bytes it needs.
"""

from __future__ import annotations

import mimetypes
import posixpath
from collections.abc import AsyncIterator
from typing import Any

import anyio

from ..errors import UploadError
from .object_store import StoredObject
from .upload import CHUNK_SIZE, MediaSource

__all__ = ["BLOCK_SIZE", "object_media_source", "open_for_reading"]

BLOCK_SIZE = 1024 * 1024
"""The read-ahead of an object opened for reading."""


def open_for_reading(target: StoredObject) -> Any:
    """``target`` opened for sequential reads with a small read-ahead (blocks)."""
    return target.fs.open(target.path, "rb", block_size=BLOCK_SIZE, cache_type="readahead")


def object_media_source(
    target: StoredObject, *, size: int, content_type: str | None = None
) -> MediaSource:
    """A :class:`MediaSource` reading ``target`` (``size`` bytes, as listed)."""
    name = posixpath.basename(target.path)

    async def opener(offset: int, length: int) -> AsyncIterator[bytes]:
        try:
            with anyio.CancelScope(shield=True):  # an open finishing after a cancel is closed
                handle = await anyio.to_thread.run_sync(open_for_reading, target)
        except Exception as exc:
            raise UploadError(f"cannot read {target.url} ({type(exc).__name__})") from None
        try:
            await anyio.to_thread.run_sync(handle.seek, offset)
            remaining = length
            while remaining > 0:
                try:
                    chunk = await anyio.to_thread.run_sync(handle.read, min(CHUNK_SIZE, remaining))
                except Exception as exc:
                    raise UploadError(f"cannot read {target.url} ({type(exc).__name__})") from None
                if not chunk:
                    raise UploadError(f"{target.url} shrank while it was being uploaded")
                remaining -= len(chunk)
                yield chunk
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(handle.close)

    return MediaSource(
        file_name=name,
        size=size,
        content_type=content_type or mimetypes.guess_type(name)[0] or "application/octet-stream",
        opener=opener,
    )
