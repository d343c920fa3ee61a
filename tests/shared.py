"""Constants the SDK's test modules share (import by name: pyproject puts tests/ on the path)."""

from __future__ import annotations

from typing import Any

import attrs

from diffio_async import BatchOptions, PollPolicy, RestoreOptions, RetryPolicy

MIB = 1024 * 1024
FAST = RetryPolicy(max_retries=2, initial_delay=0.01, max_delay=0.02)
"""Retries that do not slow a test down."""
QUICK_POLL = PollPolicy(initial=0.05, maximum=0.2)
"""Polls every 50-200 ms, for generations that take a fraction of a second."""
ERAS = ["a", "b"]
"""Both API eras (signed PUT uploads, edge multipart)."""
MEDIA = {"a": "/_storage/*", "b": "/m/*"}
"""Where each era's emulator serves media (for faults on downloads)."""


def batch_arguments(**arguments: Any) -> dict[str, Any]:
    """``restore_many`` keyword arguments from flat ones: the fields of :class:`RestoreOptions`
    become ``options=``, those of :class:`BatchOptions` ``batch=``, the rest stay (so a test
    can say ``concurrency=4, model="diffio-2"``). Built when called: a bad value raises here."""
    restore = {k: arguments.pop(k) for k in list(arguments) if k in _RESTORE_FIELDS}
    batch = {k: arguments.pop(k) for k in list(arguments) if k in _BATCH_FIELDS}
    if restore:
        arguments["options"] = RestoreOptions(**restore)
    if batch:
        arguments["batch"] = BatchOptions(**batch)
    return arguments


_RESTORE_FIELDS = frozenset(field.name for field in attrs.fields(RestoreOptions))
_BATCH_FIELDS = frozenset(field.name for field in attrs.fields(BatchOptions))
