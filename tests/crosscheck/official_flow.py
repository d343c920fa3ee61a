"""Run the official ``diffio`` SDK's full restore flow, unchanged, against our emulator.

Used by ``nox -s crosscheck`` in a virtualenv holding one official version (0.1.114 speaks
era A, 0.3.10 era B) plus ``diffio-async[emulator]``::

    python tests/crosscheck/official_flow.py

It starts the emulator on loopback in the era that version speaks, then drives the official
client through create project + upload, generation create (with a retry across an injected
503), wait, download, ``restore_audio``, and the listing, key, usage, account and webhook
endpoints. Exits non-zero (with a message) on any mismatch. Not collected by pytest.
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from diffio_async.emulator import Emulator, EmulatorClock, serve_in_thread

API_KEY = "diffio_live_crosscheck_key"


def _check(condition: object, message: str) -> None:
    if not condition:
        raise SystemExit(f"crosscheck FAILED: {message}")


def main() -> int:
    version = importlib.metadata.version("diffio")
    import time

    from diffio import DiffioClient  # the official SDK

    era = "a" if version.startswith("0.1.") else "b"
    model = "diffio-4.0-flash" if era == "a" else "diffio-4.6-flash"
    audio = bytes(range(256)) * 4096 + b"tail"  # 1 MiB + 4 bytes
    emulator_options: dict[str, Any] = {"part_size_bytes": 256 * 1024} if era == "b" else {}
    with (
        tempfile.TemporaryDirectory() as work,
        Emulator(
            era=era,
            api_key=API_KEY,
            generation_seconds=0.5,
            clock=EmulatorClock(time_source=time.monotonic),
            **emulator_options,
        ) as emulator,
        serve_in_thread(emulator) as url,
    ):
        source = Path(work, "speech.wav")
        source.write_bytes(audio)
        client = DiffioClient(apiKey=API_KEY, baseUrl=url)

        project = client.create_project(filePath=str(source))
        project_id = project.apiProjectId
        _check(project_id in emulator.project_ids, "create_project made no project")

        emulator.add_fault(path=f"/v1/{model}-generation", status=503)
        generation = client.create_generation(
            apiProjectId=project_id,
            model=model,
            idempotencyKey="crosscheck-key-1",
            requestOptions={"maxRetries": 2, "retryBackoff": 0},
        )
        _check(len(emulator.generation_ids) == 1, "the retried create made a second generation")
        final = client.wait_for_generation(
            generationId=generation.generationId,
            apiProjectId=project_id,
            pollInterval=0.1,
            timeout=60,
        )
        _check(final.status == "complete", f"wait ended in {final.status}")

        target = Path(work, "restored.mp3")
        client.generations.download(
            generationId=generation.generationId,
            apiProjectId=project_id,
            downloadFilePath=str(target),
            downloadType="audio",
        )
        _check(target.read_bytes() == audio, "downloaded bytes differ from the upload")

        data, info = client.restore_audio(
            filePath=str(source), model=model, pollInterval=0.1, timeout=60, raiseOnError=True
        )
        _check(info["ok"] and data == audio, f"restore_audio failed at {info.get('stage')}")

        projects = client.list_projects().projects
        _check(len(projects) == 2, "list_projects does not show both projects")
        generations = client.list_project_generations(apiProjectId=project_id).generations
        _check([g.generationId for g in generations] == [generation.generationId], "list gens")
        progress = client.get_generation_progress(
            generationId=generation.generationId, apiProjectId=project_id
        )
        _check(progress.status == "complete", "progress after completion")

        key = client.api_keys.create(label="crosscheck", scopes=["projects:read"])
        _check(any(k.keyId == key.keyId for k in client.api_keys.list().keys), "keys list")
        client.api_keys.rotate(keyId=key.keyId)
        client.api_keys.revoke(keyId=key.keyId)
        client.usage.summary()
        client.account.get_settings()
        client.webhooks.send_test_event(eventType="generation.completed", mode="test")

        for entry in emulator.requests:
            is_api = entry.path.startswith("/v1/") and "/uploads/" not in entry.path
            if not is_api:
                leaked = any(API_KEY in value for _, value in entry.headers)
                _check(not leaked, f"API key sent to {entry.method} {entry.path}")
        paths = [entry.path for entry in emulator.requests]
        print(f"diffio {version} (era {era}) against the emulator at {url}: OK")
        print(f"  {len(paths)} requests; first flow:")
        for entry in list(emulator.requests)[:12]:
            print(f"    {entry.method:5} {entry.path} -> {entry.status}")
    return 0


if __name__ == "__main__":
    os.environ.pop("DIFFIO_API_BASE_URL", None)
    sys.exit(main())
