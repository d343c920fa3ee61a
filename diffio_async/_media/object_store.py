"""Objects on storage reached through fsspec (``s3://``, ``gs://``, ``az://``, ``memory://``...):
which filesystem a URL names, what is at a path, a folder listed one level at a time.

fsspec and each protocol's package (s3fs for ``s3://``, the ``cloud`` extra) are imported only
when a URL is used. Credentials come from each filesystem's own environment and config (for
s3fs: ``AWS_ACCESS_KEY_ID``, ``~/.aws``, ``AWS_ENDPOINT_URL``...); a URL is shown and recorded
only as ``protocol://path``, never with credentials, and errors name an exception's type and
``strerror``, never its text (a library's message may quote a request). Every call here
blocks: run it in a worker thread.
"""

from __future__ import annotations

import importlib
import posixpath
import re
from typing import Any, Literal

import attrs

from ..errors import ConfigurationError, InvalidRequestError

__all__ = [
    "CLOUD_HINT",
    "Listed",
    "StoredObject",
    "bucket_missing",
    "is_url",
    "list_folder",
    "locate",
    "object_exists",
    "shown_url",
    "stat_object",
]

CLOUD_HINT = "pip install 'diffio-async[cloud]'"
"""The install that adds fsspec and s3fs."""

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/@]*@")


def is_url(value: object) -> bool:
    """Whether ``value`` is a string naming an object by URL (``scheme://...``); a plain path
    never is (``C:\\x`` and ``a/b:c`` have no ``://``)."""
    return isinstance(value, str) and _SCHEME.match(value) is not None


def shown_url(url: str) -> str:
    """``url`` as errors may show it: credentials (``user:secret@``) and query cut off."""
    return _USERINFO.sub(r"\1", url).partition("?")[0].partition("#")[0]


@attrs.frozen(kw_only=True)
class StoredObject:
    """A path on an fsspec filesystem: ``url`` is ``protocol://path``, with no credentials."""

    fs: Any = attrs.field(repr=False, eq=False)
    protocol: str
    path: str

    @property
    def url(self) -> str:
        """``protocol://path``: the ledger key of a source, the recorded output."""
        return f"{self.protocol}://{self.path}"

    def at(self, path: str) -> StoredObject:
        """Another path on the same filesystem."""
        return StoredObject(fs=self.fs, protocol=self.protocol, path=path)


def _fsspec() -> Any:
    try:
        return importlib.import_module("fsspec")
    except ModuleNotFoundError as exc:
        if exc.name != "fsspec":
            raise
        raise ConfigurationError(
            f"object storage URLs need the 'cloud' extra (fsspec is not installed): {CLOUD_HINT}"
        ) from None


def locate(url: str, *, what: str = "source") -> StoredObject:
    """The filesystem and path ``url`` names (no request is sent).

    Raises :class:`ConfigurationError` when the ``cloud`` extra (or the protocol's package) is
    missing, :class:`InvalidRequestError` for an unknown protocol or a URL without a bucket.
    """
    shown = shown_url(url)
    match = _SCHEME.match(url)
    if match is None:
        raise InvalidRequestError(f"{what} {shown} is not a URL")
    protocol = match.group(1).lower()
    fsspec = _fsspec()
    try:
        fsspec.get_filesystem_class(protocol)
    except ValueError:
        raise InvalidRequestError(
            f"{what} {shown}: unknown protocol {protocol!r} (no fsspec filesystem has it)"
        ) from None
    except ImportError as exc:
        if protocol in ("s3", "s3a"):
            raise ConfigurationError(
                f"{what} {shown} needs the 'cloud' extra (s3fs is not installed): {CLOUD_HINT}"
            ) from None
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigurationError(f"{what} {shown} needs a package: {first}") from None
    try:
        fs, path = fsspec.core.url_to_fs(protocol + shown[len(protocol) :])
    except Exception as exc:  # a filesystem refusing its arguments
        raise InvalidRequestError(f"{what} {shown} cannot be used ({type(exc).__name__})") from None
    path = str(path).rstrip("/")
    if not path.strip("/"):
        raise InvalidRequestError(f"{what} {shown} names no bucket or path")
    return StoredObject(fs=fs, protocol=protocol, path=path)


def _why(exc: BaseException) -> str:
    strerror = getattr(exc, "strerror", None)
    return strerror if isinstance(strerror, str) and strerror else type(exc).__name__


Kind = Literal["file", "dir", "missing", "unreadable"]


def stat_object(target: StoredObject) -> tuple[Kind, int, str | None]:
    """What is at ``target``: kind, size in bytes, and why it cannot be used."""
    try:
        info = target.fs.info(target.path)
    except FileNotFoundError:
        return "missing", 0, "no such object or prefix"
    except Exception as exc:  # PermissionError, a botocore error, ...
        return "unreadable", 0, f"cannot be read ({_why(exc)})"
    if info.get("type") == "directory":
        return "dir", 0, None
    return "file", int(info.get("size") or 0), None


@attrs.frozen
class Listed:
    """One entry of a folder: its full path, kind and size."""

    path: str
    kind: Literal["dir", "file"]
    size: int


def list_folder(folder: StoredObject) -> list[Listed] | str:
    """The non-hidden entries right under ``folder`` sorted by name, or why it cannot be
    listed. The filesystem's listing cache is dropped after each folder, so a walk of a
    large bucket holds one folder's listing at a time."""
    fs = folder.fs
    try:
        entries = fs.ls(folder.path, detail=True)
    except Exception as exc:
        return f"cannot be listed ({_why(exc)})"
    finally:
        invalidate = getattr(fs, "invalidate_cache", None)
        if invalidate is not None:
            invalidate(folder.path)
    listed = []
    for entry in entries:
        path = str(entry.get("name", "")).rstrip("/")
        name = posixpath.basename(path)
        if not name or name.startswith(".") or path == folder.path.rstrip("/"):
            continue
        if entry.get("type") == "directory":
            listed.append(Listed(path, "dir", 0))
        elif not str(entry.get("name", "")).endswith("/"):  # a "folder marker" object
            listed.append(Listed(path, "file", int(entry.get("size") or 0)))
    return sorted(listed, key=lambda entry: entry.path)


def object_exists(target: StoredObject) -> bool:
    """Whether a file (not a prefix) is at ``target``."""
    try:
        return bool(target.fs.isfile(target.path))
    except Exception:  # cannot tell: treat it as absent (it is downloaded again)
        return False


def bucket_missing(target: StoredObject) -> bool:
    """Whether the bucket (the first path component) of ``target`` surely does not exist: a
    store that cannot tell (no permission to look) is given the benefit of the doubt."""
    top = target.path.split("/", 1)[0]
    if not top:
        return False  # a filesystem without buckets (memory://, file://)
    try:
        target.fs.info(top)
    except FileNotFoundError:
        return True
    except Exception:
        return False
    return False
