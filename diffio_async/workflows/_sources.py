"""Turn ``restore_many``'s sources into jobs: which file, which output, or why it is refused.

The rules, chosen so that no layout can overwrite an output or bill one file twice:

* A source is identified by the file it resolves to (device and inode, through symlinks and
  hard links; the ledger key is its real path). The same file given twice, absolute and
  relative, or reached through a link, is one item.
* A folder is walked one directory at a time; each directory (by device and inode) is walked
  once, so a symlink loop ends. Hidden entries (``.name``) are skipped, and so is
  ``output_dir`` when it lies inside the folder. ``output_dir`` equal to a source folder is
  refused.
* Folder sources mirror their layout under ``output_dir``: ``src/a/x.wav`` becomes
  ``out/a/x.mp3``. A file given directly goes to ``out/x.mp3``.
* When the server decides the output's type (``suffix=None``: the default download type,
  the video of a project with video, otherwise the MP3), the suffix is known only at the
  download. The planned output then keeps the source's suffix (``out/a/x.wav``; the
  download replaces a media suffix by the served one and appends it to any other: see
  ``served_name``) and outputs are claimed by their name *without* a media suffix, so
  whatever suffix each gets, two outputs never meet: ``x.wav`` and ``x.mp4`` in one folder
  collide, as ``take.wav`` and ``take.flac`` always have. A source restored in place whose
  output could be served under its own name is refused (an audio upload, by
  ``content_type`` or else by its name, comes back as MP3; anything else may keep its
  container).
* Two distinct sources wanting one output (``a/x.wav`` and ``b/x.wav`` given directly,
  ``take.wav`` and ``take.flac``, two folders with the same layout) *collide*. With
  ``on_collision="error"`` (the default) a batch given as a list, tuple, set or folder is
  refused before anything is created (:class:`OutputCollisionError` lists the clashes); in a
  lazily iterated batch the later source fails as its own item. With ``on_collision="rename"``
  every source of a contested output gets ``-<8 hex digits of its real path>`` before the
  suffix, so the names do not depend on the order of the sources (in a lazily iterated batch,
  where the contest is only seen when it happens, the first source keeps the plain name).
  Outputs are compared as a case-insensitive, Unicode-normalising file system would (macOS,
  Windows): ``Take.wav`` and ``take.wav`` collide. A file output where another output needs
  a folder (``x.wav`` and ``x.mp3/y.wav``) collides too.
* A source given as a URL (``s3://bucket/in/``, any fsspec protocol; see
  ``_media.object_store``) is an object or a prefix on storage: identified by its URL
  (``protocol://path``, the ledger key), a prefix walked one folder at a time like a local
  folder (hidden names and "folder marker" keys skipped), its layout mirrored the same way.
  ``output_dir`` may be a URL too (``Walker(output_store=...)``); outputs are then paths on
  that filesystem (``PurePosixPath``), and the same collision rules apply to them (names
  compared folded, as on a local file system: the safe side).
* Non-regular files (FIFOs, devices, sockets), empty files, broken links, unreadable folders,
  names that are not UTF-8, outputs whose name would be over 255 bytes and sources that are
  not paths become failed items before any request, never exceptions of the batch.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import mimetypes
import os
import stat
import unicodedata
from collections.abc import AsyncGenerator, AsyncIterable, Collection, Iterable
from pathlib import Path, PurePath, PurePosixPath
from typing import Literal, TypeVar

import anyio
import attrs

from .._checks import path_like
from .._media.download import without_media_suffix
from .._media.object_store import StoredObject, is_url, list_folder, locate, shown_url, stat_object
from ..errors import InvalidRequestError, OutputCollisionError

__all__ = [
    "Collision",
    "Job",
    "Placed",
    "Walker",
    "collision_error",
    "find_collisions",
    "placements",
    "uploads_audio",
]

Collision = Literal["error", "rename"]
"""What ``restore_many`` does when two sources want one output file."""

_FileId = tuple[int, int]
_P = TypeVar("_P", bound=PurePath)


@attrs.define
class Job:
    """One source to restore: ``source`` as given or walked, ``key`` its real path or URL
    (the ledger key), ``output`` where the result goes (a path on the output filesystem);
    ``refused`` is set when the item must fail before any request."""

    source: str
    key: str
    output: PurePath
    refused: InvalidRequestError | None = None
    size: int = 0
    """Bytes, as the walk saw them (0 for a refused source)."""
    stored: StoredObject | None = None
    """The object a URL source names (``None`` for a local file)."""


@attrs.frozen(kw_only=True)
class Placed:
    """A source whose output's place under ``output_dir`` was decided before: ``relative``,
    a POSIX path (``a/x.wav``; the suffix is replaced as a walk's would be), as the walk that
    registered a shared batch's ``source`` (a path or URL) placed it. As a path it is its
    source, so ``restore_many`` takes it where it takes a path."""

    source: str
    relative: str

    def __fspath__(self) -> str:
        """The source."""
        return self.source


@attrs.frozen
class _Entry:
    name: str
    kind: Literal["dir", "file", "other"]
    file_id: _FileId | None
    problem: str | None = None
    size: int = 0


def _file_id(result: os.stat_result) -> _FileId:
    return (result.st_dev, result.st_ino)


_Kind = tuple[Literal["dir", "file", "other"], _FileId | None, str | None, int]
"""What a path is (see :func:`_kind`): kind, identity, why it is refused, size in bytes."""

_STAT_BATCH = 256
"""How many listed sources one worker-thread call looks at."""


def _as_path(value: object) -> str | None:
    """``value`` as a usable path string (``_checks.path_like``'s rule), or ``None``."""
    try:
        return path_like("source", value)
    except InvalidRequestError:
        return None


def _kinds(values: list[object]) -> list[_Kind | None]:
    """:func:`_kind` of each value that is a local path (runs in a worker thread)."""
    return [
        None if is_url(value) or (raw := _as_path(value)) is None else _kind(raw)
        for value in values
    ]


def _kind(path: str) -> _Kind:
    """What ``path`` is once symlinks are followed (runs in a worker thread)."""
    try:
        result = os.stat(path)
    except FileNotFoundError:
        return "other", None, "no such file (or a broken link)", 0
    except OSError as exc:
        return "other", None, f"cannot be read ({exc.strerror or exc})", 0
    if stat.S_ISDIR(result.st_mode):
        return "dir", _file_id(result), None, 0
    if stat.S_ISREG(result.st_mode):
        if result.st_size == 0:
            return "other", _file_id(result), "is empty; nothing to restore", 0
        return "file", _file_id(result), None, result.st_size
    return "other", _file_id(result), "is not a regular file (a FIFO, device or socket)", 0


def _scan(folder: str) -> list[_Entry] | str:
    """The non-hidden entries of ``folder`` sorted by name, or why it cannot be listed."""
    try:
        with os.scandir(folder) as listing:
            names = sorted(entry.name for entry in listing if not entry.name.startswith("."))
    except OSError as exc:
        return f"cannot be listed ({exc.strerror or exc})"
    entries = []
    for name in names:
        entries.append(_Entry(name, *_kind(os.path.join(folder, name))))
    return entries


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]


class Walker:
    """Walks sources into :class:`Job` s, remembering what it has seen (files, folders and
    outputs) so that nothing is restored twice and no output is claimed twice."""

    def __init__(
        self,
        output_dir: PurePath,
        suffix: str | None,
        on_collision: Collision,
        contested: Collection[str] = (),
        content_type: str | None = None,
        output_store: StoredObject | None = None,
    ) -> None:
        self.output_dir = output_dir
        self.output_store = output_store
        """The output folder on object storage (``output_dir`` is then its path there)."""
        self.suffix = suffix
        """The outputs' suffix (``""``: the source's own; ``None``: chosen at the download)."""
        self.content_type = content_type
        """The media type every source is uploaded as (``RestoreOptions.content_type``), or
        ``None`` when each one's is guessed from its name."""
        self.on_collision = on_collision
        self.contested = frozenset(self._unshown(output) for output in contested)
        self._output_id: _FileId | None = None
        self._walked: set[_FileId] = set()
        self._walked_urls: set[str] = set()
        self._files: set[_FileId | str] = set()  # local files by identity, objects by URL
        self._outputs: dict[str, str] = {}  # folded output path -> the source writing it
        self._folders: dict[str, str] = {}  # folded folder of an output -> a source inside
        self.clashes: dict[str, list[str]] = {}
        """Outputs wanted by more than one source (filled when ``on_collision="error"``)."""

    async def jobs(
        self, sources: str | os.PathLike[str] | Iterable[object] | AsyncIterable[object]
    ) -> AsyncGenerator[Job, None]:
        """Yield a job per distinct source file, lazily."""
        if self.output_store is None:
            self._output_id = await anyio.to_thread.run_sync(_existing_id, self.output_dir)
        if isinstance(sources, str | os.PathLike):
            async with contextlib.aclosing(self._one(sources)) as jobs:
                async for job in jobs:
                    yield job
        elif isinstance(sources, AsyncIterable):
            async for value in sources:
                async with contextlib.aclosing(self._one(value)) as jobs:
                    async for job in jobs:
                        yield job
        else:
            values = iter(sources)
            # A list of files is looked at _STAT_BATCH paths per worker-thread call, not one.
            while batch := list(itertools.islice(values, _STAT_BATCH)):
                kinds = await anyio.to_thread.run_sync(_kinds, batch)
                for value, kind in zip(batch, kinds, strict=True):
                    async with contextlib.aclosing(self._one(value, kind)) as jobs:
                        async for job in jobs:
                            yield job

    def relative(self, job: Job) -> str:
        """Where ``job`` puts its output under ``output_dir`` (POSIX separators): what
        :class:`Placed` takes back."""
        return PurePath(job.output).relative_to(self.output_dir).as_posix()

    async def _one(self, value: object, known: _Kind | None = None) -> AsyncGenerator[Job, None]:
        if isinstance(value, Placed):
            async with contextlib.aclosing(self._placed(value)) as jobs:
                async for job in jobs:
                    yield job
            return
        if isinstance(value, str) and is_url(value):
            async with contextlib.aclosing(self._stored(value)) as jobs:
                async for job in jobs:
                    yield job
            return
        raw = _as_path(value)
        if raw is None:
            text = repr(value)[:80]
            yield self._refused(text, f"{text} is not a non-empty path (str or os.PathLike)")
            return
        if known is None:
            known = await anyio.to_thread.run_sync(_kind, raw)
        kind, file_id, problem, size = known
        if kind == "dir":
            assert file_id is not None
            if file_id == self._output_id:
                raise InvalidRequestError(
                    f"output_dir is the source folder {raw} itself: its outputs would be "
                    "restored again on the next run; pick another output_dir"
                )
            async with contextlib.aclosing(self._walk(raw, file_id)) as jobs:
                async for job in jobs:
                    yield job
        elif kind == "file":
            assert file_id is not None
            single = self._file(raw, PurePath(Path(raw).name), file_id, size)
            if single is not None:
                yield single
        else:
            yield self._refused(raw, f"{raw} {problem}")

    async def _placed(self, placed: Placed) -> AsyncGenerator[Job, None]:
        """The job of a source placed before: the file (or object) it names, its output at
        its relative path (refused unless it stays inside ``output_dir``)."""
        source = placed.source
        problem = _unsafe_relative(placed.relative)
        if problem is not None:
            yield self._refused(
                source, f"the output path {placed.relative!r} of {source} {problem}"
            )
            return
        relative = PurePosixPath(placed.relative)
        if is_url(source):
            try:
                root = await anyio.to_thread.run_sync(locate, source)
            except InvalidRequestError as exc:
                yield self._refused(shown_url(source), str(exc))
                return
            kind, size, reason = await anyio.to_thread.run_sync(stat_object, root)
            if kind == "file" and size > 0:
                job = self._file(root.url, relative, root.url, size, root)
            else:
                job = self._refused(root.url, f"{root.url} {reason or _NOT_A_FILE}")
        else:
            local, file_id, trouble, length = await anyio.to_thread.run_sync(_kind, source)
            if local == "file":
                assert file_id is not None
                job = self._file(source, relative, file_id, length)
            else:
                job = self._refused(source, f"{source} {trouble or _NOT_A_FILE}")
        if job is not None:
            yield job

    async def _walk(self, root: str, root_id: _FileId) -> AsyncGenerator[Job, None]:
        self._walked.add(root_id)
        pending = [Path(root)]
        while pending:
            folder = pending.pop()
            listing = await anyio.to_thread.run_sync(_scan, str(folder))
            if isinstance(listing, str):
                yield self._refused(str(folder), f"the folder {folder} {listing}")
                continue
            for entry in listing:
                path = folder / entry.name
                if entry.kind == "dir":
                    assert entry.file_id is not None
                    if entry.file_id in self._walked or entry.file_id == self._output_id:
                        continue  # already walked (a link loop), or our own outputs
                    self._walked.add(entry.file_id)
                    pending.append(path)
                elif entry.kind == "file":
                    assert entry.file_id is not None
                    job = self._file(str(path), path.relative_to(root), entry.file_id, entry.size)
                    if job is not None:
                        yield job
                else:
                    yield self._refused(str(path), f"{path} {entry.problem}")

    async def _stored(self, url: str) -> AsyncGenerator[Job, None]:
        """The jobs of a URL source: an object, or a prefix walked one folder at a time."""
        shown = shown_url(url)
        try:
            root = await anyio.to_thread.run_sync(locate, url)
        except InvalidRequestError as exc:  # an unknown protocol, no bucket
            yield self._refused(shown, str(exc))
            return
        kind, size, problem = await anyio.to_thread.run_sync(stat_object, root)
        if kind == "file":
            if size == 0:
                yield self._refused(root.url, f"{root.url} is empty; nothing to restore")
                return
            name = PurePosixPath(PurePosixPath(root.path).name)
            job = self._file(root.url, name, root.url, size, root)
            if job is not None:
                yield job
        elif kind == "dir":
            if self._is_output(root):
                raise InvalidRequestError(
                    f"output_dir is the source folder {root.url} itself: its outputs would be "
                    "restored again on the next run; pick another output_dir"
                )
            async with contextlib.aclosing(self._walk_stored(root)) as jobs:
                async for job in jobs:
                    yield job
        else:
            yield self._refused(root.url, f"{root.url} {problem}")

    def _is_output(self, folder: StoredObject) -> bool:
        out = self.output_store
        return out is not None and out.protocol == folder.protocol and out.path == folder.path

    async def _walk_stored(self, root: StoredObject) -> AsyncGenerator[Job, None]:
        if root.url in self._walked_urls:
            return
        self._walked_urls.add(root.url)
        pending = [root]
        while pending:
            folder = pending.pop()
            listing = await anyio.to_thread.run_sync(list_folder, folder)
            if isinstance(listing, str):
                yield self._refused(folder.url, f"the folder {folder.url} {listing}")
                continue
            for entry in listing:
                child = root.at(entry.path)
                if entry.kind == "dir":
                    if child.url not in self._walked_urls and not self._is_output(child):
                        self._walked_urls.add(child.url)
                        pending.append(child)
                elif entry.size == 0:
                    yield self._refused(child.url, f"{child.url} is empty; nothing to restore")
                else:
                    relative = PurePosixPath(entry.path).relative_to(root.path)
                    job = self._file(child.url, relative, child.url, entry.size, child)
                    if job is not None:
                        yield job

    def _file(
        self,
        source: str,
        relative: PurePath,
        file_id: _FileId | str,
        size: int,
        stored: StoredObject | None = None,
    ) -> Job | None:
        if file_id in self._files:
            return None  # the same file again (given twice, or through a link): one item
        self._files.add(file_id)
        key = os.path.realpath(source) if stored is None else stored.url
        if not _is_utf8(key):
            return self._refused(key, f"{key}: its name is not valid UTF-8; rename it")
        plain = self.output_dir / relative.with_suffix(self.suffix or relative.suffix)
        attempt = 0
        output = _renamed(plain, key, attempt) if self._name(plain) in self.contested else plain
        while (claimant := self._claimant(output)) is not None:
            if self.on_collision == "error":
                self.clashes.setdefault(self._shown(plain), [claimant]).append(source)
                error = OutputCollisionError(
                    f"{source} would be written to {self._shown(output)}, which {claimant} "
                    'already takes (pass on_collision="rename", or restore them to different '
                    "folders)",
                    clashes={self._shown(output): (claimant, source)},
                )
                return Job(source=source, key=source, output=output, refused=error)
            output = _renamed(plain, key, attempt)
            attempt += 1
        # A suffix the server chooses may be longer than the source's: keep room for it.
        longest = (
            output.name
            if self.suffix is not None
            else without_media_suffix(output).name + "." * _SUFFIX_ROOM
        )
        if len(longest.encode("utf-8")) > _MAX_NAME_BYTES:
            return self._refused(
                source, f"the output name for {source} would be over {_MAX_NAME_BYTES} bytes"
            )
        if self._may_be_served_as_source(output, key):
            return self._refused(source, f"the output of {source} would overwrite the source")
        self._claim(output, source)
        return Job(source=source, key=key, output=output, size=size, stored=stored)

    def _may_be_served_as_source(self, output: PurePath, key: str) -> bool:
        """Whether the download may write over the source (real path ``key``). With a fixed
        suffix: when the output is the source. With the server choosing (see
        ``served_name``): when the source is the output's name but for a media suffix, unless
        the source is uploaded as audio (``content_type``, else guessed from its name): an
        audio project comes back as MP3, so ``talk.wav`` restored in place is safe but
        ``talk.mp3`` is not; anything else may come back in its own container."""
        written = self.full_name(output)
        if self.suffix is not None:
            return written == key
        source = PurePath(key)
        base = without_media_suffix(PurePath(written))
        if base != source.with_suffix("") or source == base:
            return False
        return not uploads_audio(key, self.content_type) or source.suffix.lower() == ".mp3"

    def full_name(self, output: PurePath) -> str:
        """What ``output`` is called as a source would be: its URL on object storage, else
        its real path."""
        if self.output_store is not None:
            return self.output_store.at(str(output)).url
        return os.path.realpath(output)

    def _claimant(self, output: PurePath) -> str | None:
        """Which source already takes ``output``: as its output, as a folder of its output,
        or by having its output where ``output`` needs a folder. Names are compared the way a
        case-insensitive, normalising file system (macOS, Windows) would."""
        name = self._name(output)
        claimant = self._outputs.get(name) or self._folders.get(name)
        for parent in _parents_below(output, self.output_dir):
            folder = self._folder_name(parent)
            claimant = claimant or (self._outputs.get(folder) if folder else None)
        return claimant

    def _claim(self, output: PurePath, source: str) -> None:
        self._outputs[self._name(output)] = source
        for parent in _parents_below(output, self.output_dir):
            folder = self._folder_name(parent)
            if folder:
                self._folders.setdefault(folder, source)

    def _shown(self, output: PurePath) -> str:
        """``output`` as errors show it: ``out/x.*`` when the download chooses the suffix."""
        return str(output) if self.suffix is not None else f"{without_media_suffix(output)}.*"

    def _unshown(self, shown: str) -> str:
        """The :meth:`_name` of an output as :meth:`_shown` shows it."""
        return _fold(PurePath(shown.removesuffix(".*") if self.suffix is None else shown))

    def _name(self, output: PurePath) -> str:
        """What two outputs are compared by: the folded path, less a media suffix when the
        suffix is only chosen at the download."""
        return _fold(without_media_suffix(output) if self.suffix is None else output)

    def _folder_name(self, folder: PurePath) -> str | None:
        """What a folder of an output is compared with outputs by (:meth:`_name`'s terms):
        ``None`` when no output can be that folder (with a suffix chosen at the download, a
        folder without a media suffix: every output ends with a served one)."""
        if self.suffix is not None:
            return _fold(folder)
        base = without_media_suffix(folder)
        return _fold(base) if base != folder else None

    def _refused(self, source: str, message: str) -> Job:
        shown = source.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        message = message.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        return Job(
            source=shown, key=shown, output=self.output_dir, refused=InvalidRequestError(message)
        )


_NOT_A_FILE = "is not the file registered (a folder now, or empty)"

_MAX_NAME_BYTES = 255
"""The longest file name most file systems take (ext4, APFS, NTFS in UTF-16 units)."""

_SUFFIX_ROOM = 8
"""Bytes kept free in a planned name whose suffix the server chooses (a dot and up to 7)."""


def _fold(path: PurePath) -> str:
    """``path`` as a case-insensitive, Unicode-normalising file system sees it."""
    return unicodedata.normalize("NFC", str(path)).casefold()


def _renamed(output: _P, key: str, attempt: int) -> _P:
    """``output`` with ``-<8 hex digits>`` of the source's real path (and the attempt, past
    the first) before its suffix."""
    salt = key if attempt == 0 else f"{key}#{attempt}"
    return output.with_name(f"{output.stem}-{_short_hash(salt)}{output.suffix}")


def _parents_below(path: PurePath, top: PurePath) -> list[PurePath]:
    """The folders between ``top`` (excluded) and ``path`` (excluded)."""
    parents = []
    for parent in path.parents:
        if parent == top or len(parent.parts) <= len(top.parts):
            break
        parents.append(parent)
    return parents


def uploads_audio(source: str, content_type: str | None) -> bool:
    """Whether ``source`` is uploaded as audio (``content_type``, else guessed from its name),
    so that the server's default download type serves it as MP3."""
    kind = content_type or mimetypes.guess_type(source)[0] or ""
    return kind.startswith("audio/")


def _unsafe_relative(text: str) -> str | None:
    """Why ``text`` cannot be an output's path under ``output_dir`` (``None``: it can): not a
    relative POSIX path of plain names (empty, absolute, ``..``, ``.``, empty parts, a NUL,
    a drive), or not UTF-8. The name's length is checked as any output's."""
    if not isinstance(text, str) or not text:
        return "is empty"
    if not _is_utf8(text) or "\0" in text:
        return "is not valid UTF-8 text"
    if text.startswith("/") or PurePath(text).is_absolute() or PurePath(text).drive:
        return "is absolute; it must stay inside output_dir"
    if any(part in ("", ".", "..") for part in text.split("/")):
        return "has an empty, '.' or '..' part; it must stay inside output_dir"
    return None


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes of a file name (surrogate escapes)
        return False
    return True


def _existing_id(path: PurePath) -> _FileId | None:
    try:
        return _file_id(os.stat(path))
    except OSError:
        return None


async def find_collisions(
    sources: str | os.PathLike[str] | Collection[object],
    output_dir: PurePath,
    suffix: str | None,
    content_type: str | None = None,
    output_store: StoredObject | None = None,
) -> dict[str, list[str]]:
    """Walk a whole (non-lazy) batch once: the outputs that more than one source wants."""
    walker = Walker(
        output_dir, suffix, "error", content_type=content_type, output_store=output_store
    )
    async with contextlib.aclosing(walker.jobs(sources)) as jobs:
        async for _ in jobs:
            pass
    return walker.clashes


async def placements(
    sources: str | os.PathLike[str] | Iterable[object] | AsyncIterable[object],
) -> list[tuple[str, str]]:
    """The files ``sources`` names (hidden files and links seen twice left out), each by its
    ledger key (real path or URL) with where its output goes under ``output_dir`` (a folder's
    layout mirrored; an output wanted twice renamed, as ``on_collision="rename"`` does, and
    compared as if the server chose the suffix: safe whatever suffix a worker asks for).
    Raises the refusal of a refused source. Nothing is written: the folder only names
    outputs."""
    walker = Walker(PurePath(os.devnull), None, "rename")
    found: list[tuple[str, str]] = []
    async with contextlib.aclosing(walker.jobs(sources)) as jobs:
        async for job in jobs:
            if job.refused is not None:
                raise job.refused
            found.append((job.key, walker.relative(job)))
    return found


def collision_error(clashes: dict[str, list[str]]) -> OutputCollisionError:
    """The error that refuses a batch, listing (some of) its clashes."""
    shown = sorted(clashes.items())[:5]
    listing = "; ".join(f"{output} <- {', '.join(wanted)}" for output, wanted in shown)
    more = f" (and {len(clashes) - 5} more)" if len(clashes) > 5 else ""
    return OutputCollisionError(
        f"{len(clashes)} output file(s) would be written by more than one source: "
        f'{listing}{more}. Pass on_collision="rename" or use separate output folders.',
        clashes={output: tuple(wanted) for output, wanted in clashes.items()},
    )
