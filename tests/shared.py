"""Constants the SDK's test modules share (import by name: pyproject puts tests/ on the path)."""

from __future__ import annotations

from diffio_async import PollPolicy, RetryPolicy

MIB = 1024 * 1024
FAST = RetryPolicy(max_retries=2, initial_delay=0.01, max_delay=0.02)
"""Retries that do not slow a test down."""
QUICK_POLL = PollPolicy(initial=0.05, maximum=0.2)
"""Polls every 50-200 ms, for generations that take a fraction of a second."""
ERAS = ["a", "b"]
"""Both API eras (signed PUT uploads, edge multipart)."""
MEDIA = {"a": "/_storage/*", "b": "/m/*"}
"""Where each era's emulator serves media (for faults on downloads)."""
