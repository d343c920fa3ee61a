"""Idempotency keys: derived from what the ledger records, so a resume finds the same key."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final

from ...errors import InvalidRequestError

__all__ = ["canonical_options", "check_content_hash", "idempotency_key_for"]

_KEY_PREFIX: Final = "diffio-async-"
_HEX_DIGITS: Final = frozenset("0123456789abcdef")


def canonical_options(options: Mapping[str, Any] | str | None) -> str:
    """Return the canonical JSON text of generation options (sorted keys, compact, UTF-8).

    ``options`` is a mapping, JSON text of an object, or ``None`` (no options: ``"{}"``). Equal
    options always give the same text, whatever their key order, so the text can be compared
    and hashed. Raises :class:`InvalidRequestError` for anything else.
    """
    if options is None:
        return "{}"
    try:
        value: object = json.loads(options) if isinstance(options, str) else options
    except ValueError as exc:
        raise InvalidRequestError(f"options are not valid JSON: {exc}") from None
    if not isinstance(value, Mapping):
        raise InvalidRequestError("options must be a JSON object")
    try:
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise InvalidRequestError(f"options are not JSON-serializable: {exc}") from exc


def check_content_hash(content_hash: str) -> str:
    """Return ``content_hash`` if it is a lowercase sha256 hex digest, else raise
    :class:`InvalidRequestError`."""
    if len(content_hash) != 64 or not set(content_hash) <= _HEX_DIGITS:
        raise InvalidRequestError(
            "content_hash must be a lowercase sha256 hex digest (64 characters)"
        )
    return content_hash


def idempotency_key_for(
    content_hash: str,
    model: str,
    options: Mapping[str, Any] | str | None,
    project_id: str,
    *,
    after: str | None = None,
) -> str:
    """Derive the generation request's idempotency key for one item (53 characters).

    The key is ``"diffio-async-"`` plus 40 hex digits of the sha256 of the file's content hash,
    the model, the canonical options and the project id. It is a pure function of what the
    ledger records, so a resumed run recomputes the very same key without having stored it.

    Why the project id is part of it: the server scopes keys per API key and answers 409
    ``idempotencyConflict`` when a key is reused for a *different* project. A run killed between
    ``create_project`` and the ledger write of the project id creates a new project when it
    resumes; a key of (content, model, options) alone would then conflict and the item would be
    stuck. The project id is always committed to the ledger before the generation request is
    sent, so a run killed between that request and the ledger write of the generation id
    resumes with the same project, hence the same key, and the server replays the generation it
    already created instead of creating (and billing) a second one.

    Why nothing else (no attempt counter, no time): the key must be identical across every
    retry and every resume of the same request. The one exception is ``after``: the id of a
    generation the server *failed*. A new attempt at the item must not replay that failure,
    so :meth:`Ledger.renew_generation` derives a new key from the failed id (which is the
    only way one file is billed twice).

    Raises :class:`InvalidRequestError` for a malformed hash, an empty model or project id.
    """
    if not model:
        raise InvalidRequestError("model must be a non-empty string")
    if not project_id:
        raise InvalidRequestError("project_id must be a non-empty string")
    material = json.dumps(
        [
            "diffio-async/idempotency/v1",
            check_content_hash(content_hash),
            model,
            canonical_options(options),
            project_id,
            *([after] if after else []),
        ],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return _KEY_PREFIX + hashlib.sha256(material.encode()).hexdigest()[:40]
