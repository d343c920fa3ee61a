"""A fatal error on one ``diffio-async batch run`` process stops every worker of the batch
through the ledger: three worker processes with their own API keys against one emulator, one
key put on billing hold mid-batch. ``batch status`` says why, ``batch resume`` clears it, and
the batch then finishes with one generation per file. No timing assertion: the test waits on
what the ledger and the processes show."""

from __future__ import annotations

import json
import socket
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.abc import Process
from postgres_server import PASSWORD, PostgresServer
from shared_batch_helpers import files, generations_per_file, register

from diffio_async.testing import emulated_diffio
from diffio_async.workflows.ledger import PostgresStore

pytestmark = pytest.mark.anyio

DEADLINE = 120.0  # seconds to wait for an observable state (generous: not a timing assertion)


def _argv(*words: str) -> list[str]:
    return [sys.executable, "-m", "diffio_async", "batch", *words]


async def _status(url: str, batch: str) -> dict[str, Any]:
    done = await anyio.run_process(_argv("status", batch, "--ledger", url, "--json"))
    result: dict[str, Any] = json.loads(done.stdout)
    return result


async def _wait_for(check: Any) -> None:
    """Poll ``check()`` until it is true (the state lives in other processes)."""
    with anyio.fail_after(DEADLINE):
        while True:
            if await check():
                return
            await anyio.sleep(0.1)


def _owner_of(process: Process) -> str:
    return f"{socket.gethostname()}:{process.pid}:"


async def test_a_402_on_one_worker_process_stops_all_three(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    url = postgres_server.url()
    batch = f"stop-{uuid.uuid4().hex[:12]}"
    sources = files(tmp_path / "in", 9)
    out = tmp_path / "out"
    await register(url, batch, sources)
    async with emulated_diffio(generation_seconds=8) as env:
        keys = [env.emulator.mint_key(admin=True) for _ in range(3)]

        def worker(key: str) -> list[str]:
            argv = _argv("run", batch, "--ledger", url, "-o", str(out), "--lease", "3")
            return [*argv, "--concurrency", "2", "--api-key", key, "--base-url", env.base_url]

        processes = [await anyio.open_process(worker(key.key)) for key in keys]
        try:
            owners = [_owner_of(process) for process in processes]

            async def all_three_hold_files() -> bool:
                status = await _status(url, batch)
                holding = {w["owner"] for w in status["workers"] if w["leased"]}
                return all(any(o.startswith(owner) for o in holding) for owner in owners)

            await _wait_for(all_three_hold_files)
            env.emulator.set_billing_hold(key_id=keys[2].key_id)  # its next call: 402
            codes, errors = [], []
            for process in processes:
                assert process.stderr is not None
                with anyio.fail_after(DEADLINE):
                    errors.append(b"".join([chunk async for chunk in process.stderr]).decode())
                    codes.append(await process.wait())
        finally:
            for process in processes:
                if process.returncode is None:
                    process.kill()
                    await process.wait()
        assert codes == [1, 1, 1]
        for error in errors:  # one line each, naming the reason; no secret
            lines = error.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("diffio-async: worker stopped: ")
            assert "paymentFailed" in lines[0], error
            assert all(key.key not in error for key in keys) and PASSWORD not in error
        for error in errors[:2]:
            assert f"stopped by worker {owners[2]}" in error
        status = await _status(url, batch)
        assert status["stop"]["worker"].startswith(owners[2])
        assert "status 402, code paymentFailed" in status["stop"]["reason"]
        assert status["counts"]["downloaded"] == 0
        assert all(key.key not in json.dumps(status) for key in keys)
        table = await anyio.run_process(_argv("status", batch, "--ledger", url))
        assert f"stopped by worker {owners[2]}" in table.stdout.decode()
        # a stopped batch refuses a new worker with the reason, and sends no request
        before = len(env.emulator.requests)
        refused = await anyio.run_process(worker(keys[0].key), check=False)
        assert refused.returncode == 1 and b"paymentFailed" in refused.stderr
        assert len(env.emulator.requests) == before
        # billing fixed and the batch resumed: every file restored, one generation each
        env.emulator.set_billing_hold(False, key_id=keys[2].key_id)
        resumed = await anyio.run_process(_argv("resume", batch, "--ledger", url))
        assert b"resumed" in resumed.stdout
        assert (await _status(url, batch))["stop"] is None
        with anyio.fail_after(DEADLINE):
            last = await anyio.run_process(worker(keys[2].key), check=False)
        assert last.returncode == 0, last.stderr
        per_file = generations_per_file(env)
    assert per_file == Counter({Path(source).name: 1 for source in sources})
    outputs = sorted(p.name for p in out.iterdir())
    assert outputs == sorted(f"{Path(s).stem}.mp3" for s in sources)
    store = PostgresStore(url, batch=batch, shared=True)
    await store.open()
    try:
        assert (await store.counts())["downloaded"] == len(sources)
    finally:
        await store.aclose()
