"""One authenticated ``/v1`` API call and the body-validation helpers handlers share."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import attrs
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from ._api_auth import Access
from ._errors import ApiError
from ._runtime import Runtime
from ._state import ApiKey
from ._webhook_delivery import OutgoingMessage

__all__ = [
    "MAX_JSON_BYTES",
    "Call",
    "Endpoint",
    "optional_object",
    "optional_string",
    "read_json",
    "required_string",
]

_T = TypeVar("_T")

MAX_JSON_BYTES = 1024 * 1024


@attrs.define(kw_only=True)
class Call:
    """Everything a handler needs: runtime, request, caller key, parsed body, time."""

    core: Runtime
    request: Request
    key: ApiKey
    body: dict[str, Any]
    now: float
    messages: list[OutgoingMessage]

    @property
    def base_url(self) -> str:
        """Scheme, host and port the client used (no trailing slash)."""
        return str(self.request.base_url).rstrip("/")


Handler = Callable[[Call], Awaitable[dict[str, Any] | Response]]


@attrs.frozen
class Endpoint:
    """A ``/v1`` endpoint: its handler and what access it needs."""

    handler: Handler
    access: Access


async def read_json(request: Request) -> dict[str, Any]:
    """The request's JSON object, or 400 ``Invalid JSON body.``.

    A client that disconnects before the whole body arrived gets a 400 that nobody reads
    (rather than an exception the server would report as an emulator error).
    """
    raw = bytearray()
    try:
        async for chunk in request.stream():
            raw.extend(chunk)
            if len(raw) > MAX_JSON_BYTES:
                raise ApiError(413, "Request body is too large.")
    except ClientDisconnect:
        raise ApiError(400, "The request body was cut short.") from None
    try:
        data = json.loads(bytes(raw))
    except ValueError:
        raise ApiError(400, "Invalid JSON body.") from None
    if not isinstance(data, dict):
        raise ApiError(400, "Invalid JSON body.")
    return data


def required_string(body: dict[str, Any], name: str, message: str | None = None) -> str:
    """A non-blank string field, else 400 ``<name> must be provided as a string``."""
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, message or f"{name} must be provided as a string")
    return value


def optional_string(body: dict[str, Any], name: str) -> str | None:
    """A string field or ``None``; other types are 400 ``<name> must be a string``."""
    return _optional(body, name, str, "a string")


def optional_object(body: dict[str, Any], name: str) -> dict[str, Any] | None:
    """A JSON object field or ``None``; other types are 400 ``<name> must be an object``."""
    return _optional(body, name, dict, "an object")


def _optional(body: dict[str, Any], name: str, kind: type[_T], what: str) -> _T | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, kind):
        raise ApiError(400, f"{name} must be {what}")
    return value
