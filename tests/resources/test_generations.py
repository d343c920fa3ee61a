"""``client.generations`` against the emulator on loopback: create, get, get_progress and
get_download, in both eras where they differ (model endpoints, progress extras, media URLs).

Following a generation with its handle (wait, iter_progress, download) is tested in
test_generation_handle.py and tests/media/test_download.py; retries of create in
tests/http/test_retry.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx2
import pytest
from shared import AUDIO, JOB_SECONDS, MODELS, SDK_HEADERS, sent

from diffio_async import (
    AsyncDiffio,
    BadRequestError,
    ConflictError,
    CreatedGeneration,
    DownloadInfo,
    Generation,
    GenerationProgress,
    IdempotencyConflictError,
    InvalidRequestError,
    NotFoundError,
    PaymentFailedError,
    PermissionDeniedError,
    Stage,
    UploadMissingError,
)
from diffio_async.resources.api_keys import SCOPES
from diffio_async.testing import TEST_API_KEY, EmulatedDiffio

pytestmark = pytest.mark.anyio

PROGRESS = "/v1/get_generation_progress"
DOWNLOAD = "/v1/get_generation_download"
MEDIA_URL = {"a": "/_storage/diffio_api/", "b": "/m/"}
"""Where each era's download URLs point, after the base URL."""

Call = Callable[[AsyncDiffio, Generation], Awaitable[Any]]
CALLS: dict[str, tuple[Call, str, str]] = {
    # method: (call with a client and a queued generation, path (era A), scope it needs)
    "create": (
        lambda c, g: c.generations.create(g.project_id, model="diffio-3.5"),
        "/v1/diffio-3.5-generation",
        "generations:write",
    ),
    "get_progress": (lambda c, g: c.generations.get_progress(g.id), PROGRESS, "generations:read"),
    "get_download": (
        lambda c, g: c.generations.get_download(g.id, project_id=g.project_id),
        DOWNLOAD,
        "artifacts:read",
    ),
}


async def _generation(env: EmulatedDiffio, **options: Any) -> Generation:
    """A queued generation of an uploaded talk.wav, with this era's model."""
    project = await env.client.projects.create(AUDIO, file_name="talk.wav")
    model = MODELS[env.emulator.era]
    return await env.client.generations.create(project, model=model, **options)


def _paths(env: EmulatedDiffio) -> list[str]:
    return [entry.path for entry in env.emulator.requests]


# --- create ------------------------------------------------------------------------------------


async def test_create_posts_to_the_models_endpoint_and_returns_a_handle(
    era_env: EmulatedDiffio,
) -> None:
    project = await era_env.client.projects.create(AUDIO, file_name="talk.wav")
    model = MODELS[era_env.emulator.era]
    generation = await era_env.client.generations.create(
        project, model=model, sampling={"seed": 7}, params={"prompt": "clean"}, idempotency_key="k1"
    )
    assert sent(era_env, f"/v1/{model}-generation") == [
        {
            "apiProjectId": project.api_project_id,
            "sampling": {"seed": 7},
            "params": {"prompt": "clean"},
            "idempotencyKey": "k1",
        }
    ]
    assert isinstance(generation, Generation) and isinstance(generation.created, CreatedGeneration)
    assert (generation.project_id, generation.model_key, generation.idempotency_key) == (
        project.api_project_id,
        model,
        "k1",
    )
    assert (generation.created.status, generation.created.idempotent_replay) == ("queued", False)
    assert era_env.emulator.generation_ids == [generation.id]


async def test_create_takes_a_project_id_as_well_as_a_project(env: EmulatedDiffio) -> None:
    project = await env.client.projects.create(AUDIO, file_name="talk.wav")
    generation = await env.client.generations.create(project.api_project_id, model="diffio-2")
    assert generation.project_id == project.api_project_id
    assert sent(env, "/v1/diffio-2.0-generation")[0]["apiProjectId"] == project.api_project_id


async def test_the_same_idempotency_key_replays_the_first_generation(env: EmulatedDiffio) -> None:
    first = await _generation(env, idempotency_key="key-1")
    replay = await env.client.generations.create(
        first.project_id, model="diffio-3.5", idempotency_key="key-1"
    )
    assert replay.id == first.id and replay.created.idempotent_replay
    assert env.emulator.generation_ids == [first.id]


async def test_an_idempotency_key_reused_for_another_model_is_a_conflict(
    env: EmulatedDiffio,
) -> None:
    first = await _generation(env, idempotency_key="key-1")
    with pytest.raises(IdempotencyConflictError) as info:
        await env.client.generations.create(
            first.project_id, model="diffio-2", idempotency_key="key-1"
        )
    assert (info.value.status_code, info.value.code) == (409, "idempotencyConflict")
    assert env.emulator.generation_ids == [first.id]


async def test_a_generation_of_a_project_not_yet_uploaded_is_an_upload_missing_conflict(
    era_env: EmulatedDiffio,
) -> None:
    project = await era_env.client.projects.register(file_name="talk.wav")
    with pytest.raises(UploadMissingError) as info:
        await era_env.client.generations.create(project, model=MODELS[era_env.emulator.era])
    assert (info.value.status_code, info.value.code) == (409, "UPLOAD_MISSING")
    assert era_env.emulator.generation_ids == []


async def test_a_generation_of_an_unknown_project_is_not_found(env: EmulatedDiffio) -> None:
    with pytest.raises(NotFoundError) as info:
        await env.client.generations.create("no-such-project", model="diffio-3.5")
    assert info.value.status_code == 404


# --- get ---------------------------------------------------------------------------------------


async def test_get_rebuilds_a_handle_from_ids_without_a_request(env: EmulatedDiffio) -> None:
    handle = env.client.generations.get(" gen-1 ", project_id="proj-1", model_key="diffio-3.5")
    assert isinstance(handle, Generation)
    assert (handle.id, handle.project_id, handle.model_key) == ("gen-1", "proj-1", "diffio-3.5")
    assert (handle.idempotency_key, handle.created.status) == (None, "unknown")
    assert env.client.generations.get("gen-1", project_id="proj-1").model_key == ""
    assert _paths(env) == []


async def test_a_rebuilt_handle_reads_the_real_generation(env: EmulatedDiffio) -> None:
    generation = await _generation(env)
    handle = env.client.generations.get(generation.id, project_id=generation.project_id)
    progress = await handle.progress()
    assert (progress.generation_id, progress.status) == (generation.id, "queued")


# --- get_progress ------------------------------------------------------------------------------


async def test_get_progress_reports_the_status_and_both_stages(era_env: EmulatedDiffio) -> None:
    generation = await _generation(era_env)
    progress = await era_env.client.generations.get_progress(generation.id)
    assert isinstance(progress, GenerationProgress)
    assert (progress.generation_id, progress.api_project_id, progress.status) == (
        generation.id,
        generation.project_id,
        "queued",
    )
    assert isinstance(progress.pre_processing, Stage) and isinstance(progress.inference, Stage)
    assert [name for name, _ in progress.stages] == ["preProcessing", "inference"]
    assert (progress.has_video, progress.restored_video, progress.is_terminal) == (
        False,
        None,
        False,
    )
    assert sent(era_env, PROGRESS) == [{"generationId": generation.id}]


async def test_only_era_b_progress_has_the_stage_and_the_queue(
    era_env: EmulatedDiffio,
) -> None:
    progress = await era_env.client.generations.get_progress((await _generation(era_env)).id)
    if era_env.emulator.era == "a":
        assert (progress.stage, progress.stage_progress, progress.queue) == (None, None, None)
    else:
        assert progress.stage is not None and progress.stage_progress is not None
        assert progress.queue is not None
        assert (progress.queue.position, progress.queue.wait_reason) == (1, "next_in_line")


async def test_the_progress_of_a_video_project_has_the_restored_video_stage(
    env: EmulatedDiffio,
) -> None:
    project = await env.client.projects.create(
        AUDIO, file_name="clip.mp4", content_type="video/mp4"
    )
    generation = await env.client.generations.create(project, model="diffio-3.5")
    progress = await env.client.generations.get_progress(generation.id)
    assert progress.has_video and isinstance(progress.restored_video, Stage)
    assert [name for name, _ in progress.stages] == ["preProcessing", "inference", "restoredVideo"]


async def test_get_progress_follows_the_generation_to_complete(env: EmulatedDiffio) -> None:
    generation = await _generation(env)
    env.emulator.advance(JOB_SECONDS)
    progress = await env.client.generations.get_progress(
        generation.id, project_id=generation.project_id
    )
    assert (progress.status, progress.is_complete, progress.percent) == ("complete", True, 100)
    assert [stage.status for _, stage in progress.stages] == ["complete", "complete"]
    assert progress.transcription_status == "available"
    assert sent(env, PROGRESS) == [
        {"generationId": generation.id, "apiProjectId": generation.project_id}
    ]


async def test_get_progress_of_an_unknown_generation_is_not_found(env: EmulatedDiffio) -> None:
    with pytest.raises(NotFoundError) as info:
        await env.client.generations.get_progress("no-such-generation")
    assert info.value.status_code == 404


async def test_get_progress_naming_the_wrong_project_is_not_found(env: EmulatedDiffio) -> None:
    generation = await _generation(env)
    other = await env.client.projects.register(file_name="other.wav")
    with pytest.raises(NotFoundError):
        await env.client.generations.get_progress(generation.id, project_id=other.api_project_id)


# --- get_download ------------------------------------------------------------------------------


async def test_get_download_gives_a_media_url_once_the_generation_is_complete(
    era_env: EmulatedDiffio,
) -> None:
    generation = await _generation(era_env)
    era_env.emulator.advance(JOB_SECONDS)
    info = await era_env.client.generations.get_download(
        generation.id, project_id=generation.project_id, download_type="MP3"
    )
    assert sent(era_env, DOWNLOAD) == [
        {
            "generationId": generation.id,
            "apiProjectId": generation.project_id,
            "downloadType": "audio",
        }
    ]
    assert isinstance(info, DownloadInfo)
    assert (info.generation_id, info.api_project_id) == (generation.id, generation.project_id)
    assert (info.download_type, info.mime_type, info.file_name) == (
        "audio",
        "audio/mpeg",
        "diffio_ai_talk.mp3",
    )
    era = era_env.emulator.era
    assert info.download_url.startswith(era_env.base_url + MEDIA_URL[era])
    assert info.bucket == ("diffio_api" if era == "a" else None)


@pytest.mark.parametrize(
    ("file_name", "content_type", "served"),
    [
        ("talk.wav", "audio/wav", ("audio", "audio/mpeg", "diffio_ai_talk.mp3")),
        ("clip.mp4", "video/mp4", ("video", "video/mp4", "diffio_ai_clip.mp4")),
    ],
)
async def test_without_a_download_type_the_field_is_left_out_and_the_server_chooses(
    era_env: EmulatedDiffio, file_name: str, content_type: str, served: tuple[str, str, str]
) -> None:
    """The API's default: the video for a project with video, otherwise the audio."""
    project = await era_env.client.projects.create(
        AUDIO, file_name=file_name, content_type=content_type
    )
    generation = await era_env.client.generations.create(
        project, model=MODELS[era_env.emulator.era]
    )
    era_env.emulator.advance(JOB_SECONDS)
    info = await era_env.client.generations.get_download(
        generation.id, project_id=generation.project_id
    )
    assert sent(era_env, DOWNLOAD) == [
        {"generationId": generation.id, "apiProjectId": generation.project_id}
    ]
    assert (info.download_type, info.mime_type, info.file_name) == served


async def test_the_download_url_serves_the_result_without_the_api_key(
    era_env: EmulatedDiffio,
) -> None:
    generation = await _generation(era_env)
    era_env.emulator.advance(JOB_SECONDS)
    info = await era_env.client.generations.get_download(
        generation.id, project_id=generation.project_id
    )
    async with httpx2.AsyncClient() as http:
        response = await http.get(info.download_url)
    assert response.status_code == 200 and response.content == AUDIO
    assert TEST_API_KEY not in info.download_url


async def test_a_transcript_download_names_the_word_timestamps(env: EmulatedDiffio) -> None:
    generation = await _generation(env)
    env.emulator.advance(JOB_SECONDS)
    info = await env.client.generations.get_download(
        generation.id, project_id=generation.project_id, download_type="transcript"
    )
    assert (info.download_type, info.file_name, info.mime_type) == (
        "transcript",
        "word_timestamps.json",
        "application/json",
    )


async def test_get_download_before_the_generation_is_complete_is_a_conflict(
    env: EmulatedDiffio,
) -> None:
    generation = await _generation(env)
    with pytest.raises(ConflictError) as info:
        await env.client.generations.get_download(generation.id, project_id=generation.project_id)
    assert type(info.value) is ConflictError and info.value.status_code == 409


async def test_a_video_download_of_an_audio_project_is_a_bad_request(env: EmulatedDiffio) -> None:
    generation = await _generation(env)
    env.emulator.advance(JOB_SECONDS)
    with pytest.raises(BadRequestError, match="video") as info:
        await env.client.generations.get_download(
            generation.id, project_id=generation.project_id, download_type="video"
        )
    assert info.value.status_code == 400


async def test_get_download_of_an_unknown_generation_is_not_found(env: EmulatedDiffio) -> None:
    project = await env.client.projects.register(file_name="talk.wav")
    with pytest.raises(NotFoundError):
        await env.client.generations.get_download(
            "no-such-generation", project_id=project.api_project_id
        )


# --- every method: headers, scopes, billing, bad input -----------------------------------------


async def test_every_call_is_an_authenticated_json_post_with_the_sdk_headers(
    env: EmulatedDiffio,
) -> None:
    generation = await _generation(env)
    env.emulator.advance(JOB_SECONDS)
    env.emulator.requests.clear()
    for call, _, _ in CALLS.values():
        await call(env.client, generation)
    assert _paths(env) == [path for _, path, _ in CALLS.values()]
    for entry in env.emulator.requests:
        assert entry.method == "POST"
        assert {name: entry.header(name) for name in SDK_HEADERS} == SDK_HEADERS


@pytest.mark.parametrize("method", list(CALLS))
async def test_a_key_without_the_methods_scope_is_refused_once(
    env: EmulatedDiffio, method: str
) -> None:
    call, path, scope = CALLS[method]
    generation = await _generation(env)
    key = env.emulator.mint_key(scopes=[s for s in SCOPES if s != scope])
    env.emulator.requests.clear()
    with pytest.raises(PermissionDeniedError, match=scope) as info:
        await call(env.client.with_options(api_key=key.key), generation)
    assert info.value.status_code == 403
    assert _paths(env) == [path]


@pytest.mark.parametrize("method", list(CALLS))
async def test_a_billing_hold_refuses_every_method_with_payment_failed(
    env: EmulatedDiffio, method: str
) -> None:
    call, path, _ = CALLS[method]
    generation = await _generation(env)
    env.emulator.set_billing_hold(True)
    env.emulator.requests.clear()
    with pytest.raises(PaymentFailedError) as info:
        await call(env.client, generation)
    assert (info.value.status_code, info.value.code) == (402, "paymentFailed")
    assert _paths(env) == [path]


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda c: c.generations.create(object(), model="diffio-3.5"), "project"),
        (lambda c: c.generations.create("p", model="diffio-3.5", params=[1]), "params"),
        (lambda c: c.generations.get_progress(5), "generation_id"),
        (lambda c: c.generations.get_download(" ", project_id="p"), "generation_id"),
        (lambda c: c.generations.get_download("g", project_id="p", download_type=""), "type"),
        (lambda c: c.generations.get_download("g", project_id="p", download_type=3), "type"),
    ],
)
async def test_bad_arguments_are_refused_before_any_request(
    env: EmulatedDiffio, call: Callable[[AsyncDiffio], Awaitable[Any]], named: str
) -> None:
    with pytest.raises(InvalidRequestError, match=named):
        await call(env.client)
    assert _paths(env) == []


@pytest.mark.parametrize(
    ("generation_id", "project_id", "named"),
    [("", "proj-1", "generation_id"), ("gen-1", " ", "project_id"), (None, "p", "generation_id")],
)
async def test_get_refuses_blank_ids_without_a_request(
    env: EmulatedDiffio, generation_id: Any, project_id: Any, named: str
) -> None:
    with pytest.raises(InvalidRequestError, match=named):
        env.client.generations.get(generation_id, project_id=project_id)
    assert _paths(env) == []
