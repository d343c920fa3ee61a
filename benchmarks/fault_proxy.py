"""A seeded fault-injecting HTTP/1.1 proxy for loopback benchmarks (``chaos.py`` runs it).

    python benchmarks/fault_proxy.py --upstream http://127.0.0.1:8765 [--port 0]
                                     [--rate 0.18] [--seed 7]

Prints ``fault proxy listening on http://127.0.0.1:PORT`` (flushed) and serves until killed.
Every request is read in full, then one fault is drawn for it from a ``random.Random(seed)``
in arrival order (so the sequence of decisions is fixed by the seed; which request gets which
fault depends on timing). With ``--rate 0.18`` the mix is:

=========  =====  =====================================================================
fault      share  what the client sees
=========  =====  =====================================================================
503         5 %   ``503`` with an API error body, no ``Retry-After``; not forwarded
429         4 %   ``429`` with ``Retry-After: 1``; not forwarded
drop        3 %   the connection closes before the request is forwarded (no effect)
drop-after  3 %   the request is forwarded and answered upstream (its effect sticks),
                  then the connection closes without an answer: an ambiguous failure
truncate    3 %   forwarded; the status, headers and full ``Content-Length`` arrive but
                  only half of the body, then the connection closes
=========  =====  =====================================================================

``--rate R`` scales the mix (R = 0: a plain proxy, the fault-free baseline). Everything is
faulted alike: API calls, era A signed uploads, era B edge parts, media downloads.

**How uploads and downloads go through the proxy.** Nothing is rewritten. The proxy forwards
the client's ``Host`` header unchanged (``127.0.0.1:<proxy port>``), and the emulator builds
every URL it returns (``uploadUrl``, ``edgeBaseUrl``, ``downloadUrl``) from the ``Host`` it
was asked on (Starlette's ``request.base_url``). So those URLs point at the proxy, and the
upload and download that follow cross it too. Their signatures do not cover the host, so they
stay valid. (A real server behind a proxy that does not keep ``Host`` would need its answers
rewritten; this one does not.)

``GET /_proxy/stats`` answers the counts: ``requests`` and each fault, in total and per kind
of traffic (``requests:upload``, ``503:media``, ... for ``api``, ``upload``, ``media``); paths under
``/_emulator/`` and ``/_proxy/`` are never faulted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
from collections import Counter
from functools import partial

import anyio
import h11
import httpx2
from anyio.abc import SocketAttribute, SocketStream

MIX = (("503", 0.05), ("429", 0.04), ("drop", 0.03), ("drop-after", 0.03), ("truncate", 0.03))
"""Each fault and its share of all requests at ``--rate 0.18`` (the shares add up to 0.18)."""
DEFAULT_RATE = sum(share for _, share in MIX)
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"transfer-encoding",
        b"te",
        b"trailer",
        b"upgrade",
        b"content-length",
        b"content-encoding",
        b"accept-encoding",
    }
)
"""Headers not copied across (lengths and encodings are set again for the body as sent)."""
UNFAULTED = ("/_emulator", "/_proxy")


def traffic_class(method: str, target: str) -> str:
    """``upload`` (era A signed PUT, era B edge), ``media`` (downloads) or ``api``."""
    path = target.partition("?")[0]
    if path.startswith("/v1/uploads/") or (path.startswith("/_storage/") and method != "GET"):
        return "upload"
    if path.startswith(("/m/", "/_storage/")):
        return "media"
    return "api"


class FaultPlan:
    """Draws one fault (or ``None``) per request from a seeded random sequence."""

    def __init__(self, rate: float, seed: int) -> None:
        """``rate``: the fraction of requests faulted, split like :data:`MIX`."""
        scale = rate / DEFAULT_RATE
        self.thresholds: list[tuple[float, str]] = []
        total = 0.0
        for kind, share in MIX:
            total += share * scale
            self.thresholds.append((total, kind))
        self.random = random.Random(seed)

    def draw(self) -> str | None:
        """The next fault, or ``None`` for a request passed through untouched."""
        value = self.random.random()
        for threshold, kind in self.thresholds:
            if value < threshold:
                return kind
        return None


class Proxy:
    """One listening proxy: the plan, the upstream client and the counts."""

    def __init__(self, upstream: httpx2.AsyncClient, base: str, plan: FaultPlan) -> None:
        """Forward to ``base`` (scheme, host and port of the upstream server)."""
        self.upstream = upstream
        self.base = base.rstrip("/")
        self.plan = plan
        self.stats: Counter[str] = Counter()

    async def handle(self, stream: SocketStream) -> None:
        """Serve one client connection (keep-alive: many requests) until it closes."""
        try:
            async with stream:
                await self._serve(stream)
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass
        except h11.ProtocolError:
            self.stats["protocol-errors"] += 1
        except httpx2.HTTPError:  # the upstream failed: close, as a dead server would
            self.stats["upstream-errors"] += 1
        except Exception as error:  # one bad connection must not stop the proxy
            self.stats[f"handler-errors {type(error).__name__}"] += 1

    async def _serve(self, stream: SocketStream) -> None:
        connection = h11.Connection(h11.SERVER)
        while True:
            request, body = await _read_request(stream, connection)
            if request is None:
                return
            target = request.target.decode("latin-1")
            if target.startswith("/_proxy/stats"):
                await _answer(stream, connection, 200, json.dumps(self.stats).encode())
            else:
                fault = None if target.startswith(UNFAULTED) else self.plan.draw()
                kind = traffic_class(request.method.decode("ascii"), target)
                self.stats["requests"] += 1
                self.stats[f"requests:{kind}"] += 1
                if fault is not None:
                    self.stats[fault] += 1
                    self.stats[f"{fault}:{kind}"] += 1
                if not await self._forward(stream, connection, request, body, fault):
                    return  # the fault closed the connection
            if h11.MUST_CLOSE in (connection.our_state, connection.their_state):
                return
            connection.start_next_cycle()

    async def _forward(
        self,
        stream: SocketStream,
        connection: h11.Connection,
        request: h11.Request,
        body: bytes,
        fault: str | None,
    ) -> bool:
        """Apply ``fault`` to one request; False when the connection must close."""
        if fault == "503":
            error = {"error": "Service unavailable (injected by the fault proxy).", "code": "PROXY"}
            await _answer(stream, connection, 503, json.dumps(error).encode())
            return True
        if fault == "429":
            error = {"error": "Too many requests (injected by the fault proxy).", "code": "PROXY"}
            await _answer(stream, connection, 429, json.dumps(error).encode(), retry_after="1")
            return True
        if fault == "drop":
            return False
        headers = [
            (name.decode("latin-1"), value.decode("latin-1"))
            for name, value in request.headers
            if name.lower() not in HOP_BY_HOP
        ]  # Host included: the emulator's URLs then point back here
        headers.append(("accept-encoding", "identity"))
        answer = await self.upstream.request(
            request.method.decode("ascii"),
            self.base + request.target.decode("latin-1"),
            headers=headers,
            content=body,
        )
        if fault == "drop-after":
            return False
        content = answer.content
        head = [
            (name, value) for name, value in answer.headers.raw if name.lower() not in HOP_BY_HOP
        ]
        head.append((b"content-length", str(len(content)).encode()))
        start = connection.send(
            h11.Response(status_code=answer.status_code, headers=head, reason=b"")
        )
        assert start is not None
        if fault == "truncate":
            await stream.send(start + content[: len(content) // 2])
            return False
        data = connection.send(h11.Data(data=content)) if content else b""
        end = connection.send(h11.EndOfMessage())
        await stream.send(start + (data or b"") + (end or b""))
        return True


async def _read_request(
    stream: SocketStream, connection: h11.Connection
) -> tuple[h11.Request | None, bytes]:
    """The next request and its whole body; ``(None, b"")`` when the client closed."""
    request = None
    chunks: list[bytes] = []
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            try:
                data = await stream.receive(65536)
            except anyio.EndOfStream:
                data = b""
            connection.receive_data(data)
        elif isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data):
            chunks.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            return request, b"".join(chunks)
        elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return None, b""


async def _answer(
    stream: SocketStream,
    connection: h11.Connection,
    status: int,
    body: bytes,
    *,
    retry_after: str | None = None,
) -> None:
    headers = [("content-type", "application/json"), ("content-length", str(len(body)))]
    if retry_after is not None:
        headers.append(("retry-after", retry_after))
    data = connection.send(h11.Response(status_code=status, headers=headers, reason=b""))
    data = (data or b"") + (connection.send(h11.Data(data=body)) or b"")
    await stream.send(data + (connection.send(h11.EndOfMessage()) or b""))


async def serve(upstream_url: str, port: int, rate: float, seed: int) -> None:
    """Listen on 127.0.0.1:``port`` (0: a free one) and proxy to ``upstream_url`` forever."""
    limits = httpx2.Limits(max_connections=512, max_keepalive_connections=512)
    async with httpx2.AsyncClient(timeout=120, limits=limits) as upstream:
        proxy = Proxy(upstream, upstream_url, FaultPlan(rate, seed))
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=port)
        real_port = listener.extra(SocketAttribute.local_port)
        print(f"fault proxy listening on http://127.0.0.1:{real_port}", flush=True)
        await listener.serve(partial(Proxy.handle, proxy))


def main(argv: list[str] | None = None) -> int:
    cli = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cli.add_argument("--upstream", required=True, help="base URL of the server behind it")
    cli.add_argument("--port", type=int, default=0, help="port (default 0: a free one)")
    cli.add_argument(
        "--rate", type=float, default=DEFAULT_RATE, help="fraction of requests faulted (0.18)"
    )
    cli.add_argument("--seed", type=int, default=7, help="seed of the fault sequence (7)")
    args = cli.parse_args(argv)
    if not 0 <= args.rate <= 1:
        cli.error("--rate must be from 0 to 1")
    with contextlib.suppress(KeyboardInterrupt):
        anyio.run(serve, args.upstream, args.port, args.rate, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
