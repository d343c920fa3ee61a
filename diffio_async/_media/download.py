"""Media downloads: stream a signed URL to a temp file beside the target, then ``os.replace``.

Where the bytes go is a :class:`DownloadSink`: a temp file here (:func:`download_to_path`), an
object being uploaded in ``object_sink`` (:func:`download_to_sink`); the HTTP part (resume,
refresh, checks) is the same for both.

The temp file's name is short whatever the target's (see :func:`temp_prefix`), so a target
name near the file system's 255-byte limit still downloads. Only uncompressed bodies are
accepted: an answer with a ``Content-Encoding`` other than ``identity`` is refused with
:class:`DownloadError` before a byte is written (it could inflate without bound, and ``Range``
offsets count stored bytes). The body is written in 1 MiB chunks and never held in memory.

A dropped or truncated transfer resumes with ``Range`` from the bytes already written (or
restarts when the server ignores ``Range``); an expired or refused URL (403) is replaced by a
fresh one from ``get_generation_download``. The size is checked against ``Content-Length``. On
any failure or cancellation the temp file is removed and an existing file at the target is left
untouched. The API key is never sent to a media URL.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import os
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Final, Protocol, TypeVar

import anyio

from .._checks import path_like
from .._http.transport import iter_response_bytes
from ..errors import APIConnectionError, DownloadError, InvalidRequestError, PermissionDeniedError
from ..types import DownloadInfo
from .upload import CHUNK_SIZE, ProgressCallback, closing_shielded

if TYPE_CHECKING:
    from .._http.transport import Transport

__all__ = [
    "MEDIA_SUFFIXES",
    "SERVED_SUFFIX",
    "DownloadSink",
    "check_dest",
    "download_to_path",
    "download_to_sink",
    "is_served_name",
    "resolve_target",
    "served_name",
    "temp_name",
    "temp_prefix",
    "without_media_suffix",
]

MEDIA_SUFFIXES: Final = frozenset(
    {
        *(".mp3", ".wav", ".flac", ".m4a", ".aac", ".ogg", ".oga", ".opus", ".wma", ".aif"),
        *(".aiff", ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".json"),
    }
)
"""The suffixes a served suffix replaces (compared lower-cased); any other is kept and the
served suffix appended: ``take.1`` becomes ``take.1.mp3``, never ``take.mp3``."""

SERVED_SUFFIX: Final = re.compile(r"\.[A-Za-z0-9]{1,7}")
"""What a suffix taken from the server's answer looks like: a dot and up to 7 letters or
digits."""


_P = TypeVar("_P", bound=PurePath)


def without_media_suffix(path: _P) -> _P:
    """``path`` less its suffix when that is a media one (:data:`MEDIA_SUFFIXES`)."""
    return path.with_suffix("") if path.suffix.lower() in MEDIA_SUFFIXES else path


def is_served_name(path: PurePath, named: PurePath) -> bool:
    """Whether ``path`` is a name that :func:`served_name` may give ``named`` (for any
    suffix of the :data:`SERVED_SUFFIX` shape)."""
    base = without_media_suffix(named)
    rest = path.name[len(base.name) :]
    return (
        path.parent == base.parent
        and path.name.startswith(base.name)
        and SERVED_SUFFIX.fullmatch(rest) is not None
    )


def served_name(path: _P, suffix: str) -> _P:
    """``path`` named for a download served with ``suffix``: a media suffix is replaced,
    anything else kept (``talk.wav`` -> ``talk.mp3``, ``talk`` and ``take.1`` gain it)."""
    base = without_media_suffix(path)
    return base.with_name(base.name + suffix)


MAX_URL_REFRESHES = 3
"""How many times an expired or refused media URL is replaced before giving up."""

_READ_SIZE = 64 * 1024
"""Network reads are kept in pieces this small, so a cut transfer loses little; the file is
still written 1 MiB (``CHUNK_SIZE``) at a time."""


_TEMP_HEAD_BYTES = 40
"""How much of the target's name (UTF-8 bytes, whole characters) a temp file's name repeats."""


def temp_prefix(target: Path) -> str:
    """How every temp file name of ``target`` starts (they all end with ``.part``).

    ``.<hash>.<head>.`` where ``<hash>`` is 16 hex digits of the SHA-256 of the whole name and
    ``<head>`` the name's first 40 bytes or fewer, cut between UTF-8 characters: at most 59
    bytes, so a temp name (:func:`temp_name`) is at most 76 whatever the target. Starting
    with the hash, no other name's temp files share this prefix (two long names with the same
    beginning differ in their hash). Sweep a killed run's leftovers of ``target`` with
    ``name.startswith(temp_prefix(target)) and name.endswith(".part")`` in its folder.
    """
    name = target.name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    head, size = [], 0
    for char in name:
        size += len(char.encode("utf-8", "surrogatepass"))
        if size > _TEMP_HEAD_BYTES:
            break
        head.append(char)
    return f".{digest}.{''.join(head)}."


def temp_name(target: Path) -> str:
    """A fresh temp file name for ``target``: :func:`temp_prefix`, a random token, ``.part``."""
    return f"{temp_prefix(target)}{secrets.token_hex(6)}.part"


def check_dest(dest: object, *, name: str = "dest") -> str:
    """``dest`` as a path string, checked before any request is sent.

    Raises :class:`InvalidRequestError` naming the parameter (``name``) when ``dest`` is not
    a path (``None``, a number, bytes), is empty, is a file path in a folder that does not
    exist, or would land in a folder that cannot be written to. A folder target (an existing
    folder, or a path ending with a separator) may not exist yet: the download creates it.
    """
    raw = path_like(name, dest)
    path = Path(raw)
    try:
        if path.is_dir() or raw.endswith((os.sep, "/")):
            folder = path
            while not folder.exists() and folder != folder.parent:
                folder = folder.parent  # the download creates the rest
        else:
            folder = path.parent
            if not folder.is_dir():
                what = "is not a folder" if folder.exists() else "does not exist"
                raise InvalidRequestError(f"{name}: the folder {folder} {what}")
        writable = folder.is_dir() and os.access(folder, os.W_OK)
    except OSError as exc:  # a name too long for the file system, a loop of links, ...
        raise InvalidRequestError(f"{name} {raw} cannot be used: {exc.strerror}") from None
    if not writable:
        raise InvalidRequestError(f"{name}: cannot write to {folder}")
    return raw


def resolve_target(dest: str | os.PathLike[str], file_name: str | None) -> Path:
    """The file to write: ``dest`` itself, or ``dest/<file_name>`` when ``dest`` is a folder.

    A ``dest`` that is an existing folder, or ends with a path separator, is a folder (created
    if needed). The server's file name is reduced to its last path component.
    """
    raw = check_dest(dest)
    path = Path(raw)
    if path.is_dir() or raw.endswith((os.sep, "/")):
        name = Path(file_name or "").name
        if not name or name in (".", ".."):
            raise InvalidRequestError(
                f"dest {raw} is a folder and the server gave no file name; pass a file path"
            )
        path.mkdir(parents=True, exist_ok=True)
        return path / name
    return path


def _total_size(status_code: int, headers: dict[str, str], offset: int) -> int | None:
    if status_code == 206:
        content_range = headers.get("content-range", "")
        _, _, total = content_range.rpartition("/")
        if total.isdigit():
            return int(total)
    length = headers.get("content-length")
    if length is not None and length.isdigit():
        return int(length) + (offset if status_code == 206 else 0)
    return None


class DownloadSink(Protocol):
    """Where a download's bytes go, in order."""

    async def write(self, data: bytes) -> None:
        """Append ``data``."""
        ...

    async def restart(self) -> None:
        """Drop everything written so far (the server ignored ``Range``: it starts over)."""
        ...


class _FileSink:
    """A temp file open for writing."""

    def __init__(self, out: anyio.AsyncFile[bytes]) -> None:
        self._out = out

    async def write(self, data: bytes) -> None:
        await self._out.write(data)

    async def restart(self) -> None:
        await self._out.seek(0)
        await self._out.truncate()


async def download_to_sink(
    transport: Transport,
    *,
    info: DownloadInfo,
    refresh: Callable[[], Awaitable[DownloadInfo]],
    sink: DownloadSink,
    on_progress: ProgressCallback | None = None,
) -> None:
    """Stream ``info.download_url`` into ``sink`` (resumed, refreshed and checked as
    :func:`download_to_path` is); the caller commits or discards the sink."""
    await _fetch(transport, info, refresh, sink, on_progress)


async def download_to_path(
    transport: Transport,
    *,
    info: DownloadInfo,
    refresh: Callable[[], Awaitable[DownloadInfo]],
    dest: str | os.PathLike[str],
    on_progress: ProgressCallback | None = None,
) -> Path:
    """Download ``info.download_url`` to ``dest`` atomically; return the final path.

    ``refresh`` fetches a new :class:`DownloadInfo` when the URL has expired.
    """
    if on_progress is not None and not callable(on_progress):
        raise InvalidRequestError(
            f"on_progress must be callable or None, not {type(on_progress).__name__}"
        )
    target = await anyio.to_thread.run_sync(resolve_target, dest, info.file_name)
    # The temp file's name is chosen before it exists, so that whatever interrupts its creation
    # (even a cancellation delivered after the thread that created it returns) removes it.
    temp = target.with_name(temp_name(target))
    try:
        with anyio.CancelScope(shield=True):  # an open finishing after a cancel is still closed
            out = await anyio.open_file(temp, "xb")
        try:
            await _fetch(transport, info, refresh, _FileSink(out), on_progress)
        finally:
            with anyio.CancelScope(shield=True):
                await out.aclose()
        await anyio.to_thread.run_sync(os.replace, temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)  # no await: runs even when the task is being cancelled
        raise
    return target


async def _fetch(
    transport: Transport,
    info: DownloadInfo,
    refresh: Callable[[], Awaitable[DownloadInfo]],
    out: DownloadSink,
    on_progress: ProgressCallback | None,
) -> None:
    url = info.download_url
    written = 0
    total: int | None = None
    refreshes = 0
    resumes = 0  # consecutive attempts that ended early without adding a byte
    buffer = bytearray()

    async def flush() -> None:
        """Write what was received so far: a resumed attempt starts right after it."""
        nonlocal written
        if not buffer:
            return
        await out.write(bytes(buffer))
        written += len(buffer)
        buffer.clear()
        if on_progress is not None:
            result = on_progress(written, total or written)
            if inspect.isawaitable(result):
                await result

    while True:
        before = written
        # identity: Range offsets and Content-Length must count the bytes we write.
        headers = {"Accept-Encoding": "identity"}
        if written:
            headers["Range"] = f"bytes={written}-"
        try:
            async with transport.send_media(
                "GET", url, endpoint="media", headers=headers, stream_response=True
            ) as response:
                _refuse_encoded(response.headers, info.generation_id)
                if written and _range_start(response.status_code, response.headers) != written:
                    # The server ignored Range (or answered another one): start over.
                    await out.restart()
                    written = 0
                total = _total_size(response.status_code, dict(response.headers), written)
                pieces = iter_response_bytes(response, endpoint="media", chunk_size=_READ_SIZE)
                async with closing_shielded(pieces):
                    async for piece in pieces:
                        buffer += piece
                        if len(buffer) >= CHUNK_SIZE:
                            await flush()
            await flush()
        except PermissionDeniedError:
            refreshes += 1
            if refreshes > MAX_URL_REFRESHES:
                raise
            await flush()
            url = (await refresh()).download_url
            continue
        except APIConnectionError:
            await flush()
            resumes = 0 if written > before else resumes + 1
            if resumes > transport.retry.max_retries:
                raise
            continue
        if total is None or written == total:
            break
        if written > total:
            raise DownloadError(
                f"the media URL sent {written} bytes but announced {total}",
                generation_id=info.generation_id,
            )
        # A short body without an error: resume from where it stopped.
        resumes = 0 if written > before else resumes + 1
        if resumes > transport.retry.max_retries:
            raise DownloadError(
                f"the download stopped at {written} of {total} bytes",
                generation_id=info.generation_id,
            )


def _refuse_encoded(headers: Mapping[str, str], generation_id: str | None) -> None:
    """Raise :class:`DownloadError` unless the body is stored as sent (no or ``identity``
    ``Content-Encoding``): httpx2 would inflate a compressed one without bound."""
    encoding = headers.get("content-encoding", "")
    codings = [token.strip().lower() for token in encoding.split(",")]
    if all(coding in ("", "identity") for coding in codings):
        return
    shown = encoding if len(encoding) <= 40 else encoding[:40] + "..."
    raise DownloadError(
        f"the media URL answered a compressed body (Content-Encoding: {shown!r}) although "
        "identity was asked for; refusing to inflate it to disk",
        generation_id=generation_id,
    )


def _range_start(status_code: int, headers: Mapping[str, str]) -> int | None:
    """Where a 206 answer starts (``Content-Range: bytes <start>-<end>/<total>``)."""
    if status_code != 206:
        return None
    unit, _, spec = headers.get("content-range", "").partition(" ")
    start, _, _ = spec.partition("-")
    return int(start) if unit.lower() == "bytes" and start.isdigit() else None
