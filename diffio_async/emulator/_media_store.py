"""Media on disk: request bodies streamed to files, files streamed back in 1 MiB chunks."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from starlette.background import BackgroundTask
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

__all__ = ["CHUNK_SIZE", "MediaResponse", "MediaStore", "parse_range"]

CHUNK_SIZE = 1024 * 1024


class MediaStore:
    """A directory holding uploaded originals, edge upload assemblies and outputs.

    With no ``root`` a private temporary directory is created and removed by :meth:`close`;
    a caller-supplied ``root`` is left in place (only the emulator's subfolders are created).
    """

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        """Create (or adopt) the storage directory."""
        if root is None:
            self.root = Path(tempfile.mkdtemp(prefix="diffio-emulator-"))
            self._owned = True
        else:
            self.root = Path(root)
            self.root.mkdir(parents=True, exist_ok=True)
            self._owned = False
        for sub in ("originals", "uploads", "outputs", "incoming"):
            (self.root / sub).mkdir(exist_ok=True)
        self._counter = 0
        self._lock = threading.Lock()

    def original(self, project_id: str) -> Path:
        """Where the original media of a project lives."""
        return self.root / "originals" / project_id

    def assembly(self, upload_id: str) -> Path:
        """The file an era B multipart upload is assembled in."""
        return self.root / "uploads" / upload_id

    def output(self, generation_id: str) -> Path:
        """The restored output of a generation (a hard link to, or copy of, the original)."""
        return self.root / "outputs" / generation_id

    def incoming(self) -> Path:
        """A fresh temporary path for a body being received."""
        with self._lock:
            self._counter += 1
            return self.root / "incoming" / f"{os.getpid()}-{self._counter}"

    def snapshot_output(self, source: Path, generation_id: str) -> Path:
        """Freeze the project's current original as the generation's output (no data copy)."""
        target = self.output(generation_id)
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
        try:
            os.link(source, target)
        except OSError:
            shutil.copyfile(source, target)
        return target

    def close(self) -> None:
        """Delete the directory if the store created it."""
        if self._owned:
            shutil.rmtree(self.root, ignore_errors=True)


async def receive_to_file(
    chunks: AsyncIterator[bytes],
    path: Path,
    *,
    offset: int | None = None,
    want_md5: bool = False,
    limit: int | None = None,
) -> tuple[int, str | None]:
    """Write a request body to ``path`` in 1 MiB writes off the event loop.

    ``offset=None`` creates/truncates ``path``; an ``offset`` writes into an existing or new
    file at that position (era B parts land directly at ``(n - 1) * partSize``). Returns the
    number of bytes and, if asked, their MD5 hex digest. More than ``limit`` bytes raises
    :class:`ValueError` (the partial data stays).
    """
    md5 = hashlib.md5(usedforsecurity=False) if want_md5 else None
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if offset is None else 0)
    fd = os.open(path, flags, 0o600)
    position = offset or 0
    total = 0
    buffer = bytearray()

    def flush(data: bytes, at: int) -> None:
        view = memoryview(data)
        while view:
            written = os.pwrite(fd, view, at)
            view = view[written:]
            at += written
        if md5 is not None:
            md5.update(data)

    try:
        async for chunk in chunks:
            if not chunk:
                continue
            total += len(chunk)
            if limit is not None and total > limit:
                raise ValueError("body larger than allowed")
            buffer.extend(chunk)
            if len(buffer) >= CHUNK_SIZE:
                data = bytes(buffer)
                buffer.clear()
                await anyio.to_thread.run_sync(flush, data, position)
                position += len(data)
        if buffer:
            data = bytes(buffer)
            await anyio.to_thread.run_sync(flush, data, position)
    finally:
        os.close(fd)
    return total, (md5.hexdigest() if md5 is not None else None)


def parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """Parse a single ``Range: bytes=`` spec against ``size``.

    Returns ``(start, end_inclusive)``, ``"unsatisfiable"``, or ``None`` (no usable range:
    absent, malformed or multi-range, so the whole body is served).
    """
    if not header:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if first == "":
            length = int(last)
            if length <= 0:
                return "unsatisfiable"
            return (max(0, size - length), size - 1) if size else "unsatisfiable"
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start < 0:
        return None
    if start >= size:
        return "unsatisfiable"
    if end < start:
        return None
    return start, min(end, size - 1)


class MediaResponse(Response):
    """A file (or small in-memory body) served with ``Content-Length`` and ``Range`` support.

    Reads the file in 1 MiB chunks off the event loop and stops early if the client goes away.
    """

    def __init__(
        self,
        *,
        path: Path | None = None,
        data: bytes | None = None,
        media_type: str,
        range_header: str | None = None,
        headers: Mapping[str, str] | None = None,
        head_only: bool = False,
        background: BackgroundTask | None = None,
    ) -> None:
        """Prepare the answer (status 200, 206 or 416 depending on ``range_header``)."""
        super().__init__(content=None, media_type=None, background=background)
        self._path = path
        self._data = data
        self._head_only = head_only
        size = len(data) if data is not None else (path.stat().st_size if path else 0)
        extra: dict[str, Any] = {"accept-ranges": "bytes", "content-type": media_type}
        extra.update(headers or {})
        wanted = parse_range(range_header, size)
        if wanted == "unsatisfiable":
            self.status_code = 416
            self._start, self._end = 0, -1
            extra["content-range"] = f"bytes */{size}"
        elif isinstance(wanted, tuple):
            self.status_code = 206
            self._start, self._end = wanted
            extra["content-range"] = f"bytes {self._start}-{self._end}/{size}"
        else:
            self.status_code = 200
            self._start, self._end = 0, size - 1
        extra["content-length"] = str(self._end - self._start + 1)
        self.raw_headers = [
            (k.lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in extra.items()
        ]

    async def _chunks(self) -> AsyncGenerator[bytes, None]:
        remaining = self._end - self._start + 1
        if remaining <= 0:
            return
        if self._data is not None:
            view = self._data[self._start : self._end + 1]
            for index in range(0, len(view), CHUNK_SIZE):
                yield view[index : index + CHUNK_SIZE]
            return
        assert self._path is not None
        # A bare descriptor read with pread, not a file object: if the server stops while this
        # generator is suspended (it is then never resumed, so ``finally`` never runs), a
        # file object would be left to the garbage collector and its ResourceWarning.
        fd = os.open(self._path, os.O_RDONLY)
        offset = self._start
        try:
            while remaining > 0:
                chunk = await anyio.to_thread.run_sync(
                    os.pread, fd, min(CHUNK_SIZE, remaining), offset
                )
                if not chunk:
                    return
                remaining -= len(chunk)
                offset += len(chunk)
                yield chunk
        finally:
            os.close(fd)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send the headers, then the body chunk by chunk."""
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        if not self._head_only:
            async with anyio.create_task_group() as group:

                async def watch_disconnect() -> None:
                    while True:
                        message = await receive()
                        if message["type"] == "http.disconnect":
                            group.cancel_scope.cancel()
                            return

                group.start_soon(watch_disconnect)
                async with contextlib.aclosing(self._chunks()) as chunks:
                    async for chunk in chunks:
                        body = {"type": "http.response.body", "body": chunk, "more_body": True}
                        await send(body)
                group.cancel_scope.cancel()
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        if self.background is not None:
            await self.background()
