"""Models of the generations group: create a generation, its progress (stages, era-B progress
and queue, transcription) and its download."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from ._model import _Model
from ._parsing import _STATUS, _TEXT, _extra_field
from ._reprs import _url_repr
from ._vocabularies import GenerationStatus, StageStatus, TranscriptionStatus

__all__ = [
    "CreateGenerationRequest",
    "CreatedGeneration",
    "DownloadInfo",
    "GenerationDownloadRequest",
    "GenerationProgress",
    "GenerationProgressRequest",
    "QueueInfo",
    "Stage",
    "StageProgress",
    "Transcription",
]


@attrs.frozen(kw_only=True)
class CreateGenerationRequest(_Model):
    """Body of ``POST /v1/<model-endpoint>`` (the idempotency key is sent untrimmed)."""

    api_project_id: str
    sampling: Mapping[str, Any] | None = None
    params: Mapping[str, Any] | None = None
    idempotency_key: str | None = None


@attrs.frozen(kw_only=True)
class CreatedGeneration(_Model):
    """Answer of a generation create call."""

    generation_id: str
    api_project_id: str
    model_key: str
    status: str = attrs.field(metadata=_STATUS)
    idempotent_replay: bool = False
    extra: Mapping[str, Any] = _extra_field()


@attrs.frozen(kw_only=True)
class GenerationProgressRequest(_Model):
    """Body of ``POST /v1/get_generation_progress``."""

    generation_id: str
    api_project_id: str | None = None


@attrs.frozen(kw_only=True)
class Stage(_Model):
    """One processing stage of a progress answer (``preProcessing``, ``inference``, ...)."""

    job_id: str | None = None
    job_state: str | None = None
    status: str = attrs.field(default=StageStatus.PENDING, metadata=_STATUS)
    progress: int = 0
    status_message: str | None = None
    error: str | None = attrs.field(default=None, metadata=_TEXT)
    error_details: str | None = attrs.field(default=None, metadata=_TEXT)
    extra: Mapping[str, Any] = _extra_field()


@attrs.frozen(kw_only=True)
class Transcription(_Model):
    """Transcript state of a generation (``pending``, ``available``, ``unavailable``)."""

    status: str = attrs.field(default=TranscriptionStatus.PENDING, metadata=_STATUS)
    extra: Mapping[str, Any] = _extra_field()


@attrs.frozen(kw_only=True)
class StageProgress(_Model):
    """Era-B fine-grained progress (``stageProgress``); every field is optional."""

    overall_percent: float | None = None
    stage_percent: float | None = None
    bytes_done: int | None = None
    bytes_total: int | None = None
    available_through_seconds: float | None = None
    duration_seconds: float | None = None
    extra: Mapping[str, Any] = _extra_field()


@attrs.frozen(kw_only=True)
class QueueInfo(_Model):
    """Era-B worker queue information (``queue``) while a generation waits for a worker."""

    position: int | None = None
    connected_workers: int | None = None
    idle_workers: int | None = None
    busy_workers: int | None = None
    wait_reason: str | None = None
    message: str | None = None
    extra: Mapping[str, Any] = _extra_field()


@attrs.frozen(kw_only=True)
class GenerationProgress(_Model):
    """Answer of ``get_generation_progress``."""

    generation_id: str
    api_project_id: str
    status: str = attrs.field(metadata=_STATUS)
    pre_processing: Stage
    inference: Stage
    has_video: bool = False
    restored_video: Stage | None = None
    error: str | None = attrs.field(default=None, metadata=_TEXT)
    error_details: str | None = attrs.field(default=None, metadata=_TEXT)
    transcription: Transcription | None = None
    # era B
    stage: str | None = attrs.field(default=None, metadata=_STATUS)
    stage_progress: StageProgress | None = None
    queue: QueueInfo | None = None
    extra: Mapping[str, Any] = _extra_field()

    @property
    def is_terminal(self) -> bool:
        """True once the overall status is ``complete``, ``failed`` or ``error``.

        Unknown statuses are not terminal; stages at 100 % do not make a generation terminal.
        """
        return self.status in GenerationStatus.TERMINAL

    @property
    def is_complete(self) -> bool:
        """True when the generation finished successfully."""
        return self.status == GenerationStatus.COMPLETE

    @property
    def is_failed(self) -> bool:
        """True when the generation ended in ``failed`` (or ``error``)."""
        return self.status in GenerationStatus.FAILURES

    @property
    def stages(self) -> tuple[tuple[str, Stage], ...]:
        """The stages present, as ``(wire name, stage)`` pairs in processing order."""
        found = [("preProcessing", self.pre_processing), ("inference", self.inference)]
        if self.restored_video is not None:
            found.append(("restoredVideo", self.restored_video))
        return tuple(found)

    @property
    def percent(self) -> float:
        """Best estimate of overall progress, 0-100.

        The era-B ``stageProgress.overallPercent`` when present, 100 when complete, otherwise
        the mean of the stages' progress.
        """
        if self.stage_progress is not None and self.stage_progress.overall_percent is not None:
            return max(0.0, min(100.0, self.stage_progress.overall_percent))
        if self.is_complete:
            return 100.0
        values = [max(0, min(100, stage.progress)) for _, stage in self.stages]
        return sum(values) / len(values)

    @property
    def transcription_status(self) -> str | None:
        """``transcription.status``, or ``None`` when the server sent no transcription."""
        return None if self.transcription is None else self.transcription.status


@attrs.frozen(kw_only=True)
class GenerationDownloadRequest(_Model):
    """Body of ``POST /v1/get_generation_download``."""

    generation_id: str
    api_project_id: str
    download_type: str | None = None


@attrs.frozen(kw_only=True)
class DownloadInfo(_Model):
    """Answer of ``get_generation_download``: a signed (era A) or edge (era B) media URL."""

    generation_id: str
    api_project_id: str
    download_type: str
    download_url: str = attrs.field(repr=_url_repr)
    file_name: str | None = None
    storage_path: str | None = None
    bucket: str | None = None  # era A only
    mime_type: str | None = None
    extra: Mapping[str, Any] = _extra_field()
