"""A partition simulated with real signals: a ``diffio-async batch run`` process is paused
(SIGSTOP) past its leases while its generations run, another worker process finishes its
files, then the paused one is resumed (SIGCONT). Its late writes are refused (the ledger is
unchanged, its results say ``lease``), no output is written twice, one generation per file.
No timing assertion: the test waits on what the ledger and the files show."""

from __future__ import annotations

import json
import os
import signal
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import psycopg
import pytest
from postgres_server import PostgresServer
from shared_batch_helpers import files, generations_per_file, register

from diffio_async.testing import TEST_API_KEY, emulated_diffio

pytestmark = pytest.mark.anyio

DEADLINE = 120.0  # seconds to wait for an observable state (generous: not a timing assertion)


def _rows(url: str, batch: str) -> list[tuple[Any, ...]]:
    """Every column of the batch's entries, leases included."""
    with psycopg.connect(url, autocommit=True) as admin:
        return admin.execute(
            "SELECT * FROM diffio_ledger_entries WHERE batch = %s ORDER BY seq", (batch,)
        ).fetchall()


def _states(url: str, batch: str) -> Counter[str]:
    with psycopg.connect(url, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT state FROM diffio_ledger_entries WHERE batch = %s", (batch,)
        ).fetchall()
    return Counter(row[0] for row in rows)


async def _every_generation_created(url: str, batch: str, count: int) -> None:
    """Wait until every item is at ``generation_created`` (its worker holds it, waiting)."""
    with anyio.fail_after(DEADLINE):
        while True:
            states = await anyio.to_thread.run_sync(_states, url, batch)
            if states["generation_created"] == count:
                return
            await anyio.sleep(0.1)


def _seen(path: Path) -> tuple[bytes, int, int]:
    info = path.stat()
    return path.read_bytes(), info.st_ino, info.st_mtime_ns


async def test_a_paused_worker_resumed_past_its_leases_writes_nothing(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    url = postgres_server.url()
    batch = f"pause-{uuid.uuid4().hex[:12]}"
    sources = files(tmp_path / "in", 4)
    out = tmp_path / "out"
    await register(url, batch, sources)
    async with emulated_diffio(generation_seconds=6) as env:
        argv = [sys.executable, "-m", "diffio_async", "batch", "run", batch, "--ledger", url]
        argv += ["-o", str(out), "--lease", "2", "--concurrency", "4", "--json"]
        argv += ["--api-key", TEST_API_KEY, "--base-url", env.base_url]
        paused = await anyio.open_process(argv)
        try:
            await _every_generation_created(url, batch, len(sources))
            os.kill(paused.pid, signal.SIGSTOP)  # a partition: it renews nothing now
            with anyio.fail_after(DEADLINE):  # its leases run out; another worker finishes
                other = await anyio.run_process(argv, check=False)
            assert other.returncode == 0, other.stderr
            finished = await anyio.to_thread.run_sync(_rows, url, batch)
            outputs = {path.name: _seen(path) for path in out.iterdir()}
            os.kill(paused.pid, signal.SIGCONT)  # back: everything it held is another's
            assert paused.stdout is not None
            with anyio.fail_after(DEADLINE):
                late = b"".join([chunk async for chunk in paused.stdout])
                assert await paused.wait() == 1
        finally:
            if paused.returncode is None:
                os.kill(paused.pid, signal.SIGCONT)
                paused.kill()
                await paused.wait()
        per_file = generations_per_file(env)
    done = [json.loads(line) for line in other.stdout.splitlines()]
    assert sorted(item["source"] for item in done) == sorted(sources)
    assert all(item["ok"] for item in done)
    # the late worker wrote nothing: every result of it says it lost the lease, the ledger
    # rows (leases included) and the outputs (bytes, inode, mtime) are as the other left them
    results = [json.loads(line) for line in late.splitlines()]
    assert results and {item["stage"] for item in results} == {"lease"}
    assert {item["ok"] for item in results} == {False}
    assert await anyio.to_thread.run_sync(_rows, url, batch) == finished
    assert {path.name: _seen(path) for path in out.iterdir()} == outputs
    assert sorted(outputs) == sorted(f"{Path(s).stem}.mp3" for s in sources)
    assert per_file == Counter({Path(source).name: 1 for source in sources})
