"""``client.api_keys`` against the emulator on loopback: create, list, rotate and revoke (admin
keys only). The endpoints are the same in both eras.

That create and rotate are never retried after an ambiguous failure is tested in
tests/http/test_retry.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from shared import SDK_HEADERS, sent

from diffio_async import (
    ApiKey,
    AsyncDiffio,
    AuthenticationError,
    BadRequestError,
    InvalidRequestError,
    NotFoundError,
    PaymentFailedError,
    PermissionDeniedError,
)
from diffio_async.resources.api_keys import SCOPES
from diffio_async.testing import EmulatedDiffio
from diffio_async.types import ApiKeyPermissions

pytestmark = pytest.mark.anyio

CREATE = "/v1/api_keys/create"
LIST = "/v1/api_keys/list"
ROTATE = "/v1/api_keys/rotate"
REVOKE = "/v1/api_keys/revoke"

Call = Callable[[AsyncDiffio, str], Awaitable[Any]]
CALLS: dict[str, tuple[Call, str, str]] = {
    # method: (call with a client and a scoped key's id, path, scope it needs)
    "create": (
        lambda c, k: c.api_keys.create(label="ci", scopes=["usage:read"]),
        CREATE,
        "keys:write",
    ),
    "list": (lambda c, k: c.api_keys.list(), LIST, "keys:read"),
    "rotate": (lambda c, k: c.api_keys.rotate(k), ROTATE, "keys:write"),
    "revoke": (lambda c, k: c.api_keys.revoke(k), REVOKE, "keys:write"),
}


def _paths(env: EmulatedDiffio) -> list[str]:
    return [entry.path for entry in env.emulator.requests]


def _as(env: EmulatedDiffio, key: str | None) -> AsyncDiffio:
    assert key is not None
    return env.client.with_options(api_key=key)


# --- create ------------------------------------------------------------------------------------


async def test_create_returns_the_new_key_with_its_secret(env: EmulatedDiffio) -> None:
    created = await env.client.api_keys.create(label="ci", scopes=["projects:read"])
    assert sent(env, CREATE) == [{"label": "ci", "scopes": ["projects:read"], "resourceBounds": {}}]
    assert isinstance(created, ApiKey)
    assert created.key is not None and created.key.startswith("diffio_live_")
    assert created.key_prefix == created.key[:17]
    assert (created.label, created.status, created.role) == ("ci", "active", "scoped")
    assert created.scopes == ("projects:read",)
    assert created.permissions == ApiKeyPermissions(read=True, write=False)
    assert created.parent_key_id == env.emulator.admin_key_id
    assert created.created_at is not None and created.created_at.tzinfo is not None
    assert (created.rotated_at, created.revoked_at) == (None, None)
    assert created.key not in repr(created)


async def test_a_created_key_works_within_its_scopes(env: EmulatedDiffio) -> None:
    created = await env.client.api_keys.create(label="reader", scopes="projects:read")
    reader = _as(env, created.key)
    assert await reader.projects.list() == ()
    with pytest.raises(PermissionDeniedError, match="projects:write"):
        await reader.projects.register(file_name="a.wav")


async def test_create_sends_resource_bounds_that_open_a_project_to_the_key(
    env: EmulatedDiffio,
) -> None:
    project = await env.client.projects.register(file_name="talk.wav")
    bounds = {"projectIds": [project.api_project_id]}
    created = await env.client.api_keys.create(
        label="bounded", scopes=["generations:read"], resource_bounds=bounds
    )
    assert sent(env, CREATE)[0]["resourceBounds"] == bounds
    assert created.resource_bounds == bounds
    assert await _as(env, created.key).projects.list_generations(project.api_project_id) == ()


async def test_a_scope_the_server_does_not_know_is_a_bad_request(env: EmulatedDiffio) -> None:
    with pytest.raises(BadRequestError, match="projects:delete") as info:
        await env.client.api_keys.create(label="ci", scopes=["projects:delete"])
    assert info.value.status_code == 400
    assert _paths(env) == [CREATE]  # unknown scopes are the server's to judge


# --- list --------------------------------------------------------------------------------------


async def test_list_returns_every_key_without_secrets(env: EmulatedDiffio) -> None:
    created = await env.client.api_keys.create(label="ci", scopes=["usage:read"])
    keys = {key.key_id: key for key in await env.client.api_keys.list()}
    assert set(keys) == {env.emulator.admin_key_id, created.key_id}
    assert all(isinstance(key, ApiKey) and key.key is None for key in keys.values())
    assert keys[env.emulator.admin_key_id].role == "admin"
    listed = keys[created.key_id]
    assert (listed.label, listed.scopes, listed.key_prefix) == (
        "ci",
        ("usage:read",),
        created.key_prefix,
    )
    assert sent(env, LIST) == [{}]


# --- rotate ------------------------------------------------------------------------------------


async def test_rotate_gives_a_new_secret_and_retires_the_old_one(env: EmulatedDiffio) -> None:
    created = await env.client.api_keys.create(label="ci", scopes=["projects:read"])
    rotated = await env.client.api_keys.rotate(created.key_id)
    assert sent(env, ROTATE) == [{"keyId": created.key_id}]
    assert rotated.key_id == created.key_id and rotated.key not in (None, created.key)
    assert (rotated.status, rotated.rotated_at is not None) == ("active", True)
    with pytest.raises(AuthenticationError):
        await _as(env, created.key).projects.list()
    assert await _as(env, rotated.key).projects.list() == ()


async def test_a_revoked_key_cannot_be_rotated(env: EmulatedDiffio) -> None:
    created = await env.client.api_keys.create(label="ci", scopes=["projects:read"])
    await env.client.api_keys.revoke(created.key_id)
    with pytest.raises(PermissionDeniedError, match="not active"):
        await env.client.api_keys.rotate(created.key_id)


# --- revoke ------------------------------------------------------------------------------------


async def test_revoke_deactivates_the_key_and_can_be_repeated(env: EmulatedDiffio) -> None:
    created = await env.client.api_keys.create(label="ci", scopes=["projects:read"])
    revoked = await env.client.api_keys.revoke(created.key_id)
    assert (revoked.key_id, revoked.status, revoked.key) == (created.key_id, "revoked", None)
    assert revoked.revoked_at is not None
    with pytest.raises(PermissionDeniedError, match="not active"):
        await _as(env, created.key).projects.list()
    again = await env.client.api_keys.revoke(created.key_id)
    assert (again.status, again.revoked_at) == ("revoked", revoked.revoked_at)
    assert sent(env, REVOKE) == [{"keyId": created.key_id}] * 2


# --- rotate and revoke -------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["rotate", "revoke"])
async def test_only_scoped_keys_can_be_rotated_or_revoked(env: EmulatedDiffio, method: str) -> None:
    call = getattr(env.client.api_keys, method)
    with pytest.raises(PermissionDeniedError, match="scoped"):
        await call(env.emulator.admin_key_id)


@pytest.mark.parametrize("method", ["rotate", "revoke"])
async def test_rotating_or_revoking_an_unknown_key_is_not_found(
    env: EmulatedDiffio, method: str
) -> None:
    with pytest.raises(NotFoundError) as info:
        await getattr(env.client.api_keys, method)("key_missing")
    assert info.value.status_code == 404


# --- every method: headers, admin, scopes, billing, bad input ----------------------------------


async def test_every_call_is_an_authenticated_json_post_with_the_sdk_headers(
    env: EmulatedDiffio,
) -> None:
    child = env.emulator.mint_key(scopes=["usage:read"])
    for call, _, _ in CALLS.values():
        await call(env.client, child.key_id)
    assert _paths(env) == [path for _, path, _ in CALLS.values()]
    for entry in env.emulator.requests:
        assert entry.method == "POST"
        assert {name: entry.header(name) for name in SDK_HEADERS} == SDK_HEADERS


@pytest.mark.parametrize("method", list(CALLS))
async def test_a_key_that_is_not_admin_is_refused_even_with_every_scope(
    env: EmulatedDiffio, method: str
) -> None:
    call, path, _ = CALLS[method]
    child = env.emulator.mint_key(scopes=["usage:read"])
    scoped = env.emulator.mint_key(scopes=list(SCOPES))
    with pytest.raises(PermissionDeniedError, match="admin") as info:
        await call(_as(env, scoped.key), child.key_id)
    assert info.value.status_code == 403
    assert _paths(env) == [path]


@pytest.mark.parametrize("method", list(CALLS))
async def test_an_admin_key_without_the_methods_scope_is_refused_once(
    env: EmulatedDiffio, method: str
) -> None:
    call, path, scope = CALLS[method]
    child = env.emulator.mint_key(scopes=["usage:read"])
    admin = env.emulator.mint_key(admin=True, scopes=[s for s in SCOPES if s != scope])
    with pytest.raises(PermissionDeniedError, match=scope):
        await call(_as(env, admin.key), child.key_id)
    assert _paths(env) == [path]


@pytest.mark.parametrize("method", list(CALLS))
async def test_a_billing_hold_refuses_every_method_with_payment_failed(
    env: EmulatedDiffio, method: str
) -> None:
    call, path, _ = CALLS[method]
    child = env.emulator.mint_key(scopes=["usage:read"])
    env.emulator.set_billing_hold(True)
    with pytest.raises(PaymentFailedError) as info:
        await call(env.client, child.key_id)
    assert (info.value.status_code, info.value.code) == (402, "paymentFailed")
    assert _paths(env) == [path]


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda c: c.api_keys.create(label="x" * 81, scopes=["usage:read"]), "label"),
        (lambda c: c.api_keys.create(label=5, scopes=["usage:read"]), "label"),
        (lambda c: c.api_keys.create(label="ci", scopes=["usage:read", " "]), "scopes"),
        (lambda c: c.api_keys.create(label="ci", scopes="x", resource_bounds=[1]), "bounds"),
        (lambda c: c.api_keys.rotate(5), "key_id"),
        (lambda c: c.api_keys.revoke(" "), "key_id"),
    ],
)
async def test_bad_arguments_are_refused_before_any_request(
    env: EmulatedDiffio, call: Callable[[AsyncDiffio], Awaitable[Any]], named: str
) -> None:
    with pytest.raises(InvalidRequestError, match=named):
        await call(env.client)
    assert _paths(env) == []
