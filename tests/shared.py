"""Constants (and a few helpers) the SDK's test modules share (import by name: pyproject puts
tests/ on the path)."""

from __future__ import annotations

from typing import Any

import attrs

from diffio_async import BatchOptions, PollPolicy, RestoreOptions, RetryPolicy, __version__
from diffio_async.testing import TEST_API_KEY, EmulatedDiffio

MIB = 1024 * 1024
FAST = RetryPolicy(max_retries=2, initial_delay=0.01, max_delay=0.02)
"""Retries that do not slow a test down."""
QUICK_POLL = PollPolicy(initial=0.05, maximum=0.2)
"""Polls every 50-200 ms, for generations that take a fraction of a second."""
ERAS = ["a", "b"]
"""Both API eras (signed PUT uploads, edge multipart)."""
MEDIA = {"a": "/_storage/*", "b": "/m/*"}
"""Where each era's emulator serves media (for faults on downloads)."""
AUDIO = b"RIFF" + bytes(range(256)) * 64
"""A small recording to upload (16,388 bytes: five parts of the resource tests' era-B 4 KiB)."""
MODELS = {"a": "diffio-3.5", "b": "diffio-4.6-flash"}
"""A current model of each era."""
JOB_SECONDS = 600
"""Emulator seconds a generation takes in the resource tests: it stays queued (10 %, a minute)
until the test advances the emulator clock (``env.emulator.advance(JOB_SECONDS)``)."""
SDK_HEADERS = {
    "authorization": f"Bearer {TEST_API_KEY}",
    "content-type": "application/json",
    "user-agent": f"diffio-async/{__version__}",
    "x-diffio-sdk-name": "diffio-async",
    "x-diffio-sdk-version": __version__,
}
"""Headers every ``/v1`` call of an emulated client carries."""


def sent(env: EmulatedDiffio, path: str) -> list[Any]:
    """The JSON bodies the emulator received at ``path`` (``/v1/...``), oldest first."""
    return [entry.json for entry in env.emulator.requests.find(path=path)]


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
