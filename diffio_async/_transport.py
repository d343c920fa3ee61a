"""The HTTP transport: the only module (with ``_retry``) that talks to httpx.

It builds API URLs, adds authentication and identity headers, applies per-phase timeouts and
an overall per-call deadline, runs the retry loop, and turns httpx exceptions and non-2xx
answers into the SDK's exceptions. The API key is sent only to the API base URL: media and
edge requests go through :meth:`Transport.send_media`, which never adds it.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import platform
import socket
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, Literal

import anyio
import attrs
import httpx

from ._retry import (
    FailureKind,
    RetryableFailure,
    RetryPolicy,
    classify_exception,
    classify_status,
    parse_retry_after,
    retry_loop,
)
from ._version import __version__
from .errors import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    ClientClosedError,
    ConfigurationError,
    status_error_from_response,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_TIMEOUT",
    "ApiResponse",
    "AuthHeader",
    "RequestOptions",
    "Timeout",
    "Transport",
    "api_url",
    "counting_attempts",
    "iter_response_bytes",
]

logger = logging.getLogger("diffio_async")

DEFAULT_BASE_URL = "https://api.diffio.ai"

AuthHeader = Literal["authorization", "x-api-key", "xi-api-key"]
_AUTH_HEADERS: tuple[str, ...] = ("authorization", "x-api-key", "xi-api-key")


@attrs.frozen(kw_only=True)
class Timeout:
    """Timeouts in seconds: one per HTTP phase, plus ``total``, a deadline for a whole API call.

    ``total`` covers every attempt and every retry wait of one call; ``None`` disables it.
    Media transfers (uploads and downloads) use the phase timeouts but not ``total``.
    """

    connect: float = 5.0
    read: float = 60.0
    write: float = 60.0
    pool: float = 10.0
    total: float | None = 180.0

    def to_httpx(self) -> httpx.Timeout:
        """The per-phase part as an ``httpx.Timeout``."""
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write, pool=self.pool)


DEFAULT_TIMEOUT = Timeout()
"""connect 5 s, read 60 s, write 60 s, pool 10 s, 180 s per API call."""


def _coerce_timeout(value: float | Timeout) -> Timeout:
    if isinstance(value, Timeout):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigurationError(f"timeout must be a positive number or a Timeout, not {value!r}")
    seconds = float(value)
    return Timeout(
        connect=min(5.0, seconds),
        read=seconds,
        write=seconds,
        pool=min(10.0, seconds),
        total=max(seconds, 180.0),
    )


def _coerce_retry(value: int | RetryPolicy) -> RetryPolicy:
    if isinstance(value, RetryPolicy):
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError(f"max_retries must be an int >= 0 or a RetryPolicy, not {value!r}")
    return RetryPolicy(max_retries=value)


@attrs.frozen(kw_only=True)
class RequestOptions:
    """Overrides for one call (or for a client copy made with ``with_options``).

    ``None`` keeps the client's setting. ``timeout`` is seconds or a :class:`Timeout`;
    ``max_retries`` is a count or a :class:`RetryPolicy`; ``headers`` are added to the
    request (they cannot replace the authentication header).
    """

    api_key: str | None = attrs.field(default=None, repr=False)
    timeout: float | Timeout | None = None
    max_retries: int | RetryPolicy | None = None
    headers: Mapping[str, str] | None = None


@attrs.frozen(kw_only=True)
class ApiResponse:
    """A successful API answer: the parsed JSON ``data``, ``attempts`` made and the request id."""

    data: Any
    attempts: int
    request_id: str | None
    status_code: int


_ATTEMPTS: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "diffio_async_attempts", default=None
)


@contextlib.contextmanager
def counting_attempts() -> Iterator[list[int]]:
    """Count the HTTP attempts (retries included) that this task, and the tasks it starts,
    make inside the block; the count is ``counter[0]``."""
    counter = [0]
    token = _ATTEMPTS.set(counter)
    try:
        yield counter
    finally:
        _ATTEMPTS.reset(token)


def api_url(base_url: str, endpoint: str) -> str:
    """Join ``base_url`` and an endpoint name the way the official SDKs do.

    ``/v1/`` is inserted unless the base already ends with ``/v1``; a path prefix on the base
    (``http://host/prefix``) is kept.
    """
    base = base_url.rstrip("/")
    if base.endswith("/v1"):
        return f"{base}/{endpoint}"
    return f"{base}/v1/{endpoint}"


def identity_headers() -> dict[str, str]:
    """Headers that tell the server which SDK is calling."""
    return {
        "User-Agent": f"diffio-async/{__version__}",
        "X-Diffio-SDK-Language": "Python",
        "X-Diffio-SDK-Name": "diffio-async",
        "X-Diffio-SDK-Version": __version__,
        "X-Diffio-SDK-Runtime": f"python/{platform.python_version()}",
    }


_SOCKET_OPTIONS = [
    # Without TCP_NODELAY a request whose headers and body go out in two writes waits for the
    # peer's delayed ACK (40 ms on Linux) before the body leaves: every POST pays it.
    (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1),
    # Keep idle pooled connections alive through NATs during long polling gaps.
    (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
]

MAX_CONNECTIONS = 64
"""Connection pool size of the client the SDK builds (the bulk runner stays below it)."""


def _default_http_client() -> httpx.AsyncClient:
    # Keep-alive long enough for polling gaps; the bulk runner keeps its own concurrency
    # below max_connections so requests never queue inside httpcore (httpcore#1093).
    limits = httpx.Limits(
        max_connections=MAX_CONNECTIONS,
        max_keepalive_connections=MAX_CONNECTIONS,
        keepalive_expiry=30,
    )
    return httpx.AsyncClient(
        transport=httpx.AsyncHTTPTransport(limits=limits, socket_options=_SOCKET_OPTIONS),
        follow_redirects=False,
    )


@attrs.define(eq=False)
class _Shared:
    """What copies of a transport share: the httpx client and whether it is closed."""

    http: httpx.AsyncClient
    owns_http: bool
    closed: bool = False
    listeners: list[Callable[[BaseException], None]] = attrs.field(factory=list)

    def notify(self, error: BaseException) -> None:
        """Tell every listener about a failed attempt."""
        for listener in list(self.listeners):
            listener(error)


class Transport:
    """Sends API calls and media requests with auth, timeouts, retries and error mapping."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        auth_header: AuthHeader = "authorization",
        timeout: float | Timeout = DEFAULT_TIMEOUT,
        max_retries: int | RetryPolicy = 2,
        headers: Mapping[str, str] | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        if not api_key or not api_key.strip():
            raise ConfigurationError("the API key is empty")
        if auth_header not in _AUTH_HEADERS:
            raise ConfigurationError(
                f"auth_header must be one of {', '.join(_AUTH_HEADERS)}, not {auth_header!r}"
            )
        url = httpx.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ConfigurationError(f"base_url must be an http(s) URL, not {base_url!r}")
        if url.query or url.fragment:
            raise ConfigurationError("base_url must not have a query or fragment")
        self._api_key = api_key.strip()
        self.base_url = base_url.rstrip("/")
        self.auth_header: AuthHeader = auth_header
        self.timeout = _coerce_timeout(timeout)
        self.retry = _coerce_retry(max_retries)
        self.headers = dict(headers or {})
        self._shared = _Shared(
            http=http_client or _default_http_client(), owns_http=http_client is None
        )
        self._is_copy = False
        self._closed = False

    def __repr__(self) -> str:
        return f"<Transport base_url={self.base_url!r} auth_header={self.auth_header!r}>"

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether this transport, the one it was copied from, or the pool was closed."""
        return self._closed or self._shared.closed or self._shared.http.is_closed

    @property
    def http(self) -> httpx.AsyncClient:
        """The underlying httpx client (shared by copies)."""
        self._check_open()
        return self._shared.http

    def copy(self, options: RequestOptions) -> Transport:
        """A transport with ``options`` applied that shares this one's connection pool."""
        clone = object.__new__(Transport)
        clone.__dict__.update(self.__dict__)
        clone._is_copy = True
        if options.api_key is not None:
            if not options.api_key.strip():
                raise ConfigurationError("the API key is empty")
            clone._api_key = options.api_key.strip()
        if options.timeout is not None:
            clone.timeout = _coerce_timeout(options.timeout)
        if options.max_retries is not None:
            clone.retry = _coerce_retry(options.max_retries)
        if options.headers:
            clone.headers = {**self.headers, **options.headers}
        return clone

    async def aclose(self) -> None:
        """Close the connection pool if this SDK created it; safe to call twice.

        A copy only marks itself closed: the pool belongs to the transport it came from.
        """
        self._closed = True
        if self._is_copy or self._shared.closed:
            return
        self._shared.closed = True
        if self._shared.owns_http:
            await self._shared.http.aclose()

    def _check_open(self) -> None:
        if self._closed or self._shared.closed:
            raise ClientClosedError("the AsyncDiffio client is closed")
        if self._shared.http.is_closed:
            raise ClientClosedError("the httpx.AsyncClient given to AsyncDiffio is closed")

    def add_failure_listener(self, listener: Callable[[BaseException], None]) -> None:
        """Call ``listener(error)`` for every failed attempt of any call (and its copies')."""
        self._shared.listeners.append(listener)

    def remove_failure_listener(self, listener: Callable[[BaseException], None]) -> None:
        """Undo :meth:`add_failure_listener`."""
        self._shared.listeners.remove(listener)

    # -- API calls -----------------------------------------------------------------------

    def _auth_headers(self) -> dict[str, str]:
        if self.auth_header == "authorization":
            return {"Authorization": f"Bearer {self._api_key}"}
        return {self.auth_header: self._api_key}

    def _request_headers(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        headers = identity_headers()
        for source in (self.headers, extra or {}):
            for name, value in source.items():
                if name.lower() not in _AUTH_HEADERS:
                    headers[name] = value
        return headers

    async def call(
        self,
        endpoint: str,
        body: Mapping[str, Any],
        *,
        idempotent: bool,
        options: RequestOptions | None = None,
    ) -> ApiResponse:
        """POST ``body`` as JSON to the API ``endpoint`` and return the parsed answer.

        ``idempotent`` says whether an ambiguous failure (a timeout after sending, a 5xx, a
        dropped connection) may be retried. Never-sent failures and 429s are always retried.
        """
        transport = self.copy(options) if options else self
        return await transport._call(endpoint, body, idempotent=idempotent)

    async def _call(
        self, endpoint: str, body: Mapping[str, Any], *, idempotent: bool
    ) -> ApiResponse:
        self._check_open()
        url = api_url(self.base_url, endpoint)
        content = json.dumps(body, separators=(",", ":")).encode()
        headers = self._request_headers({"Content-Type": "application/json"})
        headers.update(self._auth_headers())
        timeout = self.timeout.to_httpx()

        async def attempt(number: int) -> ApiResponse:
            request = self._shared.http.build_request(
                "POST", url, content=content, headers=headers, timeout=timeout
            )
            response = await self._send(request, endpoint=endpoint)
            return _api_response(response, endpoint=endpoint, attempts=number)

        deadline = self.timeout.total
        with anyio.move_on_after(deadline if deadline is not None else float("inf")) as scope:
            return await retry_loop(
                attempt,
                policy=self.retry,
                idempotent=idempotent,
                endpoint=endpoint,
                on_failure=self._shared.notify,
            )
        assert scope.cancelled_caught
        raise APITimeoutError(
            f"{endpoint} did not complete within its {deadline:g} s deadline", endpoint=endpoint
        )

    async def _send(
        self, request: httpx.Request, *, endpoint: str, stream: bool = False
    ) -> httpx.Response:
        """Send one attempt; raise :class:`RetryableFailure` for failures."""
        self._check_open()
        counter = _ATTEMPTS.get()
        if counter is not None:
            counter[0] += 1
        try:
            response = await self._shared.http.send(request, stream=stream)
        except httpx.HTTPError as exc:
            raise _transport_failure(exc, endpoint=endpoint) from exc
        except RuntimeError as exc:
            if self._shared.http.is_closed:
                raise ClientClosedError(
                    "the httpx.AsyncClient given to AsyncDiffio is closed"
                ) from exc
            raise
        logger.debug("%s %s -> %d", request.method, endpoint, response.status_code)
        if response.is_success:
            return response
        try:
            if stream:
                await response.aread()
        except httpx.HTTPError as exc:
            raise _transport_failure(exc, endpoint=endpoint) from exc
        finally:
            await response.aclose()
        hint = parse_retry_after(response.headers)
        error = status_error_from_response(
            status_code=response.status_code,
            content=response.content,
            request_id=response.headers.get("x-request-id"),
            retry_after=hint,
            endpoint=endpoint,
        )
        kind = classify_status(response.status_code, has_hint=hint is not None)
        raise RetryableFailure(error, kind=kind, retry_after=hint)

    # -- media and edge requests ---------------------------------------------------------

    @asynccontextmanager
    async def send_media(
        self,
        method: str,
        url: str,
        *,
        endpoint: str,
        idempotent: bool = True,
        headers: Mapping[str, str] | None = None,
        content: Callable[[], Any] | None = None,
        stream_response: bool = False,
    ) -> AsyncIterator[httpx.Response]:
        """Send a request to a signed URL or the edge host, retrying it under the policy.

        ``content`` is a factory called once per attempt (so each retry re-opens the source).
        The API key is never added; ``headers`` carry whatever auth the URL needs (the edge
        upload token). Yields the successful response (streamed when ``stream_response``),
        closing it on exit.
        """
        self._check_open()
        timeout = self.timeout.to_httpx()
        base_headers = identity_headers()
        base_headers.update(headers or {})

        async def attempt(number: int) -> httpx.Response:
            request = self._shared.http.build_request(
                method,
                url,
                headers=base_headers,
                content=content() if content is not None else None,
                timeout=timeout,
            )
            return await self._send(request, endpoint=endpoint, stream=stream_response)

        response = await retry_loop(
            attempt,
            policy=self.retry,
            idempotent=idempotent,
            endpoint=endpoint,
            on_failure=self._shared.notify,
        )
        try:
            yield response
        finally:
            with anyio.CancelScope(shield=True):
                await response.aclose()


async def iter_response_bytes(
    response: httpx.Response, *, endpoint: str, chunk_size: int
) -> AsyncIterator[bytes]:
    """Stream a response body, turning httpx errors into :class:`APIConnectionError`."""
    try:
        async for chunk in response.aiter_bytes(chunk_size):
            yield chunk
    except httpx.HTTPError as exc:
        failure = _transport_failure(exc, endpoint=endpoint)
        raise (failure.error if isinstance(failure, RetryableFailure) else failure) from exc


def _transport_failure(exc: httpx.HTTPError, *, endpoint: str) -> Exception:
    kind = classify_exception(exc)
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return ConfigurationError(f"{endpoint}: bad URL ({type(exc).__name__})")
    detail = f"{type(exc).__name__}"
    text = str(exc)
    if text:
        detail += f": {text}"
    error: APIConnectionError
    if isinstance(exc, httpx.TimeoutException):
        error = APITimeoutError(f"{endpoint} timed out ({detail})", endpoint=endpoint)
    else:
        error = APIConnectionError(f"{endpoint} failed ({detail})", endpoint=endpoint)
    if kind is FailureKind.FINAL:
        return error
    return RetryableFailure(error, kind=kind)


def _api_response(response: httpx.Response, *, endpoint: str, attempts: int) -> ApiResponse:
    content_type = response.headers.get("content-type", "")
    text = response.text
    try:
        data = json.loads(text) if text.strip() else None
    except ValueError:
        data = None
    if "json" not in content_type.lower() or not isinstance(data, dict):
        snippet = " ".join(text.strip().split())[:120]
        raise APIResponseValidationError(
            f"{endpoint} answered {response.status_code} with a body that is not a JSON object"
            + (f": {snippet}" if snippet else " (empty body)"),
            body=data if data is not None else text,
            endpoint=endpoint,
            attempts=attempts,
        )
    return ApiResponse(
        data=data,
        attempts=attempts,
        request_id=response.headers.get("x-request-id"),
        status_code=response.status_code,
    )
