"""The projects and uploads models against every documented payload (§4, §12, both eras)."""

from __future__ import annotations

from datetime import datetime

import pytest
from types_helpers import ERA_A_CREATE, ERA_B_CREATE, UTC

from diffio_async import types as m
from diffio_async._convert import structure, unstructure
from diffio_async.errors import APIResponseValidationError


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
