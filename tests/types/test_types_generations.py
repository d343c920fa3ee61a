"""The generations models against every documented payload (§5, §12, both eras)."""

from __future__ import annotations

import pytest

from diffio_async import types as m
from diffio_async._convert import structure, unstructure


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
