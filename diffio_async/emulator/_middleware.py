"""The outermost ASGI layer: records every request and applies injected faults."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._errors import ConnectionDropped
from ._faults import Fault, FaultSet
from ._request_log import LoggedRequest, RequestLog

__all__ = ["CONTROL_PREFIX", "EmulatorMiddleware", "drop_connection"]

CONTROL_PREFIX = "/_emulator"


class _Truncated(Exception):
    """Stops the app after a truncated response was cut off."""


def _contains(exc: BaseException, kind: type[BaseException]) -> bool:
    """Whether ``exc`` is ``kind`` or an exception group holding one (Python 3.10 safe)."""
    if isinstance(exc, kind):
        return True
    inner = getattr(exc, "exceptions", None)
    if isinstance(inner, (list, tuple)):
        return any(_contains(item, kind) for item in inner if isinstance(item, BaseException))
    return False


def _only(exc: BaseException, kind: type[BaseException]) -> bool:
    """Whether ``exc`` is ``kind``, or an exception group holding nothing else."""
    inner = getattr(exc, "exceptions", None)
    if isinstance(inner, (list, tuple)) and inner:
        return all(isinstance(item, BaseException) and _only(item, kind) for item in inner)
    return isinstance(exc, kind)


async def drop_connection(send: Send) -> bool:
    """Close the client's TCP connection without (more of) a response.

    Works under uvicorn, whose ``send`` is a bound method of a request cycle holding the
    asyncio ``transport``. Returns ``False`` when there is no socket to close (in-process
    transports); the caller then raises :class:`ConnectionDropped`.
    """
    cycle = getattr(send, "__self__", None)
    transport = getattr(cycle, "transport", None)
    close = getattr(transport, "close", None)
    if not callable(close):
        return False
    close()
    # Let the server notice the closed connection, so that it neither logs an "incomplete
    # response" error nor tries to send a 500 of its own.
    with anyio.move_on_after(5):
        while not getattr(cycle, "disconnected", True):  # noqa: ASYNC110 - no event to await
            await anyio.sleep(0.001)
    return True


async def _drain(receive: Receive) -> None:
    """Read and discard the rest of the request body."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


class _Capture:
    """A ``send`` that keeps the response instead of sending it."""

    def __init__(self, keep_body: bool) -> None:
        self.keep_body = keep_body
        self.messages: list[Message] = []

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.body" and not self.keep_body:
            return
        self.messages.append(message)

    async def replay(self, send: Send) -> None:
        for message in self.messages:
            await send(message)


_KEPT_JSON_BYTES = 64 * 1024


class EmulatorMiddleware:
    """Wraps the Starlette app: request log plus fault injection.

    Requests under ``/_emulator`` (the control routes) are neither logged nor faulted. A
    client that disconnects mid-request is not an emulator error: a ``ClientDisconnect``
    reaching this layer ends the request quietly (the server would log it as "Exception in
    ASGI application").
    """

    def __init__(self, app: ASGIApp, log: RequestLog, faults: FaultSet) -> None:
        """Wrap ``app``."""
        self.app = app
        self.log = log
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI connection scope."""
        try:
            await self._call(scope, receive, send)
        except Exception as exc:
            if not _only(exc, ClientDisconnect):
                raise
            # The client is gone: there is nobody to answer and nothing went wrong here.

    async def _call(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        index = self.log.next_index()
        headers = tuple(
            (name.decode("latin-1").lower(), value.decode("latin-1"))
            for name, value in scope.get("headers", [])
        )
        chunked = any(
            name == "transfer-encoding" and "chunked" in value.lower() for name, value in headers
        )
        received = 0
        status: int | None = None
        keep_json = any(
            name == "content-type" and "json" in value.lower() for name, value in headers
        )
        kept = bytearray()

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                received += len(chunk)
                if keep_json and len(kept) < _KEPT_JSON_BYTES:
                    kept.extend(chunk[: _KEPT_JSON_BYTES - len(kept)])
            return message

        method: str = scope.get("method", "GET")
        fault = self.faults.take(method, path)
        recorded = False

        def record() -> None:
            # Called just before the client can see the outcome (the last body message, or the
            # drop), so a test that got its answer always finds the request in the log.
            nonlocal recorded
            if recorded:
                return
            recorded = True
            self.log.append(
                LoggedRequest(
                    index=index,
                    method=method,
                    path=path,
                    query=scope.get("query_string", b"").decode("latin-1"),
                    headers=headers,
                    body_size=received,
                    chunked=chunked,
                    status=status,
                    fault=None if fault is None else fault.kind,
                    body=bytes(kept),
                )
            )

        body_left: int | None = None

        async def recording_send(message: Message) -> None:
            nonlocal status, body_left
            if message["type"] == "http.response.start":
                status = int(message["status"])
                body_left = _content_length(message)
                if method == "HEAD" or body_left == 0:
                    # No body follows: the client sees the whole answer once the headers go.
                    record()
            elif message["type"] == "http.response.body":
                if body_left is not None:
                    body_left -= len(message.get("body", b""))
                # A streamed answer ends with an empty message, but a client that knows the
                # length has the whole answer with the last byte: record before either.
                if not message.get("more_body") or (body_left is not None and body_left <= 0):
                    record()
            await send(message)

        try:
            if fault is None:
                await self.app(scope, counting_receive, recording_send)
            else:
                await self._apply(fault, scope, counting_receive, recording_send, send, record)
        finally:
            record()

    async def _apply(
        self,
        fault: Fault,
        scope: Scope,
        receive: Receive,
        send: Send,
        raw_send: Send,
        record: Callable[[], None],
    ) -> None:
        if not fault.after and fault.delay:
            await anyio.sleep(fault.delay)
        if fault.truncate:
            await self._truncated(scope, receive, send, raw_send, record)
            return
        if fault.after:
            forward = fault.status is None and not fault.drop
            capture = _Capture(keep_body=forward)
            await self.app(scope, receive, capture.send)
            if fault.delay:
                await anyio.sleep(fault.delay)
            if forward:
                await capture.replay(send)
                return
        if fault.drop:
            if not fault.after:
                # Read the request first: closing a socket with unread input sends a TCP reset
                # (httpx2 ReadError) instead of a clean close (httpx2 RemoteProtocolError).
                await _drain(receive)
            record()
            if not await drop_connection(raw_send):
                raise ConnectionDropped("The emulator dropped the connection (injected fault).")
            return
        if fault.status is not None:
            if not fault.after:
                await _drain(receive)
            status, headers, body = fault.response_parts()
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body, "more_body": False})
            return
        await self.app(scope, receive, send)

    async def _truncated(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        raw_send: Send,
        record: Callable[[], None],
    ) -> None:
        """Send the real status and headers and half of the body, then close."""
        start: dict[str, Any] = {}
        limit: int | None = None
        sent = 0
        buffered = bytearray()
        dropped_in_process = False

        async def cut(message: Message) -> None:
            nonlocal limit, sent, dropped_in_process
            if message["type"] == "http.response.start":
                start.update(message)
                declared = _content_length(message)
                if declared is not None:
                    limit = declared // 2
                    await send(message)
                return
            if message["type"] != "http.response.body":
                return
            body: bytes = message.get("body", b"")
            more: bool = message.get("more_body", False)
            if limit is None:
                buffered.extend(body)
                if more:
                    return
                body, more = bytes(buffered), False
                limit = len(body) // 2
                raw_headers = [
                    (name, value)
                    for name, value in start.get("headers", [])
                    if name.lower() != b"content-length"
                ]
                raw_headers.append((b"content-length", str(len(body)).encode()))
                await send({**start, "headers": raw_headers})
            piece = body[: max(0, limit - sent)]
            if piece:
                await send({"type": "http.response.body", "body": piece, "more_body": True})
                sent += len(piece)
            if sent >= limit or not more:
                record()
                if not await drop_connection(raw_send):
                    dropped_in_process = True
                raise _Truncated

        try:
            await self.app(scope, receive, cut)
        except BaseException as exc:
            if not _contains(exc, _Truncated):
                raise
            if dropped_in_process:
                raise ConnectionDropped(
                    "The emulator truncated the response body (injected fault)."
                ) from None


def _content_length(message: Message) -> int | None:
    for name, value in message.get("headers", []):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
