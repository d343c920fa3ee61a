"""A client that goes away mid-request or mid-response is not an emulator error.

Each test serves the emulator with uvicorn on loopback, lets a client disconnect in the middle
of a transfer, waits until the emulator has finished that request, and checks that uvicorn
logged nothing at ERROR level ("Exception in ASGI application").
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import httpx2
import pytest
from emulator_helpers import ADMIN, bearer, generation, ok, project_b
from starlette.types import Receive, Scope, Send

from diffio_async.emulator import Emulator, serve_in_thread

pytestmark = pytest.mark.anyio

MIB = 1024 * 1024


class _Counted:
    """An ASGI wrapper counting the requests the emulator started and finished (any outcome)."""

    def __init__(self, app: Emulator) -> None:
        self.app = app
        self.started = 0
        self.finished = 0
        self._changed = threading.Condition()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with self._changed:
            self.started += 1
            self._changed.notify_all()
        try:
            await self.app(scope, receive, send)
        finally:
            with self._changed:
                self.finished += 1
                self._changed.notify_all()

    def wait_until(self, done: Callable[[int, int], bool]) -> int:
        """Block until ``done(started, finished)``; return ``started``."""
        with self._changed:
            assert self._changed.wait_for(lambda: done(self.started, self.finished), 30)
            return self.started


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    @property
    def errors(self) -> list[str]:
        return [
            f"{record.getMessage()} {record.exc_info[1]!r}" if record.exc_info else record.msg
            for record in self.records
            if record.levelno >= logging.ERROR
        ]


class Served:
    """A served emulator, its URL, its request counts and uvicorn's error records."""

    def __init__(self, emulator: Emulator, url: str, counted: _Counted, log: _Records):
        self.emulator = emulator
        self.url = url
        self.counted = counted
        self.log = log

    async def _until(self, done: Callable[[int, int], bool]) -> int:
        return await anyio.to_thread.run_sync(self.counted.wait_until, done)

    async def idle(self) -> int:
        """Wait until every request so far has finished; return how many have started."""
        return await self._until(lambda started, finished: started == finished)

    async def settle(self, client: httpx2.AsyncClient, started: int) -> None:
        """Wait until ``started`` requests have started and all have finished, then let the
        server loop move on.

        uvicorn logs an escaped exception in the same event-loop step in which the request
        finished, so a later round trip to the (single-threaded) server orders the check after
        any such log record.
        """
        await self._until(lambda now, finished: now >= started and now == finished)
        assert (await client.get(f"{self.url}/_emulator")).status_code == 200


@contextlib.contextmanager
def _serve(era: str) -> Iterator[Served]:
    options: dict[str, Any] = {"part_size_bytes": 8 * MIB} if era == "b" else {}
    with Emulator(era=era, api_key=ADMIN, **options) as emulator:  # type: ignore[arg-type]
        counted = _Counted(emulator)
        with serve_in_thread(counted) as url:
            # uvicorn (re)configures its loggers when the server is created: attach afterwards.
            error_log = logging.getLogger("uvicorn.error")
            log = _Records()
            error_log.addHandler(log)
            try:
                yield Served(emulator, url, counted, log)
            finally:
                error_log.removeHandler(log)


@pytest.fixture
def served_a() -> Iterator[Served]:
    with _serve("a") as served:
        yield served


@pytest.fixture
def served_b() -> Iterator[Served]:
    with _serve("b") as served:
        yield served


async def _download_url(served: Served, client: httpx2.AsyncClient, size: int) -> str:
    created = await ok(client, "create_project", {"fileName": "a.wav", "contentType": "audio/wav"})
    put = await client.put(
        created["uploadUrl"], content=b"\x01" * size, headers={"Content-Type": "audio/wav"}
    )
    assert put.status_code == 200
    made = await generation(client, created["apiProjectId"])
    served.emulator.advance(3)
    info = await ok(
        client,
        "get_generation_download",
        {"generationId": made["generationId"], "apiProjectId": created["apiProjectId"]},
    )
    return str(info["downloadUrl"])


async def _stalled_body(first_sent: anyio.Event) -> AsyncIterator[bytes]:
    yield b"\x02" * MIB
    first_sent.set()  # asked for more: the first MiB has been handed to the socket
    await anyio.sleep_forever()
    yield b""  # pragma: no cover


@pytest.mark.parametrize("how", ["close", "cancel"])
async def test_a_download_abandoned_mid_transfer_is_not_an_emulator_error(
    served_a: Served, how: str
) -> None:
    async with httpx2.AsyncClient(base_url=served_a.url, timeout=30) as client:
        url = httpx2.URL(await _download_url(served_a, client, 32 * MIB))
        before = await served_a.idle()
        # A raw socket: the client reads a little of the body, then goes away (closing the
        # connection, or cancelled while reading). httpx2's own abandoned stream would leave
        # its generators unfinished, which is a client matter, not what is tested here.
        assert url.host and url.port
        with anyio.CancelScope() as scope:
            async with await anyio.connect_tcp(url.host, url.port) as stream:
                target = url.raw_path.decode()
                await stream.send(f"GET {target} HTTP/1.1\r\nHost: {url.host}\r\n\r\n".encode())
                first = await stream.receive()
                assert first.startswith(b"HTTP/1.1 200")
                if how == "cancel":
                    scope.cancel()
                    await anyio.lowlevel.checkpoint()  # cancelled mid-download
        assert scope.cancel_called == (how == "cancel")
        await served_a.settle(client, before + 1)
    (download,) = served_a.emulator.requests.find(method="GET")
    assert download.status == 200
    assert served_a.log.errors == []


async def test_a_cancelled_era_a_upload_is_not_an_emulator_error(served_a: Served) -> None:
    async with httpx2.AsyncClient(base_url=served_a.url, timeout=30) as client:
        created = await ok(
            client, "create_project", {"fileName": "a.wav", "contentType": "audio/wav"}
        )
        before = await served_a.idle()
        first_sent = anyio.Event()
        async with anyio.create_task_group() as group:
            group.start_soon(
                lambda: client.put(
                    created["uploadUrl"],
                    content=_stalled_body(first_sent),
                    headers={"Content-Type": "audio/wav", "Content-Length": str(8 * MIB)},
                )
            )
            await first_sent.wait()
            group.cancel_scope.cancel()
        await served_a.settle(client, before + 1)
    (upload,) = served_a.emulator.requests.find(method="PUT")
    assert upload.body_size < 8 * MIB
    assert served_a.log.errors == []


async def test_a_cancelled_era_b_part_upload_is_not_an_emulator_error(served_b: Served) -> None:
    async with httpx2.AsyncClient(base_url=served_b.url, timeout=30) as client:
        created = await ok(
            client,
            "create_project",
            {"fileName": "a.wav", "contentType": "audio/wav", "contentLength": 8 * MIB},
        )
        token = bearer(created["upload"]["uploadToken"])
        edge = created["upload"]["edgeBaseUrl"]
        start = await client.post(f"{edge}/v1/uploads/start", json={}, headers=token)
        before = await served_b.idle()
        first_sent = anyio.Event()
        async with anyio.create_task_group() as group:
            group.start_soon(
                lambda: client.put(
                    f"{edge}/v1/uploads/parts/1",
                    params={"uploadId": start.json()["uploadId"]},
                    content=_stalled_body(first_sent),
                    headers={**token, "Content-Length": str(8 * MIB)},
                )
            )
            await first_sent.wait()
            group.cancel_scope.cancel()
        await served_b.settle(client, before + 1)
    (part,) = served_b.emulator.requests.find(method="PUT")
    assert part.body_size < 8 * MIB
    assert served_b.log.errors == []


async def _close_mid_body(url: str, path: str, headers: dict[str, str]) -> None:
    """Send the headers of a 100-byte JSON body and 1 byte of it, then close the socket."""
    host, _, port = url.removeprefix("http://").rpartition(":")
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", "Content-Type: application/json"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines += ["Content-Length: 100", "", ""]
    async with await anyio.connect_tcp(host, int(port)) as stream:
        await stream.send("\r\n".join(lines).encode("latin-1") + b"{")


@pytest.mark.parametrize(
    ("path", "headers"),
    [("/v1/list_projects", bearer(ADMIN)), ("/_emulator/advance", {})],
    ids=["api", "control"],
)
async def test_a_client_that_closes_mid_json_body_is_not_an_emulator_error(
    served_a: Served, path: str, headers: dict[str, str]
) -> None:
    async with httpx2.AsyncClient(timeout=30) as client:
        before = await served_a.idle()
        await _close_mid_body(served_a.url, path, headers)
        await served_a.settle(client, before + 1)
    assert served_a.log.errors == []


async def test_a_client_that_closes_mid_edge_json_body_is_not_an_emulator_error(
    served_b: Served,
) -> None:
    async with httpx2.AsyncClient(base_url=served_b.url, timeout=30) as client:
        created = await project_b(client)
        before = await served_b.idle()
        token = bearer(created["upload"]["uploadToken"])
        await _close_mid_body(served_b.url, "/v1/uploads/start", token)
        await served_b.settle(client, before + 1)
    assert served_b.log.errors == []
