"""The emulator's clock: every timestamp and every generation lifecycle derives from it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone

__all__ = ["EmulatorClock", "isoformat"]


def isoformat(epoch_seconds: float) -> str:
    """Format Unix seconds as an ISO-8601 UTC timestamp ending in ``Z`` (whole seconds)."""
    moment = datetime.fromtimestamp(int(epoch_seconds), tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class EmulatorClock:
    """Seconds since the Unix epoch, as the emulator sees them.

    Two modes:

    * **manual** (default): time stands still at ``start`` (default: the current wall-clock
      second) and moves only through :meth:`advance`. Tests make a 300 s job finish by calling
      ``clock.advance(300)``.
    * **follow a time source**: ``time_source`` is any ``Callable[[], float]`` in seconds, e.g.
      ``anyio.current_time``; the clock then reads ``start + (time_source() - first reading)``
      plus whatever :meth:`advance` added. Handing it ``anyio.current_time`` lets a trio
      ``MockClock`` drive the emulator when the emulator runs in-process (``httpx2.ASGITransport``)
      on the test's own event loop. The source is called lazily, from whichever thread asks.

    The clock is thread-safe: the server thread reads it while a test thread advances it.
    Whoever must know when it jumps (the emulator's webhook scheduler) registers with
    :meth:`on_advance`.
    """

    def __init__(
        self,
        start: float | None = None,
        *,
        time_source: Callable[[], float] | None = None,
    ) -> None:
        """Create a clock at ``start`` (Unix seconds; default: now, rounded down to a second)."""
        self._start = float(int(time.time()) if start is None else start)
        self._source = time_source
        self._source_origin: float | None = None
        self._offset = 0.0
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []

    @property
    def manual(self) -> bool:
        """True when the clock only moves through :meth:`advance`."""
        return self._source is None

    def now(self) -> float:
        """The current emulator time in Unix seconds."""
        with self._lock:
            base = self._start + self._offset
            source = self._source
            if source is None:
                return base
            reading = source()
            if self._source_origin is None:
                self._source_origin = reading
            return base + (reading - self._source_origin)

    def advance(self, seconds: float) -> float:
        """Move the clock forward by ``seconds`` (must be >= 0) and return the new time."""
        if seconds < 0:
            raise ValueError("the emulator clock cannot go backwards")
        with self._lock:
            self._offset += float(seconds)
            listeners = list(self._listeners)
        for listener in listeners:
            listener()
        return self.now()

    def on_advance(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener()`` after every :meth:`advance` (from the advancing thread; it must
        be quick and thread-safe). Returns a function that unregisters it."""
        with self._lock:
            self._listeners.append(listener)

        def remove() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return remove

    def isoformat(self, epoch_seconds: float | None = None) -> str:
        """``epoch_seconds`` (default: now) as an ISO-8601 UTC string ending in ``Z``."""
        return isoformat(self.now() if epoch_seconds is None else epoch_seconds)

    def __repr__(self) -> str:
        """Show the mode and the current emulator time."""
        mode = "manual" if self.manual else "time_source"
        return f"EmulatorClock({mode}, now={self.isoformat()})"
