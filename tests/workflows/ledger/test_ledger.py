"""The bulk ledger: schema, state machine, resume after crashes, concurrency, key derivation."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import sys
import textwrap
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from diffio_async.errors import (
    DiffioError,
    InvalidRequestError,
    InvalidTransitionError,
    LedgerError,
    LedgerFormatError,
)
from diffio_async.workflows.ledger import (
    SCHEMA_VERSION,
    STATES,
    Ledger,
    LedgerEntry,
    canonical_options,
    hash_file,
    idempotency_key_for,
)

HASH_A = hashlib.sha256(b"a").hexdigest()
HASH_B = hashlib.sha256(b"b").hexdigest()
MODEL = "diffio-3.5"
OPTIONS = {"params": {"prompt": "x"}, "sampling": {"seed": 7, "steps": 12}}


async def _register(ledger: Ledger, source: str = "/in/a.wav", **overrides: Any) -> LedgerEntry:
    identity: dict[str, Any] = {
        "size": 10,
        "content_hash": HASH_A,
        "model": MODEL,
        "options": OPTIONS,
    }
    identity.update(overrides)
    return await ledger.register(source, **identity)


async def _run_to(ledger: Ledger, source: str, i: int, last: str) -> LedgerEntry:
    """Drive one entry through the happy path up to ``last``."""
    steps: list[tuple[str, dict[str, str]]] = [
        ("project_created", {"project_id": f"proj-{i}"}),
        ("uploaded", {}),
        ("generation_created", {"generation_id": f"gen-{i}"}),
        ("complete", {}),
        ("downloaded", {"output_path": f"/out/{i}.mp3"}),
    ]
    entry = await ledger.get(source)
    assert entry is not None
    for state, fields in steps:
        entry = await ledger.record(source, state=state, **fields)  # type: ignore[arg-type]
        if state == last:
            break
    return entry


# --- schema, open, close ---------------------------------------------------------------------


@pytest.mark.anyio
async def test_schema_is_created_and_entries_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "batch.sqlite"
    async with await Ledger.open(path) as ledger:
        assert ledger.path == path and not ledger.closed
        assert await ledger.entries() == []
        assert await ledger.counts() == dict.fromkeys(STATES, 0)
        entry = await _register(ledger)
        entry = await _run_to(ledger, entry.source, 1, "uploaded")
        await ledger.record("/in/b.wav", error="note", error_stage="scan")
    assert ledger.closed

    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert raw.execute("PRAGMA application_id").fetchone()[0] != 0
    raw.close()

    async with await Ledger.open(path) as reopened:
        assert await reopened.get(entry.source) == entry
        assert [e.source for e in await reopened.entries()] == ["/in/a.wav", "/in/b.wav"]
        pending = await reopened.get("/in/b.wav")
        assert pending is not None and pending.state == "pending" and pending.error == "note"
        assert await reopened.get("/in/missing.wav") is None


@pytest.mark.anyio
async def test_a_ledger_written_before_served_type_gains_it_when_opened(tmp_path: Path) -> None:
    """``served_type`` (what the server chose to serve) came after schema 1: a file without
    the column keeps its entries (``served_type`` None) and records it once reopened."""
    path = tmp_path / "old.sqlite"
    async with await Ledger.open(path) as ledger:
        entry = await _run_to(ledger, (await _register(ledger)).source, 1, "downloaded")
    with sqlite3.connect(path) as raw:
        raw.execute("ALTER TABLE entries DROP COLUMN served_type")  # as older versions wrote it
    raw.close()
    async with await Ledger.open(path) as reopened:
        old = await reopened.get(entry.source)
        assert old is not None and old.served_type is None and old.output_path == "/out/1.mp3"
        again = await reopened.record(entry.source, state="downloaded", served_type="audio")
        assert again.served_type == "audio"
    async with await Ledger.open(path) as third:
        assert await third.get(entry.source) == again


@pytest.mark.anyio
async def test_closed_ledger_refuses_calls_and_aclose_is_idempotent(tmp_path: Path) -> None:
    ledger = await Ledger.open(tmp_path / "l.sqlite")
    await ledger.aclose()
    await ledger.aclose()
    with pytest.raises(LedgerError, match="closed"):
        await ledger.get("x")
    with pytest.raises(LedgerError, match="closed"):
        await ledger.record("x")


@pytest.mark.anyio
async def test_a_foreign_sqlite_database_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as raw:
        raw.execute("CREATE TABLE songs (name TEXT)")
    raw.close()
    before = path.read_bytes()
    with pytest.raises(LedgerFormatError, match="not a diffio_async ledger"):
        await Ledger.open(path)
    assert await anyio.Path(path).read_bytes() == before
    assert not await anyio.Path(f"{path}-wal").exists()


@pytest.mark.anyio
async def test_a_garbage_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"these are not the droids you are looking for\n" * 100)
    with pytest.raises(LedgerFormatError, match="not a diffio_async ledger") as caught:
        await Ledger.open(path)
    assert isinstance(caught.value, DiffioError)


@pytest.mark.anyio
async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    await (await Ledger.open(path)).aclose()
    with sqlite3.connect(path) as raw:
        raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(LedgerFormatError, match="newer"):
        await Ledger.open(path)


@pytest.mark.anyio
async def test_an_unopenable_path_is_a_ledger_error(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="cannot open") as caught:
        await Ledger.open(tmp_path / "missing-dir" / "l.sqlite")
    assert not isinstance(caught.value, LedgerFormatError)


# --- state machine ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_the_happy_path_moves_forward_and_derives_the_key(tmp_path: Path) -> None:
    async with await Ledger.open(tmp_path / "l.sqlite") as ledger:
        entry = await _register(ledger)
        assert entry.state == "hashed" and entry.options == canonical_options(OPTIONS)
        assert entry.idempotency_key is None
        created = await ledger.record(entry.source, state="project_created", project_id="p1")
        assert created.idempotency_key == idempotency_key_for(HASH_A, MODEL, OPTIONS, "p1")
        await ledger.record(entry.source, state="uploaded")
        generation = await ledger.record(
            entry.source, state="generation_created", generation_id="g1"
        )
        assert generation.idempotency_key == created.idempotency_key
        await ledger.record(entry.source, state="complete")
        done = await ledger.record(entry.source, state="downloaded", output_path=tmp_path / "o")
        assert done.done and done.output_path == str(tmp_path / "o")
        assert done.created_at == entry.created_at and done.updated_at >= entry.updated_at
        assert (await ledger.counts())["downloaded"] == 1
        # Skipping states forward is allowed when the results are given.
        skipped = await ledger.record(
            "/in/c.wav",
            state="generation_created",
            size=3,
            content_hash=HASH_B,
            model=MODEL,
            project_id="p2",
            generation_id="g2",
        )
        assert skipped.last_good_state == "generation_created"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("reached", "target"),
    [
        ("uploaded", "project_created"),
        ("uploaded", "hashed"),
        ("generation_created", "uploaded"),
        ("complete", "pending"),
        ("downloaded", "complete"),
        ("downloaded", "failed"),
    ],
)
async def test_moving_backwards_is_refused(tmp_path: Path, reached: str, target: str) -> None:
    async with await Ledger.open(tmp_path / "l.sqlite") as ledger:
        entry = await _register(ledger)
        before = await _run_to(ledger, entry.source, 1, reached)
        with pytest.raises(InvalidTransitionError, match=repr(reached)):
            await ledger.record(entry.source, state=target)  # type: ignore[arg-type]
        assert await ledger.get(entry.source) == before


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("state", "missing"),
    [
        ("hashed", "size, content_hash, model"),
        ("project_created", "project_id"),
        ("generation_created", "generation_id"),
        ("downloaded", "output_path"),
    ],
)
async def test_a_state_needs_the_results_of_its_steps(
    tmp_path: Path, state: str, missing: str
) -> None:
    async with await Ledger.open(tmp_path / "l.sqlite") as ledger:
        if state != "hashed":
            await _register(ledger)
        with pytest.raises(InvalidTransitionError, match=missing):
            await ledger.record("/in/a.wav", state=state)  # type: ignore[arg-type]
        with pytest.raises(InvalidTransitionError, match="unknown state"):
            await ledger.record("/in/a.wav", state="exploded")  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_server_ids_are_write_once_and_identity_is_frozen(tmp_path: Path) -> None:
    async with await Ledger.open(tmp_path / "l.sqlite") as ledger:
        entry = await _register(ledger)
        with pytest.raises(InvalidTransitionError, match="model cannot change"):
            await ledger.record(entry.source, model="diffio-2")
        await _run_to(ledger, entry.source, 1, "generation_created")
        same = await ledger.record(entry.source, generation_id="gen-1", project_id="proj-1")
        assert same.state == "generation_created"
        with pytest.raises(InvalidTransitionError, match="generation_id is already"):
            await ledger.record(entry.source, generation_id="gen-2")
        with pytest.raises(InvalidTransitionError, match="project_id is already"):
            await ledger.record(entry.source, project_id="proj-2")
        with pytest.raises(InvalidTransitionError, match="idempotency_key is already"):
            await ledger.record(entry.source, idempotency_key="mine")


@pytest.mark.anyio
async def test_failed_resumes_from_the_last_good_state(tmp_path: Path) -> None:
    async with await Ledger.open(tmp_path / "l.sqlite") as ledger:
        entry = await _register(ledger)
        uploaded = await _run_to(ledger, entry.source, 1, "uploaded")
        failed = await ledger.record(
            entry.source, state="failed", error="boom", error_stage="generation"
        )
        assert (failed.state, failed.last_good_state) == ("failed", "uploaded")
        assert failed.project_id == "proj-1" and failed.error == "boom"
        assert await ledger.entries(state="failed") == [failed]
        with pytest.raises(InvalidTransitionError, match="resumes at 'uploaded'"):
            await ledger.record(entry.source, state="generation_created", generation_id="g")
        again = await ledger.record(entry.source, state="failed", error="boom 2")
        assert again.last_good_state == "uploaded" and again.error == "boom 2"

        resumed = await ledger.retry(entry.source)
        assert resumed.state == "uploaded" and resumed.error is None
        assert resumed.idempotency_key == uploaded.idempotency_key
        assert await ledger.retry(entry.source) == resumed  # not failed: unchanged

        # A retry from an earlier state forgets the later results: a new project, a new key.
        await ledger.record(entry.source, state="failed", error="project expired")
        restarted = await ledger.record(entry.source, state="hashed")
        assert restarted.project_id is None and restarted.idempotency_key is None
        renewed = await ledger.record(entry.source, state="project_created", project_id="p9")
        assert renewed.idempotency_key == idempotency_key_for(HASH_A, MODEL, OPTIONS, "p9")
        assert renewed.idempotency_key != uploaded.idempotency_key


@pytest.mark.anyio
async def test_mark_attempt_counts_and_needs_a_known_source(tmp_path: Path) -> None:
    async with await Ledger.open(tmp_path / "l.sqlite") as ledger:
        with pytest.raises(LedgerError, match="no entry"):
            await ledger.mark_attempt("/in/a.wav")
        with pytest.raises(LedgerError, match="no entry"):
            await ledger.retry("/in/a.wav")
        await _register(ledger)
        await ledger.mark_attempt("/in/a.wav")
        entry = await ledger.mark_attempt("/in/a.wav")
        assert entry.attempts == 2 and entry.state == "hashed"


# --- batch identity ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_register_resumes_the_same_item_and_restarts_a_changed_one(tmp_path: Path) -> None:
    async with await Ledger.open(tmp_path / "l.sqlite") as ledger:
        await ledger.record("/in/a.wav")  # pending, known before hashing
        first = await _register(ledger)
        assert first.state == "hashed"
        progressed = await _run_to(ledger, first.source, 1, "generation_created")
        await ledger.mark_attempt(first.source)
        # Same identity, options in another key order: unchanged, nothing written.
        reordered = dict(reversed(list(OPTIONS.items())))
        same = await _register(ledger, options=reordered)
        assert same.state == "generation_created" and same.generation_id == "gen-1"
        assert same.updated_at > progressed.updated_at  # the mark_attempt, not the register

        changes: list[dict[str, Any]] = [
            {"content_hash": HASH_B},
            {"size": 11},
            {"model": "diffio-2"},
            {"options": {"params": {"prompt": "y"}}},
        ]
        previous_key = progressed.idempotency_key
        for index, change in enumerate(changes):
            restarted = await _register(ledger, **change)
            assert restarted.state == "hashed" and restarted.last_good_state == "hashed"
            assert (restarted.project_id, restarted.generation_id) == (None, None)
            assert (restarted.idempotency_key, restarted.attempts) == (None, 0)
            assert restarted.created_at == first.created_at
            assert await ledger.get(first.source) == restarted
            moved = await _run_to(ledger, first.source, 10 + index, "downloaded")
            assert moved.idempotency_key not in {None, previous_key}
            previous_key = moved.idempotency_key
        # A finished item registered again is still finished: the re-run skips it.
        last = changes[-1]
        assert (await _register(ledger, **last)).state == "downloaded"


# --- durability and crashes ------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_crash_snapshot_without_aclose_has_every_committed_step(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    ledger = await Ledger.open(path)
    try:
        for i in range(20):  # distinct media (identical media would adopt one upload)
            digest = hashlib.sha256(str(i).encode()).hexdigest()
            await _register(ledger, f"/in/{i}.wav", content_hash=digest)
            await _run_to(ledger, f"/in/{i}.wav", i, "generation_created")
        await ledger.record("/in/0.wav", state="failed", error="x")
        expected = await ledger.entries()
        # What a SIGKILL leaves: the files as they are, WAL not checkpointed, no clean close.
        crashed = tmp_path / "crashed"
        crashed.mkdir()
        for suffix in ("", "-wal"):
            shutil.copyfile(f"{path}{suffix}", f"{crashed / 'l.sqlite'}{suffix}")
    finally:
        await ledger.aclose()
    async with await Ledger.open(crashed / "l.sqlite") as recovered:
        assert await recovered.entries() == expected


CHILD = textwrap.dedent(
    """
    import hashlib, sys
    import anyio
    from diffio_async.workflows.ledger import Ledger

    STEPS = [
        ("project_created", "project_id", "proj-"),
        ("uploaded", None, None),
        ("generation_created", "generation_id", "gen-"),
        ("complete", None, None),
        ("downloaded", "output_path", "/out/"),
    ]

    async def item(ledger, i):
        source = f"/in/{i}.wav"
        digest = hashlib.sha256(str(i).encode()).hexdigest()
        await ledger.register(source, size=i, content_hash=digest, model="m", options={"i": i})
        print(i, "hashed", flush=True)
        for state, field, prefix in STEPS:
            fields = {field: f"{prefix}{i}"} if field else {}
            await ledger.record(source, state=state, **fields)
            print(i, state, flush=True)

    async def main():
        async with await Ledger.open(sys.argv[1]) as ledger:
            numbers = iter(range(1_000_000))
            async def worker():
                for i in numbers:
                    await item(ledger, i)
            async with anyio.create_task_group() as tg:
                for _ in range(8):
                    tg.start_soon(worker)

    anyio.run(main)
    """
)


@pytest.mark.anyio
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
async def test_sigkill_mid_batch_leaves_a_consistent_ledger(tmp_path: Path) -> None:
    path = tmp_path / "killed.sqlite"
    acked: dict[int, str] = {}
    async with await anyio.open_process([sys.executable, "-c", CHILD, str(path)]) as process:
        assert process.stdout is not None
        lines = BufferedByteReceiveStream(process.stdout)
        with anyio.fail_after(60):
            while len(acked) < 400:
                number, state = (await lines.receive_until(b"\n", 1000)).decode().split()
                acked[int(number)] = state
        process.kill()  # SIGKILL, mid-write: the child writes all the time
        assert await process.wait() == -9

    order: dict[str, int] = {state: rank for rank, state in enumerate(STATES)}
    async with await Ledger.open(path) as ledger:
        entries = {entry.source: entry for entry in await ledger.entries()}
        assert sum((await ledger.counts()).values()) == len(entries)
    assert any(entry.state != "downloaded" for entry in entries.values())  # killed mid-item
    for item, acked_state in acked.items():
        entry = entries[f"/in/{item}.wav"]
        assert order[entry.state] >= order[acked_state], (item, acked_state, entry.state)
    for entry in entries.values():  # no half rows: every entry holds exactly its steps
        i = int(Path(entry.source).stem)
        rank = order[entry.state]
        assert entry.content_hash == hashlib.sha256(str(i).encode()).hexdigest()
        assert entry.project_id == (f"proj-{i}" if rank >= order["project_created"] else None)
        assert entry.generation_id == (f"gen-{i}" if rank >= order["generation_created"] else None)
        assert entry.output_path == (f"/out/{i}" if rank >= order["downloaded"] else None)
        if entry.project_id:
            key = idempotency_key_for(entry.content_hash, "m", {"i": i}, entry.project_id)
            assert entry.idempotency_key == key
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    raw.close()


# --- concurrency -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_records_from_100_tasks_all_land(tmp_path: Path) -> None:
    errors: list[Exception] = []
    async with await Ledger.open(tmp_path / "l.sqlite") as ledger:
        await ledger.record("shared")

        async def task(i: int) -> None:
            source = f"/in/{i}.wav"
            await _register(ledger, source, content_hash=hashlib.sha256(bytes([i])).hexdigest())
            await ledger.mark_attempt("shared")
            await _run_to(ledger, source, i, "downloaded" if i % 2 else "uploaded")
            if i % 10 == 0:  # an invalid step in the same group commit fails alone
                try:
                    await ledger.record(source, state="hashed")
                except InvalidTransitionError as exc:
                    errors.append(exc)

        async with anyio.create_task_group() as tg:
            for i in range(100):
                tg.start_soon(task, i)

        counts = await ledger.counts()
        assert (counts["downloaded"], counts["uploaded"], counts["pending"]) == (50, 50, 1)
        assert sum(counts.values()) == 101
        shared = await ledger.get("shared")
        assert shared is not None and shared.attempts == 100
        assert len(errors) == 10
        assert len(await ledger.entries(state="downloaded")) == 50


@pytest.mark.anyio
async def test_a_write_cancelled_before_it_runs_is_withdrawn(tmp_path: Path) -> None:
    async with await Ledger.open(tmp_path / "l.sqlite") as ledger:
        with anyio.CancelScope() as scope:
            scope.cancel()
            await ledger.record("/in/a.wav")
        assert await ledger.get("/in/a.wav") is None
        assert (await ledger.record("/in/b.wav")).state == "pending"


# --- pure helpers ----------------------------------------------------------------------------


def test_idempotency_key_is_stable_and_depends_on_every_input() -> None:
    key = idempotency_key_for(HASH_A, MODEL, OPTIONS, "proj-1")
    assert key.startswith("diffio-async-") and len(key) == 53 <= 255
    assert key == idempotency_key_for(HASH_A, MODEL, canonical_options(OPTIONS), "proj-1")
    assert key == idempotency_key_for(HASH_A, MODEL, dict(reversed(OPTIONS.items())), "proj-1")
    # A golden value: the derivation must never change between releases (resumes depend on it).
    assert key == "diffio-async-8888527f6bfc419bc8cc7cb82fae492995ceb4ec"
    others = {
        idempotency_key_for(HASH_B, MODEL, OPTIONS, "proj-1"),
        idempotency_key_for(HASH_A, "diffio-2", OPTIONS, "proj-1"),
        idempotency_key_for(HASH_A, MODEL, {"params": {"prompt": "y"}}, "proj-1"),
        idempotency_key_for(HASH_A, MODEL, None, "proj-1"),
        idempotency_key_for(HASH_A, MODEL, OPTIONS, "proj-2"),
    }
    assert len(others) == 5 and key not in others
    with pytest.raises(InvalidRequestError, match="sha256"):
        idempotency_key_for("abc", MODEL, None, "p")
    with pytest.raises(InvalidRequestError, match="sha256"):
        idempotency_key_for(HASH_A.upper(), MODEL, None, "p")
    with pytest.raises(InvalidRequestError, match="project_id"):
        idempotency_key_for(HASH_A, MODEL, None, "")


def test_canonical_options() -> None:
    assert canonical_options(None) == "{}"
    assert canonical_options({"b": 1, "a": {"d": [1, 2], "c": "é"}}) == (
        '{"a":{"c":"é","d":[1,2]},"b":1}'
    )
    assert canonical_options('{"b": 1, "a": 2}') == '{"a":2,"b":1}'
    with pytest.raises(InvalidRequestError, match="JSON object"):
        canonical_options("[1]")
    with pytest.raises(InvalidRequestError, match="JSON-serializable"):
        canonical_options({"x": object()})
    with pytest.raises(InvalidRequestError, match="JSON-serializable"):
        canonical_options({"x": float("nan")})


@pytest.mark.anyio
@pytest.mark.parametrize("size", [0, 1, 1000, 3 * 4096 + 17])
async def test_hash_file_streams_sha256(tmp_path: Path, size: int) -> None:
    data = bytes(i % 251 for i in range(size))
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert await hash_file(path, chunk_size=4096) == (size, hashlib.sha256(data).hexdigest())
    assert await hash_file(str(path)) == (size, hashlib.sha256(data).hexdigest())
    with pytest.raises(InvalidRequestError, match="chunk_size"):
        await hash_file(path, chunk_size=0)
    with pytest.raises(FileNotFoundError):
        await hash_file(tmp_path / "missing")


@pytest.mark.anyio
async def test_identical_media_adopts_the_uploaded_project_and_so_its_key(tmp_path: Path) -> None:
    async with await Ledger.open(tmp_path / "l.sqlite") as ledger:
        await _register(ledger, "/in/a.wav")
        first = await _run_to(ledger, "/in/a.wav", 0, "uploaded")
        twin = await _register(ledger, "/in/copy-of-a.wav")
        assert twin.state == "uploaded" and twin.project_id == first.project_id
        assert twin.idempotency_key == first.idempotency_key
        other = await _register(ledger, "/in/other-model.wav", model="diffio-2")
        assert other.state == "hashed" and other.project_id is None


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_bad_arguments_raise_invalid_request_error(tmp_path: Path) -> None:
    async with await Ledger.open(tmp_path / "l.sqlite") as ledger:
        with pytest.raises(InvalidRequestError, match="source"):
            await ledger.record("")
        with pytest.raises(InvalidRequestError, match="unknown state"):
            await ledger.entries(state="exploded")  # type: ignore[arg-type]
        with pytest.raises(InvalidRequestError, match="model"):
            await _register(ledger, model="")
        with pytest.raises(InvalidRequestError, match="not valid JSON"):
            await _register(ledger, options="{nope")
        assert await ledger.entries() == []


@pytest.mark.anyio
async def test_a_downloaded_entry_has_no_generation_to_renew(tmp_path: Path) -> None:
    async with await Ledger.open(tmp_path / "l.sqlite") as ledger:
        entry = await _register(ledger)
        with pytest.raises(InvalidTransitionError, match="no generation"):
            await ledger.renew_generation(entry.source)
        done = await _run_to(ledger, entry.source, 1, "downloaded")
        with pytest.raises(InvalidTransitionError, match="'downloaded'"):
            await ledger.renew_generation(entry.source, error="late")
        assert await ledger.get(entry.source) == done
