"""``client.projects`` against the emulator on loopback: create (register, then upload),
register, complete_upload (era B), list and list_generations.

Upload mechanics (sources, parts, retries of parts) are tested in tests/media/test_upload.py.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from shared import AUDIO, JOB_SECONDS, SDK_HEADERS, sent

from diffio_async import (
    AsyncDiffio,
    CompleteProjectUploadResponse,
    CreateProjectResponse,
    GenerationSummary,
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
    PaymentFailedError,
    PermissionDeniedError,
    Project,
    UploadMissingError,
)
from diffio_async.resources.api_keys import SCOPES
from diffio_async.testing import EmulatedDiffio

pytestmark = pytest.mark.anyio

CREATE = "/v1/create_project"
LIST = "/v1/list_projects"
GENERATIONS = "/v1/list_project_generations"
COMPLETE = "/v1/complete_project_upload"

Call = Callable[[AsyncDiffio, str], Awaitable[Any]]
CALLS: dict[str, tuple[Call, str, str]] = {
    # method: (call with a client and a registered project's id, path, scope it needs)
    "create": (lambda c, p: c.projects.create(AUDIO, file_name="a.wav"), CREATE, "projects:write"),
    "register": (lambda c, p: c.projects.register(file_name="a.wav"), CREATE, "projects:write"),
    "complete_upload": (lambda c, p: c.projects.complete_upload(p), COMPLETE, "projects:write"),
    "list": (lambda c, p: c.projects.list(), LIST, "projects:read"),
    "list_generations": (
        lambda c, p: c.projects.list_generations(p),
        GENERATIONS,
        "generations:read",
    ),
}


def _paths(env: EmulatedDiffio) -> list[str]:
    return [entry.path for entry in env.emulator.requests]


# --- create ------------------------------------------------------------------------------------


async def test_create_describes_the_file_in_camel_case_then_puts_its_bytes(
    env: EmulatedDiffio,
) -> None:
    project = await env.client.projects.create(
        AUDIO, file_name="talk.wav", file_format="wav", params={"language": "en"}
    )
    assert sent(env, CREATE) == [
        {
            "fileName": "talk.wav",
            "contentType": "audio/x-wav",
            "contentLength": len(AUDIO),
            "fileFormat": "wav",
            "params": {"language": "en"},
        }
    ]
    (upload,) = env.emulator.requests.find(method="PUT")
    assert upload.path.startswith("/_storage/diffio_api/") and upload.body_size == len(AUDIO)
    assert upload.header("content-type") == "audio/x-wav"
    assert isinstance(project, CreateProjectResponse)


async def test_create_in_era_a_returns_the_signed_upload_url(env: EmulatedDiffio) -> None:
    project = await env.client.projects.create(AUDIO, file_name="talk.wav")
    assert (project.era, project.upload_mode, project.upload) == ("a", "signed_url", None)
    assert project.upload_url is not None and project.upload_url.startswith(env.base_url)
    assert (project.upload_method, project.bucket) == ("PUT", "diffio_api")
    assert (
        project.object_path
        == f"users/user_emulator/projects/{project.api_project_id}/original/talk.wav"
    )
    assert project.expires_at is not None and project.expires_at.tzinfo is not None


async def test_create_in_era_b_returns_the_edge_session_and_completes_the_upload(
    env_b: EmulatedDiffio,
) -> None:
    project = await env_b.client.projects.create(AUDIO, file_name="talk.wav")
    assert (project.era, project.upload_mode) == ("b", "edge")
    assert (project.upload_url, project.bucket) == (None, None)
    assert project.upload is not None and project.upload.edge_base_url == env_b.base_url
    assert project.upload.part_size_bytes == 4096
    assert project.upload.upload_token not in repr(project)
    assert sent(env_b, COMPLETE) == [{"apiProjectId": project.api_project_id}]
    (listed,) = await env_b.client.projects.list()
    assert listed.status == "uploaded"


# --- register ----------------------------------------------------------------------------------


async def test_register_creates_the_project_but_uploads_nothing(era_env: EmulatedDiffio) -> None:
    project = await era_env.client.projects.register(file_name="talk.wav")
    assert project.era == era_env.emulator.era
    assert sent(era_env, CREATE) == [
        {"fileName": "talk.wav", "contentType": "application/octet-stream"}
    ]
    assert _paths(era_env) == [CREATE]
    (listed,) = await era_env.client.projects.list()
    assert (listed.api_project_id, listed.status) == (project.api_project_id, "uploading")


async def test_register_sends_the_declared_type_length_and_params(env: EmulatedDiffio) -> None:
    await env.client.projects.register(
        file_name="clip.mp4", content_type="video/mp4", content_length=0, params={"a": [1]}
    )
    assert sent(env, CREATE) == [
        {
            "fileName": "clip.mp4",
            "contentType": "video/mp4",
            "contentLength": 0,
            "params": {"a": [1]},
        }
    ]


async def test_register_declaring_more_than_the_upload_limit_is_payload_too_large(
    env_b: EmulatedDiffio,
) -> None:
    with pytest.raises(PayloadTooLargeError) as info:
        await env_b.client.projects.register(file_name="huge.wav", content_length=2 * 1024**3 + 1)
    assert (info.value.status_code, info.value.code) == (413, "UPLOAD_TOO_LARGE")
    assert env_b.emulator.project_ids == []


# --- complete_upload ---------------------------------------------------------------------------


async def test_complete_upload_confirms_the_edge_upload_again(env_b: EmulatedDiffio) -> None:
    project = await env_b.client.projects.create(AUDIO, file_name="talk.wav")
    again = await env_b.client.projects.complete_upload(project.api_project_id)
    assert isinstance(again, CompleteProjectUploadResponse)
    assert (again.api_project_id, again.status, again.size_bytes) == (
        project.api_project_id,
        "uploaded",
        len(AUDIO),
    )
    assert sent(env_b, COMPLETE) == [{"apiProjectId": project.api_project_id}] * 2


async def test_complete_upload_before_the_edge_upload_is_an_upload_missing_conflict(
    env_b: EmulatedDiffio,
) -> None:
    project = await env_b.client.projects.register(file_name="talk.wav")
    with pytest.raises(UploadMissingError) as info:
        await env_b.client.projects.complete_upload(project.api_project_id)
    assert (info.value.status_code, info.value.code) == (409, "UPLOAD_MISSING")


async def test_complete_upload_of_an_unknown_project_is_not_found(env_b: EmulatedDiffio) -> None:
    with pytest.raises(NotFoundError) as info:
        await env_b.client.projects.complete_upload("no-such-project")
    assert info.value.status_code == 404


async def test_complete_upload_is_not_found_in_era_a_which_has_no_such_endpoint(
    env: EmulatedDiffio,
) -> None:
    project = await env.client.projects.create(AUDIO, file_name="talk.wav")
    with pytest.raises(NotFoundError):
        await env.client.projects.complete_upload(project.api_project_id)


# --- list --------------------------------------------------------------------------------------


async def test_list_returns_typed_projects_newest_first(env: EmulatedDiffio) -> None:
    audio = await env.client.projects.create(AUDIO, file_name="talk.wav")
    video = await env.client.projects.register(file_name="clip.mp4", content_type="video/mp4")
    projects = await env.client.projects.list()
    assert [p.api_project_id for p in projects] == [video.api_project_id, audio.api_project_id]
    assert all(isinstance(p, Project) for p in projects)
    clip, talk = projects
    assert (clip.original_file_name, clip.content_type, clip.has_video) == (
        "clip.mp4",
        "video/mp4",
        True,
    )
    assert (talk.original_file_name, talk.content_type, talk.has_video) == (
        "talk.wav",
        "audio/x-wav",
        False,
    )
    assert (talk.status, talk.generation_count) == ("uploaded", 0)
    assert talk.created_at is not None and talk.created_at.tzinfo is not None
    assert sent(env, LIST) == [{}]


async def test_list_shows_a_scoped_key_only_its_own_projects(env: EmulatedDiffio) -> None:
    await env.client.projects.register(file_name="admin.wav")
    key = env.emulator.mint_key(scopes=["projects:read", "projects:write"])
    scoped = env.client.with_options(api_key=key.key)
    assert await scoped.projects.list() == ()
    own = await scoped.projects.register(file_name="own.wav")
    assert [p.api_project_id for p in await scoped.projects.list()] == [own.api_project_id]


# --- list_generations --------------------------------------------------------------------------


async def test_list_generations_returns_typed_summaries_newest_first(env: EmulatedDiffio) -> None:
    project = await env.client.projects.create(AUDIO, file_name="talk.wav")
    first = await env.client.generations.create(project, model="diffio-3.5")
    second = await env.client.generations.create(project, model="diffio-2")
    listed = await env.client.projects.list_generations(project.api_project_id)
    assert [(g.generation_id, g.model_key) for g in listed] == [
        (second.id, "diffio-2"),
        (first.id, "diffio-3.5"),
    ]
    assert all(isinstance(g, GenerationSummary) for g in listed)
    assert [(g.status, g.is_terminal) for g in listed] == [("queued", False)] * 2
    assert sent(env, GENERATIONS) == [{"apiProjectId": project.api_project_id}]
    (listed_project,) = await env.client.projects.list()
    assert listed_project.generation_count == 2


async def test_list_generations_follows_the_generations_to_complete(env: EmulatedDiffio) -> None:
    project = await env.client.projects.create(AUDIO, file_name="talk.wav")
    await env.client.generations.create(project, model="diffio-3.5")
    env.emulator.advance(JOB_SECONDS)
    (done,) = await env.client.projects.list_generations(project.api_project_id)
    assert (done.status, done.progress, done.is_terminal) == ("complete", 100, True)


async def test_list_generations_of_an_unknown_project_is_not_found(env: EmulatedDiffio) -> None:
    with pytest.raises(NotFoundError) as info:
        await env.client.projects.list_generations("no-such-project")
    assert info.value.status_code == 404


async def test_list_generations_of_another_keys_project_is_not_found(env: EmulatedDiffio) -> None:
    project = await env.client.projects.register(file_name="admin.wav")
    stranger = env.emulator.mint_key(scopes=["generations:read"])
    with pytest.raises(NotFoundError):
        await env.client.with_options(api_key=stranger.key).projects.list_generations(
            project.api_project_id
        )


# --- every method: headers, scopes, billing, bad input -----------------------------------------


async def test_every_call_is_an_authenticated_json_post_with_the_sdk_headers(
    env_b: EmulatedDiffio,
) -> None:
    project = await env_b.client.projects.create(AUDIO, file_name="talk.wav")
    for call, _, _ in CALLS.values():
        await call(env_b.client, project.api_project_id)
    api = [e for e in env_b.emulator.requests if e.path in {CREATE, COMPLETE, LIST, GENERATIONS}]
    assert {e.path for e in api} == {CREATE, COMPLETE, LIST, GENERATIONS}
    for entry in api:
        assert entry.method == "POST"
        assert {name: entry.header(name) for name in SDK_HEADERS} == SDK_HEADERS


@pytest.mark.parametrize("method", list(CALLS))
async def test_a_key_without_the_methods_scope_is_refused_once(
    env_b: EmulatedDiffio, method: str
) -> None:
    call, path, scope = CALLS[method]
    project = await env_b.client.projects.register(file_name="a.wav")
    key = env_b.emulator.mint_key(scopes=[s for s in SCOPES if s != scope])
    env_b.emulator.requests.clear()
    with pytest.raises(PermissionDeniedError, match=scope) as info:
        await call(env_b.client.with_options(api_key=key.key), project.api_project_id)
    assert info.value.status_code == 403
    assert _paths(env_b) == [path]


@pytest.mark.parametrize("method", list(CALLS))
async def test_a_billing_hold_refuses_every_method_with_payment_failed(
    env_b: EmulatedDiffio, method: str
) -> None:
    call, path, _ = CALLS[method]
    project = await env_b.client.projects.register(file_name="a.wav")
    env_b.emulator.set_billing_hold(True)
    env_b.emulator.requests.clear()
    with pytest.raises(PaymentFailedError) as info:
        await call(env_b.client, project.api_project_id)
    assert (info.value.status_code, info.value.code) == (402, "paymentFailed")
    assert _paths(env_b) == [path]


@pytest.mark.parametrize(
    ("call", "named"),
    [
        (lambda c: c.projects.register(file_name=5), "file_name"),
        (lambda c: c.projects.register(file_name="a.wav", content_type=""), "content_type"),
        (
            lambda c: c.projects.register(file_name="a.wav", content_type="audio/wäv"),
            "content_type",
        ),
        (lambda c: c.projects.register(file_name="a.wav", content_length=1.5), "content_length"),
        (lambda c: c.projects.create(AUDIO, part_concurrency=65), "part_concurrency"),
        (lambda c: c.projects.complete_upload(None), "project_id"),
    ],
)
async def test_bad_arguments_are_refused_before_any_request(
    env: EmulatedDiffio, call: Callable[[AsyncDiffio], Awaitable[Any]], named: str
) -> None:
    with pytest.raises(InvalidRequestError, match=named):
        await call(env.client)
    assert _paths(env) == []
