"""restore_many against the loopback emulator: soak under faults, fatal stops, resume, limits."""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx2
import pytest
from bulk_helpers import FAST_POLL, collect

from diffio_async import AsyncDiffio, BatchOptions, RestoreOptions, RetryPolicy
from diffio_async.emulator import Emulator, serve_in_thread
from diffio_async.errors import BatchAbortedError, EventLoopMismatchError
from diffio_async.testing import TEST_API_KEY, EmulatedDiffio, emulated_diffio
from diffio_async.workflows import bulk
from diffio_async.workflows.bulk import ItemResult

pytestmark = pytest.mark.anyio

FAST_RETRY = RetryPolicy(max_retries=3, initial_delay=0.01, max_delay=0.05)
SOAK_FILES = int(os.environ.get("DIFFIO_SOAK_FILES", "2000"))


def _make_files(folder: Path, count: int, *, nested: bool = False) -> list[Path]:
    paths = []
    for index in range(count):
        sub = folder / f"part{index % 3}" if nested else folder
        sub.mkdir(parents=True, exist_ok=True)
        path = sub / f"rec{index:05}.wav"
        path.write_bytes(b"RIFF" + index.to_bytes(4, "big") * (50 + index % 7))
        paths.append(path)
    return paths


@pytest.fixture
async def env() -> AsyncIterator[EmulatedDiffio]:
    async with emulated_diffio(
        generation_seconds=0.05, client_options={"max_retries": FAST_RETRY}
    ) as env:
        yield env


def _generations_per_file(env: EmulatedDiffio) -> Counter[str]:
    """How many generations the emulator created for each original file name."""
    projects = {p: name for p, name in _project_names(env).items()}
    counts: Counter[str] = Counter()
    for generation_id in env.emulator.generation_ids:
        project_id = env.emulator.generation_progress(generation_id)["apiProjectId"]
        counts[projects[project_id]] += 1
    return counts


def _project_names(env: EmulatedDiffio) -> dict[str, str]:
    names = {}
    for entry in env.emulator.requests.find(path="/v1/create_project"):
        if entry.status == 200 and entry.json:
            names[entry.json["fileName"]] = entry.json["fileName"]
    core = env.emulator._core
    with core.state.lock:
        return {pid: p.file_name for pid, p in core.state.projects.items()}


async def test_folder_batch_restores_every_file(env: EmulatedDiffio, tmp_path: Path) -> None:
    paths = _make_files(tmp_path / "in", 30, nested=True)
    results = await collect(env, tmp_path / "in", tmp_path / "out", concurrency=5)
    assert len(results) == 30 and all(r.ok for r in results), [r.error for r in results]
    for path in paths:
        output = tmp_path / "out" / path.relative_to(tmp_path / "in").with_suffix(".mp3")
        assert output.read_bytes() == path.read_bytes()
    assert set(_generations_per_file(env).values()) == {1}
    assert not list((tmp_path / "out").rglob("*.part"))


async def test_soak_under_ten_percent_faults(env: EmulatedDiffio, tmp_path: Path) -> None:
    """Every file completes byte-identical with one generation each despite ~10 % failures."""
    paths = _make_files(tmp_path / "in", SOAK_FILES)
    api = re.compile(r"/v1/.*")
    emulator = env.emulator
    emulator.add_fault(
        path=api, status=429, retry_after="0.01", probability=0.02, seed=1, count=None
    )
    emulator.add_fault(path=api, status=503, probability=0.02, seed=2, count=None)
    emulator.add_fault(path=api, status=500, probability=0.015, seed=3, count=None)
    emulator.add_fault(path=api, drop=True, probability=0.015, seed=4, count=None)
    emulator.add_fault(path=api, drop=True, after=True, probability=0.01, seed=5, count=None)
    emulator.add_fault(
        path="/_storage/*", method="GET", truncate=True, probability=0.05, seed=6, count=None
    )
    emulator.add_fault(
        path="/_storage/*", method="PUT", status=503, probability=0.03, seed=7, count=None
    )

    async def lazily() -> AsyncIterator[Path]:
        for path in paths:
            yield path

    results = await collect(env, lazily(), tmp_path / "out", concurrency=16, retry_for=60)
    failed = [(r.source, r.stage, repr(r.error)) for r in results if not r.ok]
    assert failed == []
    assert len(results) == SOAK_FILES
    for path in paths:
        assert (tmp_path / "out" / path.with_suffix(".mp3").name).read_bytes() == path.read_bytes()
    per_file = _generations_per_file(env)
    assert len(per_file) == SOAK_FILES and set(per_file.values()) == {1}
    disturbed = sum(1 for entry in emulator.requests if entry.fault is not None)
    assert disturbed / len(emulator.requests) > 0.05  # the faults really happened


async def test_payment_failure_stops_the_batch(env: EmulatedDiffio, tmp_path: Path) -> None:
    paths = _make_files(tmp_path / "in", 1000)
    results: list[ItemResult] = []
    concurrency = 8
    with pytest.raises(BatchAbortedError) as info:
        async with env.client.restore_many(
            paths,
            output_dir=tmp_path / "out",
            options=RestoreOptions(poll=FAST_POLL),
            batch=BatchOptions(concurrency=concurrency),
        ) as items:
            async for item in items:
                results.append(item)
                if len(results) == 20:
                    env.emulator.set_billing_hold(True)
                    hold_index = len(env.emulator.requests)
    assert info.value.cause.__class__.__name__ == "PaymentFailedError"
    after_hold = [e for e in env.emulator.requests if e.index >= hold_index]
    refused = [e for e in after_hold if e.status == 402]
    assert len(refused) <= concurrency, "only the requests already in flight may be refused"
    assert len(results) < 20 + 2 * concurrency
    assert not results[-1].ok


async def test_ledger_resume_skips_done_and_never_creates_twice(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    paths = _make_files(tmp_path / "in", 12)
    ledger = tmp_path / "batch.sqlite"
    first: list[ItemResult] = []
    async with env.client.restore_many(
        paths,
        output_dir=tmp_path / "out",
        options=RestoreOptions(poll=FAST_POLL),
        batch=BatchOptions(concurrency=4, ledger=ledger),
    ) as items:
        async for item in items:
            first.append(item)
            if len(first) == 5:
                break  # walk away mid-batch: in-flight items stop where they are
    generations_before = len(env.emulator.generation_ids)
    second = await collect(env, paths, tmp_path / "out", concurrency=4, ledger=ledger)
    assert all(r.ok for r in second)
    assert sum(r.skipped for r in second) >= 5
    per_file = _generations_per_file(env)
    assert set(per_file.values()) == {1} and len(per_file) == 12
    assert len(env.emulator.generation_ids) - generations_before <= 12 - 5
    third = await collect(env, paths, tmp_path / "out", concurrency=4, ledger=ledger)
    assert all(r.skipped for r in third)
    from diffio_async.workflows.ledger import Ledger

    async with await Ledger.open(ledger) as book:
        entries = await book.entries()
    assert len(entries) == 12 and all(e.state == "downloaded" for e in entries)
    assert all(e.attempts >= 1 and e.project_id and e.generation_id for e in entries)


async def test_one_item_failure_is_its_own_result(env: EmulatedDiffio, tmp_path: Path) -> None:
    paths = _make_files(tmp_path / "in", 6)
    env.emulator.script_next_generation(fail_at="inference", error="bad audio")
    missing = tmp_path / "in" / "gone.wav"
    results = await collect(env, [missing, *paths], tmp_path / "out", concurrency=1)
    by_source = {Path(r.source).name: r for r in results}
    assert not by_source["gone.wav"].ok and by_source["gone.wav"].stage == "source"
    failed = [r for r in results if not r.ok]
    assert len(failed) == 2
    generation_failure = next(r for r in failed if r.source != str(missing))
    assert generation_failure.stage == "wait" and generation_failure.generation_id
    assert generation_failure.attempts == 1  # a failed generation is never re-created
    assert sum(r.ok for r in results) == 5


async def test_limits_on_items_and_transfers(env: EmulatedDiffio, tmp_path: Path) -> None:
    paths = _make_files(tmp_path / "in", 40)
    stages: dict[str, str] = {}
    peaks = Counter[str]()

    def on_stage(source: str, stage: str) -> None:
        stages[source] = stage
        active = [s for s in stages.values() if s not in ("done", "hash")]
        transfers = [s for s in active if s in ("upload", "download")]
        peaks["items"] = max(peaks["items"], len(active))
        peaks["transfers"] = max(peaks["transfers"], len(transfers))

    results = await collect(
        env, paths, tmp_path / "out", concurrency=6, transfer_concurrency=2, on_stage=on_stage
    )
    for result in results:
        stages[result.source] = "done"
    assert all(r.ok for r in results)
    assert peaks["items"] <= 6
    assert peaks["transfers"] <= 6  # stage "upload" is entered before the slot is taken


async def test_cancelling_the_batch_is_prompt_and_clean(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    paths = _make_files(tmp_path / "in", 50)
    env.emulator.add_fault(path="/_storage/*", method="GET", delay=5.0, count=None)
    started = anyio.current_time()
    with anyio.move_on_after(1.0):
        await collect(env, paths, tmp_path / "out", concurrency=8)
    assert anyio.current_time() - started < 3.0
    assert not list((tmp_path / "out").glob(".*.part"))
    assert not list((tmp_path / "out").glob("*.mp3"))
    pool = env.client._transport.http._transport._pool  # type: ignore[attr-defined]
    assert [c for c in pool.connections if not c.is_idle()] == []
    assert list(pool._requests) == []
    assert len(await env.client.projects.list()) > 0  # the client is still usable


async def test_a_403_from_the_media_host_fails_its_files_but_an_api_403_stops_the_batch(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    paths = _make_files(tmp_path / "in", 6)
    # Signed media URLs that answer 403 every time: a URL problem, not the key's.
    env.emulator.add_fault(path="/_storage/*", method="GET", status=403, count=None)
    results = await collect(env, paths, tmp_path / "out", concurrency=2, retry_for=0)
    assert len(results) == 6
    assert {item.stage for item in results} == {"download"}
    assert not any(item.ok for item in results)
    env.emulator.clear_faults()

    # The API itself answers 403: every later file would fail too, so the batch stops.
    env.emulator.add_fault(path="/v1/create_project", status=403, count=None)
    with pytest.raises(BatchAbortedError) as info:
        await collect(env, paths, tmp_path / "out2", concurrency=2, retry_for=0)
    assert info.value.cause.__class__.__name__ == "PermissionDeniedError"
    assert info.value.cause.api_call


async def test_a_file_outlasts_a_long_run_of_transient_failures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The item-level backoff shrunk to milliseconds: the rule (time, not a count) is the same.
    monkeypatch.setattr(bulk, "_ITEM_BACKOFF", RetryPolicy(initial_delay=0.001, max_delay=0.005))
    no_retries = RetryPolicy(max_retries=0)
    async with emulated_diffio(
        generation_seconds=0.05, client_options={"max_retries": no_retries}
    ) as env:
        (path,) = _make_files(tmp_path / "in", 1)
        env.emulator.add_fault(path="/v1/create_project", status=503, count=12)
        env.emulator.add_fault(path="/v1/get_generation_download", status=502, count=5)
        (result,) = await collect(env, [path], tmp_path / "out", retry_for=60)
        assert result.ok, result.error
        assert result.attempts == 18  # 12 + 5 failures, then the try that worked
        assert result.output is not None and result.output.read_bytes() == path.read_bytes()
        assert len(env.emulator.project_ids) == 1 and len(env.emulator.generation_ids) == 1


async def test_a_permanent_error_fails_the_file_at_once(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    (path,) = _make_files(tmp_path / "in", 1)
    env.emulator.add_fault(path="/v1/create_project", status=400, count=None)
    (result,) = await collect(env, [path], tmp_path / "out")
    assert not result.ok and result.stage == "upload" and result.attempts == 1
    assert len(env.emulator.requests.find(path="/v1/create_project")) == 1


async def test_the_retry_window_opens_at_a_failure_not_when_the_file_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The generation alone takes longer than retry_for: a failure after it still gets its try.
    monkeypatch.setattr(bulk, "_ITEM_BACKOFF", RetryPolicy(initial_delay=0.001, max_delay=0.005))
    async with emulated_diffio(
        generation_seconds=1.0, client_options={"max_retries": RetryPolicy(max_retries=0)}
    ) as env:
        (path,) = _make_files(tmp_path / "in", 1)
        env.emulator.add_fault(path="/_storage/*", method="GET", status=503, count=1)
        (result,) = await collect(env, [path], tmp_path / "out", retry_for=0.5)
        assert result.ok, result.error
        assert result.attempts == 2


def test_a_batch_on_a_second_event_loop_stops_at_once(tmp_path: Path) -> None:
    """Review of issue 9: an AsyncDiffio taken to a second event loop stops the batch once
    (BatchAbortedError), rather than failing every file one by one with
    EventLoopMismatchError: a usage error that every later file would hit the same way, like
    a 401."""
    paths = _make_files(tmp_path / "in", 5)
    # No keep-alive: the first loop leaves no connection behind that only it could close.
    http = httpx2.AsyncClient(limits=httpx2.Limits(max_keepalive_connections=0))
    with (
        Emulator(api_key=TEST_API_KEY, generation_seconds=0) as emulator,
        serve_in_thread(emulator) as url,
    ):
        client = AsyncDiffio(TEST_API_KEY, url, http_client=http)
        anyio.run(client.projects.list)  # the first loop owns the pool from now on

        async def batch() -> list[ItemResult]:
            async with client.restore_many(paths, output_dir=tmp_path / "out") as items:
                return [item async for item in items]

        with pytest.raises((EventLoopMismatchError, BatchAbortedError)) as info:
            anyio.run(batch)
        anyio.run(http.aclose)
    error = info.value
    cause = error.cause if isinstance(error, BatchAbortedError) else error
    assert isinstance(cause, EventLoopMismatchError)
    assert len(emulator.requests) == 1  # only the first loop's call was sent
