"""The ledger's state machine, pure: the table agrees with the rules it stands for, and random
runs of steps, crashes and resumes never reach an entry that breaks one."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from diffio_async.errors import InvalidTransitionError, LedgerError
from diffio_async.workflows.ledger import STATES, EntryState, Identity, LedgerEntry
from diffio_async.workflows.ledger._keys import idempotency_key_for
from diffio_async.workflows.ledger._states import (
    IDENTITY_FIELDS,
    PROGRESS,
    RECORDED,
    SERVER_IDS,
    TRANSITIONS,
    apply_changes,
    check_invariants,
    register_identity,
    renew_generation,
    retry_failed,
)

RANK = {state: rank for rank, state in enumerate(PROGRESS)}
NOW = 1_700_000_000.0


def _allowed_by_rank(state: EntryState, last_good: EntryState, target: EntryState) -> bool:
    """The rules in words, written apart from the table: stay put; forward or to ``failed``
    unless done; out of ``failed`` back to the last good state or earlier."""
    if target == state:
        return True
    if state == "failed":
        return target != "failed" and RANK[target] <= RANK[last_good]
    if state == "downloaded":
        return False
    return target == "failed" or RANK[target] > RANK[state]


_RESULTS: dict[str, Any] = {
    "size": 1,
    "content_hash": hashlib.sha256(b"x").hexdigest(),
    "model": "m",
    "project_id": "p",
    "generation_id": "g",
    "output_path": "/out/x",
}


def _holding(state: EntryState, last_good: EntryState) -> LedgerEntry:
    """A valid entry in ``state`` that holds everything its (last good) state needs."""
    reached = last_good if state == "failed" else state
    fields = {f: v for f, v in _RESULTS.items() if f in RECORDED[reached]}
    entry = apply_changes(None, "/in/x.wav", {"state": reached, **fields}, NOW)
    return apply_changes(entry, "/in/x.wav", {"state": state}, NOW) if state != reached else entry


_CASES = [
    (state, last_good, target)
    for state in STATES
    for last_good in (PROGRESS[:-1] if state == "failed" else (state,))
    for target in STATES
]


@pytest.mark.parametrize(("state", "last_good", "target"), _CASES)
def test_the_table_allows_exactly_the_moves_the_rules_allow(
    state: EntryState, last_good: EntryState, target: EntryState
) -> None:
    entry = _holding(state, last_good)
    assert (entry.state, entry.last_good_state) == (state, last_good)
    in_table = target == state or target in TRANSITIONS[state]
    if state == "failed":
        in_table = in_table and (target == "failed" or RANK[target] <= RANK[last_good])
    assert in_table == _allowed_by_rank(state, last_good, target)
    # Give the target what it needs (the same values), so only the move can be refused.
    needs = {f: v for f, v in _RESULTS.items() if target != "failed" and f in RECORDED[target]}
    try:
        moved = apply_changes(entry, entry.source, {"state": target, **needs}, NOW + 1)
    except InvalidTransitionError:
        assert not in_table
    else:
        assert in_table and moved.state == target


def test_every_state_has_a_row_and_failed_and_downloaded_are_special() -> None:
    assert set(TRANSITIONS) == set(STATES)
    assert set(RECORDED) == set(PROGRESS)
    assert TRANSITIONS["downloaded"] == frozenset()
    assert all("failed" in TRANSITIONS[s] for s in PROGRESS if s != "downloaded")
    assert "downloaded" not in TRANSITIONS["failed"] and "failed" not in TRANSITIONS["failed"]


# --- random runs -----------------------------------------------------------------------------

SOURCES = ("/in/a.wav", "/in/b.wav")
IDENTITIES = [
    Identity(size=size, content_hash=hashlib.sha256(data).hexdigest(), model=model, options=opts)
    for size, data in ((1, b"a"), (2, b"b"))
    for model in ("diffio-3.5", "diffio-2")
    for opts in ("{}", '{"params":{"x":1}}')
]
sources = st.sampled_from(SOURCES)


class LedgerRuns(RuleBasedStateMachine):
    """A batch runner over the pure steps: ``stored`` is what the store committed (and a crash
    keeps), ``memory`` what the runner holds (the entries it got back), which a crash drops.

    Each rule is one step of the runner or one fault; ``_check_step`` checks every committed
    step against the rules written apart from the table, and the invariants check every stored
    entry after each rule.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stored: dict[str, LedgerEntry] = {}
        self.memory: dict[str, LedgerEntry] = {}
        # What each source is on disk: both start as one recording (twins), until changed.
        self.files: dict[str, Identity] = dict.fromkeys(SOURCES, IDENTITIES[0])
        # The failed generation the current key was renewed after (None: the plain key).
        self.renewed_after: dict[str, str | None] = {}
        self.clock = itertools.count(NOW)
        self.ids = itertools.count()

    def _step(
        self, kind: str, source: str, change: Callable[[LedgerEntry | None], LedgerEntry]
    ) -> LedgerEntry | None:
        old = self.stored.get(source)
        try:
            new = change(old)
        except (InvalidTransitionError, LedgerError):
            return None
        self._check_step(kind, old, new)
        self.stored[source] = self.memory[source] = new
        return new

    def _twin(self, source: str, identity: Identity) -> str | None:
        for other, entry in self.stored.items():  # in first-written order, like a store
            if (
                other != source
                and (entry.content_hash, entry.model, entry.options)
                == (identity.content_hash, identity.model, identity.options)
                and entry.project_id is not None
                and RANK[entry.last_good_state] >= RANK["uploaded"]
            ):
                return entry.project_id
        return None

    def _now(self) -> float:
        return next(self.clock)

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self.ids)}"

    # -- steps ----------------------------------------------------------------------------

    @initialize()
    def start(self) -> None:
        """The first run of the batch loads every source."""
        for source in SOURCES:
            self.load(source)

    @rule(source=sources)
    def load(self, source: str) -> None:
        """What a (resumed) batch does first: register the hashed file, retry a failure."""
        identity = self.files[source]
        before = self.stored.get(source)
        twin = self._twin(source, identity)
        entry = self._step(
            "register",
            source,
            lambda current: register_identity(current, source, identity, twin, self._now()),
        )
        assert entry is not None, "registering never fails"
        if before is not None and before.state != "pending" and before.identity == identity:
            assert entry == before  # a resume starts from what was stored, unchanged
        if entry.state == "failed":
            resumed = self._step(
                "retry",
                source,
                lambda current: retry_failed(_existing(current, source), self._now()),
            )
            assert resumed is not None and resumed.state == entry.last_good_state
            for field in RECORDED[resumed.state]:  # the replay carries the same ids and key
                assert getattr(resumed, field) == getattr(entry, field)

    @rule(source=sources, identity=st.sampled_from(IDENTITIES))
    def change_file(self, source: str, identity: Identity) -> None:
        """The file (or the model, or the options) changed: the next load restarts it."""
        self.files[source] = identity
        self.load(source)

    @rule()
    def crash_and_resume(self) -> None:
        """Kill the runner: what it held in memory is gone; the store keeps what it acked.
        The next run loads every source again from the store."""
        self.memory.clear()
        for source in list(self.stored):
            self.load(source)

    @rule(source=sources, steps=st.integers(min_value=0, max_value=3))
    def work(self, source: str, steps: int) -> None:
        """The runner records its next state (0 to 3 ahead: states may be skipped, and a done
        item downloaded again) with the results it needs, a fresh id for each missing one."""
        old = self.memory.get(source)
        if old is None or old.state == "failed":  # not loaded since a crash, or not retried
            return
        to = PROGRESS[min(RANK[old.state] + steps, len(PROGRESS) - 1)]
        changes: dict[str, Any] = {"state": to}
        for field, prefix in (("project_id", "p"), ("generation_id", "g")):
            if field in RECORDED[to] and getattr(old, field) is None:
                changes[field] = self._new_id(prefix)
        if to == "downloaded":
            changes["output_path"] = f"/out/{source}"
        entry = self._step(
            "record", source, lambda current: apply_changes(current, source, changes, self._now())
        )
        assert (entry is not None) == (old.identity is not None or to == "pending"), (old, to)

    @rule(source=sources, offset=st.integers(min_value=-3, max_value=3))
    def jump(self, source: str, offset: int) -> None:
        """Record a state alone, up to three states back or ahead of where the entry is (of
        its last good state when failed): refused unless the move is allowed and nothing is
        missing."""
        old = self.stored.get(source)
        if old is None:
            return
        rank = RANK[old.last_good_state] + offset
        to = PROGRESS[min(max(rank, 0), len(PROGRESS) - 1)]
        entry = self._step(
            "record",
            source,
            lambda current: apply_changes(current, source, {"state": to}, self._now()),
        )
        if entry is not None:
            assert _allowed_by_rank(old.state, old.last_good_state, to)

    @rule(source=sources, stage=st.sampled_from(["upload", "generation", "wait", "download"]))
    def fail(self, source: str, stage: str) -> None:
        old = self.stored.get(source)
        changes = {"state": "failed", "error": "boom", "error_stage": stage}
        entry = self._step(
            "record", source, lambda current: apply_changes(current, source, changes, self._now())
        )
        assert (entry is None) == (old is not None and old.state == "downloaded")

    @rule(source=sources)
    def renew(self, source: str) -> None:
        """The server failed the generation: a new key, derived from the failed id."""
        old = self.stored.get(source)
        entry = self._step(
            "renew",
            source,
            lambda current: renew_generation(_existing(current, source), "failed", self._now()),
        )
        if entry is not None:
            assert old is not None and old.generation_id is not None
            self.renewed_after[source] = old.generation_id

    @rule(source=sources, field=st.sampled_from([*SERVER_IDS, *IDENTITY_FIELDS]))
    def overwrite(self, source: str, field: str) -> None:
        """Try to replace a recorded server id or identity field: refused (but for the
        identity of an entry that never got past ``pending``)."""
        old = self.stored.get(source)
        if old is None or getattr(old, field) is None:
            return
        value: Any = {
            "size": 99,
            "content_hash": hashlib.sha256(b"z").hexdigest(),
            "options": '{"other":1}',
        }.get(field, "other")
        entry = self._step(
            "record",
            source,
            lambda current: apply_changes(current, source, {field: value}, self._now()),
        )
        if field in SERVER_IDS:
            assert entry is None
        if field in IDENTITY_FIELDS and old.last_good_state != "pending":
            assert entry is None

    # -- the rules every step obeys -------------------------------------------------------

    def _check_step(self, kind: str, old: LedgerEntry | None, new: LedgerEntry) -> None:
        restart = kind == "register" and old is not None and old.identity != new.identity
        if old is None or restart:
            assert new.state in TRANSITIONS["pending"] or new.state == "pending"
            self.renewed_after[new.source] = None
            return
        assert new.created_at == old.created_at
        if kind == "renew":
            assert (new.state, new.last_good_state) == ("failed", "uploaded")
        else:
            assert _allowed_by_rank(old.state, old.last_good_state, new.state), (old, new)
        if old.state == "downloaded":
            assert new.state == "downloaded"  # done stays done (a new identity restarts)
        if old.last_good_state != "pending":
            for field in IDENTITY_FIELDS:
                assert getattr(new, field) == getattr(old, field)
        assert new.attempts >= old.attempts
        for field in SERVER_IDS:
            before, after = getattr(old, field), getattr(new, field)
            if before is None or after == before:
                continue
            if after is None:  # forgotten: a retry to a state that does not hold it, a renew
                went_back = (
                    old.state == "failed"
                    and new.state != "failed"
                    and field not in RECORDED[new.state]
                )
                assert went_back or (kind == "renew" and field == "generation_id"), (field, kind)
            else:  # replaced: only the key, only by a renew
                assert kind == "renew" and field == "idempotency_key", (field, kind)
        if new.project_id is None:
            self.renewed_after[new.source] = None

    @invariant()
    def every_stored_entry_is_legal(self) -> None:
        for entry in self.stored.values():
            check_invariants(entry)
            assert entry.state in STATES and entry.last_good_state in PROGRESS
            if entry.state == "failed":
                assert entry.last_good_state != "downloaded"
            else:
                assert entry.last_good_state == entry.state
            # The key is derived as soon as the project and the identity are known.
            if entry.project_id is None or entry.content_hash is None or entry.model is None:
                assert entry.idempotency_key is None
            else:
                assert entry.idempotency_key == idempotency_key_for(
                    entry.content_hash,
                    entry.model,
                    entry.options,
                    entry.project_id,
                    after=self.renewed_after.get(entry.source),
                )

    @invariant()
    def no_stored_entry_accepts_an_illegal_move(self) -> None:
        for entry in self.stored.values():
            for to in STATES:
                try:
                    apply_changes(entry, entry.source, {"state": to}, NOW)
                except InvalidTransitionError:
                    continue
                assert _allowed_by_rank(entry.state, entry.last_good_state, to), (entry, to)


def _existing(entry: LedgerEntry | None, source: str) -> LedgerEntry:
    if entry is None:
        raise LedgerError(f"no entry for {source!r}")
    return entry


LedgerRuns.TestCase.settings = settings(
    max_examples=120,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestLedgerRuns = LedgerRuns.TestCase
