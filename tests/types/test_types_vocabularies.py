"""The known values of the status and type fields."""

from __future__ import annotations

from diffio_async import types as m


def test_status_constants() -> None:
    assert m.GenerationStatus.COMPLETE == "complete"
    assert {"complete", "failed", "error"} == m.GenerationStatus.TERMINAL
    assert m.WebhookEventType.ALL == (
        "generation.queued",
        "generation.processing",
        "generation.failed",
        "generation.completed",
    )
    assert m.DownloadType.TRANSCRIPT == "transcript"
    assert m.DownloadType.ALL == ("audio", "video", "transcript")
    assert m.WebhookMode.ALL == ("test", "live")
    assert m.BillingPolicyType.ALL == ("customerStripe", "internalDiffio")
    assert m.TranscriptionStatus.UNAVAILABLE == "unavailable"
