"""Argument checks shared by the resources and workflows, run before any request is sent.

Each returns the checked (normalised) value or raises :class:`InvalidRequestError` naming the
parameter. Messages describe the value's type or the rule broken; they never echo a value
that may be a secret.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import InvalidRequestError

__all__ = [
    "callback",
    "idempotency_key",
    "json_object",
    "optional_seconds",
    "path_like",
    "positive_int",
    "string_list",
]


def optional_seconds(name: str, value: object, *, allow_zero: bool = True) -> float | None:
    """A duration in seconds: a finite number >= 0 (> 0 without ``allow_zero``), or ``None``
    (no limit)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequestError(
            f"{name} must be a number of seconds or None, not {type(value).__name__}"
        )
    seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise InvalidRequestError(f"{name} must be a finite number {bound} or None, not {value!r}")
    return seconds


def positive_int(name: str, value: object, *, maximum: int | None = None) -> int:
    """An int >= 1 (and <= ``maximum`` when given)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequestError(f"{name} must be an int, not {type(value).__name__}")
    if value < 1 or (maximum is not None and value > maximum):
        bound = f" and at most {maximum}" if maximum is not None else ""
        raise InvalidRequestError(f"{name} must be at least 1{bound}, not {value}")
    return value


def json_object(name: str, value: object) -> dict[str, Any] | None:
    """A free-form JSON object argument (``sampling``, ``params``), or ``None``.

    Keys must be strings (``json`` would quietly turn ``1`` into ``"1"``) and the whole value
    must serialise to strict JSON: no NaN or infinities (which Python's ``json`` would send as
    invalid JSON), no sets, bytes or objects, no nesting too deep to encode.
    """
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidRequestError(f"{name} must be a mapping, not {type(value).__name__}")
    try:
        json.dumps(value, allow_nan=False, default=_not_json)
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidRequestError(f"{name} is not valid JSON: {exc}") from None
    pending: list[object] = [value]
    while pending:  # json.dumps turns int keys into strings silently: refuse them instead
        item = pending.pop()
        if isinstance(item, Mapping):
            if not all(isinstance(key, str) for key in item):
                raise InvalidRequestError(f"{name} is not valid JSON: its keys must be strings")
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
    return dict(value)


def _not_json(value: object) -> object:
    raise TypeError(f"a {type(value).__name__} is not JSON")


def path_like(name: str, value: object) -> str:
    """A path argument (``str`` or ``os.PathLike[str]``), non-empty; returned as text."""
    if isinstance(value, bytes) or not isinstance(value, str | os.PathLike):
        raise InvalidRequestError(f"{name} must be a path (str or os.PathLike), not {value!r}")
    text = os.fspath(value)
    if not isinstance(text, str) or not text or "\x00" in text:
        raise InvalidRequestError(f"{name} must be a non-empty path without NUL characters")
    return text


def idempotency_key(value: object) -> str:
    """A caller's idempotency key: a string of 1-255 characters after trimming."""
    if not isinstance(value, str):
        raise InvalidRequestError(f"idempotency_key must be a string, not {type(value).__name__}")
    if not 1 <= len(value.strip()) <= 255:
        raise InvalidRequestError("idempotency_key must be 1-255 characters after trimming")
    return value


def callback(name: str, value: object) -> None:
    """A callback argument: callable or ``None``."""
    if value is not None and not callable(value):
        raise InvalidRequestError(f"{name} must be callable or None, not {type(value).__name__}")


def string_list(name: str, value: object) -> list[str]:
    """One string or an iterable of non-empty strings, as a non-empty list."""
    if isinstance(value, str):
        value = [value]
    if isinstance(value, bytes | Mapping) or not isinstance(value, Iterable):
        raise InvalidRequestError(
            f"{name} must be a string or a list of strings, not {type(value).__name__}"
        )
    items = list(value)
    if not items or not all(isinstance(item, str) and item.strip() for item in items):
        raise InvalidRequestError(f"{name} must be a non-empty list of non-empty strings")
    return items
