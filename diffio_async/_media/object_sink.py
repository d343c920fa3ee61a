"""A download written into an object: visible only once whole, never half.

The object is opened with ``autocommit=False`` and written in parts of :data:`PART_SIZE` (S3's
multipart minimum) from worker threads, so memory stays about one part. Leaving
:func:`object_sink` normally commits it (S3: completes the multipart upload, an atomic
replace of any earlier object; two writers racing leave the last complete one). Any failure or
cancellation discards it instead (S3: aborts the multipart upload), so no partial object is
ever visible. A filesystem without transactions (``memory://``) shows the object as it grows.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import anyio

from ..errors import DownloadError
from .object_store import StoredObject

__all__ = ["PART_SIZE", "object_sink"]

PART_SIZE = 5 * 1024 * 1024
"""Bytes buffered before a part is uploaded (the S3 multipart minimum)."""


class _ObjectSink:
    """The :class:`~diffio_async._media.download.DownloadSink` of one object."""

    def __init__(self, target: StoredObject) -> None:
        self._target = target
        self._handle: Any = None

    async def open(self) -> None:
        target = self._target
        with anyio.CancelScope(shield=True):  # an open finishing after a cancel is discarded
            self._handle = await anyio.to_thread.run_sync(
                lambda: target.fs.open(target.path, "wb", block_size=PART_SIZE, autocommit=False)
            )

    async def write(self, data: bytes) -> None:
        try:
            await anyio.to_thread.run_sync(self._handle.write, data)
        except Exception as exc:
            raise DownloadError(f"cannot write {self._target.url} ({type(exc).__name__})") from None

    async def restart(self) -> None:
        await self.discard()
        await self.open()

    async def commit(self) -> None:
        handle = self._handle

        def finish() -> None:
            handle.close()  # uploads the last part; with autocommit=False nothing is visible
            handle.commit()

        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(finish)
        self._handle = None

    async def discard(self) -> None:
        handle, self._handle = self._handle, None
        if handle is None:
            return

        def throw_away() -> None:
            with contextlib.suppress(Exception):
                handle.discard()
            try:
                handle.close()  # never committed: closing only releases it
            except Exception:  # s3fs: a discarded file cannot flush; it is done all the same
                with contextlib.suppress(Exception):
                    handle.closed = True  # so that its finaliser does not try again

        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(throw_away)


@contextlib.asynccontextmanager
async def object_sink(target: StoredObject) -> AsyncIterator[_ObjectSink]:
    """A sink writing ``target``: committed on a normal exit, discarded on any other."""
    sink = _ObjectSink(target)
    try:
        await sink.open()
    except Exception as exc:
        raise DownloadError(f"cannot write {target.url} ({type(exc).__name__})") from None
    try:
        yield sink
    except BaseException:
        await sink.discard()
        raise
    try:
        await sink.commit()
    except Exception as exc:
        await sink.discard()
        raise DownloadError(f"cannot complete {target.url} ({type(exc).__name__})") from None
