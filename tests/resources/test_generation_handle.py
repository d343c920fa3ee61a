"""The Generation handle: progress, iter_progress, wait (adaptive polling, deadline, failures).

Long waits run on virtual time (``VIRTUAL``: trio's MockClock, or ``virtual_clock.VirtualTimeLoop``
on asyncio) against the in-process emulator, whose clock follows ``anyio.current_time()``: a
300 s job takes milliseconds. Faults that need real sockets (dropped connections) and
cancellation run over loopback in real time with fast polling.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from shared import ERAS, FAST, QUICK_POLL
from virtual_clock import VIRTUAL_BACKENDS, virtual_backend

from diffio_async import (
    AsyncDiffio,
    AuthenticationError,
    ConfigurationError,
    DownloadError,
    Generation,
    GenerationFailedError,
    GenerationProgress,
    InvalidRequestError,
    PollBudget,
    PollPolicy,
    Stage,
    WaitTimeoutError,
)
from diffio_async.resources._polling import PollPlanner
from diffio_async.testing import EmulatedDiffio, emulated_diffio

pytestmark = pytest.mark.anyio
VIRTUAL = pytest.mark.parametrize("anyio_backend", VIRTUAL_BACKENDS, indirect=True)

PROGRESS = "/v1/get_generation_progress"
MODELS = {"a": "diffio-3.5", "b": "diffio-4.6-flash"}  # both report a transcription


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    """Both backends; tests marked ``VIRTUAL`` get them on virtual time (see virtual_clock)."""
    return virtual_backend(request.param)


def busy_connections(client: AsyncDiffio) -> list[Any]:
    """Connections of the client's pool that are not idle, plus queued requests (httpcore2)."""
    pool = client._transport.http._transport._pool  # type: ignore[attr-defined]
    return [c for c in pool.connections if not c.is_idle()] + list(pool._requests)


async def _generation(env: EmulatedDiffio, **script: Any) -> Generation:
    project = await env.client.projects.create(b"RIFF" + bytes(2000), file_name="talk.wav")
    if script:
        env.emulator.script_next_generation(**script)
    return await env.client.generations.create(project, model=MODELS[env.emulator.era])


def _polls(env: EmulatedDiffio, generation_id: str) -> int:
    return sum(
        1
        for e in env.emulator.requests.find(path=PROGRESS)
        if e.json and e.json.get("generationId") == generation_id
    )


def _timed(generation: Generation) -> list[float]:
    """Record the (virtual) time of each poll the handle makes."""
    times: list[float] = []
    poll = generation.progress

    async def timed_progress(**kwargs: Any) -> GenerationProgress:
        times.append(anyio.current_time())
        return await poll(**kwargs)

    generation.progress = timed_progress  # type: ignore[method-assign]
    return times


# --- acceptance: a 300 s job ------------------------------------------------------------


@VIRTUAL
@pytest.mark.parametrize("era", ERAS)
async def test_a_300_s_job_costs_at_most_20_polls_and_is_noticed_within_3_percent(
    era: str,
) -> None:
    """Acceptance (issue 7): a job completing at 300 s of emulator time is observed with <= 20
    progress requests and noticed at most 3 % (9 s) late, on virtual time (several jobs, so
    several jitters)."""
    async with emulated_diffio(era=era, loopback=False) as env:
        project = await env.client.projects.create(b"RIFF" + bytes(2000), file_name="talk.wav")
        env.emulator.script_next_generation(duration=300, count=8)
        outcomes: list[tuple[str, float, float, GenerationProgress]] = []

        async def follow() -> None:
            created = anyio.current_time()
            generation = await env.client.generations.create(project, model=MODELS[era])
            final = await generation.wait(timeout=1800)
            outcomes.append((generation.id, created, anyio.current_time(), final))

        real_start = anyio.current_time()
        async with anyio.create_task_group() as group:
            for _ in range(8):
                group.start_soon(follow)
        assert anyio.current_time() - real_start >= 300  # virtual time went by

        for generation_id, created, noticed, final in outcomes:
            assert final.is_complete
            polls = _polls(env, generation_id)
            assert polls <= 20, polls
            assert 0 <= noticed - (created + 300) <= 9, noticed - created


# --- wait: deadline, unknown and failed statuses -------------------------------------------


@VIRTUAL
@pytest.mark.parametrize("era", ERAS)
async def test_wait_timeout_carries_the_generation_id_and_last_progress(era: str) -> None:
    async with emulated_diffio(era=era, loopback=False) as env:
        generation = await _generation(env, duration=300)
        started = anyio.current_time()
        with pytest.raises(WaitTimeoutError) as info:
            await generation.wait(timeout=100)
        assert anyio.current_time() - started == pytest.approx(100, abs=0.01)
        error = info.value
        assert error.generation_id == generation.id
        assert error.project_id == generation.project_id
        assert isinstance(error.last_progress, GenerationProgress)
        assert error.last_progress.status == "processing"
        assert generation.id in str(error)
        # The handle is not lost: waiting again picks the job up.
        final = await generation.wait(timeout=300)
        assert final.is_complete


@VIRTUAL
async def test_unknown_statuses_are_not_terminal_but_the_deadline_bounds_them() -> None:
    async with emulated_diffio(loopback=False) as env:
        generation = await _generation(env, duration=10)
        paused = env.emulator.generation_progress(generation.id)
        paused["status"] = "paused"
        fault = env.emulator.add_fault(path=PROGRESS, status=200, body=paused, count=None)
        seen: list[str] = []
        with pytest.raises(WaitTimeoutError) as info:
            await generation.wait(timeout=120, on_progress=lambda p: seen.append(p.status))
        assert seen == ["paused"]  # reported once (nothing changed afterwards)
        assert info.value.last_progress.status == "paused"
        assert fault.hits > 10  # it kept polling until the deadline
        # An unknown status in the middle of a job does not end the wait either.
        env.emulator.clear_faults()
        other = await _generation(env, duration=30)
        weird = env.emulator.generation_progress(other.id)
        weird["status"] = "rendering"
        env.emulator.add_fault(path=PROGRESS, status=200, body=weird, count=3)
        statuses: list[str] = []
        final = await other.wait(timeout=600, on_progress=lambda p: statuses.append(p.status))
        assert final.is_complete
        assert statuses[0] == "rendering" and statuses[-1] == "complete"


@VIRTUAL
@pytest.mark.parametrize("era", ERAS)
async def test_a_failed_generation_raises_with_its_stages(era: str) -> None:
    async with emulated_diffio(era=era, loopback=False) as env:
        generation = await _generation(
            env, duration=60, fail_at="inference", error="GPU fell over", error_details="OOM"
        )
        with pytest.raises(GenerationFailedError) as info:
            await generation.wait()
        error = info.value
        assert error.generation_id == generation.id
        assert error.project_id == generation.project_id
        progress = error.last_progress
        assert isinstance(progress, GenerationProgress)
        assert progress.status == "failed"
        assert progress.error == "GPU fell over" and progress.error_details == "OOM"
        stages = dict(progress.stages)
        assert stages["preProcessing"].status == "complete"
        assert stages["inference"].status == "failed"
        assert "inference" in str(error) and "GPU fell over" in str(error)


@VIRTUAL
@pytest.mark.parametrize("era", ERAS)
async def test_a_failure_whose_error_is_an_object_raises_generation_failed(era: str) -> None:
    """``error``/``errorDetails`` may be any JSON value: an object is kept as its JSON text and
    the failure is a GenerationFailedError, not a response validation error."""
    async with emulated_diffio(era=era, loopback=False) as env:
        generation = await _generation(env, duration=300)
        body = env.emulator.generation_progress(generation.id)
        body.update(
            status="failed",
            error={"code": "GPU_OOM", "message": "GPU fell over"},
            errorDetails=["inference", 3],
        )
        body["inference"] = {**body["inference"], "status": "failed", "error": {"at": 0.5}}
        env.emulator.add_fault(path=PROGRESS, status=200, body=body)
        with pytest.raises(GenerationFailedError) as info:
            await generation.wait()
        assert _polls(env, generation.id) == 1
        progress = info.value.last_progress
        assert progress.error == '{"code":"GPU_OOM","message":"GPU fell over"}'
        assert progress.error_details == '["inference",3]'
        assert dict(progress.stages)["inference"].error == '{"at":0.5}'
        assert '"message":"GPU fell over"' in str(info.value)
        assert "inference" in str(info.value)


@VIRTUAL
@pytest.mark.parametrize("status", ["FAILED", " Error ", "COMPLETE"])
async def test_an_upper_case_terminal_status_ends_the_wait_at_once(status: str) -> None:
    """Statuses are normalised: ``FAILED`` is terminal (it used to be polled to the deadline)."""
    async with emulated_diffio(loopback=False) as env:
        generation = await _generation(env, duration=300)
        body = env.emulator.generation_progress(generation.id)
        body.update(status=status, error="Internal failure.")
        env.emulator.add_fault(path=PROGRESS, status=200, body=body)
        started = anyio.current_time()
        if status == "COMPLETE":
            assert (await generation.wait(timeout=600)).is_complete
        else:
            with pytest.raises(GenerationFailedError, match="Internal failure"):
                await generation.wait(timeout=600)
        # At its first poll, which for a generation just created (queued) is the policy's
        # first wait (1 s, jittered), not at once.
        assert anyio.current_time() - started <= 1.1 + 0.01
        assert _polls(env, generation.id) == 1
        assert generation.last_progress is not None
        assert generation.last_progress.status == status.strip().lower()


@VIRTUAL
async def test_a_huge_error_is_capped_in_the_failure_message() -> None:
    async with emulated_diffio(loopback=False) as env:
        generation = await _generation(env, duration=300)
        body = env.emulator.generation_progress(generation.id)
        huge = {"message": "x" * 200_000}
        body.update(status="failed", error=huge, errorDetails="y" * 200_000)
        env.emulator.add_fault(path=PROGRESS, status=200, body=body)
        with pytest.raises(GenerationFailedError) as info:
            await generation.wait()
        assert len(str(info.value)) < 4 * 1024
        assert "more characters" in str(info.value)
        assert info.value.last_progress.error is not None
        assert len(info.value.last_progress.error) > 200_000  # the progress keeps it all


@VIRTUAL
async def test_bad_wait_arguments_are_refused_before_the_first_poll() -> None:
    async with emulated_diffio(loopback=False) as env:
        generation = await _generation(env, duration=30)
        cases: list[tuple[dict[str, Any], str]] = [
            ({"timeout": -1}, "timeout"),
            ({"timeout": "60"}, "timeout"),
            ({"timeout": True}, "timeout"),
            ({"timeout": float("nan")}, "timeout"),  # a NaN deadline used to spin the loop
            ({"on_progress": "print"}, "on_progress"),
            ({"poll": 5}, "poll"),
            ({"router": object()}, "router"),
        ]
        for arguments, name in cases:
            with pytest.raises(InvalidRequestError, match=name):
                await generation.wait(**arguments)
        assert _polls(env, generation.id) == 0
        # None means no deadline; 0 is a deadline already reached.
        with pytest.raises(WaitTimeoutError):
            await generation.wait(timeout=0)
        assert (await generation.wait(timeout=None)).is_complete


@VIRTUAL
async def test_an_error_status_is_terminal_and_failed() -> None:
    async with emulated_diffio(loopback=False) as env:
        generation = await _generation(env, duration=300)
        body = env.emulator.generation_progress(generation.id)
        body.update(status="error", error="Internal failure.")
        env.emulator.add_fault(path=PROGRESS, status=200, body=body)
        with pytest.raises(GenerationFailedError, match="Internal failure"):
            await generation.wait()
        assert _polls(env, generation.id) == 1


# --- polling --------------------------------------------------------------------------------


@VIRTUAL
@pytest.mark.parametrize("era", ERAS)
async def test_iter_progress_yields_only_changes_and_ends_terminal(era: str) -> None:
    async with emulated_diffio(era=era, loopback=False) as env:
        generation = await _generation(env, duration=120)
        snapshots = [p async for p in generation.iter_progress()]
        assert snapshots[-1].is_complete
        assert all(not p.is_terminal for p in snapshots[:-1])
        assert [p.status for p in snapshots][:1] == ["queued"]
        assert len(snapshots) <= _polls(env, generation.id)
        assert all(a != b for a, b in itertools.pairwise(snapshots))
        assert generation.last_progress == snapshots[-1]


@VIRTUAL
@pytest.mark.parametrize("style", ["sync", "async"])
async def test_wait_calls_on_progress_sync_or_async(style: str) -> None:
    async with emulated_diffio(loopback=False) as env:
        generation = await _generation(env, duration=60)
        seen: list[str] = []

        def sync_cb(progress: GenerationProgress) -> None:
            seen.append(progress.status)

        async def async_cb(progress: GenerationProgress) -> None:
            await anyio.lowlevel.checkpoint()
            seen.append(progress.status)

        final = await generation.wait(on_progress=sync_cb if style == "sync" else async_cb)
        assert final.is_complete
        assert seen[0] == "queued" and "processing" in seen and seen[-1] == "complete"


@VIRTUAL
async def test_polling_follows_the_policy() -> None:
    async with emulated_diffio(loopback=False) as env:
        generation = await _generation(env, duration=200)
        times = _timed(generation)
        ramp = PollPolicy(initial=2, factor=2, maximum=10, jitter=0, follow_progress=False)
        started = anyio.current_time()
        await generation.wait(poll=ramp)
        gaps = [round(b - a, 6) for a, b in itertools.pairwise([started, *times])]
        # Just created (queued), so no poll at once: 2, 4, 8, then the cap; queued ->
        # processing at 20 s halves the interval once.
        assert gaps[:3] == [2, 4, 8]
        assert max(gaps) == 10
        assert 5 in gaps  # the halving after the status change
        assert times[-1] - times[0] >= 200


@VIRTUAL
async def test_a_server_hint_sets_the_next_poll() -> None:
    async with emulated_diffio(loopback=False, client_options={"max_retries": 0}) as env:
        generation = await _generation(env, duration=100)
        times = _timed(generation)
        await generation.progress()
        env.emulator.add_fault(path=PROGRESS, status=429, retry_after="40")
        await generation.wait(poll=PollPolicy(initial=1, maximum=5, jitter=0))
        statuses = [e.status for e in env.emulator.requests.find(path=PROGRESS)]
        assert statuses[:3] == [200, 429, 200]
        # The 429's Retry-After beat the 1 s schedule (to float rounding of the virtual clock:
        # 278.303071694 - 238.303071694 is a hair under 40).
        assert times[2] - times[1] >= 40 - 1e-6


@VIRTUAL
async def test_a_fatal_error_during_the_wait_is_raised_at_once() -> None:
    async with emulated_diffio(loopback=False) as env:
        generation = await _generation(env, duration=100)
        env.emulator.add_fault(path=PROGRESS, status=401, count=None)
        with pytest.raises(AuthenticationError):
            await generation.wait()
        assert _polls(env, generation.id) == 1


@VIRTUAL
async def test_a_handle_rebuilt_from_ids_waits_and_downloads(tmp_path: Any) -> None:
    async with emulated_diffio(loopback=False) as env:
        original = await _generation(env, duration=50)
        handle = env.client.generations.get(original.id, project_id=original.project_id)
        assert handle.id == original.id and handle.idempotency_key is None
        assert (await handle.wait()).is_complete
        path = await handle.download(tmp_path)
        assert path.read_bytes() == b"RIFF" + bytes(2000)


@VIRTUAL
@pytest.mark.parametrize(
    ("file_name", "content_type", "served", "written"),
    [
        ("talk.wav", "audio/wav", "audio", "take.mp3"),
        ("clip.MOV", "video/quicktime", "video", "take.MOV"),
    ],
)
async def test_download_by_default_gets_what_the_server_serves_and_can_take_its_suffix(
    tmp_path: Any, file_name: str, content_type: str, served: str, written: str
) -> None:
    """No download type: the field is left out, the server serves its default (the video of
    a video project), ``last_download`` says what came, and ``served_suffix`` names the file
    after it; without ``served_suffix`` the path is kept as given."""
    media = b"\x00\x00\x00\x18ftyp" + bytes(3000)
    async with emulated_diffio(loopback=False) as env:
        project = await env.client.projects.create(
            media, file_name=file_name, content_type=content_type
        )
        generation = await env.client.generations.create(project, model="diffio-3.5")
        await generation.wait()
        path = await generation.download(tmp_path / "take.wav", served_suffix=True)
        assert path == tmp_path / written and path.read_bytes() == media
        assert generation.last_download is not None
        assert generation.last_download.download_type == served
        kept = await generation.download(tmp_path / "as-given.bin")
        assert kept == tmp_path / "as-given.bin" and kept.read_bytes() == media
        bodies = [e.json for e in env.emulator.requests.find(path="/v1/get_generation_download")]
        assert bodies and all("downloadType" not in body for body in bodies)
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["as-given.bin", written])
        with pytest.raises(InvalidRequestError, match="served_suffix must be True or False"):
            await generation.download(tmp_path, served_suffix=1)  # type: ignore[arg-type]


@VIRTUAL
async def test_a_served_suffix_replaces_only_a_media_suffix_and_never_another_file(
    tmp_path: Any,
) -> None:
    """Review of issue 9: ``take.1`` gains the served suffix (``take.1.mp3``, not
    ``take.mp3``); a file already at the served name, which the caller did not name, is not
    replaced (DownloadError before any media request) unless ``overwrite_served``; a folder
    there is always refused."""
    async with emulated_diffio(loopback=False) as env:
        project = await env.client.projects.create(
            b"RIFF" + bytes(3000), file_name="talk.wav", content_type="audio/wav"
        )
        generation = await env.client.generations.create(project, model="diffio-3.5")
        await generation.wait()
        for name in ("take.1", "take.2", "interview.2024-05-01", "clean"):
            path = await generation.download(tmp_path / name, served_suffix=True)
            assert path == tmp_path / f"{name}.mp3"
        other = tmp_path / "other.mp3"
        other.write_bytes(b"another take")
        gets = len([e for e in env.emulator.requests if e.method == "GET"])
        with pytest.raises(DownloadError, match="already exists"):
            await generation.download(tmp_path / "other.wav", served_suffix=True)
        assert other.read_bytes() == b"another take"
        assert len([e for e in env.emulator.requests if e.method == "GET"]) == gets
        named = await generation.download(tmp_path / "other.mp3", served_suffix=True)
        assert named == other and other.read_bytes() == b"RIFF" + bytes(3000)  # named: replaced
        other.write_bytes(b"another take")
        replaced = await generation.download(
            tmp_path / "other.wav", served_suffix=True, overwrite_served=True
        )
        assert replaced == other and other.read_bytes() == b"RIFF" + bytes(3000)
        (tmp_path / "folder.mp3").mkdir()
        for overwrite in (False, True):
            with pytest.raises(IsADirectoryError):
                await generation.download(
                    tmp_path / "folder.wav", served_suffix=True, overwrite_served=overwrite
                )
        assert list((tmp_path / "folder.mp3").iterdir()) == []


def test_poll_schedule_never_exceeds_the_cap_and_halves_on_change() -> None:
    policy = PollPolicy()
    schedule = policy.schedule(rng=random.Random(7))
    delays = [schedule.next_delay(changed=False) for _ in range(40)]
    assert all(0 < d <= policy.maximum for d in delays)
    assert 0.9 <= delays[0] <= 1.1
    assert delays[-1] >= policy.maximum * 0.9
    exact = PollPolicy(initial=1, factor=1.5, maximum=15, jitter=0).schedule()
    assert [exact.next_delay(changed=False) for _ in range(8)] == [
        1,
        1.5,
        2.25,
        3.375,
        5.0625,
        7.59375,
        11.390625,
        15,
    ]
    assert exact.next_delay(changed=True) == 7.5
    with pytest.raises(ValueError):
        PollPolicy(initial=0)
    with pytest.raises(ValueError):
        PollPolicy(factor=0.5)


@pytest.mark.parametrize(
    "bad",
    [
        {"initial": float("nan")},
        {"initial": float("inf")},
        {"initial": -1},
        {"initial": "1"},
        {"initial": True},
        {"factor": float("nan")},
        {"factor": float("inf")},
        {"maximum": float("inf")},
        {"maximum": -5},
        {"maximum": None},
        {"jitter": float("nan")},
        {"jitter": -0.1},
        {"jitter": 1.5},
    ],
    ids=repr,
)
def test_a_poll_policy_refuses_nan_infinities_negatives_and_non_numbers(
    bad: dict[str, Any],
) -> None:
    (name,) = bad
    with pytest.raises(ConfigurationError, match=f"PollPolicy {name} must be a finite number"):
        PollPolicy(**bad)


# --- over loopback: transient errors and cancellation --------------------------------------


@pytest.fixture
async def env() -> AsyncIterator[EmulatedDiffio]:
    async with emulated_diffio(generation_seconds=0.6, client_options={"max_retries": FAST}) as env:
        yield env


async def test_transient_errors_during_the_wait_are_retried(env: EmulatedDiffio) -> None:
    """503s and dropped connections on get_generation_progress, more than the transport's own
    retries absorb: the wait polls through them and completes."""
    generation = await _generation(env)
    env.emulator.add_fault(path=PROGRESS, status=503, count=4)
    env.emulator.add_fault(path=PROGRESS, drop=True, count=4)
    env.emulator.add_fault(path=PROGRESS, status=429, retry_after="0.05", count=3)
    final = await generation.wait(timeout=30, poll=QUICK_POLL)
    assert final.is_complete
    statuses = [e.status for e in env.emulator.requests.find(path=PROGRESS)]
    assert statuses.count(503) == 4 and statuses.count(None) == 4 and statuses.count(429) == 3
    assert statuses[-1] == 200


async def test_cancelling_a_wait_mid_request_leaves_no_open_connection(
    env: EmulatedDiffio,
) -> None:
    """Acceptance: a wait cancelled while a poll is in flight stops at once, leaves nothing."""
    generation = await _generation(env, duration=60)
    env.emulator.add_fault(path=PROGRESS, delay=10, count=None)
    started = anyio.current_time()
    with anyio.move_on_after(0.3) as scope:
        await generation.wait()
    assert scope.cancelled_caught
    assert anyio.current_time() - started < 2
    assert not busy_connections(env.client)
    env.emulator.clear_faults()
    assert (await generation.progress()).status in ("queued", "processing")


async def test_cancelling_a_wait_between_polls_leaves_no_open_connection(
    env: EmulatedDiffio,
) -> None:
    generation = await _generation(env, duration=60)
    with anyio.move_on_after(0.5) as scope:
        await generation.wait(poll=PollPolicy(initial=0.1, maximum=0.1))
    assert scope.cancelled_caught
    assert _polls(env, generation.id) >= 2
    assert not busy_connections(env.client)


@VIRTUAL
async def test_webhook_router_wakes_the_wait() -> None:
    """With a router, the wait polls as soon as the webhook arrives, not at its next poll."""
    import httpx2

    from diffio_async.webhooks import WebhookRouter

    router: WebhookRouter | None = None

    async def receiver(request: httpx2.Request) -> httpx2.Response:
        assert router is not None
        await router.handle(request.content, request.headers)
        return httpx2.Response(204)

    async with emulated_diffio(
        loopback=False,
        generation_seconds=30.0,
        webhook_transport=httpx2.MockTransport(receiver),
        webhook_timestamps="emulator",
    ) as env:
        router = WebhookRouter(env.emulator.webhook_secret, tolerance=float("inf"))
        await env.client.webhooks.configure(url="https://hooks.example/diffio", mode="live")
        generation = await _generation(env)
        sleepy = PollPolicy(initial=600.0, maximum=600.0, jitter=0.0)

        async def server_ticks() -> None:  # Diffio delivers on its own; the emulator on ask
            while True:
                await anyio.sleep(1.0)
                await env.emulator.deliver_due_webhooks()

        async with anyio.create_task_group() as group:
            group.start_soon(server_ticks)
            started = anyio.current_time()
            final = await generation.wait(timeout=3600, poll=sleepy, router=router)
            waited = anyio.current_time() - started
            group.cancel_scope.cancel()
        assert final.is_complete
        assert waited < 60, "the webhook, not the 600 s poll, ended the wait"
        assert len(env.emulator.requests.find(path=PROGRESS)) <= 4


# --- completion detection: the finish the progress predicts, a learned pace, a budget ---------


@VIRTUAL
@pytest.mark.parametrize("era", ERAS)
@pytest.mark.parametrize(
    ("duration", "expected", "max_polls", "max_late"),
    [
        (10, None, 8, 0.5),  # no pace known: the ramp until the percentage moves twice
        (10, 10, 3, 0.2),  # the pace a batch learned: a poll half-way, then one at the end
        (60, 60, 5, 0.5),
        (10, 100, 2, 5.5),  # a pace far too slow: the first poll waits the policy's maximum
        (100, 10, 10, 2),  # one too fast: the progress takes over
    ],
)
async def test_a_wait_aims_at_the_predicted_finish(
    era: str, duration: float, expected: float | None, max_polls: int, max_late: float
) -> None:
    async with emulated_diffio(era=era, loopback=False) as env:
        generation = await _generation(env, duration=duration)
        created = anyio.current_time()
        final = await generation.wait(expected_seconds=expected)
        late = anyio.current_time() - (created + duration)
        assert final.is_complete
        assert 0 <= late <= max_late
        assert _polls(env, generation.id) <= max_polls


def _progress(percent: int, status: str = "processing") -> GenerationProgress:
    stage = {"status": "processing", "progress": percent}
    return GenerationProgress(
        generation_id="g",
        api_project_id="p",
        status=status,
        pre_processing=Stage(**stage),
        inference=Stage(**stage),
    )


def test_a_percentage_that_stops_moving_falls_back_to_the_ramp() -> None:
    policy = PollPolicy(initial=1, factor=2, maximum=8, jitter=0)
    planner = PollPlanner(policy, started=0.0)
    planner.observe(10.0, _progress(20))
    planner.observe(20.0, _progress(40))
    assert planner.estimate() == pytest.approx(50.0)
    # Half-way (15 s) would be longer than the policy's maximum or half the time waited.
    assert planner.next_delay(20.0, changed=False) == pytest.approx(10.0)
    now, delays = 60.0, []
    for _ in range(5):  # past the estimate, and the percentage stays at 40
        planner.observe(now, _progress(40))
        delay = planner.next_delay(now, changed=False)
        delays.append(delay)
        now += delay
    assert delays == [1, 2, 4, 8, 8]


def test_a_planned_wait_is_never_below_the_floor_nor_above_the_ceiling() -> None:
    planner = PollPlanner(PollPolicy(maximum=15), started=0.0)
    planner.observe(1.0, _progress(1))
    planner.observe(2.0, _progress(2))  # predicts a finish at 100 s
    assert planner.next_delay(2.0, changed=False) == 15  # half-way would be 49 s
    fast = PollPlanner(PollPolicy(), started=0.0)
    fast.observe(1.0, _progress(98))
    fast.observe(1.001, _progress(99))
    assert fast.next_delay(1.001, changed=False) >= 0.25


@VIRTUAL
async def test_a_budget_holds_2000_waits_to_its_polls_per_second() -> None:
    budget = PollBudget(50)
    times: list[float] = []

    async def waiter() -> None:
        for _ in range(3):
            await budget.acquire()
            times.append(anyio.current_time())
            await anyio.sleep(random.uniform(0, 5))

    async with anyio.create_task_group() as group:
        for _ in range(2000):
            group.start_soon(waiter)
    assert len(times) == 6000
    times.sort()
    for index, start in enumerate(times):  # every window [t, t + 1 s) from a poll on
        inside = 0
        for later in times[index:]:
            if later - start >= 1 - 1e-9:
                break
            inside += 1
        assert inside <= 50
    assert times[-1] - times[0] <= 6000 / 50 + 5  # and it does not starve: evenly spaced


@pytest.mark.parametrize("bad", [0, -1, math.nan, math.inf, 1e-320, "5", True])
def test_a_budget_must_be_a_positive_finite_rate(bad: Any) -> None:
    with pytest.raises(ConfigurationError, match="per_second"):
        PollBudget(bad)


def test_a_budget_made_outside_any_loop_serves_one_loop_after_another() -> None:
    budget = PollBudget(1000)

    async def use() -> None:
        for _ in range(3):
            await budget.acquire()

    anyio.run(use)
    anyio.run(use, backend="trio")  # another loop, another clock: no stale lock or deadline


@VIRTUAL
@pytest.mark.parametrize("era", ERAS)
@pytest.mark.parametrize("follow_progress", [True, False])
async def test_a_wait_tells_when_the_generation_most_likely_ended(
    era: str, follow_progress: bool
) -> None:
    async with emulated_diffio(era=era, loopback=False) as env:
        generation = await _generation(env, duration=10)
        assert generation.finished_after is None
        # Polls every 4 s: noticed at 12 s, but the progress says it ended at 10 s.
        policy = PollPolicy(initial=4, factor=1, jitter=0, follow_progress=follow_progress)
        await generation.wait(poll=policy)
        assert generation.finished_after is not None
        assert abs(generation.finished_after - 10) <= 0.5
