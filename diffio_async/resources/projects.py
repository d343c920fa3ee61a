"""``client.projects``: create projects, upload their media, list them and their generations."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import nullcontext
from typing import Any

import anyio

from .._checks import callback, json_object, positive_int
from .._http.transport import RequestOptions
from .._media.upload import ProgressCallback, UploadSource, as_media_source, upload_media
from ..errors import InvalidRequestError
from ..types import (
    CompleteProjectUploadRequest,
    CompleteProjectUploadResponse,
    CreateProjectRequest,
    CreateProjectResponse,
    GenerationSummary,
    ListProjectGenerationsRequest,
    Project,
    ProjectGenerations,
    ProjectList,
)
from ._base import Resource, require_id

__all__ = ["Projects"]


class Projects(Resource):
    """Projects: one uploaded recording each, with any number of generations."""

    async def create(
        self,
        source: UploadSource,
        *,
        file_name: str | None = None,
        content_type: str | None = None,
        file_format: str | None = None,
        params: Mapping[str, Any] | None = None,
        on_progress: ProgressCallback | None = None,
        part_concurrency: int = 4,
        transfer_limiter: anyio.CapacityLimiter | None = None,
        options: RequestOptions | None = None,
    ) -> CreateProjectResponse:
        """Create a project and upload ``source``: a path, bytes, a :class:`MediaSource` or a
        readable binary file object, sync or async (see ``MediaSource.from_file``; one that
        can be read only once is streamed in order, never held whole in memory).

        The source's size, name and content type are checked before ``create_project`` is
        called: a missing, unreadable or too large (> 2 GiB) file raises
        :class:`~diffio_async.InvalidRequestError` and no project is created. The upload
        streams in 1 MiB chunks by whichever protocol the server answers with (one signed PUT,
        or edge multipart with ``part_concurrency`` parts in flight, then
        ``complete_project_upload``). ``on_progress(sent, total)`` may be sync or async. A
        failed upload raises :class:`~diffio_async.UploadError` carrying ``project_id``.
        ``transfer_limiter``, when given, is held only while media bytes move (not during the
        API calls), to bound bandwidth use across many concurrent uploads.
        """
        positive_int("part_concurrency", part_concurrency, maximum=64)
        if transfer_limiter is not None and not isinstance(transfer_limiter, anyio.CapacityLimiter):
            raise InvalidRequestError(
                "transfer_limiter must be an anyio.CapacityLimiter or None, "
                f"not {type(transfer_limiter).__name__}"
            )
        callback("on_progress", on_progress)
        media = await anyio.to_thread.run_sync(
            lambda: as_media_source(source, file_name=file_name, content_type=content_type)
        )
        project = await self.register(
            file_name=media.file_name,
            content_type=media.content_type,
            content_length=media.size,
            file_format=file_format,
            params=params,
            options=options,
        )
        async with transfer_limiter or nullcontext():
            await upload_media(
                self._http,
                project,
                media,
                on_progress=on_progress,
                part_concurrency=part_concurrency,
                complete_upload=lambda project_id: self.complete_upload(
                    project_id, options=options
                ),
            )
        return project

    async def register(
        self,
        *,
        file_name: str,
        content_type: str = "application/octet-stream",
        content_length: int | None = None,
        file_format: str | None = None,
        params: Mapping[str, Any] | None = None,
        options: RequestOptions | None = None,
    ) -> CreateProjectResponse:
        """Call ``create_project`` only: create the project and get where to upload its media.

        Most callers want :meth:`create`, which also uploads. The answer carries either a
        signed ``upload_url`` (era A) or an edge ``upload`` session (era B). Not retried on
        ambiguous failures (the API has no idempotency for projects), only when the request
        was never sent or the server refused it with 429/503.
        """
        if not isinstance(file_name, str) or not file_name.strip():
            raise InvalidRequestError(f"file_name must be a non-empty string, not {file_name!r}")
        if (
            not isinstance(content_type, str)
            or not content_type.strip()
            or not all(" " <= char <= "~" for char in content_type)
        ):
            raise InvalidRequestError(
                "content_type must be a non-empty string of printable ASCII (a media type)"
            )
        if file_format is not None and not isinstance(file_format, str):
            raise InvalidRequestError(
                f"file_format must be a string, not {type(file_format).__name__}"
            )
        if content_length is not None and (
            isinstance(content_length, bool)
            or not isinstance(content_length, int)
            or content_length < 0
        ):
            raise InvalidRequestError(f"content_length must be an int >= 0, not {content_length!r}")
        body = CreateProjectRequest(
            file_name=file_name,
            content_type=content_type,
            content_length=content_length,
            file_format=file_format,
            params=json_object("params", params) or None,
        )
        return await self._post_as(
            "create_project", body, CreateProjectResponse, idempotent=False, options=options
        )

    async def complete_upload(
        self, project_id: str, *, options: RequestOptions | None = None
    ) -> CompleteProjectUploadResponse:
        """Call ``complete_project_upload`` (era B): tell the API the edge upload finished.

        Idempotent, so it is retried on any transient failure.
        """
        body = CompleteProjectUploadRequest(api_project_id=require_id("project_id", project_id))
        return await self._post_as(
            "complete_project_upload",
            body,
            CompleteProjectUploadResponse,
            idempotent=True,
            options=options,
        )

    async def list(self, *, options: RequestOptions | None = None) -> tuple[Project, ...]:
        """All projects of the calling key, as the API orders them (``list_projects``)."""
        result = await self._post_as(
            "list_projects", {}, ProjectList, idempotent=True, options=options
        )
        return result.projects

    async def list_generations(
        self, project_id: str, *, options: RequestOptions | None = None
    ) -> tuple[GenerationSummary, ...]:
        """All generations of one project (``list_project_generations``)."""
        body = ListProjectGenerationsRequest(api_project_id=require_id("project_id", project_id))
        result = await self._post_as(
            "list_project_generations", body, ProjectGenerations, idempotent=True, options=options
        )
        return result.generations
