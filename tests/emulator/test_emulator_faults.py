"""Fault injection over real loopback sockets (uvicorn in a thread, httpx2.AsyncClient)."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator

import httpx2
import pytest
from emulator_helpers import ADMIN, bearer, call, generation, inproc, ok, project_a

from diffio_async.emulator import ConnectionDropped, Emulator, Fault

pytestmark = pytest.mark.anyio


async def test_status_fault_with_retry_after(emulator: Emulator, served: str) -> None:
    emulator.add_fault(
        path="/v1/list_projects", status=429, retry_after="7", retry_after_ms=6500, count=2
    )
    async with httpx2.AsyncClient(base_url=served) as client:
        first = await call(client, "list_projects")
        second = await call(client, "list_projects")
        third = await call(client, "list_projects")
    for response in (first, second):
        assert response.status_code == 429
        assert response.headers["retry-after"] == "7"
        assert response.headers["retry-after-ms"] == "6500"
        assert response.headers["content-type"] == "application/json"
        assert response.json() == {"error": "Emulated HTTP 429."}
    assert third.status_code == 200
    assert emulator.faults == []


async def test_status_fault_custom_body_and_http_date(emulator: Emulator, served: str) -> None:
    emulator.add_fault(
        Fault(
            path="/v1/diffio-*-generation",
            method="POST",
            status=503,
            retry_after="Wed, 21 Oct 2026 07:28:00 GMT",
            body={"error": "Overloaded", "code": "busy"},
        )
    )
    async with httpx2.AsyncClient(base_url=served) as client:
        pid = (await project_a(client))["apiProjectId"]
        busy = await call(client, "diffio-2.0-generation", {"apiProjectId": pid})
        listed = await ok(client, "list_project_generations", {"apiProjectId": pid})
    assert busy.status_code == 503
    assert busy.headers["retry-after"] == "Wed, 21 Oct 2026 07:28:00 GMT"
    assert busy.json() == {"error": "Overloaded", "code": "busy"}
    assert listed["generations"] == []  # the faulted request never reached the handler


async def test_drop_before_the_handler(emulator: Emulator, served: str) -> None:
    emulator.add_fault(path="/v1/create_project", drop=True)
    async with httpx2.AsyncClient(base_url=served) as client:
        with pytest.raises(httpx2.RemoteProtocolError, match="without sending a response"):
            await call(client, "create_project", {"fileName": "a.wav"})
        listed = await ok(client, "list_projects")
    assert listed["projects"] == []
    (dropped,) = emulator.requests.find(path="/v1/create_project")
    assert dropped.status is None and dropped.fault == "drop"


async def test_drop_after_the_handler_then_idempotent_retry(
    emulator: Emulator, served: str
) -> None:
    async with httpx2.AsyncClient(base_url=served) as client:
        pid = (await project_a(client))["apiProjectId"]
        emulator.add_fault(path="/v1/diffio-3.5-generation", drop=True, after=True)
        body = {"apiProjectId": pid, "idempotencyKey": "batch-7:file-1"}
        with pytest.raises(httpx2.RemoteProtocolError):
            await call(client, "diffio-3.5-generation", body)
        listed = await ok(client, "list_project_generations", {"apiProjectId": pid})
        assert len(listed["generations"]) == 1  # the server did create it
        retry = await ok(client, "diffio-3.5-generation", body)
        listed_again = await ok(client, "list_project_generations", {"apiProjectId": pid})
    assert retry["idempotentReplay"] is True
    assert retry["generationId"] == listed["generations"][0]["generationId"]
    assert len(listed_again["generations"]) == 1


async def test_status_after_the_handler(emulator: Emulator, served: str) -> None:
    emulator.add_fault(path="/v1/create_project", status=502, after=True)
    async with httpx2.AsyncClient(base_url=served) as client:
        response = await call(client, "create_project", {"fileName": "a.wav"})
        listed = await ok(client, "list_projects")
    assert response.status_code == 502
    assert len(listed["projects"]) == 1


async def test_truncated_json(emulator: Emulator, served: str) -> None:
    emulator.add_fault(path="/v1/list_projects", truncate=True)
    async with httpx2.AsyncClient(base_url=served) as client:
        with pytest.raises(httpx2.RemoteProtocolError, match="complete message body"):
            await call(client, "list_projects")
        assert (await call(client, "list_projects")).status_code == 200


async def test_truncated_media_download(emulator: Emulator, served: str) -> None:
    data = bytes(range(256)) * 8192  # 2 MiB: more than one 1 MiB chunk
    async with httpx2.AsyncClient(base_url=served) as client:
        created = await project_a(client, data)
        made = await generation(client, created["apiProjectId"])
        emulator.advance(3)
        info = await ok(
            client,
            "get_generation_download",
            {"generationId": made["generationId"], "apiProjectId": created["apiProjectId"]},
        )
        emulator.add_fault(path="/_storage/*", method="GET", truncate=True)
        received = bytearray()
        with pytest.raises(httpx2.RemoteProtocolError):
            async with client.stream("GET", info["downloadUrl"]) as response:
                assert response.status_code == 200
                assert response.headers["content-length"] == str(len(data))
                async for chunk in response.aiter_raw():
                    received.extend(chunk)
        assert len(received) == len(data) // 2
        assert bytes(received) == data[: len(data) // 2]
        # resume from where it stopped
        rest = await client.get(info["downloadUrl"], headers={"Range": f"bytes={len(received)}-"})
    assert rest.status_code == 206
    assert bytes(received) + rest.content == data


async def test_delay_then_answer(emulator: Emulator, served: str) -> None:
    emulator.add_fault(path=re.compile(r"/v1/list_.*"), delay=0.3)
    async with httpx2.AsyncClient(base_url=served) as client:
        started = time.monotonic()
        response = await call(client, "list_projects")
        elapsed = time.monotonic() - started
        with pytest.raises(httpx2.ReadTimeout):
            emulator.add_fault(path="/v1/list_projects", delay=1.0)
            await client.post("/v1/list_projects", json={}, headers=bearer(), timeout=0.2)
    assert response.status_code == 200
    assert elapsed >= 0.3


async def test_drop_an_upload(emulator: Emulator, served: str) -> None:
    data = b"x" * (8 * 1024 * 1024)
    async with httpx2.AsyncClient(base_url=served) as client:
        created = await ok(
            client, "create_project", {"fileName": "a.wav", "contentType": "audio/wav"}
        )
        emulator.add_fault(path="/_storage/*", method="PUT", drop=True)
        with pytest.raises((httpx2.RemoteProtocolError, httpx2.ReadError, httpx2.WriteError)):
            await client.put(
                created["uploadUrl"], content=data, headers={"Content-Type": "audio/wav"}
            )
        retry = await client.put(
            created["uploadUrl"], content=data, headers={"Content-Type": "audio/wav"}
        )
    assert retry.status_code == 200


async def test_fault_count_none_is_permanent(emulator: Emulator, served: str) -> None:
    fault = emulator.add_fault(path="/v1/list_projects", status=500, count=None)
    async with httpx2.AsyncClient(base_url=served) as client:
        statuses = [(await call(client, "list_projects")).status_code for _ in range(3)]
        emulator.clear_faults()
        after = await call(client, "list_projects")
    assert statuses == [500, 500, 500]
    assert fault.hits == 3
    assert after.status_code == 200


async def test_faults_over_http(emulator: Emulator, served: str) -> None:
    async with httpx2.AsyncClient(base_url=served) as client:
        added = await client.post(
            "/_emulator/faults",
            json={
                "path": "/v1/list_projects",
                "status": 503,
                "retryAfter": "1",
                "count": 1,
            },
        )
        assert added.status_code == 200 and added.json()["fault"]["kind"] == "status"
        listed = (await client.get("/_emulator/faults")).json()["faults"]
        assert len(listed) == 1
        assert (await call(client, "list_projects")).status_code == 503
        await client.post(
            "/_emulator/faults", json={"path": "/v1/.*", "regex": True, "drop": True, "count": None}
        )
        with pytest.raises(httpx2.RemoteProtocolError):
            await call(client, "list_projects")
        cleared = await client.delete("/_emulator/faults")
        assert cleared.status_code == 200
        assert (await call(client, "list_projects")).status_code == 200
        bad = await client.post(
            "/_emulator/faults", json={"path": "/x", "drop": True, "status": 500}
        )
        assert bad.status_code == 400


async def test_faults_never_touch_control_routes(emulator: Emulator, served: str) -> None:
    emulator.add_fault(path="*", status=500, count=None)
    async with httpx2.AsyncClient(base_url=served) as client:
        info = await client.get("/_emulator")
        assert (await call(client, "list_projects")).status_code == 500
    assert info.status_code == 200


async def test_in_process_drops_raise_connection_dropped(emulator: Emulator) -> None:
    async with inproc(emulator) as client:
        emulator.add_fault(path="/v1/list_projects", drop=True)
        with pytest.raises(ConnectionDropped) as dropped:
            await call(client, "list_projects")
        assert isinstance(dropped.value, httpx2.RemoteProtocolError)
        emulator.add_fault(path="/v1/list_projects", truncate=True)
        with pytest.raises(httpx2.RemoteProtocolError):
            await call(client, "list_projects")
        emulator.add_fault(path="/v1/create_project", drop=True, after=True)
        with pytest.raises(ConnectionDropped):
            await call(client, "create_project", {"fileName": "a.wav"})
        assert len((await ok(client, "list_projects"))["projects"]) == 1


async def test_streamed_client_request_with_fault(emulator: Emulator, served: str) -> None:
    async def body() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b"z" * 1000

    emulator.add_fault(path="/_storage/*", method="PUT", status=503)
    async with httpx2.AsyncClient(base_url=served) as client:
        created = await ok(
            client, "create_project", {"fileName": "a.wav", "contentType": "audio/wav"}, key=ADMIN
        )
        response = await client.put(
            created["uploadUrl"], content=body(), headers={"Content-Type": "audio/wav"}
        )
    assert response.status_code == 503
    entry = emulator.requests.find(method="PUT")[0]
    assert entry.chunked and entry.body_size == 4000 and entry.fault == "status"
