"""Pure pieces: clock, lifecycle maths, signatures, fault matching, Range parsing."""

from __future__ import annotations

import re
import sys
from collections.abc import Awaitable, Callable

import pytest
from starlette.requests import ClientDisconnect
from starlette.types import Message, Receive, Scope, Send

from diffio_async.emulator import EmulatorClock, Fault, GenerationScript, RequestLog
from diffio_async.emulator._faults import FaultSet
from diffio_async.emulator._lifecycle import Lifecycle
from diffio_async.emulator._media_store import parse_range
from diffio_async.emulator._middleware import EmulatorMiddleware
from diffio_async.emulator._request_log import mask_header, mask_secret
from diffio_async.emulator._signing import Signer, svix_signature

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import ExceptionGroup  # type: ignore[import-not-found, unused-ignore]

SVIX_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_manual_clock_only_moves_on_advance() -> None:
    clock = EmulatorClock(start=1_769_603_696)
    assert clock.now() == 1_769_603_696
    assert clock.isoformat() == "2026-01-28T12:34:56Z"
    assert clock.advance(300) == 1_769_603_996
    assert clock.now() == 1_769_603_996
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_clock_follows_a_time_source_plus_advances() -> None:
    reading = [100.0]
    clock = EmulatorClock(start=1_000, time_source=lambda: reading[0])
    assert clock.now() == 1_000
    reading[0] = 142.5
    assert clock.now() == 1_042.5
    clock.advance(10)
    assert clock.now() == 1_052.5
    assert not clock.manual


def test_default_clock_starts_at_a_real_whole_second() -> None:
    clock = EmulatorClock()
    assert clock.now() == int(clock.now()) > 1_700_000_000


def _lifecycle(**script: object) -> Lifecycle:
    duration = float(script.pop("duration", 300))  # type: ignore[arg-type]
    has_video = bool(script.pop("has_video", False))
    return Lifecycle(
        duration=duration,
        has_video=has_video,
        script=GenerationScript(**script),  # type: ignore[arg-type]
        transcribes=True,
    )


def test_lifecycle_statuses_and_exact_completion_time() -> None:
    life = _lifecycle()
    assert life.status(0) == "queued"
    assert life.status(29.9) == "queued"
    assert life.status(30) == "processing"
    assert life.status(299.999) == "processing"
    assert life.status(300) == "complete"
    assert [s for s, _ in life.transitions(300)] == ["queued", "processing", "complete"]
    pre = life.stage("preProcessing", 60)
    assert pre["status"] == "running" and pre["jobState"] == "RUNNING" and pre["progress"] == 50
    assert life.stage("inference", 60)["status"] == "pending"
    assert life.stage("inference", 300) == {
        "jobId": "job-cloud-run-gpu",
        "jobState": "SUCCEEDED",
        "status": "complete",
        "progress": 100,
        "statusMessage": "Done",
        "error": None,
        "errorDetails": None,
    }


def test_lifecycle_progress_grows_monotonically() -> None:
    life = _lifecycle()
    values = [life.stage("inference", t)["progress"] for t in range(90, 301, 10)]
    assert values == sorted(values)
    assert values[0] == 0 and values[-1] == 100


def test_lifecycle_failure_at_a_stage() -> None:
    life = _lifecycle(fail_at="inference", error="GPU fell over", error_details="OOM")
    assert life.status(299) == "processing"
    assert life.status(300) == "failed"
    inference = life.stage("inference", 300)
    assert inference["status"] == "failed" and inference["jobState"] == "FAILED"
    assert inference["error"] == "GPU fell over" and inference["errorDetails"] == "OOM"
    assert life.stage("preProcessing", 300)["status"] == "complete"
    assert life.transcription(300) == "unavailable"


def test_video_failure_after_inference_completed() -> None:
    life = _lifecycle(fail_at="restoredVideo", has_video=True)
    assert life.stage("inference", 300)["status"] == "complete"
    assert life.stage("restoredVideo", 300)["status"] == "failed"
    assert life.status(300) == "failed"
    audio_only = _lifecycle(fail_at="restoredVideo")
    assert audio_only.failing_stage == "inference"


def test_transcript_delay() -> None:
    life = _lifecycle(transcript_delay=60)
    assert life.transcription(100) == "pending"
    assert life.transcription(300) == "pending"
    assert life.transcription(360) == "available"
    assert _lifecycle(transcript="unavailable").transcription(300) == "unavailable"


def test_zero_duration_completes_immediately() -> None:
    life = _lifecycle(duration=0)
    assert life.status(0) == "complete"
    assert [s for s, _ in life.transitions(0)] == ["queued", "complete"]


def test_lifecycle_changes_are_whole_microseconds_and_reached_on_the_dot() -> None:
    life = _lifecycle(duration=1 + 2 * 3.0000001)  # e.g. seconds_per_mib on a ragged size
    assert life.duration == 7.0
    assert life.changes() == [("queued", 0.0), ("processing", 0.7), ("complete", 7.0)]
    assert [life.next_change(n) for n in range(4)] == [0.0, 0.7, 7.0, None]
    assert life.status(0.7) == "processing" and life.status(0.1 * 7) == "processing"
    assert [s for s, _ in life.transitions(7)] == ["queued", "processing", "complete"]
    failing = _lifecycle(duration=3, fail_at="inference")
    assert failing.changes()[-1] == ("failed", 3.0)
    assert _lifecycle(duration=0).changes() == [("queued", 0.0), ("complete", 0.0)]


def test_clock_listeners_hear_every_advance_until_removed() -> None:
    clock = EmulatorClock(start=0)
    heard: list[float] = []
    remove = clock.on_advance(lambda: heard.append(clock.now()))
    clock.advance(1)
    clock.advance(2.5)
    remove()
    remove()  # twice is harmless
    clock.advance(1)
    assert heard == [1, 3.5]


def test_script_validation() -> None:
    with pytest.raises(ValueError):
        GenerationScript(duration=-1)
    with pytest.raises(ValueError):
        GenerationScript(fail_at="upload")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("message_id", "timestamp", "body", "expected"),
    [
        (
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            b'{"test": 2432232314}',
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
        ),
        (
            "msg_2Abc123",
            1769603696,
            b'{"eventType":"generation.completed","eventId":"evt_123",'
            b'"createdAt":"2026-01-28T12:34:56Z","apiKeyId":"key_123","apiProjectId":"proj_123",'
            b'"generationId":"gen_123","status":"complete","hasVideo":false,"modelKey":"diffio-2",'
            b'"error":null,"errorDetails":null}',
            "v1,o8QjKZYLsp/GdbKFQMQFvsm7Tf10EPWnxk21cgKT4xQ=",
        ),
    ],
)
def test_svix_signature_matches_the_published_vectors(
    message_id: str, timestamp: int, body: bytes, expected: str
) -> None:
    assert svix_signature(SVIX_SECRET, message_id, timestamp, body) == expected


def test_signer_tokens_reject_tampering() -> None:
    signer = Signer()
    token = signer.token("media", {"g": "gen", "e": 5})
    assert signer.read_token("media", token) == {"e": 5, "g": "gen"}
    assert signer.read_token("upload", token) is None
    assert signer.read_token("media", token[:-1] + ("0" if token[-1] != "0" else "1")) is None
    assert signer.read_token("media", "garbage") is None
    assert Signer().read_token("media", token) is None


def test_fault_matching() -> None:
    exact = Fault(path="/v1/create_project", method="post")
    assert exact.matches("POST", "/v1/create_project")
    assert not exact.matches("GET", "/v1/create_project")
    assert not exact.matches("POST", "/v1/create_project2")
    glob = Fault(path="/v1/diffio-*-generation")
    assert glob.matches("POST", "/v1/diffio-3.5-generation")
    assert not glob.matches("POST", "/v1/list_projects")
    regex = Fault(path=re.compile(r"/v1/uploads/parts/\d+"))
    assert regex.matches("PUT", "/v1/uploads/parts/12")
    assert not regex.matches("PUT", "/v1/uploads/parts/x")
    with pytest.raises(ValueError):
        Fault(path="/x", drop=True, status=500)
    with pytest.raises(ValueError):
        Fault(path="/x", count=0)


def test_fault_from_json_round_trip() -> None:
    fault = Fault.from_json(
        {"path": "/v1/.*", "regex": True, "status": 503, "retryAfter": "2", "count": 2}
    )
    assert fault.matches("POST", "/v1/list_projects")
    described = fault.to_json()
    assert described["status"] == 503 and described["retryAfter"] == "2"
    assert described["regex"] is True and described["count"] == 2


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-9", (0, 9)),
        ("bytes=5-", (5, 99)),
        ("bytes=-10", (90, 99)),
        ("bytes=90-200", (90, 99)),
        ("bytes=100-", "unsatisfiable"),
        ("bytes=0-1,5-6", None),
        ("items=0-1", None),
        ("bytes=x-y", None),
    ],
)
def test_parse_range(header: str | None, expected: object) -> None:
    assert parse_range(header, 100) == expected


def test_mask_secret_shows_at_most_the_first_and_last_four_characters() -> None:
    assert mask_secret("diffio_live_0123456789abcdef") == "diff...cdef"
    assert mask_secret("0123456789abcdef") == "0123...cdef"
    assert mask_secret("short-key") == "***"
    assert mask_secret("") == "***"


@pytest.mark.parametrize(
    ("name", "value", "shown"),
    [
        ("authorization", "Bearer diffio_live_0123456789abcdef", "Bearer diff...cdef"),
        ("authorization", "diffio_live_0123456789abcdef", "diff...cdef"),
        ("x-api-key", "diffio_live_0123456789abcdef", "diff...cdef"),
        ("Xi-Api-Key", "diffio_live_0123456789abcdef", "diff...cdef"),
        ("authorization", "Bearer tiny", "Bearer ***"),
        ("content-type", "application/json", "application/json"),
    ],
)
def test_mask_header_masks_only_credentials(name: str, value: str, shown: str) -> None:
    assert mask_header(name, value) == shown


def _disconnecting_app(error: Exception) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise error

    return app


async def _nothing() -> Message:
    return {"type": "http.disconnect"}


async def _discard(message: Message) -> None:
    return None


@pytest.mark.anyio
@pytest.mark.parametrize("path", ["/v1/list_projects", "/_emulator/advance"])
@pytest.mark.parametrize("grouped", [False, True])
async def test_middleware_ends_a_request_quietly_when_the_client_disconnected(
    path: str, grouped: bool
) -> None:
    error: Exception = ClientDisconnect()
    if grouped:
        error = ExceptionGroup("task group", [ClientDisconnect(), ClientDisconnect()])
    log = RequestLog()
    middleware = EmulatorMiddleware(_disconnecting_app(error), log, FaultSet())
    scope: Scope = {"type": "http", "method": "POST", "path": path, "headers": []}
    await middleware(scope, _nothing, _discard)  # no exception reaches the server
    assert len(log) == (0 if path.startswith("/_emulator") else 1)


@pytest.mark.anyio
async def test_middleware_still_raises_real_errors_next_to_a_disconnect() -> None:
    error = ExceptionGroup("task group", [ClientDisconnect(), RuntimeError("bug")])
    middleware = EmulatorMiddleware(_disconnecting_app(error), RequestLog(), FaultSet())
    scope: Scope = {"type": "http", "method": "GET", "path": "/v1/x", "headers": []}
    with pytest.raises(ExceptionGroup):
        await middleware(scope, _nothing, _discard)
