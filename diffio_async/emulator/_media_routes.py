"""Signed-URL routes: era A storage (``/_storage/…`` PUT upload, GET media), era B ``/m/…``."""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from ._api_generations import media_file_name
from ._api_projects import BUCKET, upload_signature
from ._errors import json_response
from ._media_store import MediaResponse, receive_to_file
from ._runtime import Runtime
from ._state import USER_ID, Generation

__all__ = ["make_edge_media_endpoint", "make_storage_endpoint", "transcript_bytes"]

_OUTPUT_PATH = re.compile(
    rf"(?:api/)?users/{USER_ID}/projects/(?P<project>[^/]+)"
    r"/generations/(?P<generation>[^/]+)/(?P<name>[^/]+)"
)

Endpoint = Callable[[Request], Awaitable[Response]]


def _gcs_error(status: int, code: str, message: str, details: str | None = None) -> Response:
    """A GCS-style XML error."""
    extra = f"<Details>{details}</Details>" if details else ""
    body = (
        "<?xml version='1.0' encoding='UTF-8'?>"
        f"<Error><Code>{code}</Code><Message>{message}</Message>{extra}</Error>"
    )
    return Response(body, status_code=status, media_type="application/xml")


_SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided."
)


def transcript_bytes(generation: Generation) -> bytes:
    """The emulated ``word_timestamps.json`` of a generation."""
    words = [
        {"word": "emulated", "start": 0.0, "end": 0.48},
        {"word": "transcript", "start": 0.48, "end": 1.1},
    ]
    payload = {"generationId": generation.generation_id, "language": "en", "words": words}
    return json.dumps(payload, separators=(",", ":")).encode()


def _download_type(name: str) -> str:
    if name == "word_timestamps.json":
        return "transcript"
    if name.startswith("restored_video"):
        return "video"
    return "audio"


def _media(
    core: Runtime,
    request: Request,
    generation: Generation,
    download_type: str,
    extra_headers: dict[str, str],
) -> Response:
    with core.state.lock:
        project = core.state.projects[generation.project_id]
    _, _, mime_type = media_file_name(project, download_type)
    head_only = request.method == "HEAD"
    range_header = request.headers.get("range")
    headers = {"etag": f'"{generation.generation_id}-{download_type}"', **extra_headers}
    if download_type == "transcript":
        return MediaResponse(
            data=transcript_bytes(generation),
            media_type=mime_type,
            range_header=range_header,
            headers=headers,
            head_only=head_only,
        )
    return MediaResponse(
        path=generation.output_path,
        media_type=mime_type,
        range_header=range_header,
        headers=headers,
        head_only=head_only,
    )


def make_storage_endpoint(core: Runtime) -> Endpoint:
    """``/_storage/{bucket}/{path}``: era A signed upload (PUT) and media download (GET)."""

    async def storage(request: Request) -> Response:
        if request.method == "OPTIONS":
            return Response(status_code=204, headers={"access-control-allow-origin": "*"})
        bucket = request.path_params["bucket"]
        object_path = request.path_params["path"]
        if bucket != BUCKET:
            return _gcs_error(404, "NoSuchBucket", "The specified bucket does not exist.")
        if request.method == core.config.upload_method:
            return await _upload(core, request, object_path)
        if request.method in ("GET", "HEAD"):
            return _download(core, request, object_path)
        return json_response({"error": "Method not allowed."}, 405)

    return storage


def _expired_or_bad(core: Runtime, request: Request, *parts: str) -> tuple[Response | None, int]:
    expires_text = request.query_params.get("expires", "")
    signature = request.query_params.get("signature", "")
    try:
        expires = int(expires_text)
    except ValueError:
        return _gcs_error(403, "SignatureDoesNotMatch", _SIGNATURE_MISMATCH), 0
    if not core.signer.verify(signature, *parts, str(expires)):
        return _gcs_error(403, "SignatureDoesNotMatch", _SIGNATURE_MISMATCH), expires
    if core.now() > expires:
        return (
            _gcs_error(
                403,
                "ExpiredToken",
                "The provided token has expired.",
                f"Request signature expired at: {core.iso(expires)}",
            ),
            expires,
        )
    return None, expires


async def _upload(core: Runtime, request: Request, object_path: str) -> Response:
    state = core.state
    with state.lock:
        project = next((p for p in state.projects.values() if p.object_path == object_path), None)
    if project is None:
        return _gcs_error(403, "SignatureDoesNotMatch", _SIGNATURE_MISMATCH)
    expires_text = request.query_params.get("expires", "")
    signature = request.query_params.get("signature", "")
    method = core.config.upload_method
    expected = upload_signature(
        core.signer, method, object_path, _int(expires_text), project.content_type
    )
    if not expires_text or signature != expected:
        return _gcs_error(403, "SignatureDoesNotMatch", _SIGNATURE_MISMATCH)
    if core.now() > _int(expires_text):
        return _gcs_error(
            403,
            "ExpiredToken",
            "The provided token has expired.",
            f"Request signature expired at: {core.iso(_int(expires_text))}",
        )
    sent_type = request.headers.get("content-type", "").strip()
    if sent_type != project.content_type:
        return _gcs_error(
            403,
            "SignatureDoesNotMatch",
            _SIGNATURE_MISMATCH,
            f"Content-Type {sent_type or '(none)'!r} does not match the signed "
            f"{project.content_type!r}.",
        )
    incoming = core.store.incoming()
    try:
        size, _ = await receive_to_file(request.stream(), incoming)
    except ClientDisconnect:
        with contextlib.suppress(FileNotFoundError):
            incoming.unlink()
        return Response(status_code=400)
    target = core.store.original(project.project_id)
    os.replace(incoming, target)
    with state.lock:
        project.media_path = target
        project.size_bytes = size
        project.status = "uploaded"
        project.updated_at = core.now()
    return Response(status_code=200)


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        return 0


def _download(core: Runtime, request: Request, storage_path: str) -> Response:
    match = _OUTPUT_PATH.fullmatch(storage_path)
    if match is None:
        return _gcs_error(404, "NoSuchKey", "The specified key does not exist.")
    error, _ = _expired_or_bad(core, request, "media", storage_path)
    if error is not None:
        return error
    with core.state.lock:
        generation = core.state.generations.get(match["generation"])
    if generation is None:
        return _gcs_error(404, "NoSuchKey", "The specified key does not exist.")
    return _media(core, request, generation, _download_type(match["name"]), {})


def make_edge_media_endpoint(core: Runtime) -> Endpoint:
    """``/m/{token}/{path}?download=<fileName>``: era B media (6 h token, no API key)."""

    async def media(request: Request) -> Response:
        if request.method == "OPTIONS":
            return Response(status_code=204, headers={"access-control-allow-origin": "*"})
        if request.method not in ("GET", "HEAD"):
            return json_response(
                {"error": {"code": "method_not_allowed", "message": "Method not allowed."}}, 405
            )
        payload = core.signer.read_token("media", request.path_params["token"])
        if payload is None:
            return json_response(
                {"error": {"code": "forbidden", "message": "Invalid media token."}}, 403
            )
        if core.now() > float(payload.get("e", 0)):
            return json_response(
                {"error": {"code": "expired", "message": "Media URL has expired."}}, 403
            )
        with core.state.lock:
            generation = core.state.generations.get(str(payload.get("g")))
        if generation is None:
            return json_response({"error": {"code": "not_found", "message": "Not found."}}, 404)
        headers: dict[str, str] = {}
        download = request.query_params.get("download")
        if download:
            headers["content-disposition"] = f"attachment; filename*=UTF-8''{quote(download)}"
        return _media(core, request, generation, str(payload.get("t", "audio")), headers)

    return media
