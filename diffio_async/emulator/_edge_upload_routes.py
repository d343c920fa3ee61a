"""Era B edge upload host: ``/v1/uploads/start|parts/{n}|complete|abort`` (upload token auth)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from ._errors import EdgeError, json_response
from ._media_store import receive_to_file
from ._runtime import Runtime
from ._state import EdgeUpload, Project

__all__ = ["MAX_PART_NUMBER", "make_edge_endpoint"]

MAX_PART_NUMBER = 10_000

Endpoint = Callable[[Request], Awaitable[Response]]


def _project_for_token(core: Runtime, request: Request) -> Project:
    """The project the ``Authorization: Bearer <uploadToken>`` belongs to (401 otherwise)."""
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    payload = (
        core.signer.read_token("upload", token.strip()) if scheme.lower() == "bearer" else None
    )
    if payload is None:
        raise EdgeError(401, "invalid_token", "Missing or invalid upload token.")
    if core.now() > float(payload.get("e", 0)):
        raise EdgeError(401, "invalid_token", "Upload token has expired.")
    with core.state.lock:
        project = core.state.projects.get(str(payload.get("p")))
    if project is None:
        raise EdgeError(401, "invalid_token", "Upload token does not match a project.")
    return project


async def _json(request: Request) -> dict[str, Any]:
    try:
        raw = await request.body()
    except ClientDisconnect:  # nobody will read the answer; do not raise into the server
        raise EdgeError(400, "bad_request", "The request body was cut short.") from None
    try:
        data = json.loads(raw)
    except ValueError:
        raise EdgeError(400, "bad_request", "Invalid JSON body.") from None
    if not isinstance(data, dict):
        raise EdgeError(400, "bad_request", "Invalid JSON body.")
    return data


def _upload(core: Runtime, project: Project, upload_id: object) -> EdgeUpload:
    if not isinstance(upload_id, str) or not upload_id:
        raise EdgeError(400, "bad_request", "uploadId is required.")
    with core.state.lock:
        upload = core.state.uploads.get(upload_id)
    if upload is None or upload.project_id != project.project_id or upload.state == "aborted":
        raise EdgeError(404, "not_found", "Upload not found.")
    return upload


def make_edge_endpoint(core: Runtime) -> Endpoint:
    """The Starlette endpoint for ``/v1/uploads/{action}`` and ``/v1/uploads/parts/{n}``."""

    async def edge(request: Request) -> Response:
        action = request.path_params["action"]
        if request.method == "OPTIONS":
            return Response(status_code=204, headers={"access-control-allow-origin": "*"})
        expected = "PUT" if action.startswith("parts/") else "POST"
        if request.method != expected:
            return json_response(
                {"error": {"code": "method_not_allowed", "message": "Method not allowed."}},
                405,
                {"allow": f"{expected}, OPTIONS"},
            )
        try:
            project = _project_for_token(core, request)
            if action == "start":
                return json_response(await _start(core, request, project))
            if action.startswith("parts/"):
                return json_response(await _part(core, request, project, action[6:]))
            if action == "complete":
                return json_response(await _complete(core, request, project))
            if action == "abort":
                return json_response(await _abort(core, request, project))
            raise EdgeError(404, "not_found", "Not found.")
        except EdgeError as error:
            return error.response()

    return edge


async def _start(core: Runtime, request: Request, project: Project) -> dict[str, Any]:
    await _json(request)
    upload_id = f"upl_{uuid.uuid4().hex}"
    upload = EdgeUpload(
        upload_id=upload_id,
        project_id=project.project_id,
        part_size=core.config.part_size_bytes,
        max_bytes=core.config.max_upload_bytes,
        path=core.store.assembly(upload_id),
    )
    with core.state.lock:
        core.state.uploads[upload.upload_id] = upload
    return {
        "uploadId": upload.upload_id,
        "partSizeBytes": upload.part_size,
        "maxBytes": upload.max_bytes,
    }


async def _part(core: Runtime, request: Request, project: Project, number: str) -> dict[str, Any]:
    try:
        part_number = int(number)
    except ValueError:
        part_number = 0
    if not 1 <= part_number <= MAX_PART_NUMBER:
        raise EdgeError(400, "bad_request", "partNumber must be between 1 and 10000.")
    upload = _upload(core, project, request.query_params.get("uploadId"))
    if upload.state != "open":
        raise EdgeError(400, "bad_request", "Upload is already complete.")
    declared_text = request.headers.get("content-length")
    if declared_text is None:
        raise EdgeError(411, "bad_request", "Content-Length header is required.")
    try:
        declared = int(declared_text)
    except ValueError:
        raise EdgeError(400, "bad_request", "Content-Length must be an integer.") from None
    if declared > upload.part_size:
        raise EdgeError(413, "payload_too_large", f"Parts are at most {upload.part_size} bytes.")
    offset = (part_number - 1) * upload.part_size
    if offset + declared > upload.max_bytes:
        raise EdgeError(413, "upload_too_large", f"Uploads are at most {upload.max_bytes} bytes.")
    with core.state.lock:
        upload.parts.pop(part_number, None)
    try:
        size, etag = await receive_to_file(
            request.stream(), upload.path, offset=offset, want_md5=True, limit=upload.part_size
        )
    except ClientDisconnect:
        raise EdgeError(400, "bad_request", "The part body was cut short.") from None
    assert etag is not None
    with core.state.lock:
        if upload.state != "open":
            raise EdgeError(404, "not_found", "Upload not found.")
        upload.parts[part_number] = (size, etag)
    return {"partNumber": part_number, "etag": etag}


def _parse_parts(raw: object) -> list[tuple[int, str]]:
    if not isinstance(raw, list) or not raw:
        raise EdgeError(400, "bad_request", "parts must be a non-empty array.")
    parts: list[tuple[int, str]] = []
    for item in raw:
        number = item.get("partNumber") if isinstance(item, dict) else None
        etag = item.get("etag") if isinstance(item, dict) else None
        if isinstance(number, bool) or not isinstance(number, int) or not isinstance(etag, str):
            raise EdgeError(
                400, "bad_request", "Each part needs an integer partNumber and an etag."
            )
        parts.append((number, etag))
    return parts


async def _complete(core: Runtime, request: Request, project: Project) -> dict[str, Any]:
    body = await _json(request)
    upload = _upload(core, project, body.get("uploadId"))
    if upload.state == "completed" and upload.result is not None:
        return upload.result
    parts = _parse_parts(body.get("parts"))
    numbers = [number for number, _ in parts]
    if numbers != list(range(1, len(parts) + 1)):
        raise EdgeError(400, "upload_failed", "Parts must be numbered 1..N in ascending order.")
    with core.state.lock:
        recorded = dict(upload.parts)
    total = 0
    for index, (number, etag) in enumerate(parts):
        stored = recorded.get(number)
        if stored is None or stored[1] != etag.strip('"'):
            raise EdgeError(400, "upload_failed", f"ETag mismatch for part {number}.")
        size = stored[0]
        last = index == len(parts) - 1
        if (not last and size != upload.part_size) or size > upload.part_size:
            raise EdgeError(
                400, "upload_failed", f"Part {number} must be exactly {upload.part_size} bytes."
            )
        total += size
    if total > upload.max_bytes:
        raise EdgeError(413, "upload_too_large", f"Uploads are at most {upload.max_bytes} bytes.")
    combined = hashlib.md5(usedforsecurity=False)
    for _, etag in parts:
        combined.update(bytes.fromhex(etag.strip('"')))
    target = core.store.original(project.project_id)
    with core.state.lock:
        if upload.state == "completed" and upload.result is not None:
            return upload.result
        os.truncate(upload.path, total)
        os.replace(upload.path, target)
        result = {
            "objectKey": project.object_path,
            "sizeBytes": total,
            "etag": f"{combined.hexdigest()}-{len(parts)}",
        }
        upload.state = "completed"
        upload.result = result
        project.edge_result = result
        project.media_path = target
        project.size_bytes = total
        project.updated_at = core.now()
    return result


async def _abort(core: Runtime, request: Request, project: Project) -> dict[str, Any]:
    body = await _json(request)
    upload_id = body.get("uploadId")
    if not isinstance(upload_id, str) or not upload_id:
        raise EdgeError(400, "bad_request", "uploadId is required.")
    with core.state.lock:
        upload = core.state.uploads.get(upload_id)
        if upload is None or upload.project_id != project.project_id:
            raise EdgeError(404, "not_found", "Upload not found.")
        if upload.state == "open":
            upload.state = "aborted"
            upload.parts.clear()
            with contextlib.suppress(FileNotFoundError):
                upload.path.unlink()
    return {}
