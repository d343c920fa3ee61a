"""Models of the projects group: create a project, upload its media (one signed URL in era A,
an edge multipart session in era B), complete the upload, list projects and their generations.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal, Protocol

import attrs

from ._model import _Model
from ._parsing import _STATUS, _extra_field, _ShapeError
from ._reprs import _mask, _url_repr
from ._vocabularies import GenerationStatus, ProjectStatus

__all__ = [
    "CompleteProjectUploadRequest",
    "CompleteProjectUploadResponse",
    "CreateProjectRequest",
    "CreateProjectResponse",
    "EdgeAbortRequest",
    "EdgeCompleteRequest",
    "EdgePartReceipt",
    "EdgeUploadComplete",
    "EdgeUploadStart",
    "GenerationSummary",
    "ListProjectGenerationsRequest",
    "Project",
    "ProjectGenerations",
    "ProjectList",
    "ProjectRef",
    "UploadSession",
]


class ProjectRef(Protocol):
    """Anything that names a project by its ``api_project_id``: a ``CreateProjectResponse``,
    a ``Project``, a ``GenerationProgress``... Methods that take a project take this or the id.
    """

    @property
    def api_project_id(self) -> str:
        """The project's id."""
        ...


@attrs.frozen(kw_only=True)
class CreateProjectRequest(_Model):
    """Body of ``POST /v1/create_project``."""

    file_name: str
    content_type: str | None = None
    content_length: int | None = None
    file_format: str | None = None
    params: Mapping[str, Any] | None = None


@attrs.frozen(kw_only=True)
class UploadSession(_Model):
    """Era-B edge upload session returned by ``create_project`` (``upload``)."""

    edge_base_url: str = attrs.field(repr=_url_repr)
    upload_token: str = attrs.field(repr=_mask)
    upload_session_id: str | None = None
    object_key: str | None = None
    part_size_bytes: int | None = None
    max_bytes: int | None = None
    expires_at: datetime | None = None
    extra: Mapping[str, Any] = _extra_field()


@attrs.frozen(kw_only=True)
class CreateProjectResponse(_Model):
    """Answer of ``create_project``: a signed ``upload_url`` (era A) or an ``upload`` (era B)."""

    api_project_id: str
    # era A
    upload_url: str | None = attrs.field(default=None, repr=_url_repr)
    upload_method: str = "PUT"
    bucket: str | None = None
    # era B
    upload: UploadSession | None = None
    # both
    object_path: str | None = None
    expires_at: datetime | None = None
    extra: Mapping[str, Any] = _extra_field()

    def __attrs_post_init__(self) -> None:
        if self.upload_url is None and self.upload is None:
            raise _ShapeError(
                "create_project answer has neither uploadUrl (era A) nor upload (era B)"
            )

    @property
    def era(self) -> Literal["a", "b"]:
        """``"b"`` when the server answered an edge ``upload`` session, else ``"a"``."""
        return "b" if self.upload is not None else "a"

    @property
    def upload_mode(self) -> Literal["signed_url", "edge"]:
        """How to upload the media: one signed request (era A) or edge multipart (era B)."""
        return "edge" if self.upload is not None else "signed_url"


@attrs.frozen(kw_only=True)
class EdgeUploadStart(_Model):
    """Answer of the edge ``POST /v1/uploads/start`` (sizes fall back to the session's)."""

    upload_id: str
    part_size_bytes: int | None = None
    max_bytes: int | None = None
    extra: Mapping[str, Any] = _extra_field()


@attrs.frozen(kw_only=True)
class EdgePartReceipt(_Model):
    """Answer of the edge ``PUT /v1/uploads/parts/{n}``; also an item of the complete request."""

    part_number: int
    etag: str
    extra: Mapping[str, Any] = _extra_field()


@attrs.frozen(kw_only=True)
class EdgeCompleteRequest(_Model):
    """Body of the edge ``POST /v1/uploads/complete`` (parts sorted by number)."""

    upload_id: str
    parts: tuple[EdgePartReceipt, ...]


@attrs.frozen(kw_only=True)
class EdgeAbortRequest(_Model):
    """Body of the edge ``POST /v1/uploads/abort``."""

    upload_id: str


@attrs.frozen(kw_only=True)
class EdgeUploadComplete(_Model):
    """Answer of the edge ``POST /v1/uploads/complete``."""

    object_key: str
    size_bytes: int | None = None
    etag: str | None = None
    extra: Mapping[str, Any] = _extra_field()


@attrs.frozen(kw_only=True)
class CompleteProjectUploadRequest(_Model):
    """Body of ``POST /v1/complete_project_upload`` (era B)."""

    api_project_id: str


@attrs.frozen(kw_only=True)
class CompleteProjectUploadResponse(_Model):
    """Answer of ``complete_project_upload`` (era B)."""

    api_project_id: str
    status: str = attrs.field(default=ProjectStatus.UPLOADED, metadata=_STATUS)
    size_bytes: int | None = None
    extra: Mapping[str, Any] = _extra_field()


@attrs.frozen(kw_only=True)
class Project(_Model):
    """One project of ``list_projects``."""

    api_project_id: str
    status: str = attrs.field(default=ProjectStatus.UPLOADING, metadata=_STATUS)
    original_file_name: str | None = None
    content_type: str | None = None
    has_video: bool = False
    generation_count: int = 0
    created_at: datetime | None = None
    updated_at: datetime | None = None
    extra: Mapping[str, Any] = _extra_field()


@attrs.frozen(kw_only=True)
class ProjectList(_Model):
    """Answer of ``list_projects``."""

    projects: tuple[Project, ...] = ()
    extra: Mapping[str, Any] = _extra_field()


@attrs.frozen(kw_only=True)
class ListProjectGenerationsRequest(_Model):
    """Body of ``POST /v1/list_project_generations``."""

    api_project_id: str


@attrs.frozen(kw_only=True)
class GenerationSummary(_Model):
    """One generation of ``list_project_generations``."""

    generation_id: str
    status: str = attrs.field(default=GenerationStatus.QUEUED, metadata=_STATUS)
    model_key: str | None = None
    progress: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    extra: Mapping[str, Any] = _extra_field()

    @property
    def is_terminal(self) -> bool:
        """True once the status is ``complete``, ``failed`` or ``error``."""
        return self.status in GenerationStatus.TERMINAL


@attrs.frozen(kw_only=True)
class ProjectGenerations(_Model):
    """Answer of ``list_project_generations``."""

    api_project_id: str
    generations: tuple[GenerationSummary, ...] = ()
    extra: Mapping[str, Any] = _extra_field()
