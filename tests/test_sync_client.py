"""The blocking client ``Diffio`` against the emulator on loopback: a script, a Flask app, 32
threads at once, calls from inside a running event loop, callbacks, and its lifecycle. Also
``EventLoopMismatchError``: an ``AsyncDiffio`` taken to a second event loop."""

from __future__ import annotations

import gc
import importlib.util
import inspect
import io
import subprocess
import sys
import threading
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import httpx2
import pytest
from shared import AUDIO, MODELS

from diffio_async import (
    AsyncDiffio,
    BatchOptions,
    ClientClosedError,
    ConfigurationError,
    Diffio,
    DownloadError,
    EventLoopMismatchError,
    GenerationProgress,
    InvalidRequestError,
    ItemResult,
    MediaSource,
    PollBudget,
    PollPolicy,
    RestoreError,
    RestoreOptions,
    SyncGeneration,
    UploadSource,
)
from diffio_async._media.file_objects import AsyncChunkReader, AsyncReader
from diffio_async._sync.resources import SyncProjects
from diffio_async.emulator import Emulator, serve_in_thread
from diffio_async.resources import Projects
from diffio_async.testing import TEST_API_KEY

BACKENDS = ["asyncio", "trio"]


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """An emulator whose generations are complete at once (no test waits on a clock)."""
    with Emulator(api_key=TEST_API_KEY, generation_seconds=0) as emulator:
        yield emulator


@pytest.fixture
def url(emulator: Emulator) -> Iterator[str]:
    with serve_in_thread(emulator) as url:
        yield url


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The event loop the blocking client runs in its thread."""
    return str(request.param)


def _loop_threads(backend: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"diffio-{backend}-loop"]


def _recording(number: int) -> bytes:
    return b"RIFF" + number.to_bytes(4, "big") + bytes(range(256)) * 16


def test_a_script_creates_restores_lists_and_restores_a_folder(
    emulator: Emulator, url: str, backend: str, tmp_path: Path
) -> None:
    uploaded: list[tuple[int, int]] = []
    snapshots: list[GenerationProgress] = []
    stages: list[tuple[str, str]] = []
    folder = tmp_path / "interviews"
    folder.mkdir()
    for number in range(3):
        (folder / f"{number}.wav").write_bytes(_recording(number))
    with Diffio(TEST_API_KEY, url, backend=backend) as client:
        project = client.projects.create(
            AUDIO, file_name="talk.wav", on_progress=lambda *sent: uploaded.append(sent)
        )
        generation = client.generations.create(project, model=MODELS["a"])
        assert isinstance(generation, SyncGeneration)
        final = generation.wait(on_progress=snapshots.append)
        assert list(generation.iter_progress()) == [final]
        written = generation.download(tmp_path / "talk.mp3")
        result = client.restore(_recording(9), output=tmp_path / "nine.mp3")
        listed = client.projects.list()
        with client.restore_many(
            folder, output_dir=tmp_path / "out", on_stage=lambda *s: stages.append(s)
        ) as results:
            items = list(results)
    assert uploaded[-1] == (len(AUDIO), len(AUDIO))
    assert final.is_complete and snapshots[-1] == final
    assert written.read_bytes() == AUDIO
    assert result.output.read_bytes() == _recording(9)
    assert {p.api_project_id for p in listed} == {project.api_project_id, result.project_id}
    assert all(isinstance(item, ItemResult) and item.ok for item in items)
    for number in range(3):
        assert (tmp_path / "out" / f"{number}.mp3").read_bytes() == _recording(number)
    assert {stage for _, stage in stages} == {"upload", "generation", "wait", "download", "done"}
    assert len(emulator.generation_ids) == 1 + 1 + 3


def test_leaving_restore_many_early_stops_the_batch(
    emulator: Emulator, url: str, backend: str, tmp_path: Path
) -> None:
    sources = []
    for number in range(6):
        sources.append(tmp_path / f"{number}.wav")
        sources[-1].write_bytes(_recording(number))
    with Diffio(TEST_API_KEY, url, backend=backend) as client:
        with client.restore_many(
            sources, output_dir=tmp_path / "out", batch=BatchOptions(concurrency=1)
        ) as results:
            first = next(results)
        assert client.projects.list()  # the client goes on after the batch stopped
    assert first.ok and first.output is not None and first.output.is_file()
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    # One result taken, one buffered, one blocked on sending: the other three never ran.
    assert len(written) <= 3 and all(name.endswith(".mp3") for name in written)


FLASK_APP = """
import uuid
from pathlib import Path

from flask import Flask, request

from diffio_async import Diffio

client = Diffio()  # one for the whole app: DIFFIO_API_KEY and DIFFIO_API_BASE_URL
app = Flask(__name__)
OUTPUT = Path(__file__).parent / "restored"


@app.post("/restore")
def restore():
    result = client.restore(request.get_data(), output=OUTPUT / f"{uuid.uuid4().hex}.mp3")
    return result.output.read_bytes(), 200, {"Content-Type": "audio/mpeg"}


@app.get("/projects")
def projects():
    return {"projects": [p.api_project_id for p in client.projects.list()]}
"""


def _import_app(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location("restore_app", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_flask_view_restores_through_one_module_level_client(
    emulator: Emulator, url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIFFIO_API_KEY", TEST_API_KEY)
    monkeypatch.setenv("DIFFIO_API_BASE_URL", url)
    (tmp_path / "app.py").write_text(FLASK_APP)
    (tmp_path / "restored").mkdir()
    module = _import_app(tmp_path / "app.py")
    try:
        web = module.app.test_client()
        answers = [web.post("/restore", data=_recording(n)) for n in range(3)]
        listed = web.get("/projects")
    finally:
        module.client.close()
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.data for a in answers] == [_recording(n) for n in range(3)]
    assert sorted(listed.json["projects"]) == sorted(emulator.project_ids)
    assert len(emulator.generation_ids) == 3


def test_32_threads_restore_in_parallel_through_one_client(
    emulator: Emulator, url: str, backend: str, tmp_path: Path
) -> None:
    count = 32
    start = threading.Barrier(count)
    results: dict[int, Any] = {}

    def restore(number: int) -> None:
        start.wait()  # all 32 calls are made at once
        try:
            results[number] = client.restore(_recording(number), output=tmp_path / f"{number}.mp3")
        except BaseException as exc:  # reported below, per thread
            results[number] = exc

    with Diffio(TEST_API_KEY, url, backend=backend) as client:
        threads = [threading.Thread(target=restore, args=(n,)) for n in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    failed = {n: r for n, r in results.items() if isinstance(r, BaseException)}
    assert failed == {}
    for number in range(count):
        assert results[number].output.read_bytes() == _recording(number)
    assert len(set(emulator.generation_ids)) == count
    assert {r.generation_id for r in results.values()} == set(emulator.generation_ids)


@pytest.mark.anyio
@pytest.mark.parametrize("client_backend", BACKENDS)
async def test_blocking_calls_work_from_inside_a_running_event_loop(
    emulator: Emulator, url: str, client_backend: str, tmp_path: Path
) -> None:
    """A notebook cell: the blocking client called from a coroutine (asyncio or trio) blocks
    that loop for the call, while its own loop (either backend) serves it."""
    snapshots: list[GenerationProgress] = []
    with Diffio(TEST_API_KEY, url, backend=client_backend) as client:
        assert client.projects.list() == ()
        result = client.restore(AUDIO, output=tmp_path / "out.mp3", on_progress=snapshots.append)
        with client.restore_many([tmp_path / "out.mp3"], output_dir=tmp_path / "again") as items:
            (item,) = items
        listed = client.projects.list()
    assert result.output.read_bytes() == AUDIO and snapshots[-1].is_complete
    assert item.ok and (tmp_path / "again" / "out.mp3").read_bytes() == AUDIO
    assert {p.api_project_id for p in listed} == {result.project_id, item.project_id}
    assert not _loop_threads(client_backend)


def test_callbacks_are_plain_functions_run_in_a_worker_thread_that_may_call_the_client(
    url: str, backend: str, tmp_path: Path
) -> None:
    seen: list[tuple[str, int]] = []
    with Diffio(TEST_API_KEY, url, backend=backend) as client:
        (loop_thread,) = _loop_threads(backend)

        def on_progress(progress: GenerationProgress) -> None:
            projects = client.projects.list()  # from a callback: not a deadlock
            seen.append((threading.current_thread().name, len(projects)))

        client.restore(AUDIO, output=tmp_path / "out.mp3", on_progress=on_progress)

        async def async_callback(progress: GenerationProgress) -> None:
            raise AssertionError("never called")

        with pytest.raises(InvalidRequestError, match="plain function"):
            client.restore(AUDIO, output=tmp_path / "x.mp3", on_progress=async_callback)
    assert seen and seen[-1][1] == 1
    assert {name for name, _ in seen}.isdisjoint({loop_thread.name, "MainThread"})


def test_a_callback_may_close_the_client(url: str, backend: str, tmp_path: Path) -> None:
    client = Diffio(TEST_API_KEY, url, backend=backend)
    with pytest.raises(ClientClosedError, match="closed while this call ran"):
        client.restore(
            AUDIO, output=tmp_path / "out.mp3", on_upload_progress=lambda *_: client.close()
        )
    assert client.closed
    for thread in _loop_threads(backend):
        thread.join(600)  # it ends once the callback returned (600 s: a bound on a hang)
        assert not thread.is_alive()
    assert not (tmp_path / "out.mp3").exists()


def test_close_twice_and_use_after_close_raises_client_closed_error(
    emulator: Emulator, url: str, backend: str, tmp_path: Path
) -> None:
    client = Diffio(TEST_API_KEY, url, backend=backend)
    copy = client.with_options(max_retries=0)
    project = client.projects.create(AUDIO, file_name="a.wav")
    generation = client.generations.create(project, model=MODELS["a"])
    copy.close()
    assert copy.closed and not client.closed
    with pytest.raises(ClientClosedError):
        copy.projects.list()
    assert client.projects.list()  # a copy's close leaves the pool open
    assert len(_loop_threads(backend)) == 1
    client.close()
    client.close()
    assert client.closed and not _loop_threads(backend)
    requests = len(emulator.requests)
    for call in (
        client.projects.list,
        lambda: client.restore(AUDIO, output=tmp_path / "out.mp3"),
        lambda: generation.wait(),
        lambda: client.restore_many([], output_dir=tmp_path).__enter__(),
        client.__enter__,
    ):
        with pytest.raises(ClientClosedError):
            call()
    assert len(emulator.requests) == requests


def test_close_cancels_calls_waiting_in_other_threads(backend: str, tmp_path: Path) -> None:
    (tmp_path / "a.wav").write_bytes(AUDIO)
    with (
        Emulator(api_key=TEST_API_KEY, generation_seconds=3600) as slow,
        serve_in_thread(slow) as url,
    ):
        client = Diffio(TEST_API_KEY, url, backend=backend)
        project = client.projects.create(AUDIO, file_name="a.wav")
        created = client.generations.create(project, model=MODELS["a"])
        # Rebuilt from its ids, the handle polls at once, then sleeps an hour between polls.
        generation = client.generations.get(created.id, project_id=created.project_id)
        hour = PollPolicy(initial=3600, maximum=3600)
        polled, batch_waits = threading.Event(), threading.Event()
        outcomes: dict[str, BaseException] = {}

        def wait() -> None:
            try:
                generation.wait(timeout=None, poll=hour, on_progress=lambda _: polled.set())
            except BaseException as exc:
                outcomes["wait"] = exc

        def batch() -> None:
            def on_stage(source: str, stage: str) -> None:
                if stage == "wait":
                    batch_waits.set()

            try:
                with client.restore_many(
                    [tmp_path / "a.wav"],
                    output_dir=tmp_path / "out",
                    options=RestoreOptions(poll=hour, timeout=None),
                    on_stage=on_stage,
                ) as results:
                    list(results)
            except BaseException as exc:
                outcomes["batch"] = exc

        waiters = [threading.Thread(target=wait), threading.Thread(target=batch)]
        for waiter in waiters:
            waiter.start()
        polled.wait()
        batch_waits.wait()
        client.close()
        for waiter in waiters:
            waiter.join()
    assert {name: type(e) for name, e in outcomes.items()} == {
        "wait": ClientClosedError,
        "batch": ClientClosedError,
    }
    assert not _loop_threads(backend)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


LEFT_OPEN = """
import sys
from diffio_async import Diffio

client = Diffio(sys.argv[1], sys.argv[2], backend=sys.argv[3])
client.projects.list()
progress = client.generations.get("g", project_id="p").iter_progress()  # never started
print("done")
"""


def test_a_client_left_open_does_not_keep_the_interpreter_from_exiting(
    url: str, backend: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", LEFT_OPEN, TEST_API_KEY, url, backend],
        capture_output=True,
        text=True,
        timeout=600,  # a bound on a hang, not a timing
        check=False,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "done\n", "")


def test_blocking_methods_have_the_signatures_and_docstrings_of_their_async_twins(
    url: str,
) -> None:
    with Diffio(TEST_API_KEY, url) as client:
        twin = AsyncDiffio(TEST_API_KEY, url)
        groups = ["projects", "generations", "webhooks", "api_keys", "usage", "account"]
        compared = 0
        for group in groups:
            for name in dir(getattr(twin, group)):
                if name.startswith("_"):
                    continue
                original = getattr(getattr(twin, group), name)
                method = getattr(getattr(client, group), name)  # every method has a twin
                assert method.__doc__, f"{group}.{name}"
                if hasattr(method, "__wrapped__"):  # declared with blocking(...)
                    assert inspect.signature(method) == inspect.signature(original)
                    assert method.__doc__ == original.__doc__
                    assert method.__qualname__.startswith("Sync")
                    compared += 1
        assert compared >= 12
        anyio.run(twin.aclose)
    with pytest.raises(ClientClosedError):
        client.account.get_settings()


# What a blocking method does not take from its async twin, each said in its docstring.
_NOT_IN_THE_BLOCKING_CLIENT = {
    "restore": set(),
    "restore_many": {"router"},
    "projects.create": {"transfer_limiter"},
    "generations.create": set(),
    "generation.download": {"transfer_limiter"},
    "generation.wait": {"router"},
    "generation.iter_progress": {"router"},
}


def test_restore_and_the_written_out_methods_take_the_parameters_of_their_async_twins(
    url: str,
) -> None:
    with Diffio(TEST_API_KEY, url) as client:
        twin = AsyncDiffio(TEST_API_KEY, url)
        ours_handle = client.generations.get("g", project_id="p")
        their_handle = twin.generations.get("g", project_id="p")
        names = dict(_NOT_IN_THE_BLOCKING_CLIENT)
        for name in dir(their_handle):  # the handle: every public name, its methods compared
            if not name.startswith("_"):
                assert hasattr(ours_handle, name), f"SyncGeneration has no {name}"
                names.setdefault(f"generation.{name}", set())
        compared = 0
        for name, left_out in names.items():
            method, original = client, twin
            if name.startswith("generation."):
                method, original, name = ours_handle, their_handle, name.partition(".")[2]
            for part in name.split("."):
                method, original = getattr(method, part), getattr(original, part)
            if not callable(original):
                continue
            ours = inspect.signature(method).parameters
            theirs = inspect.signature(original).parameters
            expected = [p for n, p in theirs.items() if n not in left_out]
            shown = [(p.name, p.kind, p.default) for p in ours.values()]
            assert shown == [(p.name, p.kind, p.default) for p in expected], name
            compared += 1
            for parameter in left_out:
                assert parameter in theirs, f"{name} no longer takes {parameter}"
                assert f"``{parameter}``" in (method.__doc__ or ""), f"{name}: say why not"
        assert compared >= 10
        anyio.run(twin.aclose)


def test_projects_create_takes_an_upload_source_and_the_blocking_client_its_sync_part() -> None:
    assert typing.get_type_hints(Projects.create)["source"] == UploadSource
    sync_part = set(typing.get_args(UploadSource)) - {AsyncReader, AsyncChunkReader}
    for method in (Diffio.restore, SyncProjects.create):
        assert set(typing.get_args(typing.get_type_hints(method)["source"])) == sync_part


def test_restore_reads_sync_file_objects_and_returns_the_bytes_with_output_none(
    emulator: Emulator, url: str, backend: str, tmp_path: Path
) -> None:
    recording = tmp_path / "talk.wav"
    recording.write_bytes(_recording(1))
    with Diffio(TEST_API_KEY, url, backend=backend) as client:
        with recording.open("rb") as file:
            in_memory = client.restore(file, output=None)
        (tmp_path / "out").mkdir()
        with recording.open("rb") as file:
            file.seek(4)  # read from where it stands
            on_disk = client.restore(file, output=tmp_path / "out")
        from_bytes_io = client.restore(
            MediaSource.from_file(io.BytesIO(_recording(2)), file_name="two.wav"), output=None
        )
        project = client.projects.create(io.BytesIO(_recording(3)), file_name="three.wav")
        with recording.open("rb") as file, pytest.raises(RestoreError) as info:
            client.restore(file, output=None, max_bytes=100)
    assert in_memory.output is None and in_memory.content == _recording(1)
    assert on_disk.output is not None and on_disk.output.read_bytes() == _recording(1)[4:]
    assert on_disk.output.parent == tmp_path / "out"
    assert from_bytes_io.content == _recording(2)
    created = emulator.requests.find(path="/v1/create_project")
    assert [entry.json["fileName"] for entry in created] == [
        "talk.wav",
        "talk.wav",
        "two.wav",
        "three.wav",
        "talk.wav",
    ]
    assert project.api_project_id and not project.api_project_id.startswith("<")
    assert isinstance(info.value.__cause__, DownloadError)
    assert "max_bytes" in str(info.value)


VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40


def test_a_blocking_handle_downloads_what_the_server_serves_under_its_suffix(
    emulator: Emulator, url: str, backend: str, tmp_path: Path
) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(VIDEO)
    with Diffio(TEST_API_KEY, url, backend=backend) as client:
        with clip.open("rb") as file:
            project = client.projects.create(file)  # video/mp4 from the name: it has video
        generation = client.generations.create(project, model=MODELS["a"])
        generation.wait(budget=PollBudget(50))
        written = generation.download(tmp_path / "clean.wav", served_suffix=True)
        with clip.open("rb") as file:
            restored = client.restore(file, output=None)
    assert written == tmp_path / "clean.mp4" and written.read_bytes() == VIDEO
    assert generation.last_download is not None
    assert generation.last_download.download_type == "video"
    assert generation.to_dict()["created"]["generation_id"] == generation.id
    assert (restored.download_type, restored.content) == ("video", VIDEO)
    downloads = emulator.requests.find(path="/v1/get_generation_download")
    assert downloads and all("downloadType" not in entry.json for entry in downloads)


class _AsyncRead:
    """An object with an async ``read(n)``, like ``anyio.AsyncFile``."""

    name = "async.wav"

    async def read(self, size: int = -1, /) -> bytes:
        return b"RIFF"


class _AsyncChunks:
    """An object with an async ``read_chunk(n)``, like aiohttp's ``BodyPartReader``."""

    filename = "part.wav"

    async def read_chunk(self, size: int = 8192, /) -> bytes:
        return b"RIFF"


@pytest.mark.parametrize("source", [_AsyncRead(), _AsyncChunks()], ids=["read", "read_chunk"])
def test_file_objects_read_asynchronously_are_refused_before_any_request(
    emulator: Emulator, url: str, source: object, tmp_path: Path
) -> None:
    with Diffio(TEST_API_KEY, url) as client:
        with pytest.raises(InvalidRequestError, match=r"reads are async.*AsyncDiffio"):
            client.restore(source, output=None)  # type: ignore[arg-type]
        with pytest.raises(InvalidRequestError, match="reads are async"):
            client.projects.create(source)  # type: ignore[arg-type]
    assert list(emulator.requests) == []


def test_an_upload_file_is_read_through_its_sync_file(
    emulator: Emulator, url: str, backend: str
) -> None:
    from starlette.datastructures import UploadFile

    upload = UploadFile(io.BytesIO(_recording(4)), filename="form.wav")
    with Diffio(TEST_API_KEY, url, backend=backend) as client:
        result = client.restore(upload, output=None)  # type: ignore[arg-type]
    assert result.content == _recording(4)
    assert emulator.requests.find(path="/v1/create_project")[0].json["fileName"] == "form.wav"


def test_settings_are_checked_before_a_thread_starts(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = set(threading.enumerate())
    with pytest.raises(ConfigurationError, match="backend"):
        Diffio(TEST_API_KEY, url, backend="curio")  # type: ignore[arg-type]
    monkeypatch.delenv("DIFFIO_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="DIFFIO_API_KEY"):
        Diffio(base_url=url)
    assert set(threading.enumerate()) <= before  # (idle worker threads may end meanwhile)


# --- an AsyncDiffio taken to a second event loop ---------------------------------------------

LOOP_PAIRS = [("asyncio", "asyncio"), ("trio", "trio"), ("asyncio", "trio")]


@pytest.mark.parametrize(("first", "second"), LOOP_PAIRS, ids=lambda b: b)
def test_an_async_client_used_on_a_second_event_loop_raises_a_typed_error(
    emulator: Emulator, url: str, first: str, second: str
) -> None:
    # No keep-alive: the first loop leaves no connection behind that only it could close.
    http = httpx2.AsyncClient(limits=httpx2.Limits(max_keepalive_connections=0))
    client = AsyncDiffio(TEST_API_KEY, url, http_client=http)

    async def list_projects() -> None:
        await client.projects.list()

    anyio.run(list_projects, backend=first)
    with pytest.raises(EventLoopMismatchError) as info:
        anyio.run(list_projects, backend=second)
    assert "one client per event loop" in str(info.value) and "Diffio" in str(info.value)
    assert isinstance(info.value, ConfigurationError)
    assert len(emulator.requests) == 1, "the second loop's request was never sent"
    anyio.run(http.aclose, backend=first)


@pytest.mark.parametrize("second", BACKENDS)
def test_closing_an_async_client_from_another_loop_is_refused_and_leaves_it_open(
    url: str, second: str
) -> None:
    client = AsyncDiffio(TEST_API_KEY, url)
    with anyio.from_thread.start_blocking_portal("asyncio") as portal:
        portal.call(client.projects.list)
        with pytest.raises(EventLoopMismatchError):
            anyio.run(client.aclose, backend=second)
        assert not client.closed
        portal.call(client.aclose)  # on its own loop
    assert client.closed


@pytest.mark.parametrize(("first", "second"), LOOP_PAIRS, ids=lambda b: b)
def test_an_async_client_whose_loop_ended_can_be_closed_from_another_loop(
    url: str, first: str, second: str
) -> None:
    """``asyncio.run(client.aclose())`` after ``asyncio.run(main())``: the first loop is gone,
    and so are its connections; the client is closed for good."""
    client = AsyncDiffio(TEST_API_KEY, url)
    anyio.run(client.projects.list, backend=first)  # leaves a keep-alive connection behind
    anyio.run(client.aclose, backend=second)
    assert client.closed
    with pytest.raises(ClientClosedError):
        anyio.run(client.projects.list, backend=second)
    # The dead loop's connection is not touched (only its loop could close it): its socket
    # is freed with the client, as when a client is never closed.
    with pytest.warns(ResourceWarning, match="unclosed"):
        del client
        gc.collect()


@pytest.mark.parametrize("second", BACKENDS)
def test_restore_on_a_second_event_loop_raises_the_mismatch_itself(
    emulator: Emulator, url: str, second: str, tmp_path: Path
) -> None:
    """A usage error, not a failed stage: ``except EventLoopMismatchError`` catches it."""
    http = httpx2.AsyncClient(limits=httpx2.Limits(max_keepalive_connections=0))
    client = AsyncDiffio(TEST_API_KEY, url, http_client=http)
    anyio.run(client.projects.list)

    async def restore() -> None:
        await client.restore(AUDIO, output=tmp_path / "out.mp3")

    with pytest.raises(EventLoopMismatchError):
        anyio.run(restore, backend=second)
    assert len(emulator.requests) == 1, "the second loop's upload was never sent"
    assert list(tmp_path.iterdir()) == []
    anyio.run(http.aclose)


# --- review of issue 9: Ctrl-C during a blocking call -----------------------------------------

CTRL_C_DURING_RESTORE = """
import os, signal, sys, threading
import anyio
from diffio_async import Diffio, MediaSource
from diffio_async.emulator import Emulator, serve_in_thread

cleaned_up = threading.Event()

async def chunks():
    try:
        yield b"RIFF" + bytes(1000)
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C while the main thread waits for restore
        await anyio.sleep_forever()
        yield b""
    finally:
        cleaned_up.set()  # runs once the call is cancelled (or its iterator closed)

with Emulator(api_key=sys.argv[1]) as emulator, serve_in_thread(emulator) as url:
    client = Diffio(sys.argv[1], url, backend=sys.argv[2])
    source = MediaSource.from_async_iterable(chunks(), size=2004, file_name="a.wav")
    try:
        client.restore(source, output=sys.argv[3])
    except KeyboardInterrupt:
        print("interrupted")
    # A bound on a hang, not a timing: the interrupted call must have been cancelled.
    print("cancelled" if cleaned_up.wait(30) else "still running")
    client.close()
"""


def test_ctrl_c_during_a_blocking_call_cancels_that_call(backend: str, tmp_path: Path) -> None:
    """Review of issue 9: a KeyboardInterrupt in the calling thread cancels the call on the
    loop thread and waits until it ended before going on up: an interrupted restore must not
    go on uploading, polling, and write its output after the user pressed Ctrl-C (a notebook
    cell that was stopped, a script that catches KeyboardInterrupt)."""
    done = subprocess.run(
        [sys.executable, "-c", CTRL_C_DURING_RESTORE, TEST_API_KEY, backend, f"{tmp_path}/o.mp3"],
        capture_output=True,
        text=True,
        timeout=600,  # a bound on a hang, not a timing
        check=False,
    )
    assert done.stdout.split() == ["interrupted", "cancelled"], done.stderr


def test_ctrl_c_received_by_another_thread_still_interrupts_the_waiting_call(
    backend: str, tmp_path: Path
) -> None:
    """A SIGINT that another thread receives (the kernel gives a process's signal to any
    thread that does not block it) must still interrupt the call. Here the main thread blocks
    SIGINT, so another thread always receives it: the waiting thread wakes to run the handler
    (before, it waited for the call, which never ends: a hang)."""
    script = CTRL_C_DURING_RESTORE.replace(
        "    try:\n        client.restore",
        "    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})\n"
        "    try:\n        client.restore",
    )
    assert script != CTRL_C_DURING_RESTORE
    done = subprocess.run(
        [sys.executable, "-c", script, TEST_API_KEY, backend, f"{tmp_path}/o.mp3"],
        capture_output=True,
        text=True,
        timeout=120,  # a bound on a hang, not a timing
        check=False,
    )
    assert done.stdout.split() == ["interrupted", "cancelled"], done.stderr


CTRL_C_INSIDE_A_RUNNING_LOOP = """
import os, signal, sys, threading
import anyio, trio
from diffio_async import Diffio, MediaSource
from diffio_async.emulator import Emulator, serve_in_thread

cleaned_up = threading.Event()

async def chunks():
    try:
        yield b"RIFF" + bytes(1000)
        os.kill(os.getpid(), signal.SIGINT)
        await anyio.sleep_forever()
        yield b""
    finally:
        cleaned_up.set()

async def cell(client):  # a notebook cell on trio, whose SIGINT handler raises at once
    source = MediaSource.from_async_iterable(chunks(), size=2004, file_name="a.wav")
    try:
        client.restore(source, output=sys.argv[3])
    except KeyboardInterrupt:
        print("interrupted")

with Emulator(api_key=sys.argv[1]) as emulator, serve_in_thread(emulator) as url:
    client = Diffio(sys.argv[1], url, backend=sys.argv[2])
    trio.run(cell, client)
    print("cancelled" if cleaned_up.wait(30) else "still running")
    client.close()
"""


def test_ctrl_c_during_a_blocking_call_inside_a_running_loop_cancels_that_call(
    backend: str, tmp_path: Path
) -> None:
    """The path of a caller that runs an event loop itself (calls go through a helper
    thread): the interrupt cancels the call there too."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            CTRL_C_INSIDE_A_RUNNING_LOOP,
            TEST_API_KEY,
            backend,
            f"{tmp_path}/o.mp3",
        ],
        capture_output=True,
        text=True,
        timeout=600,  # a bound on a hang, not a timing
        check=False,
    )
    assert done.stdout.split() == ["interrupted", "cancelled"], done.stderr
    assert not (tmp_path / "o.mp3").exists()


CTRL_C_DURING_BATCH = """
import os, signal, sys
from pathlib import Path
from diffio_async import Diffio
from diffio_async.emulator import Emulator, serve_in_thread

folder = Path(sys.argv[3])
with Emulator(api_key=sys.argv[1], generation_seconds=3600) as emulator:
    with serve_in_thread(emulator) as url:
        client = Diffio(sys.argv[1], url, backend=sys.argv[2])

        def on_stage(source, stage):
            if stage == "wait":  # the main thread is blocked in next(results)
                os.kill(os.getpid(), signal.SIGINT)

        try:
            with client.restore_many(
                folder / "in", output_dir=folder / "out", on_stage=on_stage
            ) as results:
                for item in results:
                    print("result", item.ok)
        except KeyboardInterrupt:
            print("interrupted")
        client.close()
"""


def test_ctrl_c_while_iterating_restore_many_raises_keyboard_interrupt(
    backend: str, tmp_path: Path
) -> None:
    """Review of issue 9: Ctrl-C in ``for item in results`` raises KeyboardInterrupt, not
    ``RuntimeError: aclose(): asynchronous generator is already running`` (the interrupted
    ``__anext__`` is cancelled before the ``with`` block's exit closes the generator)."""
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.wav").write_bytes(AUDIO)
    done = subprocess.run(
        [sys.executable, "-c", CTRL_C_DURING_BATCH, TEST_API_KEY, backend, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,  # a bound on a hang, not a timing
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, "interrupted\n"), done.stderr


CTRL_C_ENTERING_BATCH = """
import os, signal, sys, threading
from pathlib import Path
from diffio_async import Diffio
from diffio_async.emulator import Emulator, serve_in_thread

folder = Path(sys.argv[3])
interrupted, ran = threading.Event(), threading.Event()


def on_sigint(*_):
    interrupted.set()
    raise KeyboardInterrupt


signal.signal(signal.SIGINT, on_sigint)


class Sources(list):
    def __iter__(self):  # walked on the loop while the main thread waits to enter the block
        if not interrupted.is_set():
            os.kill(os.getpid(), signal.SIGINT)
            interrupted.wait(30)
        return super().__iter__()


with Emulator(api_key=sys.argv[1], generation_seconds=3600) as emulator:
    with serve_in_thread(emulator) as url:
        client = Diffio(sys.argv[1], url, backend=sys.argv[2])
        try:
            with client.restore_many(
                Sources([folder / "a.wav"]),
                output_dir=folder / "out",
                on_stage=lambda source, stage: ran.set(),
            ) as results:
                print("entered")
        except KeyboardInterrupt:
            print("interrupted")
        # A bound on a hang: an interrupted batch must not go on in the background.
        print("ran on" if ran.wait(10) else "stopped")
        client.close()
"""


def test_ctrl_c_while_entering_restore_many_stops_the_batch(backend: str, tmp_path: Path) -> None:
    """Second review of issue 9: Ctrl-C while ``with client.restore_many(...)`` is entered
    (its sources being walked, its ledger opened) raises KeyboardInterrupt in the caller, but
    the manager's task goes on on the loop: it enters the batch and restores the files in the
    background (the uploads are billed) until the client is closed, with no ``with`` block
    left to stop it."""
    (tmp_path / "a.wav").write_bytes(AUDIO)
    done = subprocess.run(
        [sys.executable, "-c", CTRL_C_ENTERING_BATCH, TEST_API_KEY, backend, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,  # a bound on a hang, not a timing
        check=False,
    )
    assert done.stdout.split() == ["interrupted", "stopped"], done.stderr


@pytest.mark.parametrize("raised", [SystemExit, KeyboardInterrupt])
def test_a_callback_raising_system_exit_reaches_the_caller_and_leaves_the_client_working(
    url: str, backend: str, tmp_path: Path, raised: type[BaseException]
) -> None:
    """Second review of issue 9: a callback that calls ``sys.exit()`` (or raises
    KeyboardInterrupt) in its worker thread stops the client's event loop for good: the call
    raises it, but every later call fails (``RuntimeError: Nursery is closed to new
    arrivals`` on trio, a ClientClosedError the caller never asked for on asyncio) and
    ``close()`` raises ``RuntimeError: This portal is not running``."""

    def stop(*_: object) -> None:
        raise raised

    client = Diffio(TEST_API_KEY, url, backend=backend)
    with pytest.raises(raised):
        client.restore(AUDIO, output=tmp_path / "o.mp3", on_upload_progress=stop)
    assert client.projects.list()  # the client goes on (the project uploaded before)
    client.close()
    assert _loop_threads(backend) == []


@pytest.mark.parametrize("raised", [SystemExit, KeyboardInterrupt])
def test_an_on_stage_raising_system_exit_stops_the_batch_and_leaves_the_client_working(
    url: str, backend: str, tmp_path: Path, raised: type[BaseException]
) -> None:
    """Second review of issue 9: ``sys.exit()`` in restore_many's ``on_stage`` reaches the
    batch's pool task on the loop: asyncio lets SystemExit and KeyboardInterrupt out of a task
    straight through ``run_forever``, so the loop dies (the batch raises ``RuntimeError: This
    portal is not running``), and on trio the caller got an ExceptionGroup."""
    (tmp_path / "a.wav").write_bytes(AUDIO)

    def on_stage(source: str, stage: str) -> None:
        if stage == "upload":
            raise raised

    client = Diffio(TEST_API_KEY, url, backend=backend)
    with (
        pytest.raises(raised),
        client.restore_many(
            [tmp_path / "a.wav"], output_dir=tmp_path / "out", on_stage=on_stage
        ) as results,
    ):
        list(results)
    assert client.projects.list() == ()  # the client goes on (nothing was uploaded)
    client.close()
    assert _loop_threads(backend) == []
