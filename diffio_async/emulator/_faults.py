"""Fault injection rules: which requests to disturb, and how."""

from __future__ import annotations

import fnmatch
import json
import random
import re
import threading
from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["Fault", "FaultSet"]

_GLOB_CHARS = frozenset("*?[")


def _check_count(instance: Fault, attribute: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None and value < 1:
        raise ValueError("count must be >= 1, or None for every matching request")


@attrs.define(kw_only=True, eq=False)
class Fault:
    """Disturb the next ``count`` requests that match ``path`` (and ``method``).

    Matching: ``path`` is an exact path (``"/v1/create_project"``), a glob when it contains
    ``*``, ``?`` or ``[`` (``"/v1/diffio-*-generation"``, ``"/m/*"``), or a compiled
    :class:`re.Pattern` (``re.compile(r"/v1/uploads/parts/\\d+")``, full match). ``method``
    ``None`` matches every method. Control routes under ``/_emulator/`` are never faulted.
    ``count=None`` disturbs every matching request until :meth:`Emulator.clear_faults`.

    What happens to a matching request (``after=False``, the default: the real handler never
    runs, so the request has no effect on the emulator's state):

    1. wait ``delay`` seconds (a real ``anyio.sleep``);
    2. then exactly one of:
       * ``status``: answer that status with ``Retry-After: <retry_after>`` (verbatim) and/or
         ``retry-after-ms: <retry_after_ms>`` and ``body`` (a mapping/list is sent as JSON, a
         ``str`` as text, ``bytes`` as is; default ``{"error": "Emulated HTTP <status>."}``);
       * ``drop``: read the request body, then close the connection without any response
         (httpx2 raises ``RemoteProtocolError: Server disconnected without sending a
         response``);
       * ``truncate``: run the real handler, send its status and headers (with the full
         ``Content-Length``) and only the first half of the body, then close the connection;
       * none of them: just the delay, then the real handler answers.

    With ``after=True`` the real handler runs first (its state changes stick), then the
    ``delay`` passes, then the client gets the ``status`` answer or the ``drop`` instead of the
    real answer: an *ambiguous failure*, the case idempotency keys exist for.
    """

    path: str | re.Pattern[str]
    method: str | None = None
    count: int | None = attrs.field(default=1, validator=_check_count)
    status: int | None = None
    retry_after: str | None = None
    retry_after_ms: int | float | None = None
    body: Mapping[str, Any] | list[Any] | str | bytes | None = None
    headers: Mapping[str, str] | None = None
    delay: float = 0.0
    drop: bool = False
    truncate: bool = False
    after: bool = False
    probability: float = 1.0
    """Disturb only this fraction of matching requests (drawn from ``seed``), e.g. ``0.1``."""
    seed: int | None = None
    _random: random.Random = attrs.field(init=False, repr=False)
    hits: int = attrs.field(default=0, init=False)
    """How many requests this fault has disturbed so far."""

    @_random.default
    def _make_random(self) -> random.Random:
        return random.Random(self.seed)

    def __attrs_post_init__(self) -> None:
        """Reject contradictory options."""
        if sum((self.status is not None, self.drop, self.truncate)) > 1:
            raise ValueError("choose at most one of status, drop and truncate")
        if self.status is not None and not 100 <= self.status <= 599:
            raise ValueError("status must be an HTTP status code")
        if self.delay < 0:
            raise ValueError("delay must be >= 0")
        if not 0.0 < self.probability <= 1.0:
            raise ValueError("probability must be in (0, 1]")

        if self.method is not None:
            self.method = self.method.upper()

    @property
    def kind(self) -> str:
        """``"status"``, ``"drop"``, ``"truncate"`` or ``"delay"``."""
        if self.drop:
            return "drop"
        if self.truncate:
            return "truncate"
        if self.status is not None:
            return "status"
        return "delay"

    @property
    def exhausted(self) -> bool:
        """True once the fault has disturbed ``count`` requests."""
        return self.count is not None and self.hits >= self.count

    def matches(self, method: str, path: str) -> bool:
        """Whether a request with this method and path is one this fault targets."""
        if self.method is not None and self.method != method.upper():
            return False
        pattern = self.path
        if isinstance(pattern, re.Pattern):
            return pattern.fullmatch(path) is not None
        if _GLOB_CHARS.intersection(pattern):
            return fnmatch.fnmatchcase(path, pattern)
        return pattern == path

    def response_parts(self) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Status, raw headers and body of the injected answer (``status`` faults)."""
        status = self.status if self.status is not None else 500
        body = self.body
        if body is None:
            body = {"error": f"Emulated HTTP {status}."}
        if isinstance(body, bytes):
            payload, content_type = body, "application/octet-stream"
        elif isinstance(body, str):
            payload, content_type = body.encode(), "text/plain; charset=utf-8"
        else:
            payload = json.dumps(body, separators=(",", ":")).encode()
            content_type = "application/json"
        headers = [
            (b"content-type", content_type.encode()),
            (b"content-length", str(len(payload)).encode()),
        ]
        if self.retry_after is not None:
            headers.append((b"retry-after", self.retry_after.encode("latin-1")))
        if self.retry_after_ms is not None:
            headers.append((b"retry-after-ms", _number(self.retry_after_ms).encode()))
        for name, value in (self.headers or {}).items():
            headers.append((name.lower().encode("latin-1"), value.encode("latin-1")))
        return status, headers, payload

    def to_json(self) -> dict[str, Any]:
        """A JSON description (``GET /_emulator/faults``)."""
        pattern = self.path
        body = self.body
        return {
            "path": pattern.pattern if isinstance(pattern, re.Pattern) else pattern,
            "regex": isinstance(pattern, re.Pattern),
            "method": self.method,
            "count": self.count,
            "status": self.status,
            "retryAfter": self.retry_after,
            "retryAfterMs": self.retry_after_ms,
            "body": body.decode("latin-1") if isinstance(body, bytes) else body,
            "headers": dict(self.headers or {}),
            "delay": self.delay,
            "drop": self.drop,
            "truncate": self.truncate,
            "after": self.after,
            "probability": self.probability,
            "hits": self.hits,
            "kind": self.kind,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Fault:
        """Build a fault from the camelCase JSON of ``POST /_emulator/faults``."""
        path = data.get("path")
        if not isinstance(path, str) or not path:
            raise ValueError("path must be a non-empty string")
        pattern: str | re.Pattern[str] = re.compile(path) if data.get("regex") else path
        return cls(
            path=pattern,
            method=data.get("method"),
            count=data.get("count", 1),
            status=data.get("status"),
            retry_after=data.get("retryAfter"),
            retry_after_ms=data.get("retryAfterMs"),
            body=data.get("body"),
            headers=data.get("headers"),
            delay=float(data.get("delay", 0.0)),
            drop=bool(data.get("drop", False)),
            truncate=bool(data.get("truncate", False)),
            after=bool(data.get("after", False)),
            probability=float(data.get("probability", 1.0)),
            seed=data.get("seed"),
        )


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


class FaultSet:
    """The active faults, consulted in the order they were added (thread-safe)."""

    def __init__(self) -> None:
        """No faults."""
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        """Activate ``fault``."""
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        """Remove every fault."""
        with self._lock:
            self._faults.clear()

    def active(self) -> list[Fault]:
        """The faults that still have requests to disturb."""
        with self._lock:
            return [fault for fault in self._faults if not fault.exhausted]

    def take(self, method: str, path: str) -> Fault | None:
        """The first matching fault, counting this request against it, or ``None``."""
        with self._lock:
            for fault in self._faults:
                if not fault.exhausted and fault.matches(method, path):
                    if fault.probability < 1.0 and fault._random.random() >= fault.probability:
                        continue
                    fault.hits += 1
                    self._faults = [item for item in self._faults if not item.exhausted]
                    return fault
        return None
