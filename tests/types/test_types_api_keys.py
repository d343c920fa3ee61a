"""The API keys models against every documented payload (§7)."""

from __future__ import annotations

from datetime import datetime

from types_helpers import UTC

from diffio_async import types as m
from diffio_async._convert import structure, unstructure

CREATED_KEY = {
    "key": "diffio_live_secretvalue",
    "keyId": "key_child_123",
    "label": "Dashboard browser key",
    "status": "active",
    "keyPrefix": "diffio_live_child",
    "role": "scoped",
    "scopes": [
        "projects:read",
        "projects:write",
        "generations:read",
        "generations:write",
        "artifacts:read",
    ],
    "resourceBounds": {"projectIds": ["proj_123"]},
    "parentKeyId": "key_admin_123",
    "permissions": {"read": True, "write": True},
    "createdAt": "2026-05-09T12:00:00Z",
    "rotatedAt": None,
    "revokedAt": None,
}


def test_api_key_create() -> None:
    body = m.CreateApiKeyRequest(label="Dashboard browser key", scopes=("projects:read",))
    assert unstructure(body) == {
        "label": "Dashboard browser key",
        "scopes": ["projects:read"],
        "resourceBounds": {},
    }
    k = structure(CREATED_KEY, m.ApiKey, endpoint="api_keys/create")
    assert k.key == "diffio_live_secretvalue" and k.key_id == "key_child_123"
    assert k.label == "Dashboard browser key" and k.status == "active"
    assert k.key_prefix == "diffio_live_child" and k.role == "scoped"
    assert k.scopes[0] == "projects:read" and len(k.scopes) == 5
    assert k.resource_bounds == {"projectIds": ["proj_123"]}
    assert k.parent_key_id == "key_admin_123"
    assert k.permissions == m.ApiKeyPermissions(read=True, write=True)
    assert k.created_at == datetime(2026, 5, 9, 12, tzinfo=UTC)
    assert k.rotated_at is None and k.revoked_at is None
    assert "secretvalue" not in repr(k)


def test_api_key_list_rotate_revoke() -> None:
    listed = {k: v for k, v in CREATED_KEY.items() if k != "key"}
    keys = structure({"keys": [listed]}, m.ApiKeyList, endpoint="api_keys/list").keys
    assert keys[0].key is None and keys[0].key_id == "key_child_123"
    rotated = structure(
        {**CREATED_KEY, "key": "diffio_live_rotated", "rotatedAt": "2026-05-10T00:00:00Z"},
        m.ApiKey,
        endpoint="api_keys/rotate",
    )
    assert rotated.rotated_at == datetime(2026, 5, 10, tzinfo=UTC)
    revoked = structure(
        {**listed, "status": "revoked", "revokedAt": "2026-05-11T00:00:00Z"},
        m.ApiKey,
        endpoint="api_keys/revoke",
    )
    assert revoked.status == m.ApiKeyStatus.REVOKED and revoked.revoked_at is not None
    assert unstructure(m.RotateApiKeyRequest(key_id="key_child_123")) == {"keyId": "key_child_123"}
    assert unstructure(m.RevokeApiKeyRequest(key_id="k")) == {"keyId": "k"}


def test_api_key_minimal_defaults() -> None:
    k = structure({"keyId": "k"}, m.ApiKey, endpoint="api_keys/list")
    assert (k.status, k.role, k.scopes, k.resource_bounds, k.permissions) == (
        "active",
        "scoped",
        (),
        {},
        None,
    )
