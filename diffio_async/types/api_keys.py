"""Models of the API keys group: create, list, rotate and revoke keys."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from ._model import _Model
from ._parsing import _STATUS, _extra_field
from ._reprs import _mask
from ._vocabularies import ApiKeyStatus

__all__ = [
    "ApiKey",
    "ApiKeyList",
    "ApiKeyPermissions",
    "CreateApiKeyRequest",
    "RevokeApiKeyRequest",
    "RotateApiKeyRequest",
]


@attrs.frozen(kw_only=True)
class CreateApiKeyRequest(_Model):
    """Body of ``POST /v1/api_keys/create`` (``resourceBounds`` is always sent, default ``{}``)."""

    label: str
    scopes: tuple[str, ...]
    resource_bounds: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class RotateApiKeyRequest(_Model):
    """Body of ``POST /v1/api_keys/rotate``."""

    key_id: str


@attrs.frozen(kw_only=True)
class RevokeApiKeyRequest(_Model):
    """Body of ``POST /v1/api_keys/revoke``."""

    key_id: str


@attrs.frozen(kw_only=True)
class ApiKeyPermissions(_Model):
    """Legacy read/write permissions implied by a key's scopes."""

    read: bool = False
    write: bool = False
    extra: Mapping[str, Any] = _extra_field()


@attrs.frozen(kw_only=True)
class ApiKey(_Model):
    """An API key; ``key`` (the plaintext secret) is set only by create and rotate."""

    key_id: str
    key: str | None = attrs.field(default=None, repr=_mask)
    label: str | None = None
    status: str = attrs.field(default=ApiKeyStatus.ACTIVE, metadata=_STATUS)
    key_prefix: str | None = None
    role: str = "scoped"
    scopes: tuple[str, ...] = ()
    resource_bounds: Mapping[str, Any] = attrs.field(factory=dict)
    parent_key_id: str | None = None
    permissions: ApiKeyPermissions | None = None
    created_at: datetime | None = None
    rotated_at: datetime | None = None
    revoked_at: datetime | None = None
    extra: Mapping[str, Any] = _extra_field()


@attrs.frozen(kw_only=True)
class ApiKeyList(_Model):
    """Answer of ``api_keys/list``."""

    keys: tuple[ApiKey, ...] = ()
    extra: Mapping[str, Any] = _extra_field()
