"""Status-change webhooks at the moment of the change: the emulator's webhook scheduler.

A served emulator (its ASGI lifespan) and ``Emulator.background()`` in-process deliver each
change when the clock passes it, whether or not anyone polls, once each and in order.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import anyio
import httpx2
import pytest
from emulator_helpers import ADMIN, generation, inproc, ok, progress, project_a
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from virtual_clock import VIRTUAL_BACKENDS, virtual_backend

from diffio_async.emulator import Emulator, EmulatorClock, serve_in_thread
from diffio_async.emulator._clock import isoformat

pytestmark = pytest.mark.anyio

MIB = 1024 * 1024
ALL_TYPES = [
    "generation.queued",
    "generation.processing",
    "generation.completed",
    "generation.failed",
]
QUEUED_PROCESSING_COMPLETED = ALL_TYPES[:3]
VIRTUAL = pytest.mark.parametrize("anyio_backend", VIRTUAL_BACKENDS, indirect=True)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    """Both backends; tests marked ``VIRTUAL`` get them on virtual time (see virtual_clock)."""
    return virtual_backend(request.param)


class Hooks:
    """Received webhook events (from a loopback server or an httpx2 MockTransport)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.ids: list[str] = []
        self.app = Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])
        self.transport = httpx2.MockTransport(self._record)

    async def _hook(self, request: Request) -> Response:
        self.ids.append(request.headers["svix-id"])
        self.events.append(json.loads(await request.body()))
        return Response(status_code=204)

    def _record(self, request: httpx2.Request) -> httpx2.Response:
        self.ids.append(request.headers["svix-id"])
        self.events.append(json.loads(request.content))
        return httpx2.Response(204)

    def types(self) -> list[str]:
        return [str(event["eventType"]) for event in self.events]

    async def wait_for(self, count: int) -> None:
        """Until ``count`` events have arrived (short real sleeps: the sender is elsewhere)."""
        with anyio.fail_after(5):
            while len(self.events) < count:  # noqa: ASYNC110 - filled by another thread or task
                await anyio.sleep(0.002)

    async def stays(self, count: int) -> None:
        """Nothing more arrives for a moment."""
        await anyio.sleep(0.05)
        assert len(self.events) == count, self.types()


async def _configure(client: httpx2.AsyncClient, url: str) -> None:
    await ok(client, "webhooks/configure", {"mode": "live", "url": url, "eventTypes": ALL_TYPES})


@contextmanager
def _served(hooks: Hooks, **options: Any) -> Iterator[tuple[Emulator, str, str]]:
    """An emulator and the receiver, each served on loopback: (emulator, url, hook url)."""
    with (
        serve_in_thread(hooks.app) as hook_url,
        Emulator(api_key=ADMIN, **options) as emulator,
        serve_in_thread(emulator) as url,
    ):
        yield emulator, url, f"{hook_url}/hook"


# --- a served emulator ---------------------------------------------------------------------


async def test_completed_arrives_when_the_clock_passes_the_end_with_no_poll() -> None:
    hooks = Hooks()
    with _served(hooks, generation_seconds=1, seconds_per_mib=2) as (emulator, url, hook_url):
        async with httpx2.AsyncClient(base_url=url) as client:
            await _configure(client, hook_url)
            pid = (await project_a(client, b"\0" * (3 * MIB)))["apiProjectId"]
            gid = (await generation(client, pid))["generationId"]
            created = emulator.clock.now()
            await hooks.wait_for(1)
            emulator.requests.clear()
            emulator.advance(6.9)
            await hooks.wait_for(2)
            await hooks.stays(2)
            emulator.advance(0.1)  # 1 + 2 x 3 MiB = 7 s
            await hooks.wait_for(3)
            assert len(emulator.requests) == 0, "nobody polled"
            # A poll, the deliver control and deliver_due_webhooks now send nothing again.
            assert (await progress(client, gid))["status"] == "complete"
            delivered = await client.post("/_emulator/webhooks/deliver")
            assert delivered.json() == {"delivered": 0}
            assert await emulator.deliver_due_webhooks() == 0
            await hooks.stays(3)
    assert hooks.types() == QUEUED_PROCESSING_COMPLETED
    assert [event["createdAt"] for event in hooks.events] == [
        isoformat(created),
        isoformat(created + 0.7),
        isoformat(created + 7),
    ]
    completed = hooks.events[2]
    assert completed["generationId"] == gid and completed["status"] == "complete"
    assert len(set(hooks.ids)) == 3
    assert [d.status_code for d in emulator.webhook_deliveries] == [204, 204, 204]


async def test_polls_racing_the_scheduler_send_each_change_once() -> None:
    hooks = Hooks()
    with _served(hooks, generation_seconds=3) as (emulator, url, hook_url):
        async with httpx2.AsyncClient(base_url=url) as client:
            await _configure(client, hook_url)
            pid = (await project_a(client))["apiProjectId"]
            gid = (await generation(client, pid))["generationId"]
            for step in range(13):
                emulator.advance(0.25)
                await progress(client, gid)
                if step % 4 == 0:
                    await client.post("/_emulator/webhooks/deliver")
            await hooks.wait_for(3)
            await hooks.stays(3)
    assert hooks.types() == QUEUED_PROCESSING_COMPLETED
    assert len(set(hooks.ids)) == 3


async def test_changes_of_several_generations_go_out_in_time_order() -> None:
    hooks = Hooks()
    with _served(hooks, generation_seconds=3) as (emulator, url, hook_url):
        async with httpx2.AsyncClient(base_url=url) as client:
            await _configure(client, hook_url)
            pid = (await project_a(client))["apiProjectId"]
            slow = (await generation(client, pid))["generationId"]
            emulator.script_next_generation(duration=1, fail_at="inference", error="boom")
            fast = (await generation(client, pid))["generationId"]
            await hooks.wait_for(2)
            emulator.advance(10)  # every later change at once: the scheduler sorts them
            await hooks.wait_for(6)
            await hooks.stays(6)
    after_queued = [(e["generationId"], e["eventType"]) for e in hooks.events[2:]]
    assert after_queued == [
        (fast, "generation.processing"),  # 0.1 s
        (slow, "generation.processing"),  # 0.3 s
        (fast, "generation.failed"),  # 1 s
        (slow, "generation.completed"),  # 3 s
    ]
    assert hooks.events[4]["error"] == "boom"


async def test_the_wall_clock_delivers_on_time_without_polls() -> None:
    hooks = Hooks()
    clock = EmulatorClock(time_source=time.time)  # what --clock wall uses
    with _served(hooks, clock=clock, generation_seconds=0.3) as (emulator, url, hook_url):
        async with httpx2.AsyncClient(base_url=url) as client:
            await _configure(client, hook_url)
            pid = (await project_a(client))["apiProjectId"]
            await generation(client, pid)
            started = time.monotonic()
            emulator.requests.clear()
            await hooks.wait_for(3)
            waited = time.monotonic() - started
            assert len(emulator.requests) == 0
    assert hooks.types() == QUEUED_PROCESSING_COMPLETED
    assert 0.2 < waited < 5


async def test_the_control_route_advance_delivers() -> None:
    hooks = Hooks()
    with _served(hooks) as (_, url, hook_url):
        async with httpx2.AsyncClient(base_url=url) as client:
            await _configure(client, hook_url)
            pid = (await project_a(client))["apiProjectId"]
            await generation(client, pid)
            moved = await client.post("/_emulator/advance", json={"seconds": 3})
            assert moved.status_code == 200
            await hooks.wait_for(3)
    assert hooks.types() == QUEUED_PROCESSING_COMPLETED


# --- in-process: Emulator.background() -------------------------------------------------------


@asynccontextmanager
async def _in_process(
    hooks: Hooks, **options: Any
) -> AsyncIterator[tuple[Emulator, httpx2.AsyncClient]]:
    with Emulator(api_key=ADMIN, webhook_transport=hooks.transport, **options) as emulator:
        async with inproc(emulator) as client:
            await _configure(client, "https://hooks.example.test/diffio")
            yield emulator, client


async def test_background_delivers_in_process() -> None:
    hooks = Hooks()
    async with _in_process(hooks) as (emulator, client):
        pid = (await project_a(client))["apiProjectId"]
        async with emulator.background():
            gid = (await generation(client, pid))["generationId"]
            await hooks.wait_for(1)
            emulator.advance(3)
            await hooks.wait_for(3)
            assert await emulator.deliver_due_webhooks() == 0
            await progress(client, gid)
            await hooks.stays(3)
        # Stopped: the poll path announces again, as without the background task.
        later = (await generation(client, pid))["generationId"]
        assert len(hooks.events) == 4  # its queued event, sent by the create request
        emulator.advance(3)
        await progress(client, later)
        assert hooks.types()[3:] == QUEUED_PROCESSING_COMPLETED
        assert len(set(hooks.ids)) == 6


async def test_a_second_background_leaves_the_work_to_the_first() -> None:
    hooks = Hooks()
    async with _in_process(hooks) as (emulator, client), emulator.background():
        async with emulator.background():
            pass
        pid = (await project_a(client))["apiProjectId"]
        await generation(client, pid)
        emulator.advance(3)
        await hooks.wait_for(3)
    assert hooks.types() == QUEUED_PROCESSING_COMPLETED


async def test_deliver_due_webhooks_waits_for_what_is_pending() -> None:
    gate = anyio.Event()
    sent: list[str] = []

    async def slow_receiver(request: httpx2.Request) -> httpx2.Response:
        await gate.wait()
        sent.append(json.loads(request.content)["eventType"])
        return httpx2.Response(204)

    with Emulator(api_key=ADMIN, webhook_transport=httpx2.MockTransport(slow_receiver)) as emu:
        async with inproc(emu) as client, emu.background():
            await _configure(client, "https://hooks.example.test/diffio")
            pid = (await project_a(client))["apiProjectId"]
            await generation(client, pid)  # its queued event: held at the gate
            returned: list[int] = []

            async def flush() -> None:
                returned.append(await emu.deliver_due_webhooks())

            async with anyio.create_task_group() as group:
                group.start_soon(flush)
                await anyio.sleep(0.02)
                assert returned == [] and sent == []
                gate.set()
    assert returned == [0] and sent == ["generation.queued"]


@VIRTUAL
async def test_virtual_time_delivers_without_polls() -> None:
    """The clock follows anyio.current_time(): the task sleeps in virtual time to each change."""
    hooks = Hooks()
    clock = EmulatorClock(time_source=anyio.current_time)
    async with _in_process(hooks, clock=clock) as (emulator, client):
        pid = (await project_a(client))["apiProjectId"]
        async with emulator.background():
            emulator.script_next_generation(duration=300)
            await generation(client, pid)
            created = clock.now()
            await anyio.sleep(29.9)
            assert hooks.types() == ["generation.queued"]
            await anyio.sleep(0.2)
            assert hooks.types() == ALL_TYPES[:2]
            await anyio.sleep(269.8)
            assert hooks.types() == ALL_TYPES[:2]
            await anyio.sleep(0.2)
            assert hooks.types() == QUEUED_PROCESSING_COMPLETED
        assert len(emulator.requests.find(path="/v1/get_generation_progress")) == 0
    assert hooks.events[2]["createdAt"] == isoformat(created + 300)
