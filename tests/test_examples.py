"""The examples in examples/ run as documented."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import httpx2
import pytest

from diffio_async.emulator import Emulator, EmulatorClock, serve_in_thread

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
