"""The user's paths, checked before any work (one line and exit 2 when unusable), and the
number of files a restore will report, counted by the bulk runner's own rules."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path, PurePath, PurePosixPath

from .._media.object_store import StoredObject, is_url, locate, shown_url
from ..errors import ConfigurationError, InvalidRequestError, LedgerError
from ..workflows._sources import Collision, Walker
from ..workflows.ledger._location import is_postgres_url, redact_url, sqlite_path
from ._errors import UsageError
from ._extras import require_extra

__all__ = [
    "check_download_target",
    "check_ledger",
    "check_output_dir",
    "check_paths",
    "check_url",
    "count_files",
]


def check_paths(paths: Sequence[str], output_dir: str, ledger: str | None) -> None:
    """Fail fast on missing or unreadable inputs, an unusable ledger or an unwritable output
    folder (created when missing). A URL (``s3://...``) needs the ``cloud`` extra and a known
    protocol; what is behind it is seen when the batch walks it (no request here)."""
    for raw in paths:
        if is_url(raw):
            check_url(raw, "source")
            continue
        path = Path(raw)
        if not path.exists():
            raise UsageError(f"no such file or folder: {raw}")
        if not os.access(path, os.R_OK):
            raise UsageError(f"cannot read {raw}")
    if ledger is not None:
        check_ledger(ledger)
    if is_url(output_dir):
        check_url(output_dir, "--output-dir")
    else:
        check_output_dir(output_dir)


def check_url(raw: str, what: str) -> StoredObject:
    """The filesystem of a URL source or output folder: one line naming the ``pip install``
    when the ``cloud`` extra is missing, or why the URL cannot be used."""
    require_extra("cloud", f"{what} {shown_url(raw)}")
    try:
        return locate(raw, what=what)
    except (ConfigurationError, InvalidRequestError) as exc:
        raise UsageError(str(exc)) from None


async def count_files(paths: Sequence[str], output_dir: str, on_collision: Collision) -> int:
    """How many results ``restore_many`` will yield for ``paths``: one per job of its
    :class:`~diffio_async.workflows._sources.Walker` (a distinct file, or a refused entry), so
    hidden files, links to a file already seen and ``output_dir`` inside a source folder are
    left out exactly as the batch leaves them out. Call it once ``output_dir`` exists."""
    # The suffix only names outputs (and so which of them collide); every job is one result
    # whatever its output is called, so the count does not depend on it.
    store = check_url(output_dir, "--output-dir") if is_url(output_dir) else None
    out: PurePath = Path(output_dir) if store is None else PurePosixPath(store.path)
    walker = Walker(out, "", on_collision, output_store=store)
    total = 0
    try:
        async with contextlib.aclosing(walker.jobs(paths)) as jobs:
            async for _ in jobs:
                total += 1
    except InvalidRequestError as exc:  # output_dir is a source folder itself
        raise UsageError(str(exc)) from None
    return total


def check_output_dir(output_dir: str) -> None:
    """Create ``output_dir`` if needed and make sure a file can be written in it."""
    try:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        _probe(Path(output_dir))
    except OSError as exc:
        raise UsageError(f"cannot write to {output_dir}: {exc.strerror or exc}") from None


def _probe(folder: Path) -> None:
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".diffio-async-probe-"):
        pass


def check_ledger(raw: str) -> None:
    """The ledger must be a (new or existing) regular file in a folder we can write to
    (SQLite keeps its journal beside it), or a ``postgresql://`` URL with its driver installed
    (the server itself is reached when the batch starts)."""
    if is_postgres_url(raw):
        require_extra("postgres", f"--ledger {redact_url(raw)}")
        return
    try:
        path = Path(sqlite_path(raw))
    except LedgerError as exc:
        raise UsageError(str(exc)) from None
    if path.is_dir():
        raise UsageError(f"--ledger {raw} is a folder; name a file, e.g. {path / 'batch.sqlite'}")
    if path.exists() and not path.is_file():
        raise UsageError(f"--ledger {raw} is not a regular file")
    _check_writable_folder(path.parent, f"--ledger {raw}")
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise UsageError(f"--ledger {raw} is read-only")


def check_download_target(raw: str) -> None:
    """``download -o``: a folder (existing, or ending with a separator) we can write in, or a
    file whose folder exists and is writable. Checked before asking the server."""
    path = Path(raw)
    if path.is_dir() or raw.endswith((os.sep, "/")):
        if path.exists() and not path.is_dir():
            raise UsageError(f"cannot write to {raw}: it is a file, not a folder")
        check_output_dir(raw)
        return
    _check_writable_folder(path.parent, f"cannot write {raw}")


def _check_writable_folder(folder: Path, context: str) -> None:
    """``folder`` exists, is a folder, and a file can be created in it."""
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise UsageError(f"{context}: {folder} {what}")
    try:
        _probe(folder)
    except OSError as exc:
        raise UsageError(f"{context}: cannot write in {folder}: {exc.strerror}") from None
