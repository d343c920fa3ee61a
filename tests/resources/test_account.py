"""``client.account`` against the emulator on loopback: get_settings and update_settings (admin
keys only). The endpoints are the same in both eras.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from shared import SDK_HEADERS, sent

from diffio_async import (
    AccountSettings,
    AsyncDiffio,
    InvalidRequestError,
    PaymentFailedError,
    PermissionDeniedError,
)
from diffio_async.resources.api_keys import SCOPES
from diffio_async.testing import EmulatedDiffio
from diffio_async.types import BillingPolicy

pytestmark = pytest.mark.anyio

GET = "/v1/account/settings/get"
UPDATE = "/v1/account/settings/update"

Call = Callable[[AsyncDiffio], Awaitable[Any]]
CALLS: dict[str, tuple[Call, str, str]] = {
    # method: (call with a client, path, scope it needs)
    "get_settings": (lambda c: c.account.get_settings(), GET, "account:read"),
    "update_settings": (
        lambda c: c.account.update_settings(billing_policy="customerStripe"),
        UPDATE,
        "account:write",
    ),
}


def _paths(env: EmulatedDiffio) -> list[str]:
    return [entry.path for entry in env.emulator.requests]


async def test_get_settings_returns_the_account_and_the_calling_key(env: EmulatedDiffio) -> None:
    settings = await env.client.account.get_settings()
    assert isinstance(settings, AccountSettings)
    assert settings.api_key_id == env.emulator.admin_key_id
    account = settings.account
    assert (account.user_id, account.currency) == ("user_emulator", "usd")
    assert (account.billing_mode, account.billing_status) == ("developerProgressive", "active")
    assert account.billing_policy == BillingPolicy(type="customerStripe")
    assert sent(env, GET) == [{}]


async def test_update_settings_sets_the_billing_policy_and_its_reason(
    env: EmulatedDiffio,
) -> None:
    updated = await env.client.account.update_settings(
        billing_policy="internalDiffio", reason="staff account"
    )
    assert sent(env, UPDATE) == [
        {"billingPolicy": {"type": "internalDiffio", "reason": "staff account"}}
    ]
    assert isinstance(updated, AccountSettings)
    policy = BillingPolicy(type="internalDiffio", reason="staff account")
    assert updated.account.billing_policy == policy
    assert updated.account.updated_at is not None and updated.account.updated_at.tzinfo is not None
    assert (await env.client.account.get_settings()).account.billing_policy == policy


async def test_update_settings_without_a_reason_sends_only_the_type(env: EmulatedDiffio) -> None:
    await env.client.account.update_settings(billing_policy="internalDiffio", reason="test")
    updated = await env.client.account.update_settings(billing_policy="customerStripe")
    assert sent(env, UPDATE)[-1] == {"billingPolicy": {"type": "customerStripe"}}
    assert updated.account.billing_policy == BillingPolicy(type="customerStripe")


async def test_a_key_that_is_not_admin_reads_the_settings_but_cannot_update_them(
    env: EmulatedDiffio,
) -> None:
    key = env.emulator.mint_key(scopes=["account:read", "account:write"])
    scoped = env.client.with_options(api_key=key.key)
    assert (await scoped.account.get_settings()).api_key_id == key.key_id
    with pytest.raises(PermissionDeniedError, match="admin"):
        await scoped.account.update_settings(billing_policy="internalDiffio")


async def test_every_call_is_an_authenticated_json_post_with_the_sdk_headers(
    env: EmulatedDiffio,
) -> None:
    for call, _, _ in CALLS.values():
        await call(env.client)
    assert _paths(env) == [path for _, path, _ in CALLS.values()]
    for entry in env.emulator.requests:
        assert entry.method == "POST"
        assert {name: entry.header(name) for name in SDK_HEADERS} == SDK_HEADERS


@pytest.mark.parametrize("method", list(CALLS))
async def test_an_admin_key_without_the_methods_scope_is_refused_once(
    env: EmulatedDiffio, method: str
) -> None:
    call, path, scope = CALLS[method]
    key = env.emulator.mint_key(admin=True, scopes=[s for s in SCOPES if s != scope])
    with pytest.raises(PermissionDeniedError, match=scope) as info:
        await call(env.client.with_options(api_key=key.key))
    assert info.value.status_code == 403
    assert _paths(env) == [path]


@pytest.mark.parametrize("method", list(CALLS))
async def test_a_billing_hold_refuses_every_method_with_payment_failed(
    env: EmulatedDiffio, method: str
) -> None:
    call, path, _ = CALLS[method]
    env.emulator.set_billing_hold(True)
    with pytest.raises(PaymentFailedError) as info:
        await call(env.client)
    assert (info.value.status_code, info.value.code) == (402, "paymentFailed")
    assert _paths(env) == [path]


@pytest.mark.parametrize("policy", ["InternalDiffio", "", None])
async def test_a_policy_the_api_does_not_document_is_refused_before_any_request(
    env: EmulatedDiffio, policy: Any
) -> None:
    with pytest.raises(InvalidRequestError, match="billing_policy"):
        await env.client.account.update_settings(billing_policy=policy)
    assert _paths(env) == []
