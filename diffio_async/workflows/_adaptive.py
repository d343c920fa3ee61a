"""How many items a batch keeps in flight when the server answers 429 (rate limited).

The rule, in full:

* A 429 first pauses the request it answered, as its ``Retry-After`` asks (the transport and
  the item's retry do that); it says nothing yet about the batch.
* Rate limiting is *sustained* when at least ``SUSTAINED`` 429s arrived within one typical
  item duration (the batch's learned pace, else ``DEFAULT_ITEM_SECONDS``). Only then is the
  limit cut, by a quarter, and at most once per typical item duration, never below an eighth
  of the maximum (and 1).
* Each finished item adds back a sixteenth of the maximum (at least 1), up to the maximum:
  once 429s stop, a batch is back at full speed within a few finished items.

So 429s that arrive at random, not because of the batch's load, cost at most a quarter of the
items in flight for a moment, and never collapse a batch to one or two items.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import anyio

from ..errors import RateLimitError

__all__ = ["DEFAULT_ITEM_SECONDS", "SUSTAINED", "AdaptiveLimit"]

SUSTAINED = 4
"""429s within one typical item duration that make rate limiting sustained."""
DEFAULT_ITEM_SECONDS = 10.0
"""The typical item duration before the batch has learned its pace."""


class AdaptiveLimit:
    """The number of items in flight (``limiter``), cut on sustained 429s, grown on successes.

    ``typical_seconds`` returns how long an item typically takes (``None``: not known yet);
    ``clock`` is the time source (``anyio.current_time`` by default).
    """

    def __init__(
        self,
        maximum: int,
        *,
        typical_seconds: Callable[[], float | None] = lambda: None,
        clock: Callable[[], float] = anyio.current_time,
    ) -> None:
        self.maximum = maximum
        self.limiter = anyio.CapacityLimiter(maximum)
        self.floor = max(1, maximum // 8)
        self.step = max(1, maximum // 16)
        self._typical = typical_seconds
        self._clock = clock
        self._recent: deque[float] = deque()
        self._last_cut = -float("inf")

    @property
    def limit(self) -> int:
        """Items allowed in flight now."""
        return int(self.limiter.total_tokens)

    def on_failure(self, error: BaseException) -> None:
        """Take note of a failed attempt (only 429s count)."""
        if not isinstance(error, RateLimitError):
            return
        now = self._clock()
        window = self._typical() or DEFAULT_ITEM_SECONDS
        self._recent.append(now)
        while self._recent and self._recent[0] < now - window:
            self._recent.popleft()
        if len(self._recent) < SUSTAINED or now - self._last_cut < window:
            return
        self._last_cut = now
        self._recent.clear()
        self.limiter.total_tokens = max(self.floor, self.limit - max(1, self.limit // 4))

    def on_success(self) -> None:
        """An item finished: allow more in flight again."""
        if self.limit < self.maximum:
            self.limiter.total_tokens = min(self.maximum, self.limit + self.step)
