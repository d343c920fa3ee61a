"""Shared helpers for the emulator tests (plain httpx2, no SDK)."""

from __future__ import annotations

from typing import Any

import httpx2

from diffio_async.emulator import Emulator

ADMIN = "diffio_live_admin_test_key"
BASE = "http://emulator.test"


def bearer(key: str = ADMIN) -> dict[str, str]:
    """The Authorization header for ``key``."""
    return {"Authorization": f"Bearer {key}"}


def inproc(emulator: Emulator) -> httpx2.AsyncClient:
    """An httpx2 client talking to the emulator in-process."""
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=emulator), base_url=BASE)


async def call(
    client: httpx2.AsyncClient, endpoint: str, body: Any = None, key: str | None = ADMIN
) -> httpx2.Response:
    """POST ``/v1/<endpoint>`` with a JSON body and the key as a bearer token."""
    headers = bearer(key) if key is not None else {}
    return await client.post(f"/v1/{endpoint}", json={} if body is None else body, headers=headers)


async def ok(
    client: httpx2.AsyncClient, endpoint: str, body: Any = None, key: str | None = ADMIN
) -> dict[str, Any]:
    """:func:`call` and insist on 200 with a JSON content type."""
    response = await call(client, endpoint, body, key)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    data = response.json()
    assert isinstance(data, dict)
    return data


async def project_a(
    client: httpx2.AsyncClient,
    data: bytes = b"RIFF-fake-wave-bytes",
    *,
    file_name: str = "talk.wav",
    content_type: str = "audio/wav",
    key: str = ADMIN,
) -> dict[str, Any]:
    """Create an era A project and PUT ``data`` to its signed URL."""
    created = await ok(
        client,
        "create_project",
        {"fileName": file_name, "contentType": content_type, "contentLength": len(data)},
        key,
    )
    put = await client.put(
        created["uploadUrl"], content=data, headers={"Content-Type": content_type}
    )
    assert put.status_code == 200, put.text
    return created


async def project_b(
    client: httpx2.AsyncClient,
    data: bytes = b"RIFF-fake-wave-bytes",
    *,
    file_name: str = "talk.wav",
    content_type: str = "audio/wav",
    key: str = ADMIN,
) -> dict[str, Any]:
    """Create an era B project, upload ``data`` through the edge API, complete the upload."""
    created = await ok(
        client,
        "create_project",
        {"fileName": file_name, "contentType": content_type, "contentLength": len(data)},
        key,
    )
    upload = created["upload"]
    edge = upload["edgeBaseUrl"]
    token = bearer(upload["uploadToken"])
    start = await client.post(f"{edge}/v1/uploads/start", json={}, headers=token)
    assert start.status_code == 200, start.text
    upload_id = start.json()["uploadId"]
    size = start.json()["partSizeBytes"]
    parts = []
    chunks = [data[i : i + size] for i in range(0, len(data), size)] or [b""]
    for number, chunk in enumerate(chunks, start=1):
        put = await client.put(
            f"{edge}/v1/uploads/parts/{number}",
            params={"uploadId": upload_id},
            content=chunk,
            headers={**token, "Content-Type": "application/octet-stream"},
        )
        assert put.status_code == 200, put.text
        parts.append({"partNumber": number, "etag": put.json()["etag"]})
    done = await client.post(
        f"{edge}/v1/uploads/complete", json={"uploadId": upload_id, "parts": parts}, headers=token
    )
    assert done.status_code == 200, done.text
    await ok(client, "complete_project_upload", {"apiProjectId": created["apiProjectId"]}, key)
    return created


async def generation(
    client: httpx2.AsyncClient,
    project_id: str,
    model: str = "diffio-2.0",
    key: str = ADMIN,
    **extra: Any,
) -> dict[str, Any]:
    """Create a generation of ``project_id`` through ``/v1/<model>-generation``."""
    return await ok(client, f"{model}-generation", {"apiProjectId": project_id, **extra}, key)


async def progress(
    client: httpx2.AsyncClient, generation_id: str, key: str = ADMIN
) -> dict[str, Any]:
    """``get_generation_progress``."""
    return await ok(client, "get_generation_progress", {"generationId": generation_id}, key)
