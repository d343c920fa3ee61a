"""``/v1`` project endpoints: create, list, complete upload (era B)."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

from ._api_call import Call, optional_object, optional_string, required_string
from ._errors import ApiError
from ._runtime import GIB
from ._signing import Signer
from ._state import USER_ID, Project
from ._wire_json import project_json

__all__ = [
    "BUCKET",
    "complete_project_upload",
    "create_project",
    "find_project",
    "list_projects",
    "upload_signature",
]

BUCKET = "diffio_api"


def upload_signature(
    signer: Signer, method: str, object_path: str, expires: int, content_type: str
) -> str:
    """The signature of an era A upload URL (covers method, path, expiry and Content-Type)."""
    return signer.sign("upload", method, object_path, str(expires), content_type)


def find_project(call: Call, project_id: str) -> Project:
    """The caller's project, or 404 ``API project not found.``."""
    state = call.core.state
    with state.lock:
        project = state.projects.get(project_id)
        if project is None or not state.can_access(call.key, project):
            raise ApiError(404, "API project not found.")
        return project


def _limit_text(limit: int) -> str:
    if limit % GIB == 0:
        return f"{limit // GIB} GiB"
    return f"{limit} byte"


async def create_project(call: Call) -> dict[str, Any]:
    """``POST /v1/create_project``: a project plus a signed PUT URL (A) or an upload session (B)."""
    body = call.body
    core = call.core
    file_name = body.get("fileName")
    if not isinstance(file_name, str) or not file_name.strip():
        raise ApiError(400, "fileName is required.")
    content_type = optional_string(body, "contentType") or "application/octet-stream"
    content_length = body.get("contentLength")
    if content_length is not None and (
        isinstance(content_length, bool)
        or not isinstance(content_length, (int, float))
        or content_length < 0
    ):
        raise ApiError(400, "contentLength must be a non-negative number")
    file_format = optional_string(body, "fileFormat")
    params = dict(optional_object(body, "params") or {})
    if file_format and "fileFormat" not in params:
        params["fileFormat"] = file_format
    limit = core.config.max_upload_bytes
    if content_length is not None and content_length > limit:
        raise ApiError(
            413, f"contentLength exceeds the {_limit_text(limit)} upload limit.", "UPLOAD_TOO_LARGE"
        )

    project_id = str(uuid.uuid4())
    safe_name = file_name.replace("/", "_").replace("\\", "_")
    prefix = "api/" if core.era == "b" else ""
    object_path = f"{prefix}users/{USER_ID}/projects/{project_id}/original/{safe_name}"
    expires = int(call.now + core.config.upload_url_ttl)
    project = Project(
        project_id=project_id,
        owner_key_id=call.key.key_id,
        file_name=file_name,
        content_type=content_type,
        content_length=None if content_length is None else int(content_length),
        params=params,
        has_video=content_type.lower().startswith("video/"),
        created_at=call.now,
        updated_at=call.now,
        object_path=object_path,
        upload_expires_at=expires,
        upload_session_id=f"api-{project_id}" if core.era == "b" else None,
    )
    with core.state.lock:
        core.state.projects[project_id] = project
    expires_at = core.iso(expires)
    if core.era == "b":
        token = core.signer.token("upload", {"p": project_id, "e": expires})
        return {
            "apiProjectId": project_id,
            "upload": {
                "uploadSessionId": project.upload_session_id,
                "edgeBaseUrl": call.base_url,
                "uploadToken": token,
                "objectKey": object_path,
                "partSizeBytes": core.config.part_size_bytes,
                "maxBytes": limit,
                "expiresAt": expires_at,
            },
            "objectPath": object_path,
            "expiresAt": expires_at,
        }
    method = core.config.upload_method
    signature = upload_signature(core.signer, method, object_path, expires, content_type)
    upload_url = (
        f"{call.base_url}/_storage/{BUCKET}/{quote(object_path)}"
        f"?expires={expires}&signature={signature}"
    )
    return {
        "apiProjectId": project_id,
        "uploadUrl": upload_url,
        "uploadMethod": method,
        "objectPath": object_path,
        "bucket": BUCKET,
        "expiresAt": expires_at,
    }


async def list_projects(call: Call) -> dict[str, Any]:
    """``POST /v1/list_projects``: the caller's projects, newest first."""
    state = call.core.state
    with state.lock:
        counts: dict[str, int] = {}
        for generation in state.generations.values():
            counts[generation.project_id] = counts.get(generation.project_id, 0) + 1
        projects = [
            project_json(call.core, project, counts.get(project.project_id, 0))
            for project in sorted(
                state.projects.values(), key=lambda item: item.created_at, reverse=True
            )
            if state.can_access(call.key, project)
        ]
    return {"projects": projects}


async def complete_project_upload(call: Call) -> dict[str, Any]:
    """``POST /v1/complete_project_upload`` (era B): mark the edge upload as the original."""
    project_id = required_string(call.body, "apiProjectId")
    project = find_project(call, project_id)
    state = call.core.state
    with state.lock:
        if project.edge_result is None:
            raise ApiError(409, "Upload has not completed yet.", "UPLOAD_MISSING")
        if project.status != "uploaded":
            project.status = "uploaded"
            project.updated_at = call.now
        return {
            "apiProjectId": project.project_id,
            "status": "uploaded",
            "sizeBytes": project.size_bytes,
        }
