"""The request log and the ``/_emulator/`` control routes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import pytest
from emulator_helpers import ADMIN, call, generation, inproc, ok, progress, project_a

from diffio_async.emulator import Emulator

pytestmark = pytest.mark.anyio


async def test_request_log_records_what_was_received(emulator: Emulator, served: str) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"a" * 700
        yield b"b" * 300

    async with httpx2.AsyncClient(base_url=served) as client:
        created = await ok(
            client, "create_project", {"fileName": "a.wav", "contentType": "audio/wav"}
        )
        fixed = await client.put(
            created["uploadUrl"],
            content=b"c" * 1234,
            headers={"Content-Type": "audio/wav", "X-Custom": "one"},
        )
        streamed = await client.put(
            created["uploadUrl"], content=chunks(), headers={"Content-Type": "audio/wav"}
        )
        await client.get("/_emulator/requests")  # control routes are not logged
        missing = await client.post("/v1/list_projects", json={})
    assert fixed.status_code == streamed.status_code == 200
    entries = list(emulator.requests)
    assert [e.method for e in entries] == ["POST", "PUT", "PUT", "POST"]
    assert [e.index for e in entries] == sorted(e.index for e in entries)
    create, put_fixed, put_streamed, unauthenticated = entries
    assert create.path == "/v1/create_project" and create.status == 200
    assert create.header("authorization") == f"Bearer {ADMIN}"
    assert create.header("Content-Type") == "application/json"
    assert create.body_size == int(create.header("content-length") or 0)
    assert put_fixed.body_size == 1234 and not put_fixed.chunked
    assert put_fixed.header("x-custom") == "one"
    assert put_fixed.header("authorization") is None
    assert "signature=" in put_fixed.query
    assert put_streamed.body_size == 1000 and put_streamed.chunked
    assert put_streamed.header("content-length") is None
    assert unauthenticated.status == missing.status_code == 401
    assert emulator.requests.find(path="/v1/list_projects", method="post") == [unauthenticated]


async def test_request_log_over_http_and_clear(emulator: Emulator, served: str) -> None:
    async with httpx2.AsyncClient(base_url=served) as client:
        await call(client, "list_projects")
        log = (await client.get("/_emulator/requests")).json()["requests"]
        assert len(log) == 1
        (entry,) = log
        assert entry["method"] == "POST" and entry["path"] == "/v1/list_projects"
        assert entry["status"] == 200 and entry["bodySize"] == 2 and entry["chunked"] is False
        assert ["authorization", "Bearer diff..._key"] in entry["headers"]
        last_index = entry["index"]
        assert (await client.delete("/_emulator/requests")).status_code == 200
        assert len(emulator.requests) == 0
        await call(client, "list_projects")
    assert emulator.requests[0].index > last_index
    emulator.requests.clear()
    assert list(emulator.requests) == []


async def test_the_http_request_log_masks_credentials_but_the_python_log_keeps_them(
    emulator: Emulator,
) -> None:
    x_key = emulator.mint_key().key
    xi_key = emulator.mint_key().key
    async with inproc(emulator) as client:
        await call(client, "list_projects")
        await client.post("/v1/list_projects", json={}, headers={"X-Api-Key": x_key})
        await client.post("/v1/list_projects", json={}, headers={"Xi-Api-Key": xi_key})
        served = await client.get("/_emulator/requests")
    text = served.text
    for key in (ADMIN, x_key, xi_key):
        assert key not in text
        assert key[4:-4] not in text
    entries = served.json()["requests"]
    assert ["authorization", f"Bearer {ADMIN[:4]}...{ADMIN[-4:]}"] in entries[0]["headers"]
    assert ["x-api-key", f"{x_key[:4]}...{x_key[-4:]}"] in entries[1]["headers"]
    assert ["xi-api-key", f"{xi_key[:4]}...{xi_key[-4:]}"] in entries[2]["headers"]
    # In process, tests still see exactly which credential arrived.
    logged = list(emulator.requests)
    assert logged[0].header("authorization") == f"Bearer {ADMIN}"
    assert logged[1].header("x-api-key") == x_key
    assert logged[2].header("xi-api-key") == xi_key


async def test_control_routes(emulator: Emulator, served: str) -> None:
    async with httpx2.AsyncClient(base_url=served) as client:
        info = (await client.get("/_emulator")).json()
        assert info["era"] == "a" and info["adminKeyId"] == "key_admin"
        assert "POST /_emulator/advance" in info["routes"]
        before = (await client.get("/_emulator/clock")).json()["epochSeconds"]
        advanced = await client.post("/_emulator/advance", json={"seconds": 90})
        assert advanced.json()["epochSeconds"] == before + 90
        assert (await client.post("/_emulator/advance", json={"seconds": -1})).status_code == 400

        minted = (
            await client.post(
                "/_emulator/keys",
                json={
                    "scopes": ["projects:read"],
                    "spendLimitCents": 500,
                    "label": "ci",
                },
            )
        ).json()
        assert minted["key"].startswith("diffio_live_") and minted["spendLimitCents"] == 500
        assert (await call(client, "list_projects", key=minted["key"])).status_code == 200

        await client.post("/_emulator/billing", json={"hold": True, "keyId": minted["keyId"]})
        held = await call(client, "list_projects", key=minted["key"])
        assert held.status_code == 402 and held.json()["code"] == "paymentFailed"
        assert (await call(client, "list_projects")).status_code == 200
        await client.post("/_emulator/billing", json={"hold": True})
        assert (await call(client, "list_projects")).status_code == 402
        await client.post("/_emulator/billing", json={"hold": False})
        assert (await call(client, "list_projects")).status_code == 200

        scripted = await client.post(
            "/_emulator/script", json={"duration": 50, "failAt": "inference"}
        )
        assert scripted.json() == {"queued": 1}
        pid = (await project_a(client))["apiProjectId"]
        made = await generation(client, pid)
        await client.post("/_emulator/advance", json={"seconds": 50})
        assert (await progress(client, made["generationId"]))["status"] == "failed"

        secret = (await client.get("/_emulator/webhooks/secret")).json()["secret"]
        assert secret == emulator.webhook_secret and secret.startswith("whsec_")
        assert (await client.get("/_emulator/nope")).status_code == 404
        assert (await client.put("/_emulator/advance")).status_code == 405
        assert (await client.post("/_emulator/advance", content=b"{")).status_code == 400


async def test_unknown_paths_are_json_404(emulator: Emulator, served: str) -> None:
    async with httpx2.AsyncClient(base_url=served) as client:
        response = await client.get("/nothing/here")
    assert response.status_code == 404
    assert response.json() == {"error": "Not found."}
