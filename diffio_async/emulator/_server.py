"""Running the emulator on real sockets: a background thread for tests, and the CLI."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import socket
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import anyio
import uvicorn
from starlette.types import ASGIApp

from ._emulator import Emulator

__all__ = ["build_parser", "main", "run_cli", "serve_in_thread"]


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit TCP_NODELAY on Linux; without it every keep-alive response
        # (headers and body are separate writes) waits ~40 ms for the client's delayed ACK.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def _config(app: ASGIApp, log_level: str) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        log_level=log_level,
        access_log=False,
        lifespan="off",
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
    reach it over real loopback sockets. ``port=0`` picks a free port. Yields the base URL,
    e.g. ``"http://127.0.0.1:54321"``; the server stops when the block exits (the emulator
    itself is not closed).
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


def build_parser(prog: str = "python -m diffio_async.emulator") -> argparse.ArgumentParser:
    """The command-line options of :func:`run_cli`."""
    parser = argparse.ArgumentParser(prog=prog, description="Run a local Diffio API emulator.")
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port; 0 picks a free one")
    parser.add_argument("--era", choices=("a", "b"), default="a", help="API era (default a)")
    parser.add_argument(
        "--api-key",
        default=None,
        help="admin API key (default: $DIFFIO_API_KEY; unset: any non-empty key is accepted)",
    )
    parser.add_argument(
        "--generation-seconds",
        type=float,
        default=3.0,
        help="emulator seconds a generation takes (default 3)",
    )
    parser.add_argument("--part-size-bytes", type=int, default=None, help="era B part size")
    parser.add_argument("--storage-dir", default=None, help="media directory (default: temp)")
    parser.add_argument(
        "--clock",
        choices=("wall", "manual"),
        default="wall",
        help="wall: time passes normally (default); manual: only POST /_emulator/advance",
    )
    parser.add_argument("--log-level", default="warning", help="uvicorn log level")
    return parser


def run_cli(argv: Sequence[str], *, prog: str | None = None) -> int:
    """Run the emulator until interrupted; returns the process exit code.

    ``diffio-async emulator …`` delegates here. Prints the base URL on the first line of
    standard output (flushed), e.g. ``Diffio emulator (era a) listening on http://…``.
    """
    import time

    from ._clock import EmulatorClock

    args = build_parser(**({"prog": prog} if prog else {})).parse_args(list(argv))
    api_key = args.api_key if args.api_key is not None else os.environ.get("DIFFIO_API_KEY")
    options: dict[str, Any] = {}
    if args.part_size_bytes is not None:
        options["part_size_bytes"] = args.part_size_bytes
    clock = EmulatorClock(time_source=time.time if args.clock == "wall" else None)
    try:
        sock = _bind(args.host, args.port)
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    url = _url(args.host, sock.getsockname()[1])
    with Emulator(
        era=args.era,
        api_key=api_key or None,
        generation_seconds=args.generation_seconds,
        clock=clock,
        storage_dir=args.storage_dir,
        **options,
    ) as emulator:
        print(f"Diffio emulator (era {emulator.era}) listening on {url}", flush=True)
        key_note = api_key if api_key else "(any non-empty key)"
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
