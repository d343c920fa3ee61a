"""A small HTTP endpoint that feeds webhook deliveries to a :class:`WebhookRouter`.

For scripts and the command line, where no web framework runs: ``listen_for_webhooks`` binds
``host:port`` on the caller's event loop and answers each ``POST`` by verifying it through the
router (``204`` when it verifies, ``400`` when it does not), which wakes the waits on its
generation. Put it behind your TLS proxy and point the Diffio webhook endpoint at it::

    router = WebhookRouter(secret)
    async with listen_for_webhooks(router, host="0.0.0.0", port=8080) as url:
        async with client.restore_many(paths, output_dir="out/", router=router) as results:
            ...

It speaks just enough HTTP/1.1 for webhook deliveries: one request per connection, a
``Content-Length`` body of at most 1 MiB, headers of at most 32 KiB, 10 s to send them, 64
connections answered at once. Nothing a client does ends the listener (or the block).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import anyio
import anyio.abc

from .errors import ConfigurationError
from .webhooks import WebhookRouter, WebhookVerificationError

__all__ = ["MAX_BODY_BYTES", "MAX_CONNECTIONS", "listen_for_webhooks"]

logger = logging.getLogger("diffio_async")

MAX_BODY_BYTES = 1024 * 1024
"""The largest delivery accepted (Diffio's events are a few hundred bytes)."""
MAX_CONNECTIONS = 64
"""Deliveries answered at once; more connections wait to be accepted."""
_ACCEPT_BACKOFF = 0.1
_MAX_HEAD_BYTES = 32 * 1024
_READ_SECONDS = 10.0

_REASONS = {204: "No Content", 400: "Bad Request", 405: "Method Not Allowed", 413: "Too Large"}


class _BadRequest(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


@asynccontextmanager
async def listen_for_webhooks(
    router: WebhookRouter, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[str]:
    """Serve ``router`` on ``host:port`` while the block runs; yields the URL it listens on
    (``port=0`` picks a free port). Bad arguments raise
    :class:`~diffio_async.ConfigurationError`; a port in use raises ``OSError``."""
    if not isinstance(router, WebhookRouter):
        raise ConfigurationError(f"router must be a WebhookRouter, not {type(router).__name__}")
    if not isinstance(host, str) or not host:
        raise ConfigurationError("host must be a non-empty string")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigurationError(f"port must be an int from 0 to 65535, not {port!r}")
    listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
    async with listener, anyio.create_task_group() as group:
        bound = listener.extra(anyio.abc.SocketAttribute.local_port)
        slots = anyio.Semaphore(MAX_CONNECTIONS)
        for one in listener.listeners:  # one per address family the host resolves to
            assert isinstance(one, anyio.abc.SocketListener)
            group.start_soon(_accept_forever, one, router, slots, group)
        shown = f"[{host}]" if ":" in host else host
        try:
            yield f"http://{shown}:{bound}/"
        finally:
            group.cancel_scope.cancel()


async def _accept_forever(
    listener: anyio.abc.SocketListener,
    router: WebhookRouter,
    slots: anyio.Semaphore,
    group: anyio.abc.TaskGroup,
) -> None:
    """Accept connections, at most ``MAX_CONNECTIONS`` at once, until cancelled. Nothing a
    client does (a flood, running the process out of file descriptors) ends this loop, so it
    can never cancel the caller's work in the ``listen_for_webhooks`` block."""
    while True:
        await slots.acquire()
        try:
            stream = await listener.accept()
        except (OSError, anyio.BrokenResourceError) as exc:
            slots.release()
            logger.warning("the webhook listener could not accept a connection: %s", exc)
            await anyio.sleep(_ACCEPT_BACKOFF)
            continue
        group.start_soon(_answer_and_free, router, stream, slots)


async def _answer_and_free(
    router: WebhookRouter, stream: anyio.abc.SocketStream, slots: anyio.Semaphore
) -> None:
    try:
        await _answer(router, stream)
    except Exception:  # one bad connection must never end the listener (or the batch)
        logger.exception("the webhook listener failed to answer a delivery")
    finally:
        slots.release()


async def _answer(router: WebhookRouter, stream: anyio.abc.SocketStream) -> None:
    async with stream:
        try:
            with anyio.fail_after(_READ_SECONDS):
                method, headers, body = await _read_request(stream)
            if method != "POST":
                raise _BadRequest(405)
            await router.handle(body, headers)
            status = 204
        except _BadRequest as exc:
            status = exc.status
        except WebhookVerificationError as exc:
            logger.warning("a webhook delivery did not verify: %s", exc)
            status = 400
        except (TimeoutError, anyio.EndOfStream, anyio.BrokenResourceError, OSError):
            return  # the sender went away or stalled: nobody to answer
        reply = f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Length: 0\r\n"
        reply += "Connection: close\r\n\r\n"
        with suppress(anyio.BrokenResourceError, OSError):
            await stream.send(reply.encode("ascii"))


async def _read_request(stream: anyio.abc.SocketStream) -> tuple[str, dict[str, str], bytes]:
    data = bytearray()
    while b"\r\n\r\n" not in data:
        if len(data) > _MAX_HEAD_BYTES:
            raise _BadRequest(400)
        data.extend(await stream.receive())
    head, _, rest = bytes(data).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _BadRequest(400)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise _BadRequest(400)
        headers[name.strip().lower()] = value.strip()
    if "transfer-encoding" in headers:
        raise _BadRequest(400)  # chunked bodies are not needed for webhooks
    try:
        length = int(headers.get("content-length", "0"))
    except ValueError:
        raise _BadRequest(400) from None
    if length < 0:
        raise _BadRequest(400)
    if length > MAX_BODY_BYTES:
        raise _BadRequest(413)
    body = bytearray(rest)
    while len(body) < length:
        body.extend(await stream.receive())
    return parts[0], headers, bytes(body[:length])
