"""The scale-out acceptance run: ``batch run`` worker processes work one batch of objects
from a local S3 to a local S3 against one emulator, over the suite's real PostgreSQL.

Three workers start; one is SIGKILLed halfway (its leases are never handed on) and a fourth
starts later. Every object is restored exactly once (one output each, the source's bytes,
one generation per file), and the killed worker's files are taken over by the others within
their lease's end plus one poll (measured from the ledger, with a margin for a loaded
machine: this is a bound, not a speed measurement).

``DIFFIO_FLEET_FILES`` sets the batch's size (1,000 by default, the acceptance run). The
workers are separate processes, the same on either backend: the backend only drives this
test's own orchestration, so the full-size run is made once (on asyncio) and trio runs the
same test at a tenth of the size.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import uuid
from collections import Counter
from typing import Any

import anyio
import psycopg
import pytest
from anyio.abc import Process
from postgres_server import PASSWORD, PostgresServer
from s3_server import SECRET, Buckets
from shared_batch_helpers import generations_per_file

from diffio_async.testing import TEST_API_KEY, emulated_diffio
from diffio_async.workflows.ledger import Ledger, PostgresStore

pytestmark = pytest.mark.anyio

SIZE = int(os.environ.get("DIFFIO_FLEET_FILES", "1000"))
LEASE = 6.0  # seconds: the workers' --lease
POLL = min(LEASE / 3, 1.0)  # how often an idle worker looks for claimable files
MARGIN = 10.0  # seconds of slack for a loaded two-core machine (see the module docstring)
FOLDERS = 10


def _payload(number: int) -> bytes:
    return b"RIFF" + os.urandom(200) + f"take {number}".encode()


def _key(number: int, suffix: str) -> str:
    return f"{number % FOLDERS}/take{number:04d}{suffix}"


def _dead_items(url: str, batch: str, pid: int) -> dict[str, float]:
    """The unfinished files the worker ``pid`` leased, with the seconds left on each lease."""
    with psycopg.connect(url, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT source, extract(epoch FROM lease_expires - clock_timestamp()) "
            "FROM diffio_ledger_entries WHERE batch = %s AND lease_owner LIKE %s "
            "AND state NOT IN ('downloaded', 'failed') AND lease_expires IS NOT NULL",
            (batch, f"%:{pid}:%"),
        ).fetchall()
    return {str(source): float(left) for source, left in rows}


def _holders(url: str, batch: str, sources: list[str]) -> dict[str, tuple[str | None, str]]:
    with psycopg.connect(url, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT source, lease_owner, state FROM diffio_ledger_entries "
            "WHERE batch = %s AND source = ANY(%s)",
            (batch, sources),
        ).fetchall()
    return {str(source): (owner, str(state)) for source, owner, state in rows}


def _ledger_text(url: str, batch: str) -> str:
    with psycopg.connect(url, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT row_to_json(e)::text FROM diffio_ledger_entries AS e WHERE batch = %s",
            (batch,),
        ).fetchall()
    return "\n".join(str(row[0]) for row in rows)


async def test_workers_restore_a_batch_of_objects_exactly_once_through_a_kill(
    postgres_server: PostgresServer, s3: Buckets, anyio_backend_name: str
) -> None:
    files = SIZE if anyio_backend_name == "asyncio" else max(SIZE // 10, 20)
    url = postgres_server.url()
    batch = f"fleet-{uuid.uuid4().hex[:10]}"
    payloads = {number: _payload(number) for number in range(files)}
    s3.fs.pipe(  # type: ignore[attr-defined]
        {f"{s3.source}/in/{_key(n, '.wav')}": data for n, data in payloads.items()}
    )
    cli = [sys.executable, "-m", "diffio_async"]
    added = await anyio.run_process(
        [*cli, "batch", "add", batch, f"s3://{s3.source}/in/", "--ledger", url, "--json"]
    )
    assert json.loads(added.stdout)["added"] == files

    async with emulated_diffio(generation_seconds=0.2) as env:
        run = [*cli, "batch", "run", batch, "--ledger", url, "--json", "--quiet"]
        run += ["-o", f"s3://{s3.output}/out", "--lease", f"{LEASE:g}", "--concurrency", "8"]
        run += ["--api-key", TEST_API_KEY, "--base-url", env.base_url]
        lines: list[dict[str, Any]] = []
        errors: list[bytes] = []
        codes: dict[int, int] = {}
        halfway, later = anyio.Event(), anyio.Event()
        taken_over: dict[str, float] = {}  # dead file -> seconds after the kill it moved on

        async def work(process: Process) -> None:
            assert process.stdout is not None and process.stderr is not None
            async with anyio.create_task_group() as streams:

                async def errors_of() -> None:
                    assert process.stderr is not None
                    errors.append(b"".join([chunk async for chunk in process.stderr]))

                streams.start_soon(errors_of)
                buffer = b""
                async for chunk in process.stdout:
                    buffer += chunk
                    *complete, buffer = buffer.split(b"\n")
                    lines.extend(json.loads(line) for line in complete if line.strip())
                    if len(lines) >= files // 2:
                        halfway.set()
                    if len(lines) >= files * 3 // 4:
                        later.set()
            codes[process.pid] = await process.wait()

        async def watch(dead: dict[str, float], killed_at: float) -> None:
            sources = list(dead)
            while len(taken_over) < len(sources):
                holders = await anyio.to_thread.run_sync(_holders, url, batch, sources)
                for source, (owner, state) in holders.items():
                    moved = owner is not None and f":{doomed.pid}:" not in owner
                    if source not in taken_over and (moved or state == "downloaded"):
                        taken_over[source] = anyio.current_time() - killed_at
                await anyio.sleep(0.2)

        with anyio.fail_after(900):  # a hang fails (never a speed assertion)
            async with anyio.create_task_group() as tg:
                doomed = await anyio.open_process(run)
                tg.start_soon(work, doomed)
                for _ in range(2):
                    tg.start_soon(work, await anyio.open_process(run))
                await halfway.wait()
                doomed.send_signal(signal.SIGKILL)  # its leases are never handed on
                killed_at = anyio.current_time()
                dead = await anyio.to_thread.run_sync(_dead_items, url, batch, doomed.pid)
                tg.start_soon(watch, dead, killed_at)
                await later.wait()
                tg.start_soon(work, await anyio.open_process(run))  # the fourth, started later
        per_file = generations_per_file(env)

    survivors = [code for pid, code in codes.items() if pid != doomed.pid]
    assert survivors == [0, 0, 0], b"\n".join(errors).decode(errors="replace")[-3000:]
    assert codes[doomed.pid] == -signal.SIGKILL

    # exactly once: one output per object, named after it, with its bytes
    expected = sorted(f"out/{_key(n, '.mp3')}" for n in range(files))  # the layout mirrored
    assert s3.keys(s3.output) == expected
    stored = s3.fs.cat([f"{s3.output}/{key}" for key in expected])  # type: ignore[attr-defined]
    for number, data in payloads.items():
        assert stored[f"{s3.output}/out/{_key(number, '.mp3')}"] == data, number
    assert per_file == Counter({f"take{n:04d}.wav": 1 for n in range(files)})
    reported = [line["source"] for line in lines]
    assert len(reported) == len(set(reported))  # no file reported done twice
    assert all(line["ok"] for line in lines), [line for line in lines if not line["ok"]][:3]

    store = PostgresStore(url, batch=batch, shared=True)
    async with await Ledger.open(store):
        status = await store.status()
    assert status.counts["downloaded"] == files and status.unfinished == 0

    # the killed worker's files moved on within their lease's end plus one poll
    assert dead, "the killed worker held no file"
    assert sorted(taken_over) == sorted(dead)
    late = {s: taken_over[s] - max(left, 0.0) for s, left in dead.items()}
    assert max(late.values()) <= POLL + MARGIN, late
    print(
        f"\nkilled worker's {len(dead)} files taken over at most {max(late.values()):.2f} s "
        f"after their lease ended (poll {POLL:g} s)"
    )

    # no credential anywhere: the worker's output, the ledger, the status
    shown = b"\n".join(errors).decode() + json.dumps(lines) + _ledger_text(url, batch)
    for secret in (SECRET, TEST_API_KEY, PASSWORD):
        assert secret not in shown
