"""Era A (signed PUT upload) endpoints: shapes, validation, upload rules, downloads."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from emulator_helpers import ADMIN, BASE, call, generation, inproc, ok, progress, project_a

from diffio_async.emulator import Emulator

pytestmark = pytest.mark.anyio

ERA_A_MODELS = {
    "diffio-2.0-flash": "diffio-2-flash",
    "diffio-2.0": "diffio-2",
    "diffio-3.4": "diffio-3.4",
    "diffio-3.5": "diffio-3.5",
    "diffio-4.0-flash": "diffio-4.0-flash",
    "diffio-4.0-pro": "diffio-4.0-pro",
    "diffio-3.0": "diffio-3",
}


async def test_create_project_shape(emulator: Emulator) -> None:
    async with inproc(emulator) as client:
        created = await ok(
            client,
            "create_project",
            {
                "fileName": "song.wav",
                "contentType": "audio/wav",
                "contentLength": 3,
                "fileFormat": "wav",
            },
        )
    assert set(created) == {
        "apiProjectId",
        "uploadUrl",
        "uploadMethod",
        "objectPath",
        "bucket",
        "expiresAt",
    }
    assert created["uploadMethod"] == "PUT"
    assert created["bucket"] == "diffio_api"
    pid = created["apiProjectId"]
    assert created["objectPath"] == f"users/user_emulator/projects/{pid}/original/song.wav"
    url = urlsplit(created["uploadUrl"])
    assert f"{url.scheme}://{url.netloc}" == BASE
    assert "expires=" in url.query and "signature=" in url.query
    assert ADMIN not in created["uploadUrl"]
    assert created["expiresAt"] == emulator.clock.isoformat(emulator.clock.now() + 3600)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({}, 400, "fileName is required."),
        ({"fileName": 3}, 400, "fileName is required."),
        (
            {"fileName": "a.wav", "contentLength": -1},
            400,
            "contentLength must be a non-negative number",
        ),
        ({"fileName": "a.wav", "params": []}, 400, "params must be an object"),
        ({"fileName": "a.wav", "contentType": 5}, 400, "contentType must be a string"),
        (
            {"fileName": "a.wav", "contentLength": 3 * 1024**3},
            413,
            "contentLength exceeds the 2 GiB upload limit.",
        ),
    ],
)
async def test_create_project_validation(
    emulator: Emulator, body: dict[str, object], status: int, message: str
) -> None:
    async with inproc(emulator) as client:
        response = await call(client, "create_project", body)
    assert response.status_code == status
    assert response.json()["error"] == message


async def test_invalid_json_options_and_405(emulator: Emulator) -> None:
    async with inproc(emulator) as client:
        bad = await client.post(
            "/v1/create_project", content=b"{nope", headers={"Authorization": f"Bearer {ADMIN}"}
        )
        assert bad.status_code == 400 and bad.json() == {"error": "Invalid JSON body."}
        not_object = await client.post(
            "/v1/list_projects", content=b"[]", headers={"Authorization": f"Bearer {ADMIN}"}
        )
        assert not_object.status_code == 400
        preflight = await client.options("/v1/create_project")
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == "*"
        for method in ("GET", "PUT", "DELETE"):
            wrong = await client.request(method, "/v1/list_projects")
            assert wrong.status_code == 405
            assert wrong.json() == {"error": "Method not allowed."}
            assert wrong.headers["content-type"] == "application/json"
        unknown = await call(client, "diffio-9.9-generation", {"apiProjectId": "x"})
        assert unknown.status_code == 404 and unknown.json() == {"error": "Not found."}
        era_b_only = await call(client, "complete_project_upload", {"apiProjectId": "x"})
        assert era_b_only.status_code == 404


async def test_upload_then_list_projects(emulator: Emulator) -> None:
    async with inproc(emulator) as client:
        created = await ok(
            client, "create_project", {"fileName": "clip.mp4", "contentType": "video/mp4"}
        )
        listed = await ok(client, "list_projects")
        assert listed["projects"][0]["status"] == "uploading"
        put = await client.put(
            created["uploadUrl"], content=b"video!", headers={"Content-Type": "video/mp4"}
        )
        assert put.status_code == 200
        listed = await ok(client, "list_projects")
    (project,) = listed["projects"]
    assert project == {
        "apiProjectId": created["apiProjectId"],
        "status": "uploaded",
        "originalFileName": "clip.mp4",
        "contentType": "video/mp4",
        "hasVideo": True,
        "generationCount": 0,
        "createdAt": emulator.clock.isoformat(),
        "updatedAt": emulator.clock.isoformat(),
    }


async def test_upload_rejects_wrong_content_type_and_expired_url(emulator: Emulator) -> None:
    async with inproc(emulator) as client:
        created = await ok(
            client, "create_project", {"fileName": "a.wav", "contentType": "audio/wav"}
        )
        url = created["uploadUrl"]
        wrong = await client.put(url, content=b"x", headers={"Content-Type": "audio/mpeg"})
        assert wrong.status_code == 403
        assert "SignatureDoesNotMatch" in wrong.text
        tampered = await client.put(
            url.replace("signature=", "signature=0"),
            content=b"x",
            headers={"Content-Type": "audio/wav"},
        )
        assert tampered.status_code == 403
        emulator.advance(3601)
        expired = await client.put(url, content=b"x", headers={"Content-Type": "audio/wav"})
        assert expired.status_code == 403
        assert "ExpiredToken" in expired.text
        listed = await ok(client, "list_projects")
    assert listed["projects"][0]["status"] == "uploading"


async def test_generation_before_upload_is_409(emulator: Emulator) -> None:
    async with inproc(emulator) as client:
        created = await ok(client, "create_project", {"fileName": "a.wav"})
        early = await call(
            client, "diffio-2.0-generation", {"apiProjectId": created["apiProjectId"]}
        )
    assert early.status_code == 409
    assert early.json() == {
        "error": "Upload the project file before creating a generation.",
        "code": "UPLOAD_MISSING",
    }


@pytest.mark.parametrize(("stem", "model_key"), sorted(ERA_A_MODELS.items()))
async def test_every_era_a_model_endpoint(emulator: Emulator, stem: str, model_key: str) -> None:
    async with inproc(emulator) as client:
        created = await project_a(client)
        made = await generation(client, created["apiProjectId"], stem)
    assert set(made) == {"generationId", "apiProjectId", "modelKey", "status"}
    assert made["modelKey"] == model_key
    assert made["status"] == "queued"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "apiProjectId must be provided as a string"),
        ({"apiProjectId": "p", "sampling": 3}, "sampling must be an object"),
        ({"apiProjectId": "p", "params": "x"}, "params must be an object"),
    ],
)
async def test_generation_validation(
    emulator: Emulator, body: dict[str, object], message: str
) -> None:
    async with inproc(emulator) as client:
        response = await call(client, "diffio-3.5-generation", body)
    assert response.status_code == 400
    assert response.json()["error"] == message


async def test_unknown_project_and_generation_are_404(emulator: Emulator) -> None:
    async with inproc(emulator) as client:
        gen = await call(client, "diffio-2.0-generation", {"apiProjectId": "nope"})
        assert gen.status_code == 404 and gen.json()["error"] == "API project not found."
        prog = await call(client, "get_generation_progress", {"generationId": "nope"})
        assert prog.status_code == 404 and prog.json()["error"] == "Generation not found."
        listed = await call(client, "list_project_generations", {"apiProjectId": "nope"})
        assert listed.status_code == 404
        missing = await call(client, "get_generation_progress", {})
        assert missing.status_code == 400
        assert missing.json()["error"] == "generationId must be provided as a string"


async def test_progress_shape_and_list_generations(emulator: Emulator) -> None:
    async with inproc(emulator) as client:
        created = await project_a(client)
        pid = created["apiProjectId"]
        made = await generation(client, pid, "diffio-3.5")
        first = await progress(client, made["generationId"])
        assert set(first) == {
            "generationId",
            "apiProjectId",
            "status",
            "hasVideo",
            "preProcessing",
            "inference",
            "error",
            "errorDetails",
            "transcription",
        }
        assert first["status"] == "queued"
        for stage in ("preProcessing", "inference"):
            assert set(first[stage]) == {
                "jobId",
                "jobState",
                "status",
                "progress",
                "statusMessage",
                "error",
                "errorDetails",
            }
        assert first["transcription"] == {"status": "pending"}
        emulator.advance(1.5)
        listed = await ok(client, "list_project_generations", {"apiProjectId": pid})
        projects = await ok(client, "list_projects")
    assert listed["apiProjectId"] == pid
    (item,) = listed["generations"]
    assert item["generationId"] == made["generationId"]
    assert item["status"] == "processing" and item["modelKey"] == "diffio-3.5"
    assert item["progress"] == 50
    assert projects["projects"][0]["generationCount"] == 1


async def test_progress_with_wrong_project_is_404(emulator: Emulator) -> None:
    async with inproc(emulator) as client:
        created = await project_a(client)
        made = await generation(client, created["apiProjectId"])
        wrong = await call(
            client,
            "get_generation_progress",
            {"generationId": made["generationId"], "apiProjectId": "other"},
        )
    assert wrong.status_code == 404


async def test_download_audio_is_the_uploaded_bytes(emulator: Emulator) -> None:
    data = bytes(range(256)) * 40
    async with inproc(emulator) as client:
        created = await project_a(client, data, file_name="my talk.wav")
        pid = created["apiProjectId"]
        made = await generation(client, pid)
        body = {"generationId": made["generationId"], "apiProjectId": pid}
        early = await call(client, "get_generation_download", body)
        assert early.status_code == 409
        emulator.advance(3)
        info = await ok(client, "get_generation_download", body)
        assert set(info) == {
            "generationId",
            "apiProjectId",
            "downloadType",
            "downloadUrl",
            "fileName",
            "storagePath",
            "bucket",
            "mimeType",
        }
        assert info["downloadType"] == "audio"
        assert info["fileName"] == "diffio_ai_my talk.mp3"
        assert info["mimeType"] == "audio/mpeg"
        assert info["bucket"] == "diffio_api"
        gid = made["generationId"]
        assert info["storagePath"] == (
            f"users/user_emulator/projects/{pid}/generations/{gid}/restored.mp3"
        )
        assert ADMIN not in info["downloadUrl"]
        assert info["downloadUrl"].startswith(BASE + "/")
        media = await client.get(info["downloadUrl"])
        assert media.status_code == 200
        assert media.content == data
        assert media.headers["content-type"] == "audio/mpeg"
        assert media.headers["content-length"] == str(len(data))
        part = await client.get(info["downloadUrl"], headers={"Range": "bytes=100-199"})
        assert part.status_code == 206
        assert part.content == data[100:200]
        assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"
        assert part.headers["content-length"] == "100"
        tail = await client.get(info["downloadUrl"], headers={"Range": "bytes=-5"})
        assert tail.content == data[-5:]
        beyond = await client.get(info["downloadUrl"], headers={"Range": f"bytes={len(data)}-"})
        assert beyond.status_code == 416
        head = await client.head(info["downloadUrl"])
        assert head.status_code == 200 and head.headers["content-length"] == str(len(data))
        emulator.advance(2 * 3600 + 1)
        expired = await client.get(info["downloadUrl"])
        assert expired.status_code == 403
        fresh = await ok(client, "get_generation_download", body)
        again = await client.get(fresh["downloadUrl"])
        assert again.content == data


async def test_output_is_frozen_at_generation_time(emulator: Emulator) -> None:
    async with inproc(emulator) as client:
        created = await project_a(client, b"first")
        pid = created["apiProjectId"]
        made = await generation(client, pid)
        put = await client.put(
            created["uploadUrl"], content=b"second", headers={"Content-Type": "audio/wav"}
        )
        assert put.status_code == 200
        emulator.advance(3)
        info = await ok(
            client,
            "get_generation_download",
            {"generationId": made["generationId"], "apiProjectId": pid},
        )
        media = await client.get(info["downloadUrl"])
    assert media.content == b"first"


async def test_video_project_download_types(emulator: Emulator) -> None:
    async with inproc(emulator) as client:
        created = await project_a(
            client, b"moov", file_name="clip.mov", content_type="video/quicktime"
        )
        pid = created["apiProjectId"]
        made = await generation(client, pid)
        first = await progress(client, made["generationId"])
        assert first["hasVideo"] is True
        assert first["restoredVideo"]["status"] == "pending"
        emulator.advance(3)
        body = {"generationId": made["generationId"], "apiProjectId": pid}
        default = await ok(client, "get_generation_download", body)
        assert default["downloadType"] == "video"
        assert default["fileName"] == "diffio_ai_clip.mov"
        assert default["mimeType"] == "video/quicktime"
        assert default["storagePath"].endswith("/restored_video.mov")
        video = await client.get(default["downloadUrl"])
        assert video.content == b"moov"
        audio = await ok(client, "get_generation_download", {**body, "downloadType": "audio"})
        assert (await client.get(audio["downloadUrl"])).content == b"moov"


async def test_download_validation(emulator: Emulator) -> None:
    async with inproc(emulator) as client:
        created = await project_a(client)
        pid = created["apiProjectId"]
        made = await generation(client, pid)
        emulator.advance(3)
        body = {"generationId": made["generationId"], "apiProjectId": pid}
        wrong_type = await call(client, "get_generation_download", {**body, "downloadType": "mp3"})
        assert wrong_type.status_code == 400
        no_video = await call(client, "get_generation_download", {**body, "downloadType": "video"})
        assert no_video.status_code == 400
        assert no_video.json()["error"] == "downloadType video is not available for this project."
        no_project = await call(
            client, "get_generation_download", {"generationId": made["generationId"]}
        )
        assert no_project.status_code == 400


async def test_transcript_download_and_errors(emulator: Emulator) -> None:
    async with inproc(emulator) as client:
        created = await project_a(client)
        pid = created["apiProjectId"]
        emulator.script_next_generation(transcript_delay=10)
        made = await generation(client, pid, "diffio-2.0")
        body = {
            "generationId": made["generationId"],
            "apiProjectId": pid,
            "downloadType": "transcript",
        }
        emulator.advance(3)
        pending = await call(client, "get_generation_download", body)
        assert pending.status_code == 409
        assert pending.json() == {
            "error": "Transcript is not ready yet.",
            "code": "TRANSCRIPT_PENDING",
            "transcription": {"status": "pending"},
        }
        emulator.advance(10)
        info = await ok(client, "get_generation_download", body)
        assert info["fileName"] == "word_timestamps.json"
        assert info["mimeType"] == "application/json"
        transcript = await client.get(info["downloadUrl"])
        assert transcript.json()["generationId"] == made["generationId"]
        assert transcript.json()["words"]

        emulator.script_next_generation(transcript="unavailable")
        other = await generation(client, pid, "diffio-2.0")
        emulator.advance(3)
        gone = await call(
            client, "get_generation_download", {**body, "generationId": other["generationId"]}
        )
        assert gone.status_code == 404
        assert gone.json()["code"] == "TRANSCRIPT_UNAVAILABLE"
        assert gone.json()["transcription"] == {"status": "unavailable"}

        no_transcriber = await generation(client, pid, "diffio-2.0-flash")
        emulator.advance(3)
        flash = await call(
            client,
            "get_generation_download",
            {**body, "generationId": no_transcriber["generationId"]},
        )
        assert flash.status_code == 404
        assert "transcription" not in await progress(client, no_transcriber["generationId"])


async def test_upload_and_media_urls_follow_the_host_the_client_used(
    emulator: Emulator, served: str
) -> None:
    import httpx2

    async with httpx2.AsyncClient(base_url=served) as client:
        created = await project_a(client)
        assert created["uploadUrl"].startswith(served + "/_storage/")
        made = await generation(client, created["apiProjectId"])
        emulator.advance(3)
        info = await ok(
            client,
            "get_generation_download",
            {"generationId": made["generationId"], "apiProjectId": created["apiProjectId"]},
        )
    assert info["downloadUrl"].startswith(served + "/_storage/")
