"""Generation lifecycles as a pure function of elapsed emulator time.

The state of a generation at any moment is computed from its script and the seconds elapsed
since it was created (a served emulator also announces each overall status change by webhook
when its moment comes, see ``_webhook_schedule``). A generation of duration ``T`` is
``queued`` for the first 10 % of ``T``, then ``processing`` (``preProcessing`` until 30 %, then
``inference`` until the end, or until 80 % for video projects, followed by ``restoredVideo``),
and reaches its terminal state (``complete`` or ``failed``) at exactly ``T``.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import attrs

__all__ = [
    "STAGES",
    "GenerationScript",
    "Lifecycle",
    "StageName",
]

StageName = Literal["preProcessing", "inference", "restoredVideo"]
TranscriptOutcome = Literal["available", "unavailable", "pending"]

STAGES: tuple[StageName, ...] = ("preProcessing", "inference", "restoredVideo")

_JOB_IDS = {
    "preProcessing": "job-pre",
    "inference": "job-cloud-run-gpu",
    "restoredVideo": "job-video",
}
_RUNNING_MESSAGES = {
    "preProcessing": "Preparing audio",
    "inference": "Processing audio",
    "restoredVideo": "Rendering video",
}
_DEFAULT_ERRORS = {
    "preProcessing": "Pre-processing failed.",
    "inference": "Inference failed.",
    "restoredVideo": "Video restoration failed.",
}


@attrs.frozen(kw_only=True)
class GenerationScript:
    """How one emulated generation behaves over emulator time.

    Attributes:
        duration: seconds of emulator time from creation to the terminal state; ``None`` means
            the emulator's default (``generation_seconds``).
        fail_at: the stage that fails (``"preProcessing"``, ``"inference"`` or
            ``"restoredVideo"``; the latter falls back to ``"inference"`` on audio-only
            projects). The failure happens at ``duration``. ``None`` means success.
        error: the failing stage's and the top-level ``error`` text (a default per stage).
        error_details: ``errorDetails`` for the failure.
        transcript: the final transcription outcome for models that transcribe;
            ``"pending"`` keeps it pending forever (``TRANSCRIPT_PENDING`` on download).
        transcript_delay: seconds after completion before ``transcript`` is reached (until
            then the transcription is ``pending``).
    """

    duration: float | None = None
    fail_at: StageName | None = None
    error: str | None = None
    error_details: str | None = None
    transcript: TranscriptOutcome = "available"
    transcript_delay: float = 0.0

    def __attrs_post_init__(self) -> None:
        """Validate the script."""
        if self.duration is not None and (self.duration < 0 or math.isnan(self.duration)):
            raise ValueError("duration must be >= 0")
        if self.fail_at is not None and self.fail_at not in STAGES:
            raise ValueError(f"fail_at must be one of {STAGES}")
        if self.transcript not in ("available", "unavailable", "pending"):
            raise ValueError("transcript must be available, unavailable or pending")
        if self.transcript_delay < 0:
            raise ValueError("transcript_delay must be >= 0")


@attrs.frozen
class _Window:
    start: float
    end: float


def _microseconds(seconds: float) -> float:
    """``seconds`` rounded to the microsecond, the resolution of every lifecycle moment."""
    return round(float(seconds), 6)


@attrs.frozen(kw_only=True)
class Lifecycle:
    """The resolved schedule of one generation (duration known, video flag known).

    ``duration`` is kept to the microsecond, like the elapsed times it is compared with, so
    an overall status change is reached exactly when the clock reaches its moment.
    """

    duration: float = attrs.field(converter=_microseconds)
    has_video: bool
    script: GenerationScript
    transcribes: bool

    @property
    def failing_stage(self) -> StageName | None:
        """The stage that fails, after the audio-only fallback, or ``None``."""
        fail = self.script.fail_at
        if fail == "restoredVideo" and not self.has_video:
            return "inference"
        return fail

    @property
    def queued_until(self) -> float:
        """Elapsed seconds at which the generation leaves ``queued``."""
        return _microseconds(0.1 * self.duration)

    def _windows(self) -> dict[StageName, _Window | None]:
        total = self.duration
        windows: dict[StageName, _Window | None] = {
            "preProcessing": _Window(self.queued_until, 0.3 * total),
            "inference": _Window(0.3 * total, 0.8 * total if self.has_video else total),
        }
        if self.has_video:
            windows["restoredVideo"] = _Window(0.8 * total, total)
        failing = self.failing_stage
        if failing is not None:
            seen = False
            for name in list(windows):
                window = windows[name]
                if seen:
                    windows[name] = None
                elif name == failing and window is not None:
                    windows[name] = _Window(window.start, total)
                    seen = True
        return windows

    def status(self, elapsed: float) -> str:
        """The overall status after ``elapsed`` seconds: queued, processing, complete, failed."""
        elapsed = round(elapsed, 6)
        if elapsed >= self.duration:
            return "failed" if self.failing_stage is not None else "complete"
        if elapsed >= self.queued_until:
            return "processing"
        return "queued"

    def changes(self) -> list[tuple[str, float]]:
        """Every overall status the generation takes, in order, with its elapsed seconds.

        ``queued`` at 0, ``processing`` at :attr:`queued_until` (skipped when the duration is
        0), then ``complete`` or ``failed`` at :attr:`duration`.
        """
        schedule: list[tuple[str, float]] = [("queued", 0.0)]
        if self.duration > 0:
            schedule.append(("processing", self.queued_until))
        schedule.append(("failed" if self.failing_stage is not None else "complete", self.duration))
        return schedule

    def transitions(self, elapsed: float) -> list[tuple[str, float]]:
        """Overall statuses reached by ``elapsed``, in order, with the elapsed time of each."""
        elapsed = round(elapsed, 6)
        return [(status, at) for status, at in self.changes() if elapsed >= at]

    def next_change(self, announced: int) -> float | None:
        """Elapsed seconds of the first change after the ``announced`` first ones, or ``None``."""
        schedule = self.changes()
        return schedule[announced][1] if announced < len(schedule) else None

    def last_change(self, elapsed: float) -> float:
        """Elapsed seconds of the most recent overall status change."""
        return self.transitions(elapsed)[-1][1]

    def overall_progress(self, elapsed: float) -> int:
        """A 0-100 percentage for list endpoints."""
        elapsed = round(elapsed, 6)
        status = self.status(elapsed)
        if status == "complete":
            return 100
        if self.duration <= 0:
            return 0
        percent = int(100 * min(elapsed, self.duration) / self.duration)
        return min(percent, 99)

    def stage(self, name: StageName, elapsed: float) -> dict[str, Any]:
        """The wire object of one stage (``jobId``, ``jobState``, ``status``, ``progress``...)."""
        elapsed = round(elapsed, 6)
        window = self._windows().get(name)
        failing = name == self.failing_stage
        body: dict[str, Any] = {
            "jobId": None,
            "jobState": None,
            "status": "pending",
            "progress": 0,
            "statusMessage": None,
            "error": None,
            "errorDetails": None,
        }
        if window is None or elapsed < window.start:
            return body
        body["jobId"] = _JOB_IDS[name]
        span = window.end - window.start
        scale = 50 if failing else 100
        if elapsed < window.end:
            fraction = (elapsed - window.start) / span if span > 0 else 0.0
            body.update(
                jobState="RUNNING",
                status="running",
                progress=max(0, min(99, int(scale * fraction))),
                statusMessage=_RUNNING_MESSAGES[name],
            )
        elif failing:
            body.update(
                jobState="FAILED",
                status="failed",
                progress=scale,
                statusMessage="Failed",
                error=self.error_text,
                errorDetails=self.script.error_details,
            )
        else:
            body.update(jobState="SUCCEEDED", status="complete", progress=100, statusMessage="Done")
        return body

    @property
    def error_text(self) -> str | None:
        """The failure message (``None`` for a successful script)."""
        failing = self.failing_stage
        if failing is None:
            return None
        return self.script.error or _DEFAULT_ERRORS[failing]

    def transcription(self, elapsed: float) -> str | None:
        """``pending``/``available``/``unavailable``, or ``None`` for models without one."""
        if not self.transcribes:
            return None
        elapsed = round(elapsed, 6)
        status = self.status(elapsed)
        if status == "failed":
            return "unavailable"
        if status != "complete" or self.script.transcript == "pending":
            return "pending"
        if elapsed < self.duration + self.script.transcript_delay:
            return "pending"
        return self.script.transcript

    def era_b_stage(self, elapsed: float) -> tuple[str, dict[str, Any]]:
        """Era B's ``stage`` name and ``stageProgress`` object."""
        elapsed = round(elapsed, 6)
        status = self.status(elapsed)
        overall = self.overall_progress(elapsed)
        if status in ("complete", "failed"):
            percent = 100 if status == "complete" else overall
            return status, {"overallPercent": percent, "stagePercent": 100}
        if status == "queued":
            return "queued", {"overallPercent": 0, "stagePercent": 0}
        for name in STAGES:
            stage = self.stage(name, elapsed)
            if stage["status"] == "running":
                label = {
                    "preProcessing": "preparing",
                    "inference": "restoring",
                    "restoredVideo": "finalizing",
                }[name]
                if name == "preProcessing" and self.transcribes and stage["progress"] >= 50:
                    label = "transcribing"
                return label, {"overallPercent": overall, "stagePercent": stage["progress"]}
        return "starting", {"overallPercent": overall, "stagePercent": 0}
