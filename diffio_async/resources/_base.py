"""What every resource group shares: the transport, JSON calls, and argument checks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from .._convert import structure, unstructure
from .._http.transport import ApiResponse, RequestOptions, Transport
from ..errors import InvalidRequestError
from ._raw_response import record_response

__all__ = ["Resource", "optional_id", "require_id"]

T = TypeVar("T")


class Resource:
    """Base of the resource groups (``client.projects``, ``client.generations``, ...)."""

    def __init__(self, http: Transport) -> None:
        """Internal: the client makes one of each, sharing its transport."""
        self._http = http

    async def _post(  # body: a request model, or a plain mapping for bodies with no fields
        self,
        endpoint: str,
        body: object,
        *,
        idempotent: bool,
        options: RequestOptions | None,
    ) -> ApiResponse:
        payload = body if isinstance(body, Mapping) else unstructure(body)
        response = await self._http.call(endpoint, payload, idempotent=idempotent, options=options)
        record_response(endpoint, response)
        return response

    async def _post_as(
        self,
        endpoint: str,
        body: object,
        cls: type[T],
        *,
        idempotent: bool,
        options: RequestOptions | None,
    ) -> T:
        response = await self._post(endpoint, body, idempotent=idempotent, options=options)
        return structure(response.data, cls, endpoint=endpoint)


def require_id(name: str, value: object) -> str:
    """Check that an id argument is a non-empty string; return it stripped."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequestError(f"{name} must be a non-empty string, not {value!r}")
    return value.strip()


def optional_id(name: str, value: object) -> str | None:
    """Like :func:`require_id`, but ``None`` passes through."""
    return None if value is None else require_id(name, value)
