"""The models against every documented payload of diffio-api.md (both eras)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import attrs
import pytest

from diffio_async import models as m
from diffio_async._convert import structure, unstructure
from diffio_async.errors import APIResponseValidationError

UTC = timezone.utc


def _public_model_classes() -> list[type[Any]]:
    return [
        obj for name in m.__all__ if isinstance(obj := getattr(m, name), type) and attrs.has(obj)
    ]


# ---------------------------------------------------------------------------------------------
# class properties
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", _public_model_classes(), ids=lambda c: c.__name__)
def test_every_model_is_frozen_keyword_only_and_documented(cls: type[Any]) -> None:
    assert cls.__doc__ and "\n" not in cls.__doc__.strip()
    assert all(f.kw_only for f in attrs.fields(cls))
    params = attrs.fields_dict(cls)
    assert all(name == name.lower() for name in params)  # snake_case
    assert "__setattr__" in vars(cls)  # attrs installs a raising __setattr__ on frozen classes


def test_instances_are_frozen_and_positional_args_rejected() -> None:
    stage = m.Stage()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        stage.progress = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        m.Stage("job")  # type: ignore[call-arg]
    assert m.Stage(progress=5) == m.Stage(progress=5)


# ---------------------------------------------------------------------------------------------
# projects (§4, §12)
# ---------------------------------------------------------------------------------------------


def test_create_project_request_body() -> None:
    body = m.CreateProjectRequest(
        file_name="song.wav",
        content_type="audio/wav",
        content_length=1234567,
        file_format="wav",
        params={"fileFormat": "wav"},
    )
    assert unstructure(body) == {
        "fileName": "song.wav",
        "contentType": "audio/wav",
        "contentLength": 1234567,
        "fileFormat": "wav",
        "params": {"fileFormat": "wav"},
    }
    assert unstructure(m.CreateProjectRequest(file_name="a.wav")) == {"fileName": "a.wav"}


ERA_A_CREATE = {
    "apiProjectId": "proj-123",
    "uploadUrl": "https://storage.googleapis.com/diffio_api/users/user-123/projects/proj-123/original/song.wav?X-Goog-Signature=...",
    "uploadMethod": "PUT",
    "objectPath": "users/user-123/projects/proj-123/original/song.wav",
    "bucket": "diffio_api",
    "expiresAt": "2026-01-24T00:00:00Z",
}

ERA_B_CREATE = {
    "apiProjectId": "4f0c-uuid",
    "upload": {
        "uploadSessionId": "api-4f0c",
        "edgeBaseUrl": "https://edge.example",
        "uploadToken": "v1.upload-abc.sig",
        "objectKey": "api/users/u/projects/4f0c-uuid/original/song.wav",
        "partSizeBytes": 33554432,
        "maxBytes": 2147483648,
        "expiresAt": "2026-10-08T12:00:00Z",
    },
    "objectPath": "api/users/u/projects/4f0c-uuid/original/song.wav",
    "expiresAt": "2026-10-08T12:00:00Z",
}


def test_create_project_era_a() -> None:
    resp = structure(ERA_A_CREATE, m.CreateProjectResponse, endpoint="create_project")
    assert resp.api_project_id == "proj-123"
    assert resp.upload_url is not None and resp.upload_url.startswith("https://storage")
    assert resp.upload_method == "PUT"
    assert resp.bucket == "diffio_api"
    assert resp.object_path == "users/user-123/projects/proj-123/original/song.wav"
    assert resp.expires_at == datetime(2026, 1, 24, tzinfo=UTC)
    assert resp.upload is None
    assert resp.era == "a" and resp.upload_mode == "signed_url"


def test_create_project_era_a_defaults_upload_method() -> None:
    data = {k: v for k, v in ERA_A_CREATE.items() if k != "uploadMethod"}
    assert structure(data, m.CreateProjectResponse, endpoint="x").upload_method == "PUT"


def test_create_project_era_b() -> None:
    resp = structure(ERA_B_CREATE, m.CreateProjectResponse, endpoint="create_project")
    assert resp.era == "b" and resp.upload_mode == "edge"
    assert resp.upload_url is None and resp.bucket is None
    up = resp.upload
    assert up is not None
    assert up.upload_session_id == "api-4f0c"
    assert up.edge_base_url == "https://edge.example"
    assert up.upload_token == "v1.upload-abc.sig"
    assert up.part_size_bytes == 33554432 and up.max_bytes == 2147483648
    assert up.expires_at == datetime(2026, 10, 8, 12, tzinfo=UTC)
    assert resp.object_path == up.object_key


def test_create_project_without_upload_target_is_invalid() -> None:
    with pytest.raises(APIResponseValidationError, match="neither uploadUrl"):
        structure({"apiProjectId": "p"}, m.CreateProjectResponse, endpoint="create_project")
    with pytest.raises(ValueError):
        m.CreateProjectResponse(api_project_id="p")


def test_secrets_are_not_in_repr() -> None:
    resp = structure(ERA_B_CREATE, m.CreateProjectResponse, endpoint="create_project")
    assert "v1.upload-abc.sig" not in repr(resp)
    assert "v1.upload-abc.sig" not in str(resp.upload)
    assert "upload_token='***'" in repr(resp.upload)
    key = m.ApiKey(key_id="k", key="diffio_live_supersecret")
    assert "supersecret" not in repr(key) and "key='***'" in repr(key)
    assert "key=None" in repr(m.ApiKey(key_id="k"))


SIGNED = (
    "https://storage.googleapis.com/b/users/u/song.wav?X-Goog-Expires=7200&X-Goog-Signature=abc123"
)
EDGE_MEDIA = "https://edge.example/m/v1.mediaTok3n.sig/generations/g/out.mp3?download=out.mp3"


def _signature_free(text: str) -> bool:
    return not any(
        secret in text
        for secret in ("X-Goog", "abc123", "mediaTok3n", "download=", "s3cret", "pw@")
    )


def test_reprs_show_urls_without_their_signature() -> None:
    """Signed URLs (era A query, era B ``/m/<token>/``), portal and webhook URLs are shown
    without what makes them credentials, in every model that holds one."""
    download_a = m.DownloadInfo(
        generation_id="g", api_project_id="p", download_type="audio", download_url=SIGNED
    )
    download_b = m.DownloadInfo(
        generation_id="g", api_project_id="p", download_type="audio", download_url=EDGE_MEDIA
    )
    created = structure(
        {**ERA_A_CREATE, "uploadUrl": SIGNED}, m.CreateProjectResponse, endpoint="x"
    )
    session = m.UploadSession(
        edge_base_url="https://user:pw@edge.example", upload_token="v1.upload-abc.s3cret"
    )
    portal = m.AppPortalAccess(portal_url="https://app.svix.com/login#key=s3cret")
    endpoint = m.WebhookEndpoint(url="https://hooks.example/diffio?token=s3cret")
    configure = m.ConfigureWebhookRequest(
        mode="live", url="https://hooks.example/diffio?token=s3cret", event_types=()
    )
    project = m.Project(api_project_id="proj-123", original_file_name="song.wav")
    models: list[object] = [download_a, download_b, created, session, portal, endpoint]
    for model in [*models, configure, project, m.ProjectList(projects=(project,))]:
        assert _signature_free(repr(model)), repr(model)
    assert "download_url='https://storage.googleapis.com/b/users/u/song.wav?\u2026'" in repr(
        download_a
    )
    assert "download_url='https://edge.example/m/***/generations/g/out.mp3?\u2026'" in repr(
        download_b
    )
    assert "upload_url='https://storage.googleapis.com/b/users/u/song.wav?\u2026'" in repr(created)
    assert "edge_base_url='https://***@edge.example'" in repr(session)
    assert "portal_url='https://app.svix.com/login#\u2026'" in repr(portal)
    # The values themselves are untouched.
    assert download_a.download_url == SIGNED and created.upload_url == SIGNED
    assert (
        m.DownloadInfo(
            generation_id="g", api_project_id="p", download_type="audio", download_url="not a url"
        ).download_url
        == "not a url"
    )


@pytest.mark.parametrize("cls", _public_model_classes(), ids=lambda c: c.__name__)
def test_every_url_field_hides_its_credentials_in_repr(cls: type[Any]) -> None:
    for field in attrs.fields(cls):
        if field.name.endswith("url"):
            assert callable(field.repr), f"{cls.__name__}.{field.name} shows its query"


def test_edge_answers_and_complete_upload() -> None:
    start = structure(
        {"uploadId": "up-1", "partSizeBytes": 33554432, "maxBytes": 2147483648},
        m.EdgeUploadStart,
        endpoint="edge:start",
    )
    assert start == m.EdgeUploadStart(upload_id="up-1", part_size_bytes=33554432, max_bytes=2**31)
    bare = structure({"uploadId": "up-1"}, m.EdgeUploadStart, endpoint="edge:start")
    assert bare.part_size_bytes is None and bare.max_bytes is None
    part = structure({"partNumber": 1, "etag": "abc"}, m.EdgePartReceipt, endpoint="edge:parts")
    assert part == m.EdgePartReceipt(part_number=1, etag="abc")
    done = structure(
        {"objectKey": "api/x", "sizeBytes": 10, "etag": "e"},
        m.EdgeUploadComplete,
        endpoint="edge:complete",
    )
    assert done.object_key == "api/x" and done.size_bytes == 10 and done.etag == "e"
    body = m.EdgeCompleteRequest(
        upload_id="up-1",
        parts=(
            m.EdgePartReceipt(part_number=1, etag="a"),
            m.EdgePartReceipt(part_number=2, etag="b"),
        ),
    )
    assert unstructure(body) == {
        "uploadId": "up-1",
        "parts": [{"partNumber": 1, "etag": "a"}, {"partNumber": 2, "etag": "b"}],
    }
    assert unstructure(m.EdgeAbortRequest(upload_id="up-1")) == {"uploadId": "up-1"}
    assert unstructure(m.CompleteProjectUploadRequest(api_project_id="p")) == {"apiProjectId": "p"}
    completed = structure(
        {"apiProjectId": "p", "status": "uploaded", "sizeBytes": 1234},
        m.CompleteProjectUploadResponse,
        endpoint="complete_project_upload",
    )
    assert completed == m.CompleteProjectUploadResponse(
        api_project_id="p", status="uploaded", size_bytes=1234
    )


def test_list_projects() -> None:
    data = {
        "projects": [
            {
                "apiProjectId": "proj-123",
                "status": "uploaded",
                "originalFileName": "song.wav",
                "contentType": "audio/wav",
                "hasVideo": False,
                "generationCount": 2,
                "createdAt": "2025-01-05T12:34:56Z",
                "updatedAt": "2025-01-05T12:35:10Z",
            }
        ]
    }
    result = structure(data, m.ProjectList, endpoint="list_projects")
    (project,) = result.projects
    assert project == m.Project(
        api_project_id="proj-123",
        status="uploaded",
        original_file_name="song.wav",
        content_type="audio/wav",
        has_video=False,
        generation_count=2,
        created_at=datetime(2025, 1, 5, 12, 34, 56, tzinfo=UTC),
        updated_at=datetime(2025, 1, 5, 12, 35, 10, tzinfo=UTC),
    )


def test_project_defaults_and_coercion() -> None:
    project = structure(
        {"apiProjectId": "p", "generationCount": "2", "status": None},
        m.Project,
        endpoint="list_projects",
    )
    assert project.status == "uploading"
    assert project.generation_count == 2
    assert project.has_video is False and project.created_at is None
    assert structure({}, m.ProjectList, endpoint="list_projects").projects == ()


def test_list_project_generations() -> None:
    data = {
        "apiProjectId": "proj-123",
        "generations": [
            {
                "generationId": "gen-123",
                "status": "processing",
                "modelKey": "diffio-2",
                "progress": 45,
                "createdAt": "2025-01-05T12:40:00Z",
                "updatedAt": "2025-01-05T12:41:00Z",
            },
            {"generationId": "gen-124", "progress": None},
        ],
    }
    result = structure(data, m.ProjectGenerations, endpoint="list_project_generations")
    assert result.api_project_id == "proj-123"
    first, second = result.generations
    assert first.generation_id == "gen-123" and first.status == "processing"
    assert first.model_key == "diffio-2" and first.progress == 45
    assert first.created_at == datetime(2025, 1, 5, 12, 40, tzinfo=UTC)
    assert second.status == "queued" and second.progress is None and second.model_key is None
    assert not first.is_terminal
    assert unstructure(m.ListProjectGenerationsRequest(api_project_id="proj-123")) == {
        "apiProjectId": "proj-123"
    }


# ---------------------------------------------------------------------------------------------
# generations (§5, §12)
# ---------------------------------------------------------------------------------------------


def test_create_generation_request_body() -> None:
    body = m.CreateGenerationRequest(
        api_project_id="proj-123",
        sampling={"steps": 12, "guidance": 1.5, "seed": 42},
        params={"prompt": "clean"},
        idempotency_key=" caller-key ",
    )
    assert unstructure(body) == {
        "apiProjectId": "proj-123",
        "sampling": {"steps": 12, "guidance": 1.5, "seed": 42},
        "params": {"prompt": "clean"},
        "idempotencyKey": " caller-key ",
    }
    assert unstructure(m.CreateGenerationRequest(api_project_id="p")) == {"apiProjectId": "p"}


def test_created_generation() -> None:
    data = {
        "generationId": "gen-123",
        "apiProjectId": "proj-123",
        "modelKey": "diffio-3.5",
        "status": "queued",
        "idempotentReplay": True,
    }
    gen = structure(data, m.CreatedGeneration, endpoint="diffio-3.5-generation")
    assert gen == m.CreatedGeneration(
        generation_id="gen-123",
        api_project_id="proj-123",
        model_key="diffio-3.5",
        status="queued",
        idempotent_replay=True,
    )
    del data["idempotentReplay"]
    assert structure(data, m.CreatedGeneration, endpoint="x").idempotent_replay is False


PROGRESS_EXAMPLE = {
    "generationId": "gen-123",
    "apiProjectId": "proj-123",
    "status": "processing",
    "hasVideo": True,
    "preProcessing": {
        "jobId": "job-pre",
        "jobState": "SUCCEEDED",
        "status": "complete",
        "progress": 100,
        "statusMessage": None,
        "error": None,
        "errorDetails": None,
    },
    "inference": {
        "jobId": "job-cloud-run-gpu",
        "jobState": "RUNNING",
        "status": "running",
        "progress": 40,
        "statusMessage": "Processing audio",
        "error": None,
        "errorDetails": None,
    },
    "restoredVideo": {
        "jobId": None,
        "jobState": None,
        "status": "pending",
        "progress": 0,
        "statusMessage": None,
        "error": None,
        "errorDetails": None,
    },
    "error": None,
    "errorDetails": None,
    "transcription": {"status": "pending"},
}


def test_generation_progress_era_a() -> None:
    p = structure(PROGRESS_EXAMPLE, m.GenerationProgress, endpoint="get_generation_progress")
    assert p.generation_id == "gen-123" and p.api_project_id == "proj-123"
    assert p.status == "processing" and p.has_video is True
    assert p.pre_processing == m.Stage(
        job_id="job-pre", job_state="SUCCEEDED", status="complete", progress=100
    )
    assert p.inference.status_message == "Processing audio"
    assert p.inference.job_state == "RUNNING" and p.inference.progress == 40
    assert p.restored_video == m.Stage()
    assert p.transcription == m.Transcription(status="pending")
    assert p.transcription_status == "pending"
    assert p.stage is None and p.stage_progress is None and p.queue is None
    assert [name for name, _ in p.stages] == ["preProcessing", "inference", "restoredVideo"]
    assert p.percent == pytest.approx(140 / 3)
    assert not p.is_terminal and not p.is_complete and not p.is_failed


def test_generation_progress_era_b_extras() -> None:
    data = {
        "generationId": "g",
        "apiProjectId": "p",
        "status": "processing",
        "preProcessing": {"status": "complete", "progress": 100},
        "inference": {"status": "running"},
        "stage": "restoring",
        "stageProgress": {
            "overallPercent": 62.5,
            "stagePercent": 40,
            "bytesDone": 1000,
            "bytesTotal": 4000,
            "availableThroughSeconds": 12.5,
            "durationSeconds": 60,
        },
        "queue": {
            "position": 2,
            "connectedWorkers": 3,
            "idleWorkers": 0,
            "busyWorkers": 3,
            "waitReason": "all_busy",
            "message": "Waiting for a worker",
        },
    }
    p = structure(data, m.GenerationProgress, endpoint="get_generation_progress")
    assert p.stage == "restoring"
    assert p.stage_progress == m.StageProgress(
        overall_percent=62.5,
        stage_percent=40.0,
        bytes_done=1000,
        bytes_total=4000,
        available_through_seconds=12.5,
        duration_seconds=60.0,
    )
    assert p.queue is not None and p.queue.wait_reason == "all_busy" and p.queue.position == 2
    assert p.percent == 62.5
    assert p.inference.job_state is None and p.inference.progress == 0
    assert p.has_video is False and p.restored_video is None and p.transcription is None


def test_empty_stage_objects_are_accepted() -> None:
    data = {"generationId": "g", "apiProjectId": "p", "status": "queued"}
    p = structure(
        {**data, "preProcessing": {}, "inference": {}}, m.GenerationProgress, endpoint="x"
    )
    assert p.pre_processing == m.Stage(status="pending", progress=0)


@pytest.mark.parametrize(
    ("status", "terminal", "complete", "failed"),
    [
        ("queued", False, False, False),
        ("pending", False, False, False),
        ("processing", False, False, False),
        ("complete", True, True, False),
        ("failed", True, False, True),
        ("error", True, False, True),
        ("paused", False, False, False),  # unknown: kept, non-terminal
        ("COMPLETE", True, True, False),  # statuses are normalised: stripped, lower-cased
        (" Failed\n", True, False, True),
    ],
)
def test_progress_status_helpers(status: str, terminal: bool, complete: bool, failed: bool) -> None:
    data = {**PROGRESS_EXAMPLE, "status": status}
    p = structure(data, m.GenerationProgress, endpoint="get_generation_progress")
    assert p.status == status.strip().lower()
    assert (p.is_terminal, p.is_complete, p.is_failed) == (terminal, complete, failed)


def test_complete_progress_percent_is_100() -> None:
    data = {**PROGRESS_EXAMPLE, "status": "complete"}
    assert structure(data, m.GenerationProgress, endpoint="x").percent == 100.0


def test_failed_progress_keeps_error_text() -> None:
    data = {
        **PROGRESS_EXAMPLE,
        "status": "failed",
        "error": "Video restoration failed.",
        "errorDetails": "ffmpeg exited 1",
        "restoredVideo": {"status": "failed", "error": "boom", "progress": 10},
    }
    p = structure(data, m.GenerationProgress, endpoint="x")
    assert p.is_failed and p.error == "Video restoration failed."
    assert p.error_details == "ffmpeg exited 1"
    assert p.restored_video is not None and p.restored_video.error == "boom"


def test_progress_and_download_requests() -> None:
    assert unstructure(m.GenerationProgressRequest(generation_id="gen-123")) == {
        "generationId": "gen-123"
    }
    assert unstructure(
        m.GenerationProgressRequest(generation_id="gen-123", api_project_id="proj-123")
    ) == {"generationId": "gen-123", "apiProjectId": "proj-123"}
    assert unstructure(
        m.GenerationDownloadRequest(
            generation_id="gen-123", api_project_id="proj-123", download_type="audio"
        )
    ) == {"generationId": "gen-123", "apiProjectId": "proj-123", "downloadType": "audio"}


def test_download_era_a() -> None:
    data = {
        "generationId": "gen-123",
        "apiProjectId": "proj-123",
        "downloadType": "audio",
        "downloadUrl": "https://storage.googleapis.com/diffio_api/users/user-123/projects/proj-123/generations/gen-123/restored.mp3?X-Goog-Expires=7200&X-Goog-Signature=...",
        "fileName": "diffio_ai_song.mp3",
        "storagePath": "users/user-123/projects/proj-123/generations/gen-123/restored.mp3",
        "bucket": "diffio_api",
        "mimeType": "audio/mpeg",
    }
    d = structure(data, m.DownloadInfo, endpoint="get_generation_download")
    assert d.download_type == "audio" and d.download_url == data["downloadUrl"]
    assert d.file_name == "diffio_ai_song.mp3" and d.bucket == "diffio_api"
    assert d.mime_type == "audio/mpeg" and d.storage_path == data["storagePath"]
    assert "X-Goog-Signature" not in repr(d) and "X-Goog-Expires" not in repr(d)
    assert "download_url='https://storage.googleapis.com/diffio_api/users/" in repr(d)


def test_download_era_b_has_no_bucket() -> None:
    data = {
        "generationId": "g",
        "apiProjectId": "p",
        "downloadType": "transcript",
        "downloadUrl": "https://edge.example/m/tok/generations/g/word_timestamps.json?download=word_timestamps.json",
    }
    d = structure(data, m.DownloadInfo, endpoint="get_generation_download")
    assert d.bucket is None and d.file_name is None and d.mime_type is None


# ---------------------------------------------------------------------------------------------
# webhooks (§6)
# ---------------------------------------------------------------------------------------------

WEBHOOK_EVENT = {
    "eventType": "generation.completed",
    "eventId": "evt_123",
    "createdAt": "2026-01-28T12:34:56Z",
    "apiKeyId": "key_123",
    "apiProjectId": "proj_123",
    "generationId": "gen_123",
    "status": "complete",
    "hasVideo": False,
    "modelKey": "diffio-2",
    "error": None,
    "errorDetails": None,
}


def test_webhook_event() -> None:
    e = structure(WEBHOOK_EVENT, m.WebhookEvent, endpoint="webhook")
    assert e.event_type == m.WebhookEventType.COMPLETED
    assert e.event_id == "evt_123" and e.api_key_id == "key_123"
    assert e.created_at == datetime(2026, 1, 28, 12, 34, 56, tzinfo=UTC)
    assert e.generation_id == "gen_123" and e.api_project_id == "proj_123"
    assert e.has_video is False and e.model_key == "diffio-2" and e.transcription is None
    assert e.is_terminal and not e.is_failed
    failed = structure({**WEBHOOK_EVENT, "status": "error"}, m.WebhookEvent, endpoint="webhook")
    assert failed.is_terminal and failed.is_failed


def test_webhook_event_optional_fields_and_transcription() -> None:
    required = ("eventType", "eventId", "createdAt", "apiKeyId", "generationId", "status")
    minimal = {k: WEBHOOK_EVENT[k] for k in required}
    e = structure(
        {**minimal, "transcription": {"status": "available"}}, m.WebhookEvent, endpoint="w"
    )
    assert e.has_video is None and e.api_project_id is None
    assert e.transcription == m.Transcription(status="available")
    with pytest.raises(APIResponseValidationError, match=r"@ \$\.createdAt"):
        structure({**minimal, "createdAt": "yesterday"}, m.WebhookEvent, endpoint="w")


def test_send_test_event() -> None:
    body = m.SendTestEventRequest(
        event_type="generation.completed", mode="live", sample_payload={"apiProjectId": "p"}
    )
    assert unstructure(body) == {
        "eventType": "generation.completed",
        "mode": "live",
        "samplePayload": {"apiProjectId": "p"},
    }
    data = {
        "svixMessageId": "msg_123",
        "eventId": "evt_123",
        "eventType": "generation.completed",
        "apiKeyId": "key_123",
        "mode": "live",
    }
    assert structure(data, m.WebhookTestEvent, endpoint="webhooks/send_test_event") == (
        m.WebhookTestEvent(
            svix_message_id="msg_123",
            event_id="evt_123",
            event_type="generation.completed",
            api_key_id="key_123",
            mode="live",
        )
    )
    del data["apiKeyId"]  # older docs version
    assert structure(data, m.WebhookTestEvent, endpoint="x").api_key_id is None


def test_configure_webhook() -> None:
    body = m.ConfigureWebhookRequest(
        mode="live",
        url="https://example.com/diffio-webhook",
        event_types=("generation.completed", "generation.failed"),
    )
    assert unstructure(body) == {
        "mode": "live",
        "url": "https://example.com/diffio-webhook",
        "eventTypes": ["generation.completed", "generation.failed"],
    }
    data = {
        "webhook": {
            "apiKeyId": "key_123",
            "mode": "live",
            "svixEnv": "production",
            "endpointId": "ep_123",
            "eventTypes": ["generation.completed", "generation.failed"],
            "url": "https://example.com/diffio-webhook",
            "signing": "svix",
            "updatedByKeyId": "key_admin_123",
        }
    }
    w = structure(data, m.WebhookConfigureResponse, endpoint="webhooks/configure").webhook
    assert w == m.WebhookEndpoint(
        api_key_id="key_123",
        mode="live",
        svix_env="production",
        endpoint_id="ep_123",
        event_types=("generation.completed", "generation.failed"),
        url="https://example.com/diffio-webhook",
        signing="svix",
        updated_by_key_id="key_admin_123",
    )


def test_app_portal_access_legacy() -> None:
    assert unstructure(m.AppPortalAccessRequest(mode="test")) == {"mode": "test"}
    data = {"portalUrl": "https://app.svix.com/app-portal/x", "mode": "test", "apiKeyId": "k"}
    a = structure(data, m.AppPortalAccess, endpoint="webhooks/app_portal_access")
    assert a.portal_url.startswith("https://app.svix.com") and a.api_key_id == "k"


# ---------------------------------------------------------------------------------------------
# api keys, usage, account (§7)
# ---------------------------------------------------------------------------------------------

CREATED_KEY = {
    "key": "diffio_live_secretvalue",
    "keyId": "key_child_123",
    "label": "Dashboard browser key",
    "status": "active",
    "keyPrefix": "diffio_live_child",
    "role": "scoped",
    "scopes": [
        "projects:read",
        "projects:write",
        "generations:read",
        "generations:write",
        "artifacts:read",
    ],
    "resourceBounds": {"projectIds": ["proj_123"]},
    "parentKeyId": "key_admin_123",
    "permissions": {"read": True, "write": True},
    "createdAt": "2026-05-09T12:00:00Z",
    "rotatedAt": None,
    "revokedAt": None,
}


def test_api_key_create() -> None:
    body = m.CreateApiKeyRequest(label="Dashboard browser key", scopes=("projects:read",))
    assert unstructure(body) == {
        "label": "Dashboard browser key",
        "scopes": ["projects:read"],
        "resourceBounds": {},
    }
    k = structure(CREATED_KEY, m.ApiKey, endpoint="api_keys/create")
    assert k.key == "diffio_live_secretvalue" and k.key_id == "key_child_123"
    assert k.label == "Dashboard browser key" and k.status == "active"
    assert k.key_prefix == "diffio_live_child" and k.role == "scoped"
    assert k.scopes[0] == "projects:read" and len(k.scopes) == 5
    assert k.resource_bounds == {"projectIds": ["proj_123"]}
    assert k.parent_key_id == "key_admin_123"
    assert k.permissions == m.ApiKeyPermissions(read=True, write=True)
    assert k.created_at == datetime(2026, 5, 9, 12, tzinfo=UTC)
    assert k.rotated_at is None and k.revoked_at is None
    assert "secretvalue" not in repr(k)


def test_api_key_list_rotate_revoke() -> None:
    listed = {k: v for k, v in CREATED_KEY.items() if k != "key"}
    keys = structure({"keys": [listed]}, m.ApiKeyList, endpoint="api_keys/list").keys
    assert keys[0].key is None and keys[0].key_id == "key_child_123"
    rotated = structure(
        {**CREATED_KEY, "key": "diffio_live_rotated", "rotatedAt": "2026-05-10T00:00:00Z"},
        m.ApiKey,
        endpoint="api_keys/rotate",
    )
    assert rotated.rotated_at == datetime(2026, 5, 10, tzinfo=UTC)
    revoked = structure(
        {**listed, "status": "revoked", "revokedAt": "2026-05-11T00:00:00Z"},
        m.ApiKey,
        endpoint="api_keys/revoke",
    )
    assert revoked.status == m.ApiKeyStatus.REVOKED and revoked.revoked_at is not None
    assert unstructure(m.RotateApiKeyRequest(key_id="key_child_123")) == {"keyId": "key_child_123"}
    assert unstructure(m.RevokeApiKeyRequest(key_id="k")) == {"keyId": "k"}


def test_api_key_minimal_defaults() -> None:
    k = structure({"keyId": "k"}, m.ApiKey, endpoint="api_keys/list")
    assert (k.status, k.role, k.scopes, k.resource_bounds, k.permissions) == (
        "active",
        "scoped",
        (),
        {},
        None,
    )


def test_usage_summary() -> None:
    data = {
        "usage": {
            "apiKeyId": "key_123",
            "periods": [
                {
                    "periodId": "2026-05",
                    "reservedCents": 12,
                    "finalizedCents": 340,
                    "totalCents": 352,
                    "modelSeconds": {"diffio-2": 610},
                    "modelCents": {"diffio-2": 352},
                }
            ],
        },
        "billing": {
            "billingPolicy": {"type": "customerStripe"},
            "lifetimeListPriceCents": 1200,
            "lifetimeBillableCents": 1100,
            "someNewCounter": 5,
        },
    }
    s = structure(data, m.UsageSummary, endpoint="usage/summary")
    assert s.api_key_id == "key_123"
    (period,) = s.periods
    assert period.period_id == "2026-05" and period.total_cents == 352
    assert period.reserved_cents == 12 and period.finalized_cents == 340
    assert period.model_seconds == {"diffio-2": 610.0} and period.model_cents == {"diffio-2": 352}
    assert s.billing == m.BillingSummary(
        billing_policy=m.BillingPolicy(type="customerStripe"),
        lifetime_list_price_cents=1200,
        lifetime_billable_cents=1100,
    )
    assert unstructure(m.UsageSummaryRequest()) == {}
    assert unstructure(m.UsageSummaryRequest(api_key_id="key_123")) == {"apiKeyId": "key_123"}
    assert structure({}, m.UsageSummary, endpoint="usage/summary").periods == ()


def test_account_settings() -> None:
    data = {
        "apiKeyId": "key_123",
        "account": {
            "userId": "user_123",
            "billingMode": "developerProgressive",
            "billingStatus": "active",
            "billingPolicy": {"type": "customerStripe"},
            "currency": "usd",
            "updatedAt": "2026-05-09T12:00:00Z",
        },
    }
    s = structure(data, m.AccountSettings, endpoint="account/settings/get")
    assert s.api_key_id == "key_123"
    assert s.account == m.Account(
        user_id="user_123",
        billing_mode="developerProgressive",
        billing_status="active",
        billing_policy=m.BillingPolicy(type=m.BillingPolicyType.CUSTOMER_STRIPE),
        currency="usd",
        updated_at=datetime(2026, 5, 9, 12, tzinfo=UTC),
    )
    updated = structure(
        {"account": {"userId": "u"}}, m.AccountSettings, endpoint="account/settings/update"
    )
    assert updated.api_key_id is None
    assert updated.account.billing_mode == "free" and updated.account.billing_status == "active"
    body = m.UpdateAccountSettingsRequest(
        billing_policy=m.BillingPolicy(type="internalDiffio", reason="staff")
    )
    assert unstructure(body) == {"billingPolicy": {"type": "internalDiffio", "reason": "staff"}}


# ---------------------------------------------------------------------------------------------
# constants
# ---------------------------------------------------------------------------------------------


def test_status_constants() -> None:
    assert m.GenerationStatus.COMPLETE == "complete"
    assert {"complete", "failed", "error"} == m.GenerationStatus.TERMINAL
    assert m.WebhookEventType.ALL == (
        "generation.queued",
        "generation.processing",
        "generation.failed",
        "generation.completed",
    )
    assert m.DownloadType.TRANSCRIPT == "transcript"
    assert m.DownloadType.ALL == ("audio", "video", "transcript")
    assert m.WebhookMode.ALL == ("test", "live")
    assert m.BillingPolicyType.ALL == ("customerStripe", "internalDiffio")
    assert m.TranscriptionStatus.UNAVAILABLE == "unavailable"
