"""One event loop in a daemon thread, and blocking calls into it through anyio's portal.

The loop runs ``anyio.run`` with a :class:`anyio.from_thread.BlockingPortal` in its main task
and owns an async context manager (the ``AsyncDiffio``) for as long as it runs: the client is
entered when the loop starts and exited after the portal stopped, so no call outlives the
connection pool. Any number of threads may call at once (each call is a task on the loop).

The thread is a daemon and nothing here runs at garbage collection: a client its program
forgot to close never blocks the interpreter's exit (anyio's ``start_blocking_portal`` joins
its thread from a generator's ``finally``, which hangs when the generator is collected at
exit, after daemon threads stopped running).
"""

from __future__ import annotations

import concurrent.futures
import functools
import inspect
import queue
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from typing import Any, Generic, Literal, ParamSpec, TypeVar

import anyio
import anyio.from_thread
import anyio.lowlevel
from anyio import run as run_event_loop  # bound once: a test may patch anyio.run itself

from ..errors import ClientClosedError, ConfigurationError, DiffioError, InvalidRequestError

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found, unused-ignore]

__all__ = ["Backend", "LoopThread", "checked_backend", "in_worker_thread"]

T = TypeVar("T")
P = ParamSpec("P")

Backend = Literal["asyncio", "trio"]


def checked_backend(value: object) -> Backend:
    """``value`` if it names a backend anyio runs, else :class:`ConfigurationError`."""
    if value == "asyncio":
        return "asyncio"
    if value == "trio":
        return "trio"
    raise ConfigurationError('backend must be "asyncio" or "trio"')


class LoopThread:
    """An event loop in its own thread that serves blocking calls until :meth:`close`."""

    def __init__(self, owned: AbstractAsyncContextManager[object], *, backend: Backend) -> None:
        """Start the loop and enter ``owned`` in it (raises what entering raises)."""
        checked_backend(backend)
        self._lock = threading.Lock()
        self._closed = False
        self._unfinished: set[threading.Event] = set()
        """One event per call in flight, set when it ends; all set when the loop stops (a
        call cancelled before its task ran never sets its own)."""
        started: queue.SimpleQueue[anyio.from_thread.BlockingPortal | BaseException] = (
            queue.SimpleQueue()
        )

        async def serve() -> None:
            async with owned, anyio.from_thread.BlockingPortal() as portal:
                started.put(portal)
                await portal.sleep_until_stopped()

        def run() -> None:
            try:
                run_event_loop(serve, backend=backend)
            except BaseException as exc:  # a start failure goes to the starter
                started.put(exc)
            finally:
                for ended in list(self._unfinished):
                    ended.set()

        self._thread = threading.Thread(target=run, name=f"diffio-{backend}-loop", daemon=True)
        self._thread.start()
        first = started.get()
        if isinstance(first, BaseException):
            self._thread.join()
            raise first
        self._portal = first

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def call(self, function: Callable[[], Awaitable[T]]) -> T:
        """Run ``function()`` on the loop and wait for its result (or exception).

        An exception raised in this thread while it waits (Ctrl-C's KeyboardInterrupt) cancels
        the call on the loop, waits until it has really ended (so it writes nothing after),
        then goes on up.
        """
        self._check_open()
        try:
            return self._call_cancelling_when_interrupted(function)
        except concurrent.futures.CancelledError:
            raise ClientClosedError("the Diffio client was closed while this call ran") from None
        except RuntimeError as exc:
            if self._closed and not isinstance(exc, DiffioError):
                raise ClientClosedError("the Diffio client is closed") from exc
            raise

    def _call_cancelling_when_interrupted(self, function: Callable[[], Awaitable[T]]) -> T:
        ended = threading.Event()
        self._unfinished.add(ended)

        async def run() -> T:
            try:
                return await function()
            except BaseException as exc:
                if _ends_the_loop(exc):
                    raise _Carried(exc) from None
                raise
            finally:
                ended.set()

        started: list[concurrent.futures.Future[T]] = []
        try:
            _outside_event_loops(lambda: started.append(self._portal.start_task_soon(run)))
            try:
                return _interruptible_result(started[0])
            except BaseException as exc:
                if (carried := _carried_in(exc)) is not None:
                    raise carried from None
                raise
        except BaseException:
            # cancel() is false once the call ended (its own exception is being raised).
            if started and started[0].cancel():
                ended.wait()  # set by the call's finally, or when the loop stopped
            raise
        finally:
            self._unfinished.discard(ended)

    @contextmanager
    def enter(self, manager: AbstractAsyncContextManager[T]) -> Iterator[T]:
        """``manager`` as a blocking context manager; both its halves run in one task.

        An interrupt while it is entered (Ctrl-C while a batch walks its sources) cancels its
        task and waits until the task ended (a manager already entered is exited as a block
        left early), then goes on up: the task must not go on without a ``with``
        block to leave it. An interrupt of the ``with`` block (KeyboardInterrupt,
        SystemExit: not an Exception) exits ``manager`` as a block left early would, and
        goes on up: thrown into the loop, it would stop the loop's thread.
        """
        self._check_open()
        held = _Held(manager)
        self._unfinished.add(held.ended)
        try:
            task = _outside_event_loops(lambda: self._portal.start_task_soon(held.run))
            try:
                value = _interruptible_result(held.entered)
            except BaseException:
                # cancel() is false once the task ended (entering failed: that is raised).
                if task.cancel():
                    held.ended.wait()  # set when the task ended, or when the loop stopped
                raise
            try:
                yield value
            except Exception as exc:
                if self._closed:  # close() cancelled the manager's task, which exited it
                    raise
                if not self._leave(held, task, exc):
                    raise
            except BaseException:
                if not self._closed:
                    self._leave(held, task, None)
                raise
            else:
                if not self._closed:
                    self._leave(held, task, None)
        finally:
            self._unfinished.discard(held.ended)

    def _leave(
        self,
        held: _Held[T],
        task: concurrent.futures.Future[bool | None],
        exc: BaseException | None,
    ) -> bool | None:
        """Exit ``held``'s manager (with ``exc``, or as a block that ended) and return what
        its ``__aexit__`` returned."""
        _outside_event_loops(lambda: self._portal.call(held.release, exc))
        try:
            return _interruptible_result(task)
        except BaseException as exc:
            if (carried := _carried_in(exc)) is not None:
                raise carried from None
            raise

    def iterate(self, iterator: AsyncIterator[T]) -> Iterator[T]:
        """Step ``iterator`` on the loop, one blocking call per item."""
        while True:
            try:
                item = self.call(iterator.__anext__)
            except StopAsyncIteration:
                return
            yield item

    def close(self) -> None:
        """Cancel the calls still running, exit the owned manager, stop the loop and join
        its thread. Safe to call twice and from several threads."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        # Cancels the calls still running.
        _outside_event_loops(lambda: self._portal.call(self._portal.stop, True))
        if not getattr(_callbacks, "running", False):
            # From a callback the loop still waits for that callback: it ends once it returns.
            self._thread.join()

    def _check_open(self) -> None:
        if self._closed or sys.is_finalizing():
            raise ClientClosedError("the Diffio client is closed")


class _Carried(Exception):
    """A KeyboardInterrupt or SystemExit raised on the loop (by a callback: ``sys.exit()``),
    carried to the calling thread as an ordinary exception and raised there again: left to
    go up on the loop, it would end the loop and with it the client."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__(repr(exc))
        self.exc = exc


def _carried_in(exc: BaseException) -> BaseException | None:
    """What a :class:`_Carried` in ``exc`` (or in its exception groups) carries."""
    if isinstance(exc, _Carried):
        return exc.exc
    for inner in exc.exceptions if isinstance(exc, BaseExceptionGroup) else ():
        if (carried := _carried_in(inner)) is not None:
            return carried
    return None


def _ends_the_loop(exc: BaseException) -> bool:
    """Whether ``exc`` would end the loop if it went up there: not an Exception, not the
    loop's own cancellation."""
    return not isinstance(exc, Exception | anyio.get_cancelled_exc_class())


class _Held(Generic[T]):
    """An async context manager held entered by one task on the loop, from its ``run``'s
    entering until :meth:`release` (called on the loop) lets it exit."""

    def __init__(self, manager: AbstractAsyncContextManager[T]) -> None:
        self._manager = manager
        self.entered: concurrent.futures.Future[T] = concurrent.futures.Future()
        """What entering gave (or raised)."""
        self.ended = threading.Event()
        """Set when :meth:`run` has ended."""
        self._exit: tuple[type[BaseException] | None, BaseException | None, Any] = (
            None,
            None,
            None,
        )
        self._leave: anyio.Event | None = None

    def release(self, exc: BaseException | None) -> None:
        """Let the manager exit (with ``exc``)."""
        if exc is not None:
            self._exit = (type(exc), exc, exc.__traceback__)
        if self._leave is not None:
            self._leave.set()

    async def run(self) -> bool | None:
        """Enter the manager, wait for :meth:`release`, exit it; return what exiting did."""
        try:
            self._leave = anyio.Event()
            try:
                value = await self._manager.__aenter__()
            except BaseException as exc:
                self.entered.set_exception(exc)
                if _ends_the_loop(exc):
                    raise _Carried(exc) from None
                raise
            self.entered.set_result(value)
            try:
                await self._leave.wait()
            finally:
                try:
                    result = await self._manager.__aexit__(*self._exit)
                except BaseException as exc:
                    if _ends_the_loop(exc):
                        raise _Carried(exc) from None
                    raise
            return result
        finally:
            self.ended.set()


def _outside_event_loops(call: Callable[[], T]) -> T:
    """``call()``, from a helper thread when this thread runs an event loop (a notebook
    cell's coroutine): trio refuses calls into any trio loop from a thread running one."""
    try:
        anyio.lowlevel.current_token()
    except RuntimeError:  # no event loop runs here: call from this thread
        return call()
    outcome: concurrent.futures.Future[T] = concurrent.futures.Future()

    def run() -> None:
        try:
            outcome.set_result(call())
        except BaseException as exc:  # handed back to the calling thread
            outcome.set_exception(exc)

    helper = threading.Thread(target=run, name="diffio-call", daemon=True)
    helper.start()
    try:
        helper.join()
    except BaseException:
        # Interrupted (Ctrl-C): let the helper finish first, so that the caller knows what it
        # did (a task it started, to cancel). The calls made through here are short, or end
        # soon (an exit that cancels).
        helper.join()
        raise
    return outcome.result()


_SIGNAL_CHECK = 0.2
"""Seconds between the wake-ups of a thread waiting for a call on the loop. A signal handler
(Ctrl-C's KeyboardInterrupt) runs only when the main thread runs Python code: a signal that
lands just before the thread blocks, or that another thread received, would otherwise wait
until the call ended (a blocked lock wait is not woken again)."""


def _interruptible_result(future: concurrent.futures.Future[T]) -> T:
    """``future.result()``, waking every :data:`_SIGNAL_CHECK` seconds so that a pending
    signal's handler runs (and raises) while the call goes on."""
    while not future.done():
        concurrent.futures.wait((future,), timeout=_SIGNAL_CHECK)
    return future.result()


_callbacks = threading.local()
"""``running`` is true in a worker thread while it runs a blocking caller's callback."""


def in_worker_thread(
    name: str, function: Callable[P, object] | None
) -> Callable[P, Awaitable[None]] | None:
    """A plain callback of a blocking caller, as an async one that runs it in a worker thread.

    In a worker thread it may block, and may call the client, without stalling the loop that
    serves every thread's calls; the async code awaits each call before going on, so one
    operation's callbacks still run one at a time and in order. An ``async def`` function is
    refused: the blocking client has no loop of the caller's to run it on.
    """
    if function is None:
        return None
    if not callable(function):
        raise InvalidRequestError(f"{name} must be callable or None, not {type(function).__name__}")
    if inspect.iscoroutinefunction(function):
        raise InvalidRequestError(
            f"{name} must be a plain function for the blocking client (it runs in a worker "
            "thread), not an async one; use AsyncDiffio for async callbacks"
        )

    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        _callbacks.running = True
        try:
            function(*args, **kwargs)
        finally:
            _callbacks.running = False

    async def call(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            await anyio.to_thread.run_sync(functools.partial(run, *args, **kwargs))
        except BaseException as exc:
            if _ends_the_loop(exc):  # sys.exit() in the callback: carried, not raised here
                raise _Carried(exc) from None
            raise

    return call
