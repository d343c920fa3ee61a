"""Cross-check: the official ``diffio`` SDK runs its full flow against the emulator unchanged.

Opt-in, because the official SDK is not a dependency: set ``DIFFIO_OFFICIAL_PYTHONS`` to a
comma-separated list of interpreters that have ``diffio`` installed (e.g. throwaway venvs with
``pip install diffio==0.1.114`` and ``pip install diffio==0.3.10``). 0.1.x runs against era A,
later versions against era B.
"""

from __future__ import annotations

import os
import subprocess
import time
from typing import Literal

import pytest

from diffio_async.emulator import Emulator, EmulatorClock, serve_in_thread

INTERPRETERS = [p for p in os.environ.get("DIFFIO_OFFICIAL_PYTHONS", "").split(",") if p]

SCRIPT = r"""
import os, sys, tempfile
from diffio import DiffioClient

url, era = sys.argv[1], sys.argv[2]
data = os.urandom(3 * 1024 * 1024 + 17)
folder = tempfile.mkdtemp()
source = os.path.join(folder, "talk.wav")
with open(source, "wb") as handle:
    handle.write(data)
client = DiffioClient(apiKey="diffio_live_any", baseUrl=url)
restored, info = client.restore_audio(filePath=source, pollInterval=0.1, timeout=30)
assert info["ok"], info
assert restored == data
model = "diffio-4.6-pro" if era == "b" else "diffio-3.5"
made = client.create_generation(apiProjectId=info["apiProjectId"], model=model,
                                 idempotencyKey=" key-1 ")
again = client.create_generation(apiProjectId=info["apiProjectId"], model=model,
                                 idempotencyKey="key-1")
assert again.idempotentReplay and again.generationId == made.generationId
client.wait_for_generation(generationId=made.generationId, pollInterval=0.1, timeout=30)
target = os.path.join(folder, "out.mp3")
client.generations.download(generationId=made.generationId, apiProjectId=info["apiProjectId"],
                            downloadFilePath=target)
assert open(target, "rb").read() == data
client.generations.download(generationId=made.generationId, apiProjectId=info["apiProjectId"],
                            downloadType="transcript",
                            downloadFilePath=os.path.join(folder, "t.json"))
assert client.list_projects().projects
assert client.list_project_generations(apiProjectId=info["apiProjectId"]).generations
key = client.api_keys.create(label="child", scopes=["projects:read"])
client.api_keys.rotate(keyId=key.keyId)
client.api_keys.revoke(keyId=key.keyId)
client.api_keys.list()
client.usage.summary()
client.account.get_settings()
client.account.update_settings(billingPolicy={"type": "customerStripe"})
client.webhooks.send_test_event(eventType="generation.completed", mode="test")
print("OK")
"""


@pytest.mark.skipif(not INTERPRETERS, reason="set DIFFIO_OFFICIAL_PYTHONS to cross-check")
@pytest.mark.parametrize("python", INTERPRETERS)
def test_official_sdk_full_flow(python: str) -> None:
    version = subprocess.run(
        [python, "-c", "import importlib.metadata as m; print(m.version('diffio'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    era: Literal["a", "b"] = "a" if version.startswith("0.1.") else "b"
    clock = EmulatorClock(time_source=time.time)
    with (
        Emulator(
            era=era, generation_seconds=0.5, clock=clock, part_size_bytes=1024 * 1024
        ) as emulator,
        serve_in_thread(emulator) as url,
    ):
        result = subprocess.run(
            [python, "-c", SCRIPT, url, era], capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert result.stdout.strip().endswith("OK")
        paths = [entry.path for entry in emulator.requests]
    if era == "b":
        assert paths[:5] == [
            "/v1/create_project",
            "/v1/uploads/start",
            "/v1/uploads/parts/1",
            "/v1/uploads/parts/2",
            "/v1/uploads/parts/3",
        ]
    else:
        assert paths[0] == "/v1/create_project" and paths[1].startswith("/_storage/")
