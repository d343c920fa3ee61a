"""Status-change webhooks at the moment of the change, whether or not anyone polls.

The :class:`WebhookScheduler` is a background task that sleeps until the next overall status
change of any generation is due, has the runtime decide which changes are due (the one place
that marks a change announced, the poll path included), and delivers the resulting messages
in the order they were decided. It wakes early when a generation is created, when the clock
is advanced, and when a request hands it messages.

While it runs, it is the only deliverer of status-change messages: whoever decides a change
(a poll, the ``/_emulator/webhooks/deliver`` control, the scheduler itself) puts the messages
in its outbox, under the state lock, so they go out once each and in order. When it does not
run (an in-process emulator nobody started it for), the deciders deliver themselves, as
before.

It sleeps by waiting for one end of a socket pair to become readable, with the event loop's
own timeout (``move_on_after``): a wake-up is one byte written to the other end, which any
thread may do without blocking and without any loop-specific API (a test thread advancing the
clock of an emulator served by another thread's asyncio loop; a request or ``advance`` on the
caller's own loop, asyncio or trio). No thread is involved, so virtual clocks (trio's
``MockClock``, the tests' virtual asyncio loop) drive the sleep as they drive the emulator
clock: an idle loop jumps to the next due change, and a pending wake-up is seen at once.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import logging
import math
import socket
import threading
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import cast

import anyio

from ._clock import EmulatorClock
from ._webhook_delivery import OutgoingMessage

__all__ = ["WebhookScheduler"]

_log = logging.getLogger(__name__)

_MAX_SLEEP = 60.0
"""Longest sleep of a clock that follows a time source (a wall clock may jump)."""


def _wait_readable(sock: socket.socket) -> Awaitable[None]:
    wait = getattr(anyio, "wait_readable", None)
    if wait is None:  # anyio < 4.7
        return anyio.wait_socket_readable(sock)
    return cast("Awaitable[None]", wait(sock))


class WebhookScheduler:
    """The timeline of due status changes, the outbox, and the task that works through them.

    Thread-safe: generations are scheduled from request handlers, the clock is advanced from
    test threads, and deliveries are awaited from other event loops.
    """

    def __init__(
        self,
        *,
        clock: EmulatorClock,
        deliver: Callable[[Sequence[OutgoingMessage]], Awaitable[None]],
        announce_due: Callable[[float], None],
    ) -> None:
        """``deliver`` sends messages in order; ``announce_due(now)`` decides due changes."""
        self._clock = clock
        self._deliver = deliver
        self._announce_due = announce_due
        self._lock = threading.Condition()
        self._timeline: list[tuple[float, int, str]] = []
        self._order = itertools.count()
        self._outbox: deque[OutgoingMessage] = deque()
        self._queued = 0
        self._done = 0
        self._active = False
        self._thread: int | None = None
        self._bell: socket.socket | None = None
        self._batch_done: anyio.Event | None = None

    # --- what the runtime calls --------------------------------------------------------

    @property
    def active(self) -> bool:
        """Whether the background task runs (and so delivers every status change)."""
        with self._lock:
            return self._active

    def schedule(self, key: str, at: float) -> None:
        """Look at generation ``key`` again at emulator time ``at``."""
        with self._lock:
            heapq.heappush(self._timeline, (at, next(self._order), key))
        self.wake()

    def pop_due(self, now: float) -> list[str]:
        """The generations whose scheduled moment is ``now`` or earlier, earliest first."""
        due: list[str] = []
        with self._lock:
            while self._timeline and self._timeline[0][0] <= now:
                due.append(heapq.heappop(self._timeline)[2])
        return due

    def offer(self, messages: Sequence[OutgoingMessage]) -> int | None:
        """Queue ``messages`` for the running task; ``None`` when it does not run.

        Returns a ticket for :meth:`delivered` (it covers these messages and every one queued
        before). Call it under the state lock that decided the messages, so the outbox keeps
        the order of the decisions.
        """
        with self._lock:
            if not self._active:
                return None
            self._outbox.extend(messages)
            self._queued += len(messages)
            ticket = self._queued
        if messages:
            self.wake()
        return ticket

    async def delivered(self, ticket: int) -> None:
        """Wait until every message up to ``ticket`` has been delivered (or the task stopped).

        Works from any thread and event loop: on the task's own loop it waits for the task's
        batches; elsewhere a worker thread waits.
        """

        def finished() -> bool:
            return self._done >= ticket or not self._active

        while True:
            with self._lock:
                if finished():
                    return
                same_loop = self._thread == threading.get_ident()
                batch_done = self._batch_done
            if not same_loop or batch_done is None:
                break
            await batch_done.wait()

        def wait() -> None:
            with self._lock:
                self._lock.wait_for(finished)

        await anyio.to_thread.run_sync(wait, abandon_on_cancel=True)

    def wake(self) -> None:
        """Have the task look at the timeline now (thread-safe, never blocks)."""
        with self._lock:
            if self._bell is not None:
                # A full buffer means a wake-up is pending already.
                with contextlib.suppress(OSError):
                    self._bell.send(b"\0")

    # --- the task ----------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[bool]:
        """Run the task on the current event loop until the block exits.

        Yields ``True``, or ``False`` when the task already runs elsewhere (one task serves
        an emulator; a second server of the same emulator leaves it to the first). Messages
        still in the outbox when the block exits are dropped.
        """
        with self._lock:
            started = not self._active
            if started:
                bell, ear = socket.socketpair()
                bell.setblocking(False)
                ear.setblocking(False)
                self._active = True
                self._thread = threading.get_ident()
                self._bell = bell
                self._batch_done = anyio.Event()
        if not started:
            yield False
            return
        unsubscribe = self._clock.on_advance(self.wake)
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._run, ear)
                try:
                    yield True
                finally:
                    # First: from now on whoever decides a change delivers it again.
                    self._stop()
                    group.cancel_scope.cancel()
        finally:
            unsubscribe()
            bell.close()
            ear.close()

    def _stop(self) -> None:
        with self._lock:
            self._active = False
            self._thread = None
            self._bell = None
            self._done += len(self._outbox)
            self._outbox.clear()
            self._lock.notify_all()
            batch_done, self._batch_done = self._batch_done, None
        if batch_done is not None:
            batch_done.set()

    async def _run(self, ear: socket.socket) -> None:
        while True:
            _drain(ear)  # every wake-up so far is handled by what follows
            self._announce_due(self._clock.now())
            with self._lock:
                batch = list(self._outbox)
                self._outbox.clear()
            if batch:
                try:
                    await self._deliver(batch)
                except Exception:  # a broken receiver must not stop the emulator's webhooks
                    _log.exception("webhook delivery failed")
                finally:
                    self._finished(len(batch))
                continue
            delay = self._delay()
            if delay is None or delay > 0:
                with anyio.move_on_after(math.inf if delay is None else delay):
                    await _wait_readable(ear)

    def _finished(self, count: int) -> None:
        with self._lock:
            self._done += count
            self._lock.notify_all()
            batch_done = self._batch_done
            if batch_done is not None:
                self._batch_done = anyio.Event()
        if batch_done is not None:
            batch_done.set()

    def _delay(self) -> float | None:
        """Seconds until the next scheduled moment; ``None``: until woken."""
        with self._lock:
            at = self._timeline[0][0] if self._timeline else None
        if at is None or self._clock.manual:
            return None  # a manual clock moves only through advance(), which wakes us
        return min(max(at - self._clock.now(), 0.0), _MAX_SLEEP)


def _drain(ear: socket.socket) -> None:
    """Read every pending wake-up byte."""
    with contextlib.suppress(BlockingIOError, InterruptedError):
        while ear.recv(4096):
            pass
