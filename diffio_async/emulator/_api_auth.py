"""API key authentication (three headers) and the permission/scope checks of §1.2-1.3."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import attrs

from ._errors import ApiError
from ._runtime import Runtime
from ._state import ApiKey

__all__ = ["Access", "authenticate", "authorize", "extract_api_key"]

PAYMENT_FAILED = "Payment failed. Update your payment method in the billing portal."


@attrs.frozen
class Access:
    """What an endpoint needs: a scope (scoped keys), a legacy permission, maybe admin."""

    scope: str | None
    legacy: Literal["read", "write"] | None
    admin: bool = False


def extract_api_key(headers: Mapping[str, str]) -> str | None:
    """The key from ``Authorization: Bearer``, ``X-Api-Key`` or ``Xi-Api-Key`` (in that order)."""
    authorization = headers.get("authorization", "")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    for name in ("x-api-key", "xi-api-key"):
        value = headers.get(name, "").strip()
        if value:
            return value
    return None


def authenticate(core: Runtime, headers: Mapping[str, str]) -> ApiKey:
    """The active key behind the request, or an :class:`ApiError` (401/403/402).

    When the emulator was started without an API key, any non-empty key that is not a minted
    key (or a rotated-away secret) is taken as the admin key.
    """
    secret = extract_api_key(headers)
    if secret is None:
        raise ApiError(401, "Missing API key.")
    state = core.state
    key = state.key_by_secret(secret)
    if key is None:
        if not core.open_admin or secret in state.retired_secrets:
            raise ApiError(401, "Invalid API key.")
        key = state.keys[core.admin_key_id]
    if key.status != "active":
        raise ApiError(403, "API key is not active")
    if state.account.billing_hold or key.billing_hold:
        raise ApiError(402, PAYMENT_FAILED, "paymentFailed")
    return key


def authorize(key: ApiKey, access: Access) -> None:
    """Raise 403 unless ``key`` may call an endpoint needing ``access``."""
    if access.admin and not key.is_admin:
        raise ApiError(403, "Privileged admin API key required")
    if key.legacy:
        if access.legacy is not None and not key.permissions.get(access.legacy, False):
            raise ApiError(403, f"missing {access.legacy} permission")
        return
    if access.scope is not None and access.scope not in key.scopes:
        raise ApiError(403, f"missing {access.scope} permission")
