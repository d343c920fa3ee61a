"""``client.api_keys``: create, list, rotate and revoke scoped API keys (admin keys only)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .._checks import json_object, string_list
from .._http.transport import RequestOptions
from ..errors import InvalidRequestError
from ..types import (
    ApiKey,
    ApiKeyList,
    CreateApiKeyRequest,
    RevokeApiKeyRequest,
    RotateApiKeyRequest,
)
from ._base import Resource, require_id

__all__ = ["SCOPES", "ApiKeys"]

SCOPES = (
    "projects:read",
    "projects:write",
    "generations:read",
    "generations:write",
    "artifacts:read",
    "keys:read",
    "keys:write",
    "usage:read",
    "account:read",
    "account:write",
    "webhooks:write",
)
"""The scopes the API documents (others are passed through unchanged)."""


class ApiKeys(Resource):
    """Scoped API keys. The plaintext ``key`` is returned only by create and rotate."""

    async def create(
        self,
        *,
        label: str,
        scopes: Iterable[str],
        resource_bounds: Mapping[str, Any] | None = None,
        options: RequestOptions | None = None,
    ) -> ApiKey:
        """Create a scoped key (``api_keys/create``). Not retried on ambiguous failures."""
        if not isinstance(label, str) or not label.strip() or len(label) > 80:
            raise InvalidRequestError("label must be a non-empty string of at most 80 characters")
        scope_list = string_list("scopes", scopes)
        body = CreateApiKeyRequest(
            label=label,
            scopes=tuple(scope_list),
            resource_bounds=json_object("resource_bounds", resource_bounds) or {},
        )
        return await self._post_as(
            "api_keys/create", body, ApiKey, idempotent=False, options=options
        )

    async def list(self, *, options: RequestOptions | None = None) -> tuple[ApiKey, ...]:
        """All keys of the account (``api_keys/list``)."""
        result = await self._post_as(
            "api_keys/list", {}, ApiKeyList, idempotent=True, options=options
        )
        return result.keys

    async def rotate(self, key_id: str, *, options: RequestOptions | None = None) -> ApiKey:
        """Give a scoped key a new secret (``api_keys/rotate``).

        Not retried on ambiguous failures: a second rotation would invalidate the secret the
        first one returned.
        """
        body = RotateApiKeyRequest(key_id=require_id("key_id", key_id))
        return await self._post_as(
            "api_keys/rotate", body, ApiKey, idempotent=False, options=options
        )

    async def revoke(self, key_id: str, *, options: RequestOptions | None = None) -> ApiKey:
        """Revoke a scoped key for good (``api_keys/revoke``); idempotent."""
        body = RevokeApiKeyRequest(key_id=require_id("key_id", key_id))
        return await self._post_as(
            "api_keys/revoke", body, ApiKey, idempotent=True, options=options
        )
