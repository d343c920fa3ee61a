"""``/v1`` generation endpoints: create (every model), list, progress, download."""

from __future__ import annotations

import uuid
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote

from ._api_call import Call, optional_object, optional_string, required_string
from ._api_projects import BUCKET, find_project
from ._errors import ApiError
from ._lifecycle import GenerationScript, Lifecycle
from ._runtime import ERA_B_MODELS
from ._state import USER_ID, Generation, Project
from ._wire_json import generation_item, progress_json

__all__ = [
    "DOWNLOAD_TYPES",
    "create_generation",
    "get_generation_download",
    "get_generation_progress",
    "list_project_generations",
    "media_file_name",
    "retired_model",
]

DOWNLOAD_TYPES = ("audio", "video", "transcript")
_MAX_IDEMPOTENCY_KEY = 255


def _idempotency_key(body: dict[str, Any]) -> str | None:
    value = body.get("idempotencyKey")
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(400, "idempotencyKey must be a string")
    trimmed = value.strip()
    if not 1 <= len(trimmed) <= _MAX_IDEMPOTENCY_KEY:
        raise ApiError(400, "idempotencyKey must be 1-255 characters after trimming whitespace.")
    return trimmed


def _created(generation: Generation, status: str, replay: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "generationId": generation.generation_id,
        "apiProjectId": generation.project_id,
        "modelKey": generation.model_key,
        "status": status,
    }
    if replay:
        body["idempotentReplay"] = True
    return body


async def create_generation(call: Call, model_key: str) -> dict[str, Any]:
    """``POST /v1/<model>-generation``: queue a generation (idempotent with a key)."""
    core = call.core
    state = core.state
    body = call.body
    project_id = required_string(body, "apiProjectId")
    sampling = optional_object(body, "sampling")
    params = optional_object(body, "params")
    idempotency_key = _idempotency_key(body)
    with state.lock:
        if idempotency_key is not None:
            existing_id = state.idempotency.get((call.key.key_id, idempotency_key))
            if existing_id is not None:
                existing = state.generations[existing_id]
                if existing.project_id != project_id or existing.model_key != model_key:
                    raise ApiError(
                        409,
                        "idempotencyKey was already used for a different request.",
                        "idempotencyConflict",
                    )
                call.messages.extend(core.observe(existing, call.now))
                return _created(existing, core.status(existing, call.now), replay=True)
        project = find_project(call, project_id)
        if project.status != "uploaded" or project.media_path is None:
            raise ApiError(
                409, "Upload the project file before creating a generation.", "UPLOAD_MISSING"
            )
        script = state.scripts[0] if state.scripts else GenerationScript()
        lifecycle = Lifecycle(
            duration=core.config.generation_duration(script, project.size_bytes),
            has_video=project.has_video,
            script=script,
            transcribes=core.config.transcribes(model_key),
        )
        limit = call.key.spend_limit_cents
        generation_id = str(uuid.uuid4())
        generation = Generation(
            generation_id=generation_id,
            project_id=project_id,
            model_key=model_key,
            key_id=call.key.key_id,
            created_at=call.now,
            lifecycle=lifecycle,
            output_path=core.store.output(generation_id),
            sampling=sampling,
            params=params,
            idempotency_key=idempotency_key,
        )
        if limit is not None:
            charge = core.charge_cents(generation.billed_seconds)
            if core.spent_cents(call.key.key_id, call.now) + charge > limit:
                raise ApiError(
                    402,
                    "Spend limit exceeded for this API key. Raise the limit in the dashboard.",
                    "spendLimitExceeded",
                )
        if state.scripts:
            state.scripts.popleft()
        core.store.snapshot_output(project.media_path, generation_id)
        state.generations[generation_id] = generation
        if idempotency_key is not None:
            state.idempotency[(call.key.key_id, idempotency_key)] = generation_id
        project.updated_at = call.now
    call.messages.extend(core.observe(generation, call.now))
    core.track(generation)
    return _created(generation, core.status(generation, call.now), replay=False)


async def retired_model(call: Call, model_key: str) -> dict[str, Any]:
    """Era B answer for an era A model endpoint: 410 ``model_retired``."""
    supported = [key for key in ERA_B_MODELS.values() if key.startswith("diffio-4.6")]
    raise ApiError(
        410,
        f"{model_key} has been retired. Use diffio-4.6-flash or diffio-4.6-pro "
        "(/v1/diffio-4.6-flash-generation or /v1/diffio-4.6-pro-generation).",
        "model_retired",
        retiredModel=model_key,
        supportedModels=supported,
    )


async def list_project_generations(call: Call) -> dict[str, Any]:
    """``POST /v1/list_project_generations``: a project's generations, newest first."""
    project_id = required_string(call.body, "apiProjectId")
    project = find_project(call, project_id)
    core = call.core
    with core.state.lock:
        generations = sorted(
            (g for g in core.state.generations.values() if g.project_id == project.project_id),
            key=lambda item: item.created_at,
            reverse=True,
        )
    items = []
    for generation in generations:
        call.messages.extend(core.observe(generation, call.now))
        items.append(generation_item(core, generation, call.now))
    return {"apiProjectId": project.project_id, "generations": items}


def _find_generation(call: Call, generation_id: str, project_id: str | None) -> Generation:
    state = call.core.state
    with state.lock:
        generation = state.generations.get(generation_id)
        project = None if generation is None else state.projects.get(generation.project_id)
        if (
            generation is None
            or project is None
            or not state.can_access(call.key, project)
            or (project_id is not None and project_id != generation.project_id)
        ):
            raise ApiError(404, "Generation not found.")
        return generation


def _project_of(call: Call, generation: Generation) -> Project:
    with call.core.state.lock:
        return call.core.state.projects[generation.project_id]


async def get_generation_progress(call: Call) -> dict[str, Any]:
    """``POST /v1/get_generation_progress``: status and stage objects, computed from the clock."""
    generation_id = required_string(call.body, "generationId")
    project_id = optional_string(call.body, "apiProjectId")
    generation = _find_generation(call, generation_id, project_id)
    call.messages.extend(call.core.observe(generation, call.now))
    return progress_json(call.core, generation, _project_of(call, generation), call.now)


def media_file_name(project: Project, download_type: str) -> tuple[str, str, str]:
    """``(fileName, object file name, mimeType)`` for a download type."""
    original = PurePosixPath(project.file_name.replace("\\", "/"))
    stem = original.stem or "upload"
    if download_type == "transcript":
        return "word_timestamps.json", "word_timestamps.json", "application/json"
    if download_type == "video":
        suffix = original.suffix or ".mp4"
        return f"diffio_ai_{stem}{suffix}", f"restored_video{suffix}", project.content_type
    return f"diffio_ai_{stem}.mp3", "restored.mp3", "audio/mpeg"


async def get_generation_download(call: Call) -> dict[str, Any]:
    """``POST /v1/get_generation_download``: a signed, expiring media URL (no API key in it)."""
    core = call.core
    body = call.body
    generation_id = required_string(body, "generationId")
    project_id = required_string(body, "apiProjectId")
    download_type = body.get("downloadType")
    if download_type is not None and download_type not in DOWNLOAD_TYPES:
        raise ApiError(400, "downloadType must be audio, video, or transcript")
    generation = _find_generation(call, generation_id, project_id)
    project = _project_of(call, generation)
    call.messages.extend(core.observe(generation, call.now))
    if download_type is None:
        download_type = "video" if project.has_video else "audio"
    if download_type == "video" and not project.has_video:
        raise ApiError(400, "downloadType video is not available for this project.")
    elapsed = call.now - generation.created_at
    status = generation.lifecycle.status(elapsed)
    if download_type == "transcript":
        transcription = generation.lifecycle.transcription(elapsed)
        if transcription == "pending":
            raise ApiError(
                409,
                "Transcript is not ready yet.",
                "TRANSCRIPT_PENDING",
                transcription={"status": "pending"},
            )
        if transcription != "available":
            raise ApiError(
                404,
                "Transcript is unavailable.",
                "TRANSCRIPT_UNAVAILABLE",
                transcription={"status": "unavailable"},
            )
    elif status == "failed":
        raise ApiError(409, "Generation failed; there is no output to download.", status=status)
    elif status != "complete":
        raise ApiError(409, "Generation is not complete yet.", status=status)

    file_name, object_name, mime_type = media_file_name(project, download_type)
    prefix = "api/" if core.era == "b" else ""
    storage_path = (
        f"{prefix}users/{USER_ID}/projects/{project.project_id}"
        f"/generations/{generation.generation_id}/{object_name}"
    )
    expires = int(call.now + core.config.media_url_ttl)
    answer: dict[str, Any] = {
        "generationId": generation.generation_id,
        "apiProjectId": project.project_id,
        "downloadType": download_type,
    }
    if core.era == "b":
        token = core.signer.token(
            "media", {"g": generation.generation_id, "t": download_type, "e": expires}
        )
        answer["downloadUrl"] = (
            f"{call.base_url}/m/{token}/generations/{generation.generation_id}/{object_name}"
            f"?download={quote(file_name)}"
        )
        answer.update(fileName=file_name, storagePath=storage_path, mimeType=mime_type)
    else:
        signature = core.signer.sign("media", storage_path, str(expires))
        answer["downloadUrl"] = (
            f"{call.base_url}/_storage/{BUCKET}/{quote(storage_path)}"
            f"?expires={expires}&signature={signature}"
        )
        answer.update(
            fileName=file_name, storagePath=storage_path, bucket=BUCKET, mimeType=mime_type
        )
    return answer
