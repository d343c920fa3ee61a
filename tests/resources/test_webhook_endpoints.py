"""``client.webhooks`` (resources/webhook_endpoints.py) against the emulator on loopback:
send_test_event and configure. The endpoints are the same in both eras.

Named ``_resource`` because tests/test_webhooks.py (signature verification, the router) holds
the basename. Deliveries and their signatures are tested there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from shared import SDK_HEADERS, sent

from diffio_async import (
    AsyncDiffio,
    InvalidRequestError,
    NotFoundError,
    PaymentFailedError,
    PermissionDeniedError,
    WebhookEndpoint,
    WebhookTestEvent,
)
from diffio_async.resources.api_keys import SCOPES
from diffio_async.testing import EmulatedDiffio
from diffio_async.types import WebhookEventType

pytestmark = pytest.mark.anyio

TEST_EVENT = "/v1/webhooks/send_test_event"
CONFIGURE = "/v1/webhooks/configure"
HOOK = "https://example.com/hook"

Call = Callable[[AsyncDiffio], Awaitable[Any]]
CALLS: dict[str, tuple[Call, str, str]] = {
    # method: (call with a client, path, scope it needs)
    "send_test_event": (
        lambda c: c.webhooks.send_test_event("generation.queued"),
        TEST_EVENT,
        "webhooks:write",
    ),
    "configure": (lambda c: c.webhooks.configure(url=HOOK), CONFIGURE, "webhooks:write"),
}


def _paths(env: EmulatedDiffio) -> list[str]:
    return [entry.path for entry in env.emulator.requests]


# --- send_test_event ---------------------------------------------------------------------------


async def test_send_test_event_returns_the_message_and_event_ids(env: EmulatedDiffio) -> None:
    event = await env.client.webhooks.send_test_event("generation.completed")
    assert isinstance(event, WebhookTestEvent)
    assert event.svix_message_id.startswith("msg_") and event.event_id.startswith("evt_")
    assert (event.event_type, event.mode, event.api_key_id) == (
        "generation.completed",
        "test",
        env.emulator.admin_key_id,
    )
    assert sent(env, TEST_EVENT) == [{"eventType": "generation.completed", "mode": "test"}]


async def test_send_test_event_sends_the_target_key_and_sample_payload(
    env: EmulatedDiffio,
) -> None:
    key = env.emulator.mint_key(scopes=["webhooks:write"])
    event = await env.client.webhooks.send_test_event(
        "generation.failed", mode="live", api_key_id=key.key_id, sample_payload={"a": [1]}
    )
    assert (event.api_key_id, event.mode) == (key.key_id, "live")
    assert sent(env, TEST_EVENT) == [
        {
            "eventType": "generation.failed",
            "mode": "live",
            "apiKeyId": key.key_id,
            "samplePayload": {"a": [1]},
        }
    ]


async def test_a_non_admin_key_sends_test_events_only_for_itself(env: EmulatedDiffio) -> None:
    key = env.emulator.mint_key(scopes=["webhooks:write"])
    scoped = env.client.with_options(api_key=key.key)
    assert (await scoped.webhooks.send_test_event("generation.queued")).api_key_id == key.key_id
    with pytest.raises(PermissionDeniedError, match="itself"):
        await scoped.webhooks.send_test_event(
            "generation.queued", api_key_id=env.emulator.admin_key_id
        )


async def test_a_test_event_for_an_unknown_key_is_not_found(env: EmulatedDiffio) -> None:
    with pytest.raises(NotFoundError) as info:
        await env.client.webhooks.send_test_event("generation.queued", api_key_id="key_missing")
    assert info.value.status_code == 404


# --- configure ---------------------------------------------------------------------------------


async def test_configure_subscribes_the_url_and_describes_the_endpoint(
    env: EmulatedDiffio,
) -> None:
    endpoint = await env.client.webhooks.configure(
        url=HOOK, event_types=["generation.completed"], mode="live"
    )
    assert sent(env, CONFIGURE) == [
        {"mode": "live", "url": HOOK, "eventTypes": ["generation.completed"]}
    ]
    assert isinstance(endpoint, WebhookEndpoint)
    assert (endpoint.url, endpoint.event_types, endpoint.mode) == (
        HOOK,
        ("generation.completed",),
        "live",
    )
    assert (endpoint.svix_env, endpoint.signing) == ("production", "svix")
    assert endpoint.endpoint_id is not None and endpoint.endpoint_id.startswith("ep_")
    admin = env.emulator.admin_key_id
    assert (endpoint.api_key_id, endpoint.updated_by_key_id) == (admin, admin)


async def test_configure_subscribes_to_every_event_type_by_default(env: EmulatedDiffio) -> None:
    endpoint = await env.client.webhooks.configure(url=HOOK)
    assert endpoint.event_types == WebhookEventType.ALL
    (body,) = sent(env, CONFIGURE)
    assert (body["mode"], body["eventTypes"]) == ("live", list(WebhookEventType.ALL))


async def test_configure_takes_one_event_type_as_a_string(env: EmulatedDiffio) -> None:
    endpoint = await env.client.webhooks.configure(url=HOOK, event_types="generation.failed")
    assert endpoint.event_types == ("generation.failed",)
    assert sent(env, CONFIGURE)[0]["eventTypes"] == ["generation.failed"]


async def test_configuring_a_mode_again_replaces_its_endpoint(env: EmulatedDiffio) -> None:
    first = await env.client.webhooks.configure(url=HOOK, mode="live")
    second = await env.client.webhooks.configure(url=HOOK + "/v2", mode="live")
    test = await env.client.webhooks.configure(url=HOOK, mode="test")
    assert second.endpoint_id == first.endpoint_id and second.url == HOOK + "/v2"
    assert test.endpoint_id != first.endpoint_id and test.svix_env == "test"


async def test_configure_for_another_key_names_it(env: EmulatedDiffio) -> None:
    key = env.emulator.mint_key(scopes=["webhooks:write"])
    endpoint = await env.client.webhooks.configure(url=HOOK, api_key_id=key.key_id)
    assert (endpoint.api_key_id, endpoint.updated_by_key_id) == (
        key.key_id,
        env.emulator.admin_key_id,
    )
    assert sent(env, CONFIGURE)[0]["apiKeyId"] == key.key_id


async def test_configure_needs_an_admin_key(env: EmulatedDiffio) -> None:
    key = env.emulator.mint_key(scopes=list(SCOPES))
    with pytest.raises(PermissionDeniedError, match="admin"):
        await env.client.with_options(api_key=key.key).webhooks.configure(url=HOOK)


# --- every method: headers, scopes, billing, bad input -----------------------------------------


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


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda c: c.webhooks.send_test_event("generation.queued", api_key_id=" "), "api_key_id"),
        (lambda c: c.webhooks.send_test_event("generation.queued", sample_payload=[1]), "sample"),
        (lambda c: c.webhooks.configure(url=HOOK, event_types=["generation.done"]), "event type"),
        (lambda c: c.webhooks.configure(url=HOOK, mode="prod"), "mode"),
        (lambda c: c.webhooks.configure(url="https://example.com/a hook"), "url"),
        (lambda c: c.webhooks.configure(url=HOOK, api_key_id=""), "api_key_id"),
    ],
)
async def test_bad_arguments_are_refused_before_any_request(
    env: EmulatedDiffio, call: Call, named: str
) -> None:
    with pytest.raises(InvalidRequestError, match=named):
        await call(env.client)
    assert _paths(env) == []
