"""The ``LedgerStore`` contract as tests that any store runs: subclass ``LedgerStoreConformance``.

A store's test module defines ``class TestMyStore(LedgerStoreConformance)`` with a ``stores``
fixture returning a :class:`StoreFactory` (see ``test_ledger_sqlite.py``); pytest then runs
every test below against that store, on asyncio and on trio. The tests use only the protocol
(plus the factory's crash snapshot), never a store's internals.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Protocol

import anyio
import attrs
import pytest

from diffio_async.errors import InvalidTransitionError, LedgerError, LedgerLockedError
from diffio_async.workflows.ledger import STATES, Identity, LedgerEntry, LedgerStore
from diffio_async.workflows.ledger._entry import fresh_entry, utc

MODEL = "diffio-3.5"
OPTIONS = '{"params":{}}'
NOW = 1_700_000_000.125


class StoreFactory(Protocol):
    """How the suite gets stores: new ones on a named batch, and crash snapshots."""

    def store(self, batch: str = "batch") -> LedgerStore:
        """A new store, not open yet, on ``batch`` (one name: one storage, shared by every
        store made with it)."""
        ...

    async def crash_copy(self, store: LedgerStore, batch: str, copy: str) -> None:
        """Make batch ``copy`` hold what a killed process leaves of ``store`` (open on
        ``batch``) at this instant, without closing or flushing ``store``."""
        ...


def _digest(number: int) -> str:
    return hashlib.sha256(str(number).encode()).hexdigest()


def _entry(source: str, **fields: object) -> LedgerEntry:
    """An entry as a state machine step would make it (the store does not check rules)."""
    return attrs.evolve(fresh_entry(source, NOW), **fields)


def _uploaded(source: str, project: str, *, digest: str, options: str = OPTIONS) -> LedgerEntry:
    return _entry(
        source,
        size=1,
        content_hash=digest,
        model=MODEL,
        options=options,
        state="uploaded",
        last_good_state="uploaded",
        project_id=project,
        idempotency_key=f"key-{project}",
    )


def _put(entry: LedgerEntry) -> Callable[[LedgerEntry | None], LedgerEntry]:
    """A change that writes ``entry`` whatever was there."""
    return lambda current: entry


def _with_attempt(current: LedgerEntry | None) -> LedgerEntry:
    assert current is not None
    return attrs.evolve(current, attempts=current.attempts + 1)


class LedgerStoreConformance:
    """Every test of the ``LedgerStore`` contract; subclasses provide the ``stores`` fixture."""

    @pytest.fixture
    def stores(self) -> StoreFactory:
        """The store under test (override in the subclass)."""
        raise NotImplementedError("a conformance subclass provides the stores fixture")

    # --- lifecycle ---------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_a_new_store_is_empty_and_counts_every_state(self, stores: StoreFactory) -> None:
        store = stores.store()
        assert store.closed
        await store.open()
        try:
            assert not store.closed
            assert await store.entries() == []
            assert await store.counts() == dict.fromkeys(STATES, 0)
            assert await store.get("/in/a.wav") is None
        finally:
            await store.aclose()
        assert store.closed
        await store.aclose()  # idempotent

    @pytest.mark.anyio
    async def test_a_store_that_is_not_open_refuses_every_call(self, stores: StoreFactory) -> None:
        store = stores.store()
        with pytest.raises(LedgerError, match="closed"):
            await store.get("/in/a.wav")
        await store.open()
        await store.aclose()
        with pytest.raises(LedgerError, match="closed"):
            await store.entries()
        with pytest.raises(LedgerError, match="closed"):
            await store.update("/in/a.wav", _put(_entry("/in/a.wav")))

    # --- update: read-modify-write -----------------------------------------------------------

    @pytest.mark.anyio
    async def test_update_hands_over_the_committed_entry_and_persists_the_result(
        self, stores: StoreFactory
    ) -> None:
        seen: list[LedgerEntry | None] = []
        first = _entry("/in/a.wav", error="note")
        second = attrs.evolve(first, state="failed", error="boom", updated_at=utc(NOW + 1))

        def step(entry: LedgerEntry) -> Callable[[LedgerEntry | None], LedgerEntry]:
            def change(current: LedgerEntry | None) -> LedgerEntry:
                seen.append(current)
                return entry

            return change

        store = stores.store()
        await store.open()
        try:
            assert await store.update("/in/a.wav", step(first)) == first
            assert await store.update("/in/a.wav", step(second)) == second
            assert seen == [None, first]
            assert await store.get("/in/a.wav") == second
            assert await store.entries(state="failed") == [second]
            assert await store.entries(state="pending") == []
            assert (await store.counts())["failed"] == 1
        finally:
            await store.aclose()

    @pytest.mark.anyio
    async def test_entries_keep_the_order_they_were_first_written_in(
        self, stores: StoreFactory
    ) -> None:
        store = stores.store()
        await store.open()
        try:
            for source in ("/in/c.wav", "/in/a.wav", "/in/b.wav"):
                await store.update(source, _put(_entry(source)))
            await store.update("/in/c.wav", _with_attempt)
            assert [e.source for e in await store.entries()] == [
                "/in/c.wav",
                "/in/a.wav",
                "/in/b.wav",
            ]
        finally:
            await store.aclose()

    @pytest.mark.anyio
    async def test_an_unchanged_result_is_returned_and_not_written(
        self, stores: StoreFactory
    ) -> None:
        store = stores.store()
        await store.open()
        try:
            entry = await store.update("/in/a.wav", _put(_entry("/in/a.wav")))
            again = await store.update("/in/a.wav", lambda current: current or entry)
            assert again == entry == await store.get("/in/a.wav")
        finally:
            await store.aclose()

    @pytest.mark.anyio
    async def test_a_refused_step_raises_its_own_error_and_writes_nothing(
        self, stores: StoreFactory
    ) -> None:
        def refuse(current: LedgerEntry | None) -> LedgerEntry:
            raise InvalidTransitionError("no")

        store = stores.store()
        await store.open()
        try:
            entry = await store.update("/in/a.wav", _put(_entry("/in/a.wav")))
            outcomes: dict[str, BaseException | LedgerEntry] = {}

            async def run(source: str, change: Callable[[LedgerEntry | None], LedgerEntry]) -> None:
                try:
                    outcomes[source] = await store.update(source, change)
                except Exception as exc:
                    outcomes[source] = exc

            async with anyio.create_task_group() as tg:  # the refusal among other writes
                tg.start_soon(run, "/in/a.wav", refuse)
                tg.start_soon(run, "/in/new.wav", refuse)
                for i in range(5):
                    tg.start_soon(run, f"/in/{i}.wav", _put(_entry(f"/in/{i}.wav")))
            assert isinstance(outcomes.pop("/in/a.wav"), InvalidTransitionError)
            assert isinstance(outcomes.pop("/in/new.wav"), InvalidTransitionError)
            assert all(isinstance(outcome, LedgerEntry) for outcome in outcomes.values())
            assert await store.get("/in/a.wav") == entry
            assert await store.get("/in/new.wav") is None
            assert len(await store.entries()) == 6
        finally:
            await store.aclose()

    @pytest.mark.anyio
    async def test_a_result_for_another_source_is_refused(self, stores: StoreFactory) -> None:
        store = stores.store()
        await store.open()
        try:
            with pytest.raises(LedgerError):
                await store.update("/in/a.wav", _put(_entry("/in/b.wav")))
            assert await store.entries() == []
        finally:
            await store.aclose()

    @pytest.mark.anyio
    async def test_read_modify_write_is_atomic_under_concurrent_tasks(
        self, stores: StoreFactory
    ) -> None:
        store = stores.store()
        await store.open()
        try:
            await store.update("shared", _put(_entry("shared")))

            async def task(i: int) -> None:
                own = f"/in/{i}.wav"
                await store.update(own, _put(_entry(own)))
                for _ in range(4):  # every increment reads what the previous one wrote
                    await store.update("shared", _with_attempt)
                    await store.update(own, _with_attempt)

            async with anyio.create_task_group() as tg:
                for i in range(40):
                    tg.start_soon(task, i)
            shared = await store.get("shared")
            assert shared is not None and shared.attempts == 160
            assert {e.attempts for e in await store.entries() if e.source != "shared"} == {4}
            assert sum((await store.counts()).values()) == 41
        finally:
            await store.aclose()

    @pytest.mark.anyio
    async def test_first_writes_of_one_new_source_from_many_tasks_all_count(
        self, stores: StoreFactory
    ) -> None:
        def count(current: LedgerEntry | None) -> LedgerEntry:
            base = current or _entry("/in/new.wav")
            return attrs.evolve(base, attempts=base.attempts + 1)

        store = stores.store()
        await store.open()
        try:
            async with anyio.create_task_group() as tg:  # each may find no entry yet
                for _ in range(20):
                    tg.start_soon(store.update, "/in/new.wav", count)
            entry = await store.get("/in/new.wav")
            assert entry is not None and entry.attempts == 20
        finally:
            await store.aclose()

    # --- durability --------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_every_field_of_an_entry_is_stored(self, stores: StoreFactory) -> None:
        """A field added to ``LedgerEntry`` must reach the storage of every store: write an
        entry whose every field differs from its default, read it back after a reopen."""
        full = _entry(
            "/in/full.wav",
            size=7,
            content_hash=_digest(7),
            model=MODEL,
            options=OPTIONS,
            state="failed",
            last_good_state="downloaded",
            project_id="p-full",
            generation_id="g-full",
            idempotency_key="k-full",
            output_path="/out/full.mp4",
            served_type="video",
            error="boom",
            error_stage="download",
            attempts=3,
        )
        defaults = fresh_entry("/in/full.wav", NOW)
        unset = [
            field.name
            for field in attrs.fields(LedgerEntry)
            if field.name not in ("source", "created_at", "updated_at")
            and getattr(full, field.name) == getattr(defaults, field.name)
        ]
        assert unset == [], "give these fields a value here"
        store = stores.store()
        await store.open()
        try:
            await store.update(full.source, _put(full))
        finally:
            await store.aclose()
        reopened = stores.store()
        await reopened.open()
        try:
            assert await reopened.get(full.source) == full
        finally:
            await reopened.aclose()

    @pytest.mark.anyio
    async def test_entries_survive_close_and_reopen(self, stores: StoreFactory) -> None:
        store = stores.store()
        await store.open()
        try:
            for i in range(10):
                entry = _uploaded(f"/in/{i}.wav", f"p{i}", digest=_digest(i))
                await store.update(entry.source, _put(entry))
            await store.update("/in/3.wav", _with_attempt)
            expected = await store.entries()
        finally:
            await store.aclose()
        reopened = stores.store()
        await reopened.open()
        try:
            assert await reopened.entries() == expected
            assert await reopened.get("/in/3.wav") == expected[3]
        finally:
            await reopened.aclose()

    @pytest.mark.anyio
    async def test_a_crash_snapshot_has_every_acknowledged_write(
        self, stores: StoreFactory
    ) -> None:
        store = stores.store()
        await store.open()
        try:
            for i in range(20):
                entry = _uploaded(f"/in/{i}.wav", f"p{i}", digest=_digest(i))
                await store.update(entry.source, _put(entry))
                await store.update(entry.source, _with_attempt)
            expected = await store.entries()
            await stores.crash_copy(store, "batch", "crashed")
        finally:
            await store.aclose()
        recovered = stores.store("crashed")
        await recovered.open()
        try:
            assert await recovered.entries() == expected
        finally:
            await recovered.aclose()

    # --- locking -----------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_a_second_open_of_a_held_batch_is_refused_until_it_closes(
        self, stores: StoreFactory
    ) -> None:
        holder = stores.store()
        await holder.open()
        try:
            await holder.update("/in/a.wav", _put(_entry("/in/a.wav")))
            second = stores.store()
            with anyio.fail_after(10):  # refused at once, not after a wait
                with pytest.raises(LedgerLockedError):
                    await second.open()
            assert second.closed
            other_batch = stores.store("other")  # another batch is not held
            await other_batch.open()
            await other_batch.aclose()
            assert await holder.get("/in/a.wav") is not None  # the holder is unaffected
        finally:
            await holder.aclose()
        after = stores.store()
        await after.open()
        await after.aclose()

    # --- lookups -----------------------------------------------------------------------------

    @pytest.mark.anyio
    async def test_output_owner_names_another_source_with_that_output(
        self, stores: StoreFactory
    ) -> None:
        store = stores.store()
        await store.open()
        try:
            for source, output in (("/in/a.wav", "/out/a.mp3"), ("/in/b.wav", None)):
                entry = _entry(source, output_path=output)
                await store.update(source, _put(entry))
            assert await store.output_owner("/out/a.mp3", other_than="/in/b.wav") == "/in/a.wav"
            assert await store.output_owner("/out/a.mp3", other_than="/in/a.wav") is None
            assert await store.output_owner("/out/b.mp3", other_than="/in/x.wav") is None
        finally:
            await store.aclose()

    @pytest.mark.anyio
    async def test_the_uploaded_twin_is_the_first_finished_upload_of_that_identity(
        self, stores: StoreFactory
    ) -> None:
        digest = _digest(0)
        identity = Identity(size=1, content_hash=digest, model=MODEL, options=OPTIONS)
        not_uploaded = attrs.evolve(
            _uploaded("/in/created.wav", "p-created", digest=digest),
            state="project_created",
            last_good_state="project_created",
        )
        other_options = _uploaded("/in/opts.wav", "p-opts", digest=digest, options="{}")
        other_model = attrs.evolve(_uploaded("/in/m.wav", "p-m", digest=digest), model="x")
        failed_later = attrs.evolve(
            _uploaded("/in/failed.wav", "p-failed", digest=digest),
            state="failed",
            last_good_state="generation_created",
            generation_id="g",
        )
        store = stores.store()
        await store.open()
        try:
            assert await store.uploaded_twin_project(identity, other_than="/in/x.wav") is None
            for entry in (not_uploaded, other_options, other_model, failed_later):
                await store.update(entry.source, _put(entry))
            twin = _uploaded("/in/done.wav", "p-done", digest=digest)
            await store.update(twin.source, _put(twin))
            # A failed entry that got past the upload counts; it was written first.
            assert await store.uploaded_twin_project(identity, other_than="/in/x.wav") == (
                "p-failed"
            )
            assert await store.uploaded_twin_project(identity, other_than="/in/failed.wav") == (
                "p-done"
            )
            other = attrs.evolve(identity, content_hash=_digest(1))
            assert await store.uploaded_twin_project(other, other_than="/in/x.wav") is None
        finally:
            await store.aclose()
