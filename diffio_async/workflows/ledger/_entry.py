"""One ledger entry: its states, its fields, and the identity that names the item."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Final, Literal, cast, get_args

import attrs

__all__ = [
    "ENTRY_COLUMNS",
    "STATES",
    "EntryState",
    "Identity",
    "LedgerEntry",
    "fresh_entry",
    "utc",
]

EntryState = Literal[
    "pending",
    "hashed",
    "project_created",
    "uploaded",
    "generation_created",
    "complete",
    "downloaded",
    "failed",
]
"""The state of one ledger entry (``_states.TRANSITIONS`` lists the moves between them)."""

STATES: Final[tuple[EntryState, ...]] = get_args(EntryState)
"""Every state, in progress order, ``failed`` last."""


def utc(timestamp: float) -> datetime:
    """The timezone-aware UTC time of a POSIX ``timestamp``."""
    return datetime.fromtimestamp(timestamp, tz=timezone.utc)


@attrs.frozen(kw_only=True)
class LedgerEntry:
    """One source's row in the ledger (immutable snapshot; the ledger holds the truth).

    ``options`` is canonical JSON text (see :func:`canonical_options`); ``last_good_state`` is
    the last state before ``failed`` (equal to ``state`` otherwise); ``attempts`` counts
    :meth:`Ledger.mark_attempt` calls; times are timezone-aware UTC.
    """

    source: str
    size: int | None = None
    content_hash: str | None = None
    model: str | None = None
    options: str = "{}"
    state: EntryState = "pending"
    last_good_state: EntryState = "pending"
    project_id: str | None = None
    generation_id: str | None = None
    idempotency_key: str | None = None
    output_path: str | None = None
    served_type: str | None = None
    """What the server served to ``output_path`` when it chose (the default download type:
    ``"audio"``, ``"video"``); ``None`` for an explicit type, or a ledger that predates it."""
    error: str | None = None
    error_stage: str | None = None
    attempts: int = 0
    created_at: datetime
    updated_at: datetime

    @property
    def done(self) -> bool:
        """True once the output file is in place (state ``downloaded``)."""
        return self.state == "downloaded"

    @property
    def options_dict(self) -> dict[str, Any]:
        """``options`` parsed back into a dict."""
        return cast("dict[str, Any]", json.loads(self.options))

    @property
    def identity(self) -> Identity | None:
        """What the entry was registered as, or ``None`` before it was hashed."""
        if self.size is None or self.content_hash is None or self.model is None:
            return None
        return Identity(
            size=self.size, content_hash=self.content_hash, model=self.model, options=self.options
        )


ENTRY_COLUMNS: Final = tuple(field.name for field in attrs.fields(LedgerEntry))
"""Every field of :class:`LedgerEntry`, in order: one column each in every store, so a field
added to the entry is stored everywhere (a store's conformance test writes them all)."""


@attrs.frozen(kw_only=True)
class Identity:
    """What names an item: its file (size, sha256) and the request (model, options).

    ``options`` is canonical JSON text (see :func:`canonical_options`). Two entries with equal
    identities would send the very same generation request.
    """

    size: int
    content_hash: str
    model: str
    options: str


def fresh_entry(source: str, now: float, *, created_at: datetime | None = None) -> LedgerEntry:
    """A ``pending`` entry of ``source`` that knows nothing yet (``created_at`` kept if given)."""
    return LedgerEntry(source=source, created_at=created_at or utc(now), updated_at=utc(now))
