"""Virtual time for tests on both anyio backends.

trio has ``trio.testing.MockClock(autojump_threshold=0)``. For asyncio, :class:`VirtualTimeLoop`
is an event loop whose ``time()`` is virtual and whose selector, when nothing is ready, jumps
the virtual clock forward to the next timer instead of sleeping (the approach of aiotools'
``VirtualClock``). A 300 s ``anyio.sleep`` then takes microseconds.

Both clocks jump whenever every task is blocked and a timer is pending, so they only suit code
that never waits on real sockets or threads while a deadline is pending: use the in-process
emulator (``emulated_diffio(loopback=False)``), whose clock follows ``anyio.current_time()``.

In a test module::

    from virtual_clock import virtual_backend

    @pytest.mark.parametrize("anyio_backend", VIRTUAL_BACKENDS, indirect=True)
    async def test_long_wait(): ...

with an ``anyio_backend`` fixture that returns ``virtual_backend(request.param)``.
"""

from __future__ import annotations

import asyncio
import selectors
import time
from typing import Any

import trio.testing

__all__ = ["VIRTUAL_BACKENDS", "VirtualTimeLoop", "virtual_backend"]

VIRTUAL_BACKENDS = ("asyncio+virtual", "trio+virtual")
"""Names understood by :func:`virtual_backend` (besides plain ``asyncio`` and ``trio``)."""


class _JumpingSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    """A real selector that never sleeps: an idle wait moves the loop's virtual clock."""

    def __init__(self) -> None:
        super().__init__()
        self.loop: VirtualTimeLoop | None = None

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None:
            # No timer is pending: only real I/O (a thread's wake-up) can make progress.
            return list(super().select(None))
        events = list(super().select(0))
        if not events and timeout > 0 and self.loop is not None:
            self.loop.advance(timeout)
        return events


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An asyncio event loop on virtual time (``time()`` only moves when the loop is idle).

    ``advance(seconds)`` moves the clock by hand; :attr:`jumped` totals the idle jumps.
    """

    def __init__(self) -> None:
        selector = _JumpingSelector()
        self._virtual_now = time.monotonic()
        self.jumped = 0.0
        super().__init__(selector)
        selector.loop = self

    def time(self) -> float:
        return self._virtual_now

    def advance(self, seconds: float) -> None:
        """Move the virtual clock forward by ``seconds``."""
        self._virtual_now += seconds
        self.jumped += seconds


def virtual_backend(name: str) -> Any:
    """The ``anyio_backend`` value for ``name``: ``asyncio``, ``trio`` or a virtual one."""
    if name == "asyncio+virtual":
        return ("asyncio", {"loop_factory": VirtualTimeLoop})
    if name == "trio+virtual":
        return ("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})
    if name in ("asyncio", "trio"):
        return name
    raise ValueError(f"unknown backend {name!r}")
