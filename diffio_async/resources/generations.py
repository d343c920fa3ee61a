"""``client.generations``: queue generations, poll their progress, get their downloads."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Literal

from .._catalog import ModelKey, resolve_endpoint
from .._checks import idempotency_key as idempotency_key_check
from .._checks import json_object
from .._http.transport import RequestOptions
from ..errors import InvalidRequestError
from ..types import (
    CreatedGeneration,
    CreateGenerationRequest,
    DownloadInfo,
    DownloadType,
    DownloadTypeName,
    GenerationDownloadRequest,
    GenerationProgress,
    GenerationProgressRequest,
    ProjectRef,
)
from ._base import Resource, optional_id, require_id
from .generation_handle import Generation

__all__ = ["Generations", "new_idempotency_key", "normalize_download_type"]


def new_idempotency_key() -> str:
    """A fresh key for a generation request: ``diffio-async-<32 hex digits>``.

    The one place keys are minted when the caller (or a ledger) has none; mint it once per
    logical request and reuse it on every retry, so a retry can never create a second
    generation.
    """
    return f"diffio-async-{uuid.uuid4().hex}"


ServedDownloadType = Literal["audio", "video", "transcript"]
_DOWNLOAD_TYPES: Mapping[str, ServedDownloadType] = {
    "audio": "audio",
    "mp3": "audio",
    "video": "video",
    "transcript": "transcript",
}


def normalize_download_type(download_type: str) -> ServedDownloadType:
    """Check a download type before any request is sent (``"mp3"`` becomes ``"audio"``)."""
    value = download_type.strip().lower() if isinstance(download_type, str) else None
    checked = _DOWNLOAD_TYPES.get(value) if value is not None else None
    if checked is None:
        raise InvalidRequestError(
            f"download_type must be one of {', '.join(DownloadType.ALL)} (or mp3), "
            f"not {download_type!r}"
        )
    return checked


class Generations(Resource):
    """Generations: a model run over a project's media."""

    async def create(
        self,
        project: str | ProjectRef,
        *,
        model: ModelKey | str,
        endpoint: str | None = None,
        sampling: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        options: RequestOptions | None = None,
    ) -> Generation:
        """Queue a generation of ``project`` (an id, or anything with ``api_project_id``).

        ``model`` is a model key such as ``"diffio-3.5"``; a model the SDK does not know yet
        can be used by naming its ``endpoint`` (``"diffio-5.0-generation"``). An
        ``idempotency_key`` is always sent: the caller's, or one minted here and reused on
        every retry of this call, so a retry can never create (and bill) a second generation.
        The handle's ``created.idempotent_replay`` tells whether the server returned an
        existing generation for the key.
        """
        project_id = require_id("project", getattr(project, "api_project_id", project))
        path = resolve_endpoint(model, endpoint=endpoint)
        key = (
            idempotency_key_check(idempotency_key)
            if idempotency_key is not None
            else new_idempotency_key()
        )
        body = CreateGenerationRequest(
            api_project_id=project_id,
            sampling=json_object("sampling", sampling),
            params=json_object("params", params) or None,
            idempotency_key=key,
        )
        created = await self._post_as(
            path, body, CreatedGeneration, idempotent=True, options=options
        )
        return Generation(self, self._http, created=created, idempotency_key=key)

    def get(
        self, generation_id: str, *, project_id: str, model_key: str | None = None
    ) -> Generation:
        """Rebuild a handle for an existing generation from its ids (no request is sent)."""
        created = CreatedGeneration(
            generation_id=require_id("generation_id", generation_id),
            api_project_id=require_id("project_id", project_id),
            model_key=model_key or "",
            status="unknown",
        )
        return Generation(self, self._http, created=created, idempotency_key=None)

    async def get_progress(
        self,
        generation_id: str,
        *,
        project_id: str | None = None,
        options: RequestOptions | None = None,
    ) -> GenerationProgress:
        """One ``get_generation_progress`` call: the overall status and each stage."""
        body = GenerationProgressRequest(
            generation_id=require_id("generation_id", generation_id),
            api_project_id=optional_id("project_id", project_id),
        )
        return await self._post_as(
            "get_generation_progress", body, GenerationProgress, idempotent=True, options=options
        )

    async def get_download(
        self,
        generation_id: str,
        *,
        project_id: str,
        download_type: DownloadTypeName | None = None,
        options: RequestOptions | None = None,
    ) -> DownloadInfo:
        """One ``get_generation_download`` call: a signed URL for the result.

        ``download_type`` is ``"audio"`` (also ``"mp3"``), ``"video"`` or ``"transcript"``;
        ``None`` (the default) leaves the field out, so the server serves its default: the
        video for a project with video, otherwise the audio. The answer's ``download_type``
        says which it served.

        Raises :class:`~diffio_async.TranscriptPendingError` or
        :class:`~diffio_async.TranscriptUnavailableError` for transcripts that are not ready or
        never will be.
        """
        body = GenerationDownloadRequest(
            generation_id=require_id("generation_id", generation_id),
            api_project_id=require_id("project_id", project_id),
            download_type=None if download_type is None else normalize_download_type(download_type),
        )
        return await self._post_as(
            "get_generation_download", body, DownloadInfo, idempotent=True, options=options
        )
