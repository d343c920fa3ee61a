"""``listen_for_webhooks``: a delivery over a real loopback socket verifies through the router
and wakes the waits on its generation; anything else gets the right 4xx and wakes nobody."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import anyio
import httpx2
import pytest

from diffio_async import ConfigurationError
from diffio_async.webhook_listener import MAX_BODY_BYTES, listen_for_webhooks
from diffio_async.webhooks import WebhookRouter, sign

pytestmark = pytest.mark.anyio

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
EVENT = json.dumps(
    {
        "eventType": "generation.completed",
        "eventId": "evt_1",
        "createdAt": "2026-01-28T12:34:56Z",
        "apiKeyId": "key_1",
        "apiProjectId": "proj_1",
        "generationId": "gen_1",
        "status": "complete",
        "hasVideo": False,
        "modelKey": "diffio-2",
    }
)


def _signed(body: str, msg_id: str = "msg_1") -> dict[str, str]:
    stamp = int(time.time())
    return {
        "svix-id": msg_id,
        "svix-timestamp": str(stamp),
        "svix-signature": sign(SECRET, msg_id=msg_id, timestamp=stamp, payload=body),
        "content-type": "application/json",
    }


async def test_a_signed_delivery_wakes_the_wait_on_its_generation() -> None:
    router = WebhookRouter(SECRET)
    woken: list[str] = []

    async def wait() -> None:
        await router.wait_for("gen_1")
        woken.append("gen_1")

    async with listen_for_webhooks(router) as url, httpx2.AsyncClient() as http:
        async with anyio.create_task_group() as group:
            group.start_soon(wait)
            await anyio.wait_all_tasks_blocked()
            answer = await http.post(url, content=EVENT, headers=_signed(EVENT))
        assert answer.status_code == 204
    assert woken == ["gen_1"]


async def test_anything_but_a_signed_post_is_refused_and_wakes_nobody() -> None:
    router = WebhookRouter(SECRET)
    async with listen_for_webhooks(router) as url, httpx2.AsyncClient() as http:
        with anyio.move_on_after(0.5) as scope:
            async with anyio.create_task_group() as group:
                group.start_soon(router.wait_for, "gen_1")
                await anyio.wait_all_tasks_blocked()
                forged = {**_signed(EVENT), "svix-signature": "v1,AAAA"}
                assert (await http.post(url, content=EVENT, headers=forged)).status_code == 400
                assert (await http.get(url)).status_code == 405
                huge = f"POST / HTTP/1.1\r\nContent-Length: {MAX_BODY_BYTES + 1}\r\n\r\n"
                assert (await _raw(url, huge.encode())).startswith(b"HTTP/1.1 413")
                assert (await _raw(url, b"not http at all\r\n\r\n")).startswith(b"HTTP/1.1 400")
                await anyio.sleep(0.3)
        assert scope.cancelled_caught  # nothing woke the wait


async def _raw(url: str, request: bytes) -> bytes:
    """Send ``request`` as it is (no client would) and return the start of the answer."""
    async with await anyio.connect_tcp("127.0.0.1", httpx2.URL(url).port or 0) as raw:
        await raw.send(request)
        return await raw.receive()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"router": "secret"}, "router must be a WebhookRouter"),
        ({"port": 70000}, "port must be an int"),
        ({"port": True}, "port must be an int"),
        ({"host": ""}, "host must be a non-empty string"),
    ],
)
async def test_bad_arguments_are_refused_before_listening(
    arguments: dict[str, object], message: str
) -> None:
    values: dict[str, object] = {"router": WebhookRouter(SECRET), **arguments}
    with pytest.raises(ConfigurationError, match=message):
        async with listen_for_webhooks(**values):  # type: ignore[arg-type]
            pass


_FLOODED = r"""
import resource, subprocess, sys
import anyio
from diffio_async.webhook_listener import listen_for_webhooks
from diffio_async.webhooks import WebhookRouter

FLOOD = '''
import socket, sys, time
held = []
for _ in range(150):
    try:
        held.append(socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1))
    except OSError:
        pass
time.sleep(2)
'''

async def main() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (80, 80))  # cheap to run out of descriptors
    router = WebhookRouter("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    async with listen_for_webhooks(router) as url:
        port = url.rsplit(":", 1)[1].strip("/")
        flood = await anyio.open_process([sys.executable, "-c", FLOOD, port])
        await anyio.sleep(2.5)  # the caller's own work, which the flood must not cancel
        await flood.wait()
    print("the block finished")

anyio.run(main, backend=sys.argv[1])
"""


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_connection_flood_never_cancels_the_callers_block(backend: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _FLOODED, backend], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "the block finished" in done.stdout
