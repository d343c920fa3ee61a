"""The examples in examples/ run as documented."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.util
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import httpx2
import pytest
import uvicorn
from aiohttp.test_utils import TestServer

from diffio_async.emulator import Emulator, EmulatorClock, serve_in_thread

MIB = 1024 * 1024

EXAMPLES = Path(__file__).parent.parent / "examples"


def test_restore_offline_runs() -> None:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "restore_offline.py")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "restored diffio_ai_take0.mp3" in done.stdout
    assert sorted(line for line in done.stdout.splitlines() if line.endswith(": ok")) == [
        "take0.wav: ok",
        "take1.wav: ok",
        "take2.wav: ok",
    ]


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.anyio
async def test_starlette_app_restores_and_takes_webhooks(monkeypatch: pytest.MonkeyPatch) -> None:
    with (
        Emulator(
            api_key="diffio_live_example",
            generation_seconds=0.3,
            clock=EmulatorClock(time_source=time.monotonic),
        ) as emulator,
        serve_in_thread(emulator) as url,
    ):
        monkeypatch.setenv("DIFFIO_API_KEY", "diffio_live_example")
        monkeypatch.setenv("DIFFIO_API_BASE_URL", url)
        monkeypatch.setenv("DIFFIO_WEBHOOK_SECRET", emulator.webhook_secret)
        example = _load("starlette_app")
        app = example.app
        async with (
            app.router.lifespan_context(app),
            httpx2.AsyncClient(
                transport=httpx2.ASGITransport(app=app), base_url="http://service"
            ) as http,
        ):
            answer = await http.post("/restore?name=talk.wav", content=b"RIFF" + bytes(3000))
            assert answer.status_code == 200, answer.text
            assert answer.json()["status"] == "complete"
            async with httpx2.AsyncClient() as plain:  # the signed URL is the emulator's
                media = await plain.get(answer.json()["downloadUrl"])
            assert media.content == b"RIFF" + bytes(3000)
            forged = await http.post("/diffio-webhook", content=b"{}", headers={"svix-id": "x"})
            assert forged.status_code == 400


# --- uploads from web frameworks (issue 9) ----------------------------------------------------


@contextlib.contextmanager
def _uvicorn(app: Any) -> Iterator[str]:
    """Serve ``app`` (with its lifespan) with uvicorn on loopback in a thread; yield its URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    config = uvicorn.Config(
        app, lifespan="on", log_level="warning", loop="asyncio", http="h11", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            assert thread.is_alive(), "uvicorn did not start"
            time.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


@contextlib.contextmanager
def _aiohttp_server(app: Any) -> Iterator[str]:
    """Serve an aiohttp app with aiohttp's own test server on loopback, on an asyncio loop
    of its own in a thread (so the test's client may run on either backend)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = TestServer(app, host="127.0.0.1")
    try:
        asyncio.run_coroutine_threadsafe(server.start_server(), loop).result(30)
        yield str(server.make_url("")).rstrip("/")
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


async def _generated(size: int, digest: Any) -> AsyncIterator[bytes]:
    """``size`` pseudo-random bytes, 1 MiB at a time, hashed into ``digest`` as they go."""
    rng = random.Random(size)
    remaining = size
    while remaining:
        chunk = rng.randbytes(min(MIB, remaining))
        digest.update(chunk)
        remaining -= len(chunk)
        yield chunk


def _multipart(
    fields: dict[str, str], file_name: str, size: int, chunks: AsyncIterator[bytes]
) -> tuple[dict[str, str], AsyncIterator[bytes]]:
    """A streamed multipart/form-data body: ``fields``, then a ``file`` of ``size`` bytes."""
    boundary = "diffio-example-7b1f0c"
    head = b"".join(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    )
    head += (
        f"--{boundary}\r\nContent-Disposition: form-data; "
        f'name="file"; filename="{file_name}"\r\nContent-Type: audio/wav\r\n\r\n'
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    async def body() -> AsyncIterator[bytes]:
        yield head
        async for chunk in chunks:
            yield chunk
        yield tail

    headers = {
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Content-Length": str(len(head) + size + len(tail)),
    }
    return headers, body()


@contextlib.contextmanager
def _emulated(era: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Emulator]:
    with (
        Emulator(
            era=era,
            api_key="diffio_live_example",
            generation_seconds=0.3,
            part_size_bytes=8 * MIB,
            clock=EmulatorClock(time_source=time.monotonic),
        ) as emulator,
        serve_in_thread(emulator) as url,
    ):
        monkeypatch.setenv("DIFFIO_API_KEY", "diffio_live_example")
        monkeypatch.setenv("DIFFIO_API_BASE_URL", url)
        monkeypatch.setenv("RESTORED_DIR", str(tmp_path / "restored"))
        yield emulator


def _stored_sha256(emulator: Emulator, project_id: str) -> str:
    digest = hashlib.sha256()
    with (Path(emulator.storage_dir) / "originals" / project_id).open("rb") as stored:
        while chunk := stored.read(MIB):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.asynccontextmanager
async def _served(server: contextlib.AbstractContextManager[str]) -> AsyncIterator[str]:
    """Enter a server's (blocking) context in a worker thread, off the test's event loop."""
    url = await anyio.to_thread.run_sync(server.__enter__)
    try:
        yield url
    finally:
        await anyio.to_thread.run_sync(server.__exit__, None, None, None)


@pytest.mark.anyio
@pytest.mark.parametrize("era", ["a", "b"])
async def test_fastapi_upload_restores_a_large_streamed_upload(
    era: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """64 MiB posted as a stream to the FastAPI example (real uvicorn on loopback) arrive at
    the emulator intact: the sha256 of what it stored is the sha256 of what was sent."""
    size = 64 * MIB
    sent = hashlib.sha256()
    with _emulated(era, monkeypatch, tmp_path) as emulator:
        app = _load("fastapi_upload").app
        async with _served(_uvicorn(app)) as url, httpx2.AsyncClient(timeout=120) as http:
            headers, body = _multipart({}, "big.wav", size, _generated(size, sent))
            answer = await http.post(f"{url}/restore", content=body, headers=headers)
            assert answer.status_code == 200, answer.text
            reply = answer.json()
            assert reply["status"] == "complete"
            assert _stored_sha256(emulator, reply["projectId"]) == sent.hexdigest()
            create = emulator.requests.find(path="/v1/create_project")[0].json
            assert (create["fileName"], create["contentType"]) == ("big.wav", "audio/wav")
            assert create["contentLength"] == size
            assert (tmp_path / "restored" / reply["output"]).stat().st_size == size
            missing = await http.post(f"{url}/restore", files={"other": ("a.wav", b"RIFF")})
            assert missing.status_code == 422  # FastAPI: no 'file' field


@pytest.mark.anyio
@pytest.mark.parametrize("era", ["a", "b"])
async def test_aiohttp_upload_streams_a_multipart_field_into_a_restore(
    era: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The aiohttp example reads the field in order while it uploads it; in era B a part the
    edge refuses once is re-sent from the copy kept of it, and the bytes arrive intact."""
    size = 20 * MIB + 7
    sent = hashlib.sha256()
    with _emulated(era, monkeypatch, tmp_path) as emulator:
        if era == "b":
            emulator.add_fault(path="/v1/uploads/parts/2", method="PUT", status=503)
        app = _load("aiohttp_upload").make_app()
        async with _served(_aiohttp_server(app)) as url, httpx2.AsyncClient(timeout=120) as http:
            fields = {"size": str(size)}
            headers, body = _multipart(fields, "field.wav", size, _generated(size, sent))
            answer = await http.post(f"{url}/restore", content=body, headers=headers)
            assert answer.status_code == 200, answer.text
            reply = answer.json()
            assert reply["status"] == "complete"
            assert _stored_sha256(emulator, reply["projectId"]) == sent.hexdigest()
            puts = [e for e in emulator.requests if e.method == "PUT"]
            if era == "b":
                numbers = [int(e.path.rsplit("/", 1)[1]) for e in puts]
                assert numbers == [1, 2, 2, 3]  # one after the other, part 2 re-sent
                assert [e.status for e in puts] == [200, 503, 200, 200]
            headers, body = _multipart({}, "x.wav", 4, _generated(4, hashlib.sha256()))
            refused = await http.post(f"{url}/restore", content=body, headers=headers)
            assert refused.status_code == 400 and "size" in refused.text


@pytest.mark.anyio
@pytest.mark.parametrize("example", ["fastapi_upload", "aiohttp_upload"])
async def test_an_upload_example_keeps_each_callers_result(
    example: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Review of issue 9: the upload examples once restored into one folder under the
    server's file name (``diffio_ai_<uploaded name>``), so a second caller uploading a
    ``talk.wav`` replaced the first caller's result. Each request now has its own output."""
    contents = [b"RIFF" + b"\x01" * 4000, b"RIFF" + b"\x02" * 4000]
    with _emulated("a", monkeypatch, tmp_path):
        module = _load(example)
        if example == "fastapi_upload":
            server = _uvicorn(module.app)
        else:
            server = _aiohttp_server(module.make_app())
        async with _served(server) as url, httpx2.AsyncClient(timeout=120) as http:
            replies = []
            for content in contents:
                answer = await http.post(
                    f"{url}/restore",
                    data={"size": str(len(content))},  # sent before the file (aiohttp's order)
                    files={"file": ("talk.wav", content, "audio/wav")},
                )
                assert answer.status_code == 200, answer.text
                replies.append(answer.json())
    outputs = [tmp_path / "restored" / reply["output"] for reply in replies]
    assert outputs[0] != outputs[1]
    assert [output.read_bytes() for output in outputs] == contents
