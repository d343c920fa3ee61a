"""Streamed sha256 of a source file or object (the content hash the ledger records).

An object on storage is hashed over its bytes as read through fsspec: an ETag is never used
(a multipart ETag is not a content hash, and a store may compute it any way it likes)."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import anyio
import anyio.to_thread

from ..._media.object_source import open_range
from ..._media.object_store import StoredObject
from ...errors import InvalidRequestError

__all__ = ["hash_file", "hash_object"]


async def hash_file(
    path: str | os.PathLike[str], *, chunk_size: int = 1024 * 1024
) -> tuple[int, str]:
    """Return ``(size in bytes, sha256 hex digest)`` of a file, streamed chunk by chunk.

    Never holds more than one chunk in memory; every read and hash update runs in a worker
    thread (hashlib releases the GIL), and the call can be cancelled between chunks. The size
    is the number of bytes hashed, so the pair is consistent even if the file grows meanwhile.
    Raises :class:`InvalidRequestError` for a ``chunk_size`` that is not positive.
    """
    if chunk_size <= 0:
        raise InvalidRequestError("chunk_size must be positive")
    with anyio.CancelScope(shield=True):  # an open finishing after a cancel is still closed
        handle = await anyio.to_thread.run_sync(open, os.fspath(path), "rb")
    return await _hash_handle(handle, chunk_size)


async def hash_object(target: StoredObject, *, chunk_size: int = 1024 * 1024) -> tuple[int, str]:
    """:func:`hash_file` of an object on storage, streamed (one ``GetObject`` on S3).
    Failures to read it raise :class:`OSError` naming the object, not the library's text."""
    try:
        with anyio.CancelScope(shield=True):
            handle = await anyio.to_thread.run_sync(open_range, target)
        return await _hash_handle(handle, chunk_size)
    except FileNotFoundError:
        raise FileNotFoundError(f"no such object: {target.url}") from None
    except Exception as exc:
        raise OSError(f"cannot read {target.url} ({type(exc).__name__})") from None


async def _hash_handle(handle: Any, chunk_size: int) -> tuple[int, str]:
    """Hash what ``handle`` holds from its position, closing it."""
    digest = hashlib.sha256()
    size = 0
    try:

        def step() -> int:
            chunk = handle.read(chunk_size)
            digest.update(chunk)
            return len(chunk)

        while read := await anyio.to_thread.run_sync(step):
            size += read
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(handle.close)
    return size, digest.hexdigest()
