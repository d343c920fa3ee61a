"""How long the server takes, learned from a batch's finished items (per model and media size).

A new item's wait starts from this estimate (``Generation.wait(expected_seconds=...)``), so
its first polls go near its likely finish instead of at 1 s. The model is a line, seconds =
fixed + per-MiB x size, fitted by least squares over the model's most recent items; with one
size seen so far (or a fit that makes no sense) it is the median of their durations.
"""

from __future__ import annotations

import statistics
from collections import deque

__all__ = ["Pace"]

_KEPT = 64
"""How many recent items per model the estimate is made from."""
_MIB = 1024 * 1024
_MIN_SPREAD_MIB = 0.5
"""Sizes must differ by this much before a line is fitted (a few bytes say nothing per MiB)."""
_MAX_MEDIANS = 4
"""An estimate never exceeds this many times the median duration seen."""


class Pace:
    """Recent (media size, seconds to finish) of each model, and the estimate they give."""

    def __init__(self) -> None:
        self._seen: dict[str, deque[tuple[float, float]]] = {}

    def learn(self, model: str, size_bytes: int, seconds: float) -> None:
        """Record that ``model`` finished ``size_bytes`` of media in ``seconds``."""
        if seconds > 0:
            seen = self._seen.setdefault(model, deque(maxlen=_KEPT))
            seen.append((size_bytes / _MIB, seconds))

    def expect(self, model: str, size_bytes: int) -> float | None:
        """The seconds ``model`` is expected to take for ``size_bytes`` (``None``: no data)."""
        seen = self._seen.get(model)
        if not seen:
            return None
        sizes = [size for size, _ in seen]
        durations = [seconds for _, seconds in seen]
        median = statistics.median(durations)
        if len(seen) >= 2 and max(sizes) - min(sizes) >= _MIN_SPREAD_MIB:
            mean_size, mean_seconds = statistics.fmean(sizes), statistics.fmean(durations)
            spread = sum((size - mean_size) ** 2 for size in sizes)
            slope = (
                sum((size - mean_size) * (seconds - mean_seconds) for size, seconds in seen)
                / spread
            )
            fixed = mean_seconds - slope * mean_size
            if slope >= 0 and fixed >= 0:
                # A line is only trusted near what it was fitted on: never past a few medians.
                return min(fixed + slope * size_bytes / _MIB, _MAX_MEDIANS * median)
        return median

    def typical(self) -> float | None:
        """How long an item of any model has typically taken lately (``None``: no data)."""
        durations = [seconds for seen in self._seen.values() for _, seconds in seen]
        return statistics.median(durations) if durations else None
