"""Webhooks: configure, send_test_event, signed deliveries on status changes, retries."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import anyio
import httpx2
import pytest
from emulator_helpers import ADMIN, call, generation, inproc, ok, project_a
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from diffio_async.emulator import Emulator, serve_in_thread

pytestmark = pytest.mark.anyio

HOOK = "https://hooks.example.test/diffio"


class Receiver:
    """An httpx2 MockTransport that records webhook requests and answers scripted statuses."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.requests: list[httpx2.Request] = []
        self.transport = httpx2.MockTransport(self.handle)

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        return httpx2.Response(self.statuses.pop(0) if self.statuses else 204)

    def events(self) -> list[dict[str, object]]:
        return [json.loads(request.content) for request in self.requests]


def verify(secret: str, headers: httpx2.Headers | dict[str, str], body: bytes) -> bool:
    """Independent Standard Webhooks check (not the emulator's signer)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['svix-id']}.{headers['svix-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(
        hmac.compare_digest(part.removeprefix("v1,"), expected)
        for part in headers["svix-signature"].split()
    )


@pytest.fixture
def receiver() -> Receiver:
    return Receiver()


@pytest.fixture
def hooked(receiver: Receiver) -> Iterator[Emulator]:
    with Emulator(
        api_key=ADMIN, webhook_transport=receiver.transport, webhook_retry_delays=(0, 0.01, 0.01)
    ) as emulator:
        yield emulator


async def _configure(
    client: httpx2.AsyncClient, mode: str = "live", **extra: object
) -> dict[str, Any]:
    return await ok(
        client,
        "webhooks/configure",
        {
            "mode": mode,
            "url": HOOK,
            "eventTypes": [
                "generation.queued",
                "generation.processing",
                "generation.completed",
                "generation.failed",
            ],
            **extra,
        },
    )


async def test_configure_shape_and_upsert(hooked: Emulator) -> None:
    async with inproc(hooked) as client:
        first = (await _configure(client))["webhook"]
        second = (
            await ok(
                client,
                "webhooks/configure",
                {
                    "mode": "live",
                    "url": HOOK + "/v2",
                    "eventTypes": ["generation.completed"],
                },
            )
        )["webhook"]
        test_mode = (await _configure(client, "test"))["webhook"]
    assert first["endpointId"].startswith("ep_")
    assert first == {
        "apiKeyId": hooked.admin_key_id,
        "mode": "live",
        "svixEnv": "production",
        "endpointId": first["endpointId"],
        "eventTypes": first["eventTypes"],
        "url": HOOK,
        "signing": "svix",
        "updatedByKeyId": hooked.admin_key_id,
    }
    assert second["endpointId"] == first["endpointId"]
    assert second["url"] == HOOK + "/v2" and second["eventTypes"] == ["generation.completed"]
    assert test_mode["endpointId"] != first["endpointId"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"url": HOOK, "eventTypes": ["generation.queued"]}, "mode must be test or live"),
        (
            {"mode": "live", "url": "ftp://x", "eventTypes": ["generation.queued"]},
            "url must be an absolute HTTPS URL",
        ),
        (
            {"mode": "live", "url": HOOK, "eventTypes": []},
            "eventTypes must be a non-empty array of supported event types",
        ),
        (
            {"mode": "live", "url": HOOK, "eventTypes": ["generation.deleted"]},
            "eventTypes must be a non-empty array of supported event types",
        ),
    ],
)
async def test_configure_validation(
    hooked: Emulator, body: dict[str, object], message: str
) -> None:
    async with inproc(hooked) as client:
        response = await call(client, "webhooks/configure", body)
    assert response.status_code == 400 and response.json() == {"error": message}


async def test_send_test_event_is_signed(hooked: Emulator, receiver: Receiver) -> None:
    async with inproc(hooked) as client:
        await _configure(client, "test")
        sent = await ok(
            client,
            "webhooks/send_test_event",
            {
                "eventType": "generation.completed",
                "mode": "test",
                "samplePayload": {"apiProjectId": "proj_custom"},
            },
        )
        unrouted = await ok(
            client, "webhooks/send_test_event", {"eventType": "generation.failed", "mode": "live"}
        )
    assert set(sent) == {"svixMessageId", "eventId", "eventType", "apiKeyId", "mode"}
    assert sent["apiKeyId"] == hooked.admin_key_id and sent["mode"] == "test"
    assert unrouted["mode"] == "live"
    (request,) = receiver.requests  # nothing configured for live mode
    assert str(request.url) == HOOK
    assert request.headers["svix-id"] == sent["svixMessageId"]
    assert request.headers["content-type"] == "application/json"
    assert abs(int(request.headers["svix-timestamp"]) - time.time()) < 60
    assert verify(hooked.webhook_secret, request.headers, request.content)
    assert not verify(
        "whsec_" + base64.b64encode(b"x" * 24).decode(), request.headers, request.content
    )
    event = json.loads(request.content)
    assert event["eventType"] == "generation.completed" and event["status"] == "complete"
    assert event["eventId"] == sent["eventId"]
    assert event["apiProjectId"] == "proj_custom"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"mode": "test"}, "eventType is required"),
        ({"eventType": "generation.deleted", "mode": "test"}, "eventType is not supported"),
        ({"eventType": "generation.queued", "mode": "prod"}, "mode must be test or live"),
        (
            {"eventType": "generation.queued", "mode": "test", "samplePayload": []},
            "samplePayload must be an object",
        ),
    ],
)
async def test_send_test_event_validation(
    hooked: Emulator, body: dict[str, object], message: str
) -> None:
    async with inproc(hooked) as client:
        response = await call(client, "webhooks/send_test_event", body)
    assert response.status_code == 400 and response.json() == {"error": message}


async def test_send_test_event_for_another_key(hooked: Emulator) -> None:
    child = hooked.mint_key(scopes=["webhooks:write"])
    async with inproc(hooked) as client:
        own = await ok(
            client,
            "webhooks/send_test_event",
            {"eventType": "generation.queued", "mode": "test"},
            key=child.key,
        )
        denied = await call(
            client,
            "webhooks/send_test_event",
            {"eventType": "generation.queued", "mode": "test", "apiKeyId": hooked.admin_key_id},
            key=child.key,
        )
        by_admin = await ok(
            client,
            "webhooks/send_test_event",
            {"eventType": "generation.queued", "mode": "test", "apiKeyId": child.key_id},
        )
    assert own["apiKeyId"] == child.key_id
    assert denied.status_code == 403
    assert by_admin["apiKeyId"] == child.key_id


async def test_generation_status_changes_are_delivered(
    hooked: Emulator, receiver: Receiver
) -> None:
    async with inproc(hooked) as client:
        await _configure(client)
        pid = (await project_a(client))["apiProjectId"]
        made = await generation(client, pid, "diffio-2.0")
        assert [e["eventType"] for e in receiver.events()] == ["generation.queued"]
        hooked.advance(3)
        assert await hooked.deliver_due_webhooks() == 2
        assert await hooked.deliver_due_webhooks() == 0
        hooked.script_next_generation(fail_at="inference", error="boom")
        failing = await generation(client, pid, "diffio-2.0")
        hooked.advance(3)
        await ok(client, "get_generation_progress", {"generationId": failing["generationId"]})
    events = receiver.events()
    assert [e["eventType"] for e in events] == [
        "generation.queued",
        "generation.processing",
        "generation.completed",
        "generation.queued",
        "generation.processing",
        "generation.failed",
    ]
    completed = events[2]
    assert completed["generationId"] == made["generationId"]
    assert completed["status"] == "complete"
    assert completed["apiKeyId"] == hooked.admin_key_id
    assert completed["apiProjectId"] == pid
    assert completed["modelKey"] == "diffio-2" and completed["hasVideo"] is False
    assert completed["transcription"] == {"status": "available"}
    assert completed["error"] is None and completed["errorDetails"] is None
    failed = events[5]
    assert failed["status"] == "error" and failed["error"] == "boom"
    assert len({e["eventId"] for e in events}) == 6
    for request in receiver.requests:
        assert verify(hooked.webhook_secret, request.headers, request.content)


async def test_only_subscribed_event_types_are_sent(hooked: Emulator, receiver: Receiver) -> None:
    async with inproc(hooked) as client:
        await ok(
            client,
            "webhooks/configure",
            {
                "mode": "live",
                "url": HOOK,
                "eventTypes": ["generation.completed"],
            },
        )
        pid = (await project_a(client))["apiProjectId"]
        await generation(client, pid)
        hooked.advance(3)
        await hooked.deliver_due_webhooks()
    assert [e["eventType"] for e in receiver.events()] == ["generation.completed"]


async def test_retries_keep_the_message_id() -> None:
    receiver = Receiver(statuses=[500, 503, 200])
    with Emulator(
        api_key=ADMIN, webhook_transport=receiver.transport, webhook_retry_delays=(0, 0.01, 0.01)
    ) as emulator:
        async with inproc(emulator) as client:
            await _configure(client, "test")
            await ok(
                client,
                "webhooks/send_test_event",
                {"eventType": "generation.queued", "mode": "test"},
            )
        attempts = emulator.webhook_deliveries
    assert [a.status_code for a in attempts] == [500, 503, 200]
    assert [a.attempt for a in attempts] == [1, 2, 3]
    assert len({r.headers["svix-id"] for r in receiver.requests}) == 1
    assert attempts[-1].ok and not attempts[0].ok


async def test_gives_up_after_the_schedule() -> None:
    receiver = Receiver(statuses=[500] * 5)
    with Emulator(
        api_key=ADMIN, webhook_transport=receiver.transport, webhook_retry_delays=(0, 0)
    ) as emulator:
        async with inproc(emulator) as client:
            await _configure(client, "test")
            await ok(
                client,
                "webhooks/send_test_event",
                {"eventType": "generation.queued", "mode": "test"},
            )
    assert len(receiver.requests) == 2
    assert not any(a.ok for a in emulator.webhook_deliveries)


async def test_real_delivery_over_loopback() -> None:
    received: list[tuple[dict[str, str], bytes]] = []

    async def hook(request: Request) -> Response:
        received.append((dict(request.headers), await request.body()))
        return Response(status_code=200)

    receiver_app = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    with (
        serve_in_thread(receiver_app) as hook_url,
        Emulator(api_key=ADMIN, webhook_timestamps="emulator") as emulator,
        serve_in_thread(emulator) as url,
    ):
        async with httpx2.AsyncClient(base_url=url) as client:
            await ok(
                client,
                "webhooks/configure",
                {
                    "mode": "live",
                    "url": f"{hook_url}/hook",
                    "eventTypes": ["generation.completed"],
                },
            )
            pid = (await project_a(client))["apiProjectId"]
            await generation(client, pid)
            emulator.advance(3)  # the served emulator delivers on its own, nobody polls
            with anyio.fail_after(5):
                while not received:  # noqa: ASYNC110 - the receiver runs in another thread
                    await anyio.sleep(0.005)
            delivered = await client.post("/_emulator/webhooks/deliver")
            deliveries = (await client.get("/_emulator/webhooks/deliveries")).json()
        assert delivered.json() == {"delivered": 0}  # nothing left to announce
        assert deliveries["deliveries"][0]["statusCode"] == 200
        ((headers, body),) = received
        assert headers["svix-timestamp"] == str(int(emulator.clock.now()))
        assert verify(emulator.webhook_secret, headers, body)
        assert json.loads(body)["eventType"] == "generation.completed"


async def test_legacy_app_portal_access(hooked: Emulator) -> None:
    async with inproc(hooked) as client:
        portal = await ok(client, "webhooks/app_portal_access", {"mode": "test"})
    assert portal["mode"] == "test" and portal["apiKeyId"] == hooked.admin_key_id
    assert portal["portalUrl"].startswith("http://emulator.test/_emulator/webhooks/portal")
