"""What the tests of shared batches (many workers on one PostgreSQL batch) share: source
files, registering them, and the generations the emulator made per file."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from diffio_async.testing import EmulatedDiffio
from diffio_async.workflows.ledger import PostgresStore


def files(folder: Path, count: int) -> list[str]:
    """``count`` distinct small WAV-named files in ``folder``, by their real paths."""
    folder.mkdir(parents=True)
    paths = []
    for number in range(count):
        path = folder / f"take{number}.wav"
        path.write_bytes(b"RIFF" + os.urandom(64) + str(number).encode())
        paths.append(os.path.realpath(path))
    return paths


def generations_per_file(env: EmulatedDiffio) -> Counter[str]:
    """How many generations the emulator created for each uploaded file name."""
    core = env.emulator._core
    with core.state.lock:
        names = {pid: project.file_name for pid, project in core.state.projects.items()}
    counts: Counter[str] = Counter()
    for generation_id in env.emulator.generation_ids:
        project_id = env.emulator.generation_progress(generation_id)["apiProjectId"]
        counts[names[project_id]] += 1
    return counts


async def register(url: str, batch: str, sources: list[str]) -> None:
    """Register ``sources`` on ``batch`` (every one new)."""
    store = PostgresStore(url, batch=batch, shared=True, owner="registrar")
    await store.open()
    try:
        assert await store.add_sources(sources) == len(sources)
    finally:
        await store.aclose()
