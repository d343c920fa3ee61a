"""Streamed sha256 of a source file (the content hash the ledger records)."""

from __future__ import annotations

import hashlib
import os

import anyio
import anyio.to_thread

from ...errors import InvalidRequestError

__all__ = ["hash_file"]


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
    digest = hashlib.sha256()
    size = 0
    with anyio.CancelScope(shield=True):  # an open finishing after a cancel is still closed
        handle = await anyio.to_thread.run_sync(open, os.fspath(path), "rb")
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
