"""Running the emulator on real sockets: a background thread for tests, and the CLI."""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import socket
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn

import anyio
import uvicorn
from starlette.types import ASGIApp

from ._emulator import Emulator
from ._request_log import mask_secret

__all__ = ["build_parser", "main", "run_cli", "serve_in_thread"]


_BACKLOG = 2048
"""Connections the kernel queues before the server accepts them (uvicorn's default)."""


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit TCP_NODELAY on Linux; without it every keep-alive response
        # (headers and body are separate writes) waits ~40 ms for the client's delayed ACK.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        # Listen now, not when uvicorn starts: a client that read "listening on" (or got the
        # URL) may connect at once, and the kernel queues it instead of refusing it.
        sock.listen(_BACKLOG)
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def _config(app: ASGIApp, log_level: str) -> uvicorn.Config:
    # An emulator's lifespan runs its webhook scheduler; other apps are served as they were.
    return uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        lifespan="on" if isinstance(app, Emulator) else "off",
        loop="asyncio",
        http="h11",
        timeout_graceful_shutdown=2,
    )


class _DropCancellations(logging.Filter):
    """Drops log records of cancelled requests raised in one thread."""

    def __init__(self, thread_id: int, cancelled: type[BaseException]) -> None:
        super().__init__()
        self.thread_id = thread_id
        self.cancelled = cancelled

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not (record.thread == self.thread_id and isinstance(error, self.cancelled))


class _ThreadServer(uvicorn.Server):
    """uvicorn without its 0.1 s polling: a test server starts and stops in milliseconds."""

    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            await anyio.sleep(0.005)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        with anyio.move_on_after(2):
            while self.server_state.connections:  # noqa: ASYNC110 - uvicorn has no event
                await anyio.sleep(0.005)
        # Requests whose clients are gone (e.g. a long injected delay) are not waited for;
        # their cancellation is expected, so uvicorn's "Exception in ASGI application" report
        # of it is dropped (for this server thread only).
        quiet = _DropCancellations(threading.get_ident(), anyio.get_cancelled_exc_class())
        error_log = logging.getLogger("uvicorn.error")
        error_log.addFilter(quiet)
        try:
            for task in list(self.server_state.tasks):
                task.cancel()
            with anyio.move_on_after(2):
                while self.server_state.tasks:  # noqa: ASYNC110 - uvicorn has no event
                    await anyio.sleep(0.005)
        finally:
            error_log.removeFilter(quiet)
        for server in self.servers:
            await server.wait_closed()
        if not self.force_exit:
            await self.lifespan.shutdown()  # stops an emulator's webhook scheduler


@contextlib.contextmanager
def serve_in_thread(
    app: Emulator | ASGIApp,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    log_level: str = "warning",
) -> Iterator[str]:
    """Serve ``app`` (usually an :class:`Emulator`) with uvicorn in a background thread.

    The server runs its own asyncio event loop, so tests on any backend (asyncio or trio)
    reach it over real loopback sockets. An emulator's webhook scheduler runs there too
    (through the ASGI lifespan): status changes are delivered when the clock passes them.
    ``port=0`` picks a free port. Yields the base URL, e.g. ``"http://127.0.0.1:54321"``;
    the server stops when the block exits (the emulator itself is not closed).
    """
    sock = _bind(host, port)
    real_port = sock.getsockname()[1]
    server = _ThreadServer(_config(app, log_level))
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # pragma: no cover - surfaced below
            failure.append(exc)

    thread = threading.Thread(target=run, name=f"diffio-emulator:{real_port}", daemon=True)
    thread.start()
    try:
        while not server.started:
            if failure or not thread.is_alive():
                raise RuntimeError("the emulator server failed to start") from (
                    failure[0] if failure else None
                )
            thread.join(0.01)
        yield _url(host, real_port)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


class _UsageError(Exception):
    """A bad command-line argument: one line on standard error, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument raises :class:`_UsageError` (no usage text, no exit)."""

    def error(self, message: str) -> NoReturn:
        raise _UsageError(message)


def _whole_number(low: int, high: int | None, what: str) -> Callable[[str], int]:
    """An argparse type: an int from ``low`` to ``high`` (no upper bound when ``None``)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, not {text!r}") from None
        if value < low or (high is not None and value > high):
            bound = f"from {low} to {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"must be {bound}, not {value}")
        return value

    return parse


_port = _whole_number(0, 65535, "a port number")
_positive_int = _whole_number(1, None, "a whole number")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, not {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, not {text!r}")
    return value


def _seconds_per_mib(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number of seconds per MiB, not {text!r}"
        ) from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, not {text!r}")
    return value


def build_parser(prog: str = "python -m diffio_async.emulator") -> argparse.ArgumentParser:
    """The command-line options of :func:`run_cli`."""
    return _build_parser(prog, argparse.ArgumentParser)


def _build_parser(
    prog: str, parser_class: Callable[..., argparse.ArgumentParser]
) -> argparse.ArgumentParser:
    parser = parser_class(prog=prog, description="Run a local Diffio API emulator.")
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=_port, default=8765, help="port from 0 to 65535; 0 picks a free one"
    )
    parser.add_argument("--era", choices=("a", "b"), default="a", help="API era (default a)")
    parser.add_argument(
        "--api-key",
        default=None,
        help="admin API key (default: $DIFFIO_API_KEY; unset: any non-empty key is accepted)",
    )
    parser.add_argument(
        "--generation-seconds",
        type=_seconds,
        default=3.0,
        help="emulator seconds a generation takes, its fixed part (default 3)",
    )
    parser.add_argument(
        "--seconds-per-mib",
        type=_seconds_per_mib,
        default=0.0,
        help="emulator seconds a generation takes per MiB of uploaded media (default 0)",
    )
    parser.add_argument(
        "--part-size-bytes", type=_positive_int, default=None, help="era B part size"
    )
    parser.add_argument("--storage-dir", default=None, help="media directory (default: temp)")
    parser.add_argument(
        "--clock",
        choices=("wall", "manual"),
        default="wall",
        help="wall: time passes normally (default); manual: only POST /_emulator/advance",
    )
    parser.add_argument(
        "--log-level",
        type=str.lower,
        choices=sorted(uvicorn.config.LOG_LEVELS),
        default="warning",
        help="uvicorn log level (default warning)",
    )
    return parser


def run_cli(argv: Sequence[str], *, prog: str | None = None) -> int:
    """Run the emulator until interrupted; returns the process exit code.

    ``diffio-async emulator …`` delegates here. Prints the base URL on the first line of
    standard output (flushed), e.g. ``Diffio emulator (era a) listening on http://…``. An
    adopted API key is shown masked (``diff...1234``).

    A bad argument (``--port 99999``, ``--port abc``, an unknown option, a port that is busy,
    an unusable ``--storage-dir``) prints one line, ``<prog>: error: …``, on standard error and
    returns 2. ``--help`` prints the help and raises ``SystemExit(0)``, as argparse does.
    """
    import time

    from ._clock import EmulatorClock

    shown_prog = prog or "python -m diffio_async.emulator"

    def fail(message: str) -> int:
        print(f"{shown_prog}: error: {' '.join(message.split())}", file=sys.stderr)
        return 2

    try:
        args = _build_parser(shown_prog, _Parser).parse_args(list(argv))
    except _UsageError as exc:
        return fail(f"{exc} (see '{shown_prog} --help')")
    api_key = args.api_key if args.api_key is not None else os.environ.get("DIFFIO_API_KEY")
    options: dict[str, Any] = {}
    if args.part_size_bytes is not None:
        options["part_size_bytes"] = args.part_size_bytes
    clock = EmulatorClock(time_source=time.time if args.clock == "wall" else None)
    try:
        sock = _bind(args.host, args.port)
    except (OSError, OverflowError, ValueError, TypeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return fail(f"cannot listen on {args.host}:{args.port}: {reason}")
    url = _url(args.host, sock.getsockname()[1])
    try:
        emulator = Emulator(
            era=args.era,
            api_key=api_key or None,
            generation_seconds=args.generation_seconds,
            seconds_per_mib=args.seconds_per_mib,
            clock=clock,
            storage_dir=args.storage_dir or None,
            **options,
        )
    except OSError as exc:
        sock.close()
        return fail(f"cannot use --storage-dir {args.storage_dir}: {exc.strerror or exc}")
    except ValueError as exc:
        sock.close()
        return fail(str(exc))
    with emulator:
        print(f"Diffio emulator (era {emulator.era}) listening on {url}", flush=True)
        key_note = mask_secret(api_key) if api_key else "(any non-empty key)"
        print(f"  base URL: {url}   API key: {key_note}", flush=True)
        print(f"  webhook secret: {emulator.webhook_secret}", flush=True)
        server = uvicorn.Server(_config(emulator, args.log_level))
        try:
            server.run(sockets=[sock])
        except KeyboardInterrupt:  # pragma: no cover - interactive
            pass
        finally:
            sock.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m diffio_async.emulator`` (``argv`` defaults to sys.argv)."""
    return run_cli(sys.argv[1:] if argv is None else argv)
