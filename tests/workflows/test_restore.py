"""``client.restore()`` end to end against the emulator: bytes in equal bytes out, the result,
stage-tagged failures that carry the ids, and no API key anywhere but the API itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from shared import ERAS, FAST, MEDIA, MIB, QUICK_POLL
from virtual_clock import VIRTUAL_BACKENDS, virtual_backend

from diffio_async import (
    GenerationFailedError,
    GenerationProgress,
    InternalServerError,
    InvalidRequestError,
    MediaSource,
    PaymentRequiredError,
    RestoreError,
    RestoreOptions,
    RestoreResult,
    UploadError,
    WaitTimeoutError,
)
from diffio_async.testing import TEST_API_KEY, EmulatedDiffio, emulated_diffio

pytestmark = pytest.mark.anyio
VIRTUAL = pytest.mark.parametrize("anyio_backend", VIRTUAL_BACKENDS, indirect=True)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    """Both backends; tests marked ``VIRTUAL`` get them on virtual time (see virtual_clock)."""
    return virtual_backend(request.param)


def _write_media(path: Path, size: int) -> str:
    """Write ``size`` pseudo-random bytes in 1 MiB chunks; return their sha256."""
    digest = hashlib.sha256()
    seed = hashlib.sha256(b"restore").digest()
    with path.open("wb") as out:
        for index in range(0, size, MIB):
            block = hashlib.sha256(seed + index.to_bytes(8, "big")).digest() * (MIB // 32)
            chunk = block[: min(MIB, size - index)]
            out.write(chunk)
            digest.update(chunk)
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(MIB):
            digest.update(chunk)
    return digest.hexdigest()


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.fixture(params=ERAS)
async def env(request: pytest.FixtureRequest) -> AsyncIterator[EmulatedDiffio]:
    async with emulated_diffio(
        era=request.param,
        generation_seconds=0.2,
        part_size_bytes=8 * MIB,
        client_options={"max_retries": FAST},
    ) as env:
        yield env


async def test_a_64_mib_file_comes_back_byte_for_byte(env: EmulatedDiffio, tmp_path: Path) -> None:
    """Acceptance (correctness part; benchmarks/memory.py does 1 GiB and memory)."""
    source = tmp_path / "long talk.wav"
    expected = await anyio.to_thread.run_sync(_write_media, source, 64 * MIB)
    result = await env.client.restore(
        source, output=f"{tmp_path}/out/", options=RestoreOptions(poll=QUICK_POLL)
    )
    assert result.output == tmp_path / "out" / "diffio_ai_long talk.mp3"
    assert await anyio.to_thread.run_sync(_sha256, result.output) == expected
    assert _names(tmp_path / "out") == ["diffio_ai_long talk.mp3"]
    puts = [e for e in env.emulator.requests if e.method == "PUT"]
    assert sum(e.body_size for e in puts) == 64 * MIB
    assert len(puts) == (1 if env.emulator.era == "a" else 8)


async def test_the_result_describes_what_was_done(env: EmulatedDiffio, tmp_path: Path) -> None:
    statuses: list[str] = []
    sent: list[int] = []
    result = await env.client.restore(
        b"RIFF" + bytes(5000),
        output=tmp_path / "restored.mp3",
        idempotency_key="my-key-1",
        on_progress=lambda p: statuses.append(p.status),
        on_upload_progress=lambda done, total: sent.append(done),
        options=RestoreOptions(poll=QUICK_POLL),
    )
    assert isinstance(result, RestoreResult)
    assert result.output == tmp_path / "restored.mp3"
    assert result.output.read_bytes() == b"RIFF" + bytes(5000)
    assert result.project_id == env.emulator.project_ids[0]
    assert result.generation_id == env.emulator.generation_ids[0]
    assert result.generation.idempotency_key == "my-key-1"
    assert isinstance(result.progress, GenerationProgress) and result.progress.is_complete
    assert result.download_type == "audio"
    assert set(result.timings) == {"upload", "generation", "wait", "download"}
    assert all(seconds >= 0 for seconds in result.timings.values())
    assert result.timings["wait"] > 0  # the server took time (how much is for benchmarks)
    assert set(result.attempts) == set(result.timings)
    # Attempts are the HTTP requests each stage made, as the emulator saw them.
    log = list(env.emulator.requests)
    polls = [e for e in log if e.path == "/v1/get_generation_progress"]
    assert result.attempts["wait"] == len(polls) >= 2
    assert result.attempts["generation"] == 1
    assert result.attempts["download"] == 2  # get_generation_download + the media GET
    assert sum(result.attempts.values()) == len(log)
    assert statuses[-1] == "complete"
    assert sent[-1] == 5004
    # The default model follows the era the server speaks.
    model = "diffio-3.5" if env.emulator.era == "a" else "diffio-4.6-flash"
    assert result.generation.model_key == model


async def test_a_stream_source(env: EmulatedDiffio, tmp_path: Path) -> None:
    data = bytes(range(256)) * 4096 * 3  # 3 MiB

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 100_000):
            yield data[start : start + 100_000]

    source = MediaSource.from_stream(chunks, size=len(data), file_name="radio.wav")
    result = await env.client.restore(
        source, output=tmp_path, options=RestoreOptions(poll=QUICK_POLL)
    )
    assert result.output.name == "diffio_ai_radio.mp3"
    assert result.output.read_bytes() == data


async def test_no_api_key_on_any_upload_edge_or_media_request(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    """Acceptance: the request log shows the API key on API calls only, never on an upload,
    an edge or a media request (also across a re-sent upload and a resumed download)."""
    era = env.emulator.era
    upload = "/_storage/*" if era == "a" else "/v1/uploads/parts/1"
    env.emulator.add_fault(path=upload, method="PUT", status=503)
    env.emulator.add_fault(path=MEDIA[era], method="GET", truncate=True)
    source = tmp_path / "talk.wav"
    _write_media(source, 9 * MIB)
    for auth_header in ("authorization", "x-api-key"):
        client = env.client
        if auth_header != "authorization":
            client = type(client)(TEST_API_KEY, env.base_url, auth_header="x-api-key")
        async with client:
            await client.restore(
                source, output=f"{tmp_path}/{auth_header}/", options=RestoreOptions(poll=QUICK_POLL)
            )

    api, media = [], []
    for entry in env.emulator.requests:
        is_api = entry.path.startswith("/v1/") and not entry.path.startswith("/v1/uploads/")
        (api if is_api else media).append(entry)
    prefixes = ("/_storage/", "/v1/uploads/", "/m/")
    kinds = {(e.method, next(p for p in prefixes if e.path.startswith(p))) for e in media}
    if era == "a":
        assert kinds == {("PUT", "/_storage/"), ("GET", "/_storage/")}
    else:
        assert kinds == {("POST", "/v1/uploads/"), ("PUT", "/v1/uploads/"), ("GET", "/m/")}
    assert any(e.status == 503 for e in media) and any(e.fault == "truncate" for e in media)
    for entry in media:
        for name, value in entry.headers:
            assert TEST_API_KEY not in value, (entry.method, entry.path, name)
        assert TEST_API_KEY not in entry.query and TEST_API_KEY not in entry.path
        assert entry.header("x-api-key") is None and entry.header("xi-api-key") is None
        if era == "a":
            assert entry.header("authorization") is None
    for entry in api:  # the key does go where it belongs
        assert TEST_API_KEY in (entry.header("authorization") or entry.header("x-api-key") or "")


# --- failures: which stage, and the ids of what exists ---------------------------------------


async def test_a_missing_source_is_bad_input_refused_before_anything_exists(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    with pytest.raises(InvalidRequestError, match="no such file"):
        await env.client.restore(tmp_path / "missing.wav", output=tmp_path)
    assert list(env.emulator.requests) == []


async def test_a_failed_upload_carries_the_project_id(env: EmulatedDiffio, tmp_path: Path) -> None:
    path = "/_storage/*" if env.emulator.era == "a" else "/v1/uploads/parts/*"
    env.emulator.add_fault(path=path, method="PUT", status=400, count=None)
    with pytest.raises(RestoreError) as info:
        await env.client.restore(b"RIFF" + bytes(100), output=tmp_path)
    error = info.value
    assert error.stage == "upload"
    assert error.project_id == env.emulator.project_ids[0]
    assert error.generation_id is None
    assert isinstance(error.__cause__, UploadError)
    assert error.project_id in str(error)


async def test_a_refused_generation_carries_the_project_id(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    env.emulator.add_fault(path="/v1/*-generation", status=402, count=None)
    with pytest.raises(RestoreError) as info:
        await env.client.restore(b"RIFF" + bytes(100), output=tmp_path)
    error = info.value
    assert error.stage == "generation"
    assert error.project_id == env.emulator.project_ids[0]
    assert error.generation_id is None
    assert isinstance(error.__cause__, PaymentRequiredError)


async def test_a_failed_generation_carries_both_ids(env: EmulatedDiffio, tmp_path: Path) -> None:
    env.emulator.script_next_generation(duration=0.3, fail_at="preProcessing")
    with pytest.raises(RestoreError) as info:
        await env.client.restore(
            b"RIFF" + bytes(100), output=tmp_path, options=RestoreOptions(poll=QUICK_POLL)
        )
    error = info.value
    assert error.stage == "wait"
    assert error.project_id == env.emulator.project_ids[0]
    assert error.generation_id == env.emulator.generation_ids[0]
    assert isinstance(error.__cause__, GenerationFailedError)
    assert dict(error.__cause__.last_progress.stages)["preProcessing"].status == "failed"
    assert _names(tmp_path) == []


async def test_a_wait_timeout_carries_both_ids(env: EmulatedDiffio, tmp_path: Path) -> None:
    env.emulator.script_next_generation(duration=60)
    with pytest.raises(RestoreError) as info:
        await env.client.restore(
            b"RIFF", output=tmp_path, options=RestoreOptions(timeout=0.3, poll=QUICK_POLL)
        )
    error = info.value
    assert error.stage == "wait"
    assert error.generation_id == env.emulator.generation_ids[0]
    assert isinstance(error.__cause__, WaitTimeoutError)
    assert error.__cause__.generation_id == error.generation_id


async def test_a_failed_download_carries_both_ids_and_leaves_no_file(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    env.emulator.add_fault(path=MEDIA[env.emulator.era], method="GET", status=500, count=None)
    (tmp_path / "out").mkdir()
    existing = tmp_path / "out" / "diffio_ai_upload.mp3"
    existing.write_bytes(b"keep me")
    with pytest.raises(RestoreError) as info:
        await env.client.restore(
            b"RIFF" + bytes(100), output=tmp_path / "out", options=RestoreOptions(poll=QUICK_POLL)
        )
    error = info.value
    assert error.stage == "download"
    assert error.project_id == env.emulator.project_ids[0]
    assert error.generation_id == env.emulator.generation_ids[0]
    assert isinstance(error.__cause__, InternalServerError)
    assert existing.read_bytes() == b"keep me"
    assert _names(tmp_path / "out") == ["diffio_ai_upload.mp3"]


async def test_a_local_file_error_at_download_carries_both_ids(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    folder = tmp_path / "outputs"
    folder.mkdir()

    def replace_the_folder_by_a_file(progress: object) -> None:
        if folder.is_dir():  # while the generation runs, the output folder becomes a file
            folder.rmdir()
            folder.write_bytes(b"")

    with pytest.raises(RestoreError) as info:
        await env.client.restore(
            b"RIFF",
            output=f"{folder}/",
            options=RestoreOptions(poll=QUICK_POLL),
            on_progress=replace_the_folder_by_a_file,
        )
    error = info.value
    assert error.stage == "download"
    assert error.generation_id == env.emulator.generation_ids[0]
    # Caught by the download's own check of its target, or by the file system itself.
    assert isinstance(error.__cause__, OSError | InvalidRequestError)


# --- virtual time ------------------------------------------------------------------------


@VIRTUAL
@pytest.mark.parametrize("era", ERAS)
async def test_a_five_minute_restore_on_virtual_time(era: str, tmp_path: Path) -> None:
    async with emulated_diffio(era=era, loopback=False) as env:
        env.emulator.script_next_generation(duration=300)
        started = anyio.current_time()
        result = await env.client.restore(b"RIFF" + bytes(3000), output=tmp_path)
        assert result.output.read_bytes() == b"RIFF" + bytes(3000)
        assert 300 <= result.timings["wait"] <= 315
        assert 300 <= anyio.current_time() - started <= 316
        assert len(env.emulator.requests.find(path="/v1/get_generation_progress")) <= 30


async def test_attempts_count_retries(env: EmulatedDiffio, tmp_path: Path) -> None:
    env.emulator.add_fault(path="/v1/create_project", status=503, retry_after="0")
    env.emulator.add_fault(path="/v1/get_generation_download", status=502)
    result = await env.client.restore(
        b"RIFF" + bytes(100), output=tmp_path / "o.mp3", options=RestoreOptions(poll=QUICK_POLL)
    )
    uploads = (
        3 if env.emulator.era == "a" else 6
    )  # 2 creates + PUT, or + start, part, complete, completion
    assert result.attempts["upload"] == uploads
    assert result.attempts["download"] == 3
