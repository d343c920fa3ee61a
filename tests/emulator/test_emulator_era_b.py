"""Era B: upload sessions, the edge multipart API, complete_project_upload, 410, media URLs."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
from emulator_helpers import ADMIN, BASE, bearer, call, generation, inproc, ok, progress, project_b

from diffio_async.emulator import Emulator

pytestmark = pytest.mark.anyio

DATA = bytes(range(256)) * 10  # 2560 bytes: parts of 1024, 1024, 512


async def _session(client: httpx2.AsyncClient, size: int = len(DATA)) -> dict[str, Any]:
    return await ok(
        client,
        "create_project",
        {"fileName": "talk.wav", "contentType": "audio/wav", "contentLength": size},
    )


async def _start(client: httpx2.AsyncClient, upload: dict[str, Any]) -> str:
    response = await client.post(
        f"{upload['edgeBaseUrl']}/v1/uploads/start", json={}, headers=bearer(upload["uploadToken"])
    )
    assert response.status_code == 200
    body = response.json()
    assert body["partSizeBytes"] == 1024 and body["maxBytes"] == 2 * 1024**3
    return str(body["uploadId"])


async def _put(
    client: httpx2.AsyncClient, upload: dict[str, Any], upload_id: str, number: int, data: bytes
) -> httpx2.Response:
    return await client.put(
        f"{upload['edgeBaseUrl']}/v1/uploads/parts/{number}",
        params={"uploadId": upload_id},
        content=data,
        headers={**bearer(upload["uploadToken"]), "Content-Type": "application/octet-stream"},
    )


async def test_create_project_returns_an_upload_session(emulator_b: Emulator) -> None:
    async with inproc(emulator_b) as client:
        created = await _session(client)
    assert set(created) == {"apiProjectId", "upload", "objectPath", "expiresAt"}
    upload = created["upload"]
    pid = created["apiProjectId"]
    assert upload["uploadSessionId"] == f"api-{pid}"
    assert upload["edgeBaseUrl"] == BASE
    assert upload["objectKey"] == created["objectPath"]
    assert created["objectPath"] == f"api/users/user_emulator/projects/{pid}/original/talk.wav"
    assert upload["partSizeBytes"] == 1024
    assert upload["maxBytes"] == 2 * 1024**3
    assert upload["uploadToken"].startswith("v1.")
    assert ADMIN not in upload["uploadToken"]
    assert "uploadUrl" not in created and "bucket" not in created


async def test_full_edge_flow_and_download(emulator_b: Emulator) -> None:
    async with inproc(emulator_b) as client:
        created = await project_b(client, DATA)
        pid = created["apiProjectId"]
        again = await ok(client, "complete_project_upload", {"apiProjectId": pid})
        assert again == {"apiProjectId": pid, "status": "uploaded", "sizeBytes": len(DATA)}
        made = await generation(client, pid, "diffio-4.6-flash")
        assert made["modelKey"] == "diffio-4.6-flash"
        first = await progress(client, made["generationId"])
        assert first["stage"] == "queued"
        assert first["queue"]["waitReason"] == "next_in_line"
        emulator_b.advance(1.5)
        middle = await progress(client, made["generationId"])
        assert middle["status"] == "processing"
        assert middle["stage"] == "restoring"
        assert 0 < middle["stageProgress"]["overallPercent"] < 100
        emulator_b.advance(1.5)
        done = await progress(client, made["generationId"])
        assert done["status"] == "complete" and done["stage"] == "complete"
        assert done["transcription"] == {"status": "available"}
        info = await ok(
            client,
            "get_generation_download",
            {"generationId": made["generationId"], "apiProjectId": pid, "downloadType": "audio"},
        )
        assert set(info) == {
            "generationId",
            "apiProjectId",
            "downloadType",
            "downloadUrl",
            "fileName",
            "storagePath",
            "mimeType",
        }
        url = urlsplit(info["downloadUrl"])
        assert f"{url.scheme}://{url.netloc}" == BASE
        assert url.path.startswith("/m/")
        assert url.path.endswith(f"/generations/{made['generationId']}/restored.mp3")
        assert parse_qs(url.query)["download"] == ["diffio_ai_talk.mp3"]
        assert info["storagePath"].startswith("api/users/")
        media = await client.get(info["downloadUrl"])
        assert media.status_code == 200 and media.content == DATA
        assert "diffio_ai_talk.mp3" in media.headers["content-disposition"]
        ranged = await client.get(info["downloadUrl"], headers={"Range": "bytes=1024-"})
        assert ranged.status_code == 206 and ranged.content == DATA[1024:]
        emulator_b.advance(6 * 3600 + 1)
        expired = await client.get(info["downloadUrl"])
        assert expired.status_code == 403
        assert expired.json()["error"]["code"] == "expired"
        bogus = await client.get(info["downloadUrl"].replace("/m/v1.", "/m/v1.x"))
        assert bogus.status_code == 403


async def test_empty_file_is_one_empty_part(emulator_b: Emulator) -> None:
    async with inproc(emulator_b) as client:
        created = await project_b(client, b"")
        made = await generation(client, created["apiProjectId"], "diffio-4.5-pro")
        emulator_b.advance(3)
        info = await ok(
            client,
            "get_generation_download",
            {"generationId": made["generationId"], "apiProjectId": created["apiProjectId"]},
        )
        media = await client.get(info["downloadUrl"])
    assert media.status_code == 200 and media.content == b""


async def test_edge_requires_the_upload_token_not_the_api_key(emulator_b: Emulator) -> None:
    async with inproc(emulator_b) as client:
        created = await _session(client)
        edge = created["upload"]["edgeBaseUrl"]
        for headers in ({}, bearer(ADMIN), bearer("v1.forged.token")):
            response = await client.post(f"{edge}/v1/uploads/start", json={}, headers=headers)
            assert response.status_code == 401
            assert response.json()["error"]["code"] == "invalid_token"
        emulator_b.advance(3601)
        late = await client.post(
            f"{edge}/v1/uploads/start", json={}, headers=bearer(created["upload"]["uploadToken"])
        )
        assert late.status_code == 401


async def test_part_without_content_length_is_411(emulator_b: Emulator) -> None:
    async def body() -> Any:
        yield b"chunked-bytes"

    async with inproc(emulator_b) as client:
        upload = (await _session(client))["upload"]
        upload_id = await _start(client, upload)
        response = await client.put(
            f"{upload['edgeBaseUrl']}/v1/uploads/parts/1",
            params={"uploadId": upload_id},
            content=body(),
            headers=bearer(upload["uploadToken"]),
        )
    assert response.status_code == 411
    assert response.json()["error"]["code"] == "bad_request"
    assert emulator_b.requests[-1].chunked is True


async def test_part_number_and_size_rules(emulator_b: Emulator) -> None:
    async with inproc(emulator_b) as client:
        upload = (await _session(client))["upload"]
        upload_id = await _start(client, upload)
        for number in (0, 10001):
            bad = await _put(client, upload, upload_id, number, b"x")
            assert bad.status_code == 400 and bad.json()["error"]["code"] == "bad_request"
        too_big = await _put(client, upload, upload_id, 1, b"x" * 1025)
        assert too_big.status_code == 413
        assert too_big.json()["error"]["code"] == "payload_too_large"
        missing_id = await client.put(
            f"{upload['edgeBaseUrl']}/v1/uploads/parts/1",
            content=b"x",
            headers=bearer(upload["uploadToken"]),
        )
        assert missing_id.status_code == 400
        unknown = await _put(client, upload, "upl_nope", 1, b"x")
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
        # a short non-final part makes complete fail
        first = await _put(client, upload, upload_id, 1, b"a" * 1000)
        second = await _put(client, upload, upload_id, 2, b"b" * 10)
        parts = [
            {"partNumber": 1, "etag": first.json()["etag"]},
            {"partNumber": 2, "etag": second.json()["etag"]},
        ]
        complete = await client.post(
            f"{upload['edgeBaseUrl']}/v1/uploads/complete",
            json={"uploadId": upload_id, "parts": parts},
            headers=bearer(upload["uploadToken"]),
        )
    assert complete.status_code == 400
    assert complete.json()["error"]["code"] == "upload_failed"


async def test_etag_mismatch_and_ordering(emulator_b: Emulator) -> None:
    async with inproc(emulator_b) as client:
        upload = (await _session(client))["upload"]
        upload_id = await _start(client, upload)
        put = await _put(client, upload, upload_id, 1, b"abc")
        assert put.json() == {"partNumber": 1, "etag": "900150983cd24fb0d6963f7d28e17f72"}
        url = f"{upload['edgeBaseUrl']}/v1/uploads/complete"
        token = bearer(upload["uploadToken"])
        wrong = await client.post(
            url,
            json={"uploadId": upload_id, "parts": [{"partNumber": 1, "etag": "0" * 32}]},
            headers=token,
        )
        assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "upload_failed"
        gap = await client.post(
            url,
            json={"uploadId": upload_id, "parts": [{"partNumber": 2, "etag": "x"}]},
            headers=token,
        )
        assert gap.status_code == 400
        right = await client.post(
            url,
            json={"uploadId": upload_id, "parts": [{"partNumber": 1, "etag": put.json()["etag"]}]},
            headers=token,
        )
        assert right.status_code == 200
        result = right.json()
        assert set(result) == {"objectKey", "sizeBytes", "etag"} and result["sizeBytes"] == 3
        repeat = await client.post(
            url,
            json={"uploadId": upload_id, "parts": [{"partNumber": 1, "etag": put.json()["etag"]}]},
            headers=token,
        )
        assert repeat.json() == result


async def test_abort_discards_the_upload(emulator_b: Emulator) -> None:
    async with inproc(emulator_b) as client:
        created = await _session(client)
        upload = created["upload"]
        upload_id = await _start(client, upload)
        await _put(client, upload, upload_id, 1, b"abc")
        token = bearer(upload["uploadToken"])
        aborted = await client.post(
            f"{upload['edgeBaseUrl']}/v1/uploads/abort", json={"uploadId": upload_id}, headers=token
        )
        assert aborted.status_code == 200 and aborted.json() == {}
        after = await _put(client, upload, upload_id, 2, b"def")
        assert after.status_code == 404
        missing = await call(
            client, "complete_project_upload", {"apiProjectId": created["apiProjectId"]}
        )
        assert missing.status_code == 409
        assert missing.json() == {
            "error": "Upload has not completed yet.",
            "code": "UPLOAD_MISSING",
        }
        early = await call(
            client, "diffio-4.6-pro-generation", {"apiProjectId": created["apiProjectId"]}
        )
        assert early.status_code == 409 and early.json()["code"] == "UPLOAD_MISSING"


async def test_edge_method_not_allowed(emulator_b: Emulator) -> None:
    async with inproc(emulator_b) as client:
        response = await client.get("/v1/uploads/start")
    assert response.status_code == 405


async def test_content_length_above_limit_is_413(emulator_b: Emulator) -> None:
    async with inproc(emulator_b) as client:
        response = await call(
            client, "create_project", {"fileName": "a.wav", "contentLength": 2 * 1024**3 + 1}
        )
    assert response.status_code == 413
    assert response.json() == {
        "error": "contentLength exceeds the 2 GiB upload limit.",
        "code": "UPLOAD_TOO_LARGE",
    }


@pytest.mark.parametrize(
    ("stem", "model_key"),
    [
        ("diffio-4.0-pro", "diffio-4.0-pro"),
        ("diffio-2.0", "diffio-2"),
        ("diffio-3.5", "diffio-3.5"),
        ("diffio-2.0-flash", "diffio-2-flash"),
    ],
)
async def test_era_a_models_are_retired(emulator_b: Emulator, stem: str, model_key: str) -> None:
    async with inproc(emulator_b) as client:
        response = await call(client, f"{stem}-generation", {"apiProjectId": "x"})
    assert response.status_code == 410
    assert response.json() == {
        "error": f"{model_key} has been retired. Use diffio-4.6-flash or diffio-4.6-pro "
        "(/v1/diffio-4.6-flash-generation or /v1/diffio-4.6-pro-generation).",
        "code": "model_retired",
        "retiredModel": model_key,
        "supportedModels": ["diffio-4.6-flash", "diffio-4.6-pro"],
    }


async def test_unknown_model_is_404_and_era_b_models_are_404_in_era_a(
    emulator_b: Emulator, emulator: Emulator
) -> None:
    async with inproc(emulator_b) as client:
        assert (await call(client, "diffio-9-generation", {})).status_code == 404
    async with inproc(emulator) as client:
        assert (await call(client, "diffio-4.6-flash-generation", {})).status_code == 404


@pytest.mark.parametrize(
    "stem", ["diffio-4.5-flash", "diffio-4.5-pro", "diffio-4.6-flash", "diffio-4.6-pro"]
)
async def test_every_era_b_model_endpoint(emulator_b: Emulator, stem: str) -> None:
    async with inproc(emulator_b) as client:
        created = await project_b(client, b"abc")
        made = await generation(client, created["apiProjectId"], stem)
    assert made["modelKey"] == stem and made["status"] == "queued"
