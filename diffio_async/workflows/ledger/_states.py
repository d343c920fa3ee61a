"""The ledger's state machine as a table, and the pure steps that follow it (no I/O, no clock).

::

    pending -> hashed -> project_created -> uploaded -> generation_created -> complete -> downloaded
         \\________________________________________________________________________/
                          any of them -> failed -> back to last_good_state or earlier

- ``pending``: the source is known, nothing else is.
- ``hashed``: size, sha256, model and options are recorded (the item's *identity*).
- ``project_created``: the project id is recorded, and with it the idempotency key that every
  generation request for this item will carry (see :func:`idempotency_key_for`).
- ``uploaded``: the media is on the server.
- ``generation_created``: the generation id is recorded; a resumed run waits on it, it never
  creates another one.
- ``complete``: the generation finished on the server.
- ``downloaded``: the output file is in place; the item is done (final).
- ``failed``: the last attempt failed (``error``, ``error_stage``); ``last_good_state`` remembers
  where to resume, and a retry goes back there.

Every step is a function ``(current entry, arguments, now) -> new entry`` that raises
:class:`InvalidTransitionError` instead of returning an entry that breaks a rule; a store
persists what it returns (see ``_store.LedgerStore.update``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import attrs

from ...errors import InvalidRequestError, InvalidTransitionError
from ._entry import STATES, EntryState, Identity, LedgerEntry, fresh_entry, utc
from ._keys import check_content_hash, idempotency_key_for

__all__ = [
    "IDENTITY_FIELDS",
    "PROGRESS",
    "RECORDED",
    "SERVER_IDS",
    "TRANSITIONS",
    "apply_changes",
    "check_invariants",
    "count_attempt",
    "register_identity",
    "renew_generation",
    "retry_failed",
]

PROGRESS: Final[tuple[EntryState, ...]] = STATES[:-1]
"""The states an item goes through, in order (every state but ``failed``)."""

# fmt: off
TRANSITIONS: Final[Mapping[EntryState, frozenset[EntryState]]] = {
    # state:             the states it may move to (staying in a state is always allowed)
    "pending":            frozenset({"hashed", "project_created", "uploaded",
                                     "generation_created", "complete", "downloaded", "failed"}),
    "hashed":             frozenset({"project_created", "uploaded", "generation_created",
                                     "complete", "downloaded", "failed"}),
    "project_created":    frozenset({"uploaded", "generation_created", "complete", "downloaded",
                                     "failed"}),
    "uploaded":           frozenset({"generation_created", "complete", "downloaded", "failed"}),
    "generation_created": frozenset({"complete", "downloaded", "failed"}),
    "complete":           frozenset({"downloaded", "failed"}),
    "downloaded":         frozenset(),  # final: a done item never moves again
    # Only to the entry's last_good_state or an earlier one (see _resumable_from_failed).
    "failed":             frozenset({"pending", "hashed", "project_created", "uploaded",
                                     "generation_created", "complete"}),
}
"""Every move a step may make: state -> the states allowed next.

Forward only (skipping states is allowed when their results are given); ``failed`` from any
state but ``downloaded``; out of ``failed`` only back to ``last_good_state`` or earlier, which
forgets the server ids that the earlier state does not hold (see :data:`RECORDED`).
"""

_HASHED: Final = ("size", "content_hash", "model")
_PROJECT: Final = (*_HASHED, "project_id", "idempotency_key")
_GENERATION: Final = (*_PROJECT, "generation_id")
RECORDED: Final[Mapping[EntryState, tuple[str, ...]]] = {
    "pending":            (),
    "hashed":             _HASHED,
    "project_created":    _PROJECT,
    "uploaded":           _PROJECT,
    "generation_created": _GENERATION,
    "complete":           _GENERATION,
    "downloaded":         (*_GENERATION, "output_path"),
    # failed: whatever its last_good_state holds.
}
"""The fields an entry in each state must have recorded (a failed one: its last_good_state's).
"""
# fmt: on

IDENTITY_FIELDS: Final = ("size", "content_hash", "model", "options")
"""The item's identity: changes only while the entry has not got past ``pending`` (a changed
file or options restart the entry through :func:`register_identity`)."""

SERVER_IDS: Final = ("project_id", "generation_id", "idempotency_key")
"""Write-once: a recorded id is never replaced by another one. It is only forgotten by a retry
to a state that does not hold it, a restart, or (the generation id, with a new key)
:func:`renew_generation`."""

_RANK: Final[Mapping[EntryState, int]] = {state: rank for rank, state in enumerate(PROGRESS)}


def _resumable_from_failed(last_good: EntryState) -> frozenset[EntryState]:
    """The states a failed entry may go back to: its last good state or an earlier one."""
    return frozenset(s for s in TRANSITIONS["failed"] if _RANK[s] <= _RANK[last_good])


def _check_move(old: LedgerEntry, target: EntryState) -> None:
    """Refuse a move the table does not list (staying put is not a move)."""
    if target == old.state:
        return
    if old.state == "failed":
        if target in _resumable_from_failed(old.last_good_state):
            return
        raise InvalidTransitionError(
            f"{old.source!r} failed after {old.last_good_state!r}; a retry resumes at "
            f"{old.last_good_state!r} or earlier, not at {target!r}"
        )
    if target in TRANSITIONS[old.state]:
        return
    if not TRANSITIONS[old.state]:
        raise InvalidTransitionError(
            f"{old.source!r} is {old.state!r} (done); it cannot move to {target!r}"
        )
    raise InvalidTransitionError(
        f"{old.source!r} cannot move back from {old.state!r} to {target!r}"
    )


def check_invariants(entry: LedgerEntry) -> None:
    """Refuse an entry whose state claims a step whose result is not recorded."""
    reached = entry.last_good_state if entry.state == "failed" else entry.state
    missing = [field for field in RECORDED[reached] if getattr(entry, field) is None]
    if missing:
        raise InvalidTransitionError(
            f"{entry.source!r}: state {entry.state!r} needs {', '.join(missing)} recorded"
        )
    if entry.size is not None and entry.size < 0:
        raise InvalidTransitionError(f"{entry.source!r}: size must not be negative")
    if entry.content_hash is not None:
        try:
            check_content_hash(entry.content_hash)
        except InvalidRequestError as exc:
            raise InvalidTransitionError(f"{entry.source!r}: {exc}") from None


def apply_changes(
    old: LedgerEntry | None, source: str, changes: Mapping[str, Any], now: float
) -> LedgerEntry:
    """Return the entry of ``source`` after ``changes`` (field name -> new value), or raise
    :class:`InvalidTransitionError` if they break a rule (``old`` is ``None`` for a new source).

    ``state`` moves as :data:`TRANSITIONS` allows; identity fields change only while the entry
    has not got past ``pending``; server ids are write-once; when a project id is recorded, the
    idempotency key is derived from it unless one is given. See :meth:`Ledger.record`.
    """
    if old is None:
        old = fresh_entry(source, now)
    target: EntryState = changes.get("state", old.state)
    if target not in STATES:
        raise InvalidTransitionError(f"unknown state {target!r}; expected one of {STATES}")
    _check_move(old, target)
    values = attrs.asdict(old, recurse=False)
    last_good = old.last_good_state
    if target != old.state and target != "failed":
        last_good = target
    if old.state == "failed" and target != "failed":
        # Back to an earlier step: forget what the later steps learned, and the error.
        for field in SERVER_IDS:
            if field not in RECORDED[target]:
                values[field] = None
        values.update(error=None, error_stage=None)
    values.update(state=target, last_good_state=last_good)

    for field in IDENTITY_FIELDS:
        if field in changes and changes[field] != values[field]:
            if old.last_good_state != "pending":
                raise InvalidTransitionError(
                    f"{source!r}: {field} cannot change once the entry is past 'pending' "
                    "(Ledger.register() restarts an entry whose file or options changed)"
                )
            values[field] = changes[field]
    for field in SERVER_IDS:
        if field in changes and changes[field] != values[field]:
            if values[field] is not None:
                raise InvalidTransitionError(
                    f"{source!r}: {field} is already {values[field]!r}; a recorded server id "
                    "is never replaced (retry from 'hashed' to start over)"
                )
            values[field] = changes[field]
    for field in ("output_path", "served_type", "error", "error_stage", "attempts"):
        if field in changes:
            values[field] = changes[field]
    if (
        "idempotency_key" not in changes
        and values["idempotency_key"] is None
        and values["project_id"] is not None
        and values["content_hash"] is not None
        and values["model"] is not None
    ):
        values["idempotency_key"] = idempotency_key_for(
            values["content_hash"], values["model"], values["options"], values["project_id"]
        )
    values["updated_at"] = utc(now)
    entry = LedgerEntry(**values)
    check_invariants(entry)
    return entry


def register_identity(
    old: LedgerEntry | None,
    source: str,
    identity: Identity,
    twin_project: str | None,
    now: float,
) -> LedgerEntry:
    """Return the entry to resume ``source`` from, given what it is now (see
    :meth:`Ledger.register`).

    The same identity past ``pending`` returns ``old`` itself. A new or ``pending`` entry is
    recorded at ``hashed``, or at ``uploaded`` in ``twin_project`` (the project of another
    entry with this identity whose upload finished). A changed identity restarts the entry:
    only its ``created_at`` is kept.
    """
    if old is not None and old.state != "pending":
        if old.identity == identity:
            return old
        old = fresh_entry(source, now, created_at=old.created_at)
    start: dict[str, Any] = {**attrs.asdict(identity), "state": "hashed"}
    if twin_project is not None:  # the same media and options: reuse that upload (and key)
        start.update(state="uploaded", project_id=twin_project)
    return apply_changes(old, source, start, now)


def retry_failed(old: LedgerEntry, now: float) -> LedgerEntry:
    """Move a ``failed`` entry back to its ``last_good_state``; return any other unchanged."""
    if old.state != "failed":
        return old
    return apply_changes(old, old.source, {"state": old.last_good_state}, now)


def count_attempt(old: LedgerEntry, now: float) -> LedgerEntry:
    """The entry with one more attempt counted."""
    return apply_changes(old, old.source, {"attempts": old.attempts + 1}, now)


def renew_generation(old: LedgerEntry, error: str | None, now: float) -> LedgerEntry:
    """The entry after the server failed its generation: ``failed`` at stage ``"wait"``, back
    to ``uploaded`` on retry, with no generation id and a key derived anew from the failed id
    (see :meth:`Ledger.renew_generation`).

    The one step that replaces a server id. Raises :class:`InvalidTransitionError` when the
    entry has no generation, or is ``downloaded`` (final).
    """
    if old.generation_id is None or old.project_id is None:
        raise InvalidTransitionError(f"{old.source!r} has no generation to renew")
    _check_move(old, "failed")
    assert old.content_hash is not None and old.model is not None
    key = idempotency_key_for(
        old.content_hash, old.model, old.options, old.project_id, after=old.generation_id
    )
    entry = attrs.evolve(
        old,
        state="failed",
        last_good_state="uploaded",
        generation_id=None,
        idempotency_key=key,
        error=error,
        error_stage="wait",
        updated_at=utc(now),
    )
    check_invariants(entry)
    return entry
