"""The request log: one :class:`LoggedRequest` per HTTP request the emulator received."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import attrs

__all__ = ["SECRET_HEADERS", "LoggedRequest", "RequestLog", "mask_header", "mask_secret"]

SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "x-api-key", "xi-api-key"})
"""Headers whose values are masked wherever the log leaves the process (``/_emulator/requests``)."""

_SHOWN = 4
"""Characters shown at each end of a masked secret."""


def mask_secret(value: str) -> str:
    """``value`` with its middle hidden: ``diff...1234`` (first and last 4 characters).

    A value shorter than 16 characters shows nothing but ``***``, so that at most half of any
    secret is ever shown and a short one is not given away.
    """
    if len(value) < 4 * _SHOWN:
        return "***"
    return f"{value[:_SHOWN]}...{value[-_SHOWN:]}"


def mask_header(name: str, value: str) -> str:
    """The value of header ``name`` fit to show: secrets masked, other headers unchanged.

    An ``Authorization`` value keeps its scheme (``Bearer diff...1234``).
    """
    if name.lower() not in SECRET_HEADERS:
        return value
    scheme, space, credentials = value.strip().partition(" ")
    if space and scheme.isalpha():
        return f"{scheme} {mask_secret(credentials.strip())}"
    return mask_secret(value.strip())


@attrs.frozen(kw_only=True)
class LoggedRequest:
    """One request as the emulator saw it.

    Attributes:
        index: arrival order, strictly increasing over the emulator's lifetime (never reused,
            not even after :meth:`RequestLog.clear`).
        method: the HTTP method.
        path: the URL path (percent-decoded, as in the ASGI scope).
        query: the raw query string (no ``?``).
        headers: every header as received, in order, names in lower case (ASGI servers
            lower-case them), duplicates kept; credentials are raw here (masked only in
            :meth:`to_json`, the form served over HTTP).
        body_size: bytes of request body the emulator actually received.
        chunked: whether the request used ``Transfer-Encoding: chunked``.
        status: the response status sent, or ``None`` when no response was sent (dropped).
        fault: the kind of injected fault applied (``"status"``, ``"drop"``, ``"truncate"``,
            ``"delay"``), or ``None``.
        body: the body of a JSON request (``Content-Type: application/json``, first 64 KiB),
            else ``b""``; :attr:`json` parses it.
    """

    index: int
    method: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]
    body_size: int
    chunked: bool
    status: int | None
    fault: str | None = None
    body: bytes = b""

    @property
    def json(self) -> Any:
        """The parsed JSON body, or ``None`` when there is none (or it is not JSON)."""
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or ``None``."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    def header_values(self, name: str) -> list[str]:
        """Every value of header ``name`` (case-insensitive), in order."""
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]

    def to_json(self) -> dict[str, Any]:
        """The camelCase JSON form served at ``GET /_emulator/requests``.

        Credentials (``Authorization``, ``X-Api-Key``, ``Xi-Api-Key``) are masked (see
        :func:`mask_header`): the HTTP log is readable by anything that reaches the port.
        :attr:`headers` keeps the raw values for in-process tests.
        """
        return {
            "index": self.index,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": [[key, mask_header(key, value)] for key, value in self.headers],
            "bodySize": self.body_size,
            "chunked": self.chunked,
            "status": self.status,
            "fault": self.fault,
        }


class RequestLog:
    """A thread-safe, ordered list of :class:`LoggedRequest` (control routes excluded).

    Iterate it, index it, ``len()`` it, or call :meth:`find` and :meth:`clear`.
    """

    def __init__(self) -> None:
        """An empty log."""
        self._lock = threading.Lock()
        self._entries: list[LoggedRequest] = []
        self._next = 0

    def next_index(self) -> int:
        """Reserve the index of a request that just arrived."""
        with self._lock:
            index = self._next
            self._next += 1
            return index

    def append(self, entry: LoggedRequest) -> None:
        """Record a finished request."""
        with self._lock:
            # Entries finish almost in arrival order: insert from the end (O(1) usually;
            # a full sort on every request made long soak runs quadratic).
            position = len(self._entries)
            while position and self._entries[position - 1].index > entry.index:
                position -= 1
            self._entries.insert(position, entry)

    def snapshot(self) -> list[LoggedRequest]:
        """A copy of the entries, in arrival order."""
        with self._lock:
            return list(self._entries)

    def find(self, *, path: str | None = None, method: str | None = None) -> list[LoggedRequest]:
        """Entries with exactly this ``path`` and/or ``method``."""
        return [
            entry
            for entry in self.snapshot()
            if (path is None or entry.path == path)
            and (method is None or entry.method == method.upper())
        ]

    def clear(self) -> None:
        """Forget every entry (indexes keep increasing)."""
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        """Number of entries."""
        with self._lock:
            return len(self._entries)

    def __iter__(self) -> Iterator[LoggedRequest]:
        """Iterate over a snapshot."""
        return iter(self.snapshot())

    def __getitem__(self, item: int) -> LoggedRequest:
        """The entry at position ``item`` (negative indexes allowed)."""
        with self._lock:
            return self._entries[item]

    def __repr__(self) -> str:
        """A short summary."""
        return f"RequestLog({len(self)} requests)"
