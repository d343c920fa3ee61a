""":func:`with_raw_response`: what a method returns, with the HTTP status, headers and request
id of the API call behind it."""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable
from typing import Generic, ParamSpec, TypeVar

import attrs
import httpx2

from .._http.transport import ApiResponse
from ..errors import InvalidRequestError

__all__ = ["RawResponse", "record_response", "with_raw_response"]

P = ParamSpec("P")
T = TypeVar("T")

_SEEN: contextvars.ContextVar[list[tuple[str, ApiResponse]] | None] = contextvars.ContextVar(
    "diffio_async_raw_responses", default=None
)


@attrs.frozen(kw_only=True)
class RawResponse(Generic[T]):
    """A method's result (``data``) with the HTTP facts of its API call.

    ``status_code``, ``headers`` and ``request_id`` (the ``X-Request-Id`` header, ``None`` when
    the server sends none) are those of the last ``/v1`` call the method made (most make one;
    ``projects.create`` in era B makes two, a wait many), ``endpoint`` names it and
    ``attempts`` counts its HTTP attempts, retries included. A header value holding the API
    key is redacted.
    """

    data: T
    status_code: int
    headers: httpx2.Headers = attrs.field(repr=False)
    request_id: str | None
    endpoint: str
    attempts: int


def record_response(endpoint: str, response: ApiResponse) -> None:
    """Internal: note an API answer for an enclosing :func:`with_raw_response` (if any)."""
    seen = _SEEN.get()
    if seen is not None:
        seen.append((endpoint, response))


async def with_raw_response(
    call: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs
) -> RawResponse[T]:
    """Await ``call(*args, **kwargs)`` and return its result with the HTTP facts behind it.

    ``call`` is a method of a resource group or a generation handle, e.g.
    ``await with_raw_response(client.usage.summary, api_key_id="key_123")``. Errors are raised
    as usual (an :class:`~diffio_async.APIStatusError` already carries its status and request
    id). A ``call`` that made no API call raises :class:`~diffio_async.InvalidRequestError`.
    Calls nested in ``call`` through another ``with_raw_response`` count as ``call``'s too.
    """
    seen: list[tuple[str, ApiResponse]] = []
    token = _SEEN.set(seen)
    try:
        data = await call(*args, **kwargs)
    finally:
        _SEEN.reset(token)
        enclosing = _SEEN.get()
        if enclosing is not None:  # a call nested in another's: the outer one sees it too
            enclosing.extend(seen)
    if not seen:
        name = getattr(call, "__qualname__", type(call).__name__)
        raise InvalidRequestError(f"{name} made no API call, so it has no raw response")
    endpoint, response = seen[-1]
    return RawResponse(
        data=data,
        status_code=response.status_code,
        headers=response.headers,
        request_id=response.request_id,
        endpoint=endpoint,
        attempts=response.attempts,
    )
