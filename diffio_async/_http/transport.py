"""The HTTP transport: the only module (with ``_retry``) that talks to httpx2.

It builds API URLs, adds authentication and identity headers, applies per-phase timeouts and
an overall per-call deadline, runs the retry loop, and turns httpx2 exceptions and non-2xx
answers into the SDK's exceptions. The API key is sent only to the API base URL: media and
edge requests go through :meth:`Transport.send_media`, which never adds it.

Hardening rules kept here:

* every setting is checked up front (:class:`~diffio_async.ConfigurationError` naming the
  parameter, never echoing a key or a header value);
* every request goes out with ``follow_redirects=False``, whatever ``http_client`` is used: a
  3xx becomes :class:`~diffio_async.RedirectError` naming only the target's origin;
* every message the transport builds from foreign text (httpx2 errors, server bodies, headers)
  goes through :func:`_redact`, which removes the API key, credential header values and URL
  query strings (signed URLs carry signatures there).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import platform
import re
import socket
import urllib.parse
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, Literal

import anyio
import anyio.lowlevel
import attrs
import httpx2

from .._version import __version__
from ..errors import (
    MAX_MESSAGE_CHARS,
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    ClientClosedError,
    ConfigurationError,
    EventLoopMismatchError,
    InvalidRequestError,
    cap_message,
    status_error_from_response,
)
from ..types._reprs import _media_tokens_masked
from .retry import (
    FailureKind,
    RetryableFailure,
    RetryPolicy,
    check_max_retries,
    check_seconds,
    classify_exception,
    classify_status,
    parse_retry_after,
    retry_loop,
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


def _positive_seconds(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    check_seconds(f"Timeout.{attribute.name}", value)


def _positive_seconds_or_none(
    instance: object, attribute: attrs.Attribute[Any], value: object
) -> None:
    if value is not None:
        check_seconds(f"Timeout.{attribute.name}", value)


@attrs.frozen(kw_only=True)
class Timeout:
    """Timeouts in seconds: one per HTTP phase, plus ``total``, a deadline for a whole API call.

    ``total`` covers every attempt and every retry wait of one call; ``None`` disables it.
    Media transfers (uploads and downloads) use the phase timeouts but not ``total``. Every
    value must be a finite number > 0 (NaN, infinities, zero, negatives, bools and strings
    raise :class:`~diffio_async.ConfigurationError`).
    """

    connect: float = attrs.field(default=5.0, validator=_positive_seconds)
    read: float = attrs.field(default=60.0, validator=_positive_seconds)
    write: float = attrs.field(default=60.0, validator=_positive_seconds)
    pool: float = attrs.field(default=10.0, validator=_positive_seconds)
    total: float | None = attrs.field(default=180.0, validator=_positive_seconds_or_none)

    def to_httpx(self) -> httpx2.Timeout:
        """The per-phase part as an ``httpx2.Timeout``."""
        return httpx2.Timeout(
            connect=self.connect, read=self.read, write=self.write, pool=self.pool
        )


DEFAULT_TIMEOUT = Timeout()
"""connect 5 s, read 60 s, write 60 s, pool 10 s, 180 s per API call."""


def _coerce_timeout(value: object, *, name: str = "timeout") -> Timeout:
    if isinstance(value, Timeout):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(
            f"{name} must be a number of seconds or a Timeout, not a {type(value).__name__}"
        )
    seconds = check_seconds(name, value)
    return Timeout(
        connect=min(5.0, seconds),
        read=seconds,
        write=seconds,
        pool=min(10.0, seconds),
        total=max(seconds, 180.0),
    )


def _coerce_retry(value: object, *, name: str = "max_retries") -> RetryPolicy:
    if isinstance(value, RetryPolicy):
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigurationError(
            f"{name} must be an int or a RetryPolicy, not a {type(value).__name__}"
        )
    return RetryPolicy(max_retries=check_max_retries(value, name=name))


def _check_api_key(value: object, *, name: str = "api_key") -> str:
    """The key, stripped; :class:`ConfigurationError` (never echoing it) when unusable."""
    if not isinstance(value, str):
        raise ConfigurationError(f"{name} must be a str, not a {type(value).__name__}")
    key = value.strip()
    if not key:
        raise ConfigurationError("the API key is empty")
    if not all("!" <= char <= "~" for char in key):
        raise ConfigurationError(
            "the API key contains characters that cannot go in an HTTP header "
            "(only printable ASCII without spaces, line breaks or control characters)"
        )
    return key


_TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)


def _header_name_problem(name: str) -> str | None:
    """Why ``name`` is not an HTTP token, naming only its valid leading part; else ``None``."""
    if not name:
        return "an empty header name"
    for index, char in enumerate(name):
        if char not in _TOKEN_CHARS:
            shown = cap_message(name[:index], 64)
            return (
                f"the header name starting {shown!r} (it has a character not allowed in a "
                "header name)"
                if shown
                else "a header name that starts with a character not allowed in a header name"
            )
    return None


def _header_value_ok(value: str) -> bool:
    """Printable ASCII, with spaces and tabs only inside (what h11 accepts and httpx2 encodes)."""
    if value != value.strip(" \t"):
        return False
    return all(" " <= char <= "~" or char == "\t" for char in value)


def _check_headers(value: object, *, name: str = "headers") -> dict[str, str]:
    """Extra headers as a dict; :class:`ConfigurationError` naming the bad header, never a value."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            f"{name} must be a mapping of header names to values, not a {type(value).__name__}"
        )
    checked: dict[str, str] = {}
    for header, header_value in value.items():
        if not isinstance(header, str):
            raise ConfigurationError(
                f"{name}: header names must be str, not a {type(header).__name__}"
            )
        problem = _header_name_problem(header)
        if problem is not None:
            raise ConfigurationError(f"{name}: {problem} is not a valid HTTP header name")
        if not isinstance(header_value, str):
            raise ConfigurationError(
                f"{name}: the value of header {header!r} must be a str, "
                f"not a {type(header_value).__name__}"
            )
        if not _header_value_ok(header_value):
            raise ConfigurationError(
                f"{name}: the value of header {header!r} contains characters that cannot go in "
                "an HTTP header (printable ASCII only, no line breaks or control characters, "
                "no leading or trailing spaces)"
            )
        checked[header] = header_value
    return checked


def _check_auth_header(value: object) -> AuthHeader:
    if not isinstance(value, str) or value not in _AUTH_HEADERS:
        raise ConfigurationError(f"auth_header must be one of {', '.join(_AUTH_HEADERS)}")
    header: AuthHeader = value  # type: ignore[assignment]
    return header


def _check_base_url(value: object) -> str:
    """The base URL without trailing slashes; never echoed (a swapped key may be in it)."""
    if not isinstance(value, str):
        raise ConfigurationError(f"base_url must be a str, not a {type(value).__name__}")
    try:
        url = httpx2.URL(value)
    except (httpx2.InvalidURL, ValueError, TypeError):
        raise ConfigurationError("base_url is not a valid URL") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigurationError(
            "base_url must be an http(s) URL with a host, like https://api.diffio.ai"
        )
    if url.query or url.fragment:
        raise ConfigurationError("base_url must not have a query or fragment")
    if url.userinfo:
        raise ConfigurationError("base_url must not contain a user name or password")
    return value.rstrip("/")


def _check_http_client(value: object) -> httpx2.AsyncClient | None:
    if value is None or isinstance(value, httpx2.AsyncClient):
        return value
    kind = type(value)
    if kind.__module__.split(".")[0] == "httpx":  # told apart without importing httpx
        raise ConfigurationError(
            "http_client is an httpx.AsyncClient, but diffio-async runs on httpx2 (the "
            "maintained continuation of httpx, same API): build it with `import httpx2; "
            "httpx2.AsyncClient(...)` instead"
        )
    raise ConfigurationError(f"http_client must be an httpx2.AsyncClient, not a {kind.__name__}")


def _validate_api_key(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _check_api_key(value, name="RequestOptions.api_key")


def _validate_timeout(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _coerce_timeout(value, name="RequestOptions.timeout")


def _validate_retry(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _coerce_retry(value, name="RequestOptions.max_retries")


def _validate_headers(instance: object, attribute: attrs.Attribute[Any], value: object) -> None:
    _check_headers(value, name="RequestOptions.headers")


def _header_names(headers: Mapping[str, str] | None) -> str:
    return "None" if headers is None else f"<headers {', '.join(map(str, headers))}>"


@attrs.frozen(kw_only=True)
class RequestOptions:
    """Overrides for one call (or for a client copy made with ``with_options``).

    ``None`` keeps the client's setting. ``timeout`` is seconds or a :class:`Timeout`;
    ``max_retries`` is a count or a :class:`RetryPolicy`; ``headers`` are added to the
    request (they cannot replace the authentication header). Every value is checked when the
    options are made (:class:`~diffio_async.ConfigurationError`); the repr shows neither the
    key nor header values.
    """

    api_key: str | None = attrs.field(
        default=None, repr=False, validator=attrs.validators.optional(_validate_api_key)
    )
    timeout: float | Timeout | None = attrs.field(
        default=None, validator=attrs.validators.optional(_validate_timeout)
    )
    max_retries: int | RetryPolicy | None = attrs.field(
        default=None, validator=attrs.validators.optional(_validate_retry)
    )
    headers: Mapping[str, str] | None = attrs.field(
        default=None, repr=_header_names, validator=attrs.validators.optional(_validate_headers)
    )


@attrs.frozen(kw_only=True)
class ApiResponse:
    """A successful API answer: the parsed JSON ``data``, ``attempts`` made, the request id, the
    status and the response headers (a value holding the API key is redacted)."""

    data: Any
    attempts: int
    request_id: str | None
    status_code: int
    headers: httpx2.Headers = attrs.field(repr=False)


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


def _default_http_client() -> httpx2.AsyncClient:
    # Keep-alive long enough for polling gaps; the bulk runner keeps its own concurrency
    # below max_connections so requests never queue inside httpcore2 (httpcore#1093).
    limits = httpx2.Limits(
        max_connections=MAX_CONNECTIONS,
        max_keepalive_connections=MAX_CONNECTIONS,
        keepalive_expiry=30,
    )
    return httpx2.AsyncClient(
        transport=httpx2.AsyncHTTPTransport(limits=limits, socket_options=_SOCKET_OPTIONS),
        follow_redirects=False,
    )


_CREDENTIAL_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "xi-api-key", "cookie"}
)
_REDACTED = "<redacted>"
_URL_QUERY = re.compile(
    r"""\b((?:https?|wss?)://[^\s?#'"<>]*)\?(?:<redacted>|[^\s#'"<>])*""", re.IGNORECASE
)
"""A URL and its query; a query already redacted (``?<redacted>``) matches whole, so
redacting it again changes nothing."""
_MARKER_OR_URL_QUERY = re.compile(f"<redacted>|{_URL_QUERY.pattern}", re.IGNORECASE)
_MIN_SECRET = 4
"""Shorter strings are not redacted: no credential is that short, and replacing them would
garble whole messages (a test key ``"k"``)."""
_MIN_QUERY_VALUE = 8
"""Query values shorter than this are not hunted for outside their URL (ids, not secrets)."""


def _secret_forms(secret: str) -> set[str]:
    """``secret`` as it may appear in foreign text: raw, escaped (``repr`` of str and bytes)
    and percent-encoded."""
    forms = {secret, repr(secret)[1:-1], urllib.parse.quote(secret, safe="")}
    forms.add(urllib.parse.quote_plus(secret, safe=""))
    forms.add(repr(secret.encode("utf-8", "surrogatepass"))[2:-1])
    return {form for form in forms if form}


def _redact(text: str, secrets: Iterable[str] = (), *, limit: int | None = None) -> str:
    """``text`` made fit for an error message or a log record.

    Removes every one of ``secrets`` (in the forms :func:`_secret_forms` knows; those shorter
    than ``_MIN_SECRET`` are left alone) and the query string of every URL, then caps the
    result at ``limit`` characters (default ``MAX_MESSAGE_CHARS``). Every message the
    transport builds from foreign text goes through here.
    """
    for secret in sorted({s for s in secrets if len(s) >= _MIN_SECRET}, key=len, reverse=True):
        for form in sorted(_secret_forms(secret), key=len, reverse=True):
            pieces = text.split(_REDACTED)  # a marker already there is no secret's text
            text = _REDACTED.join(piece.replace(form, _REDACTED) for piece in pieces)
    text = _URL_QUERY.sub(rf"\1?{_REDACTED}", text)
    return _capped(text, MAX_MESSAGE_CHARS if limit is None else limit)


def _capped(text: str, limit: int) -> str:
    """``text`` cut like :func:`cap_message` says (``... (N more characters)``), but to at most
    ``limit`` characters in all (for a ``limit`` of 64 or more) and never inside a marker or a
    redacted URL, so that :func:`_redact` run on its own result changes nothing."""
    if len(text) <= limit:
        return text
    cut = max(0, limit - len(f"... ({len(text)} more characters)"))
    for match in _MARKER_OR_URL_QUERY.finditer(text):
        if match.start() >= cut:
            break
        if cut <= match.end():  # ending at the cut, '...' would join its query
            cut = match.start()
            break
    return f"{text[:cut]}... ({len(text) - cut} more characters)"


def _request_secrets(request: httpx2.Request) -> list[str]:
    """What in ``request`` must never reach a message: credential header values (and the
    token after their scheme) and the URL's query (as a whole and its longer values)."""
    secrets: list[str] = []
    for name, value in request.headers.items():
        if name.lower() in _CREDENTIAL_HEADERS:
            secrets.append(value)
            _, _, token = value.strip().partition(" ")
            secrets.append(token.strip())
    query = request.url.query.decode("ascii", "replace")
    if query:
        secrets.append(query)
        secrets.append(urllib.parse.unquote(query))
        for _, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
            if len(value) >= _MIN_QUERY_VALUE:
                secrets.append(value)
    return secrets


def _safe_cause(exc: BaseException, secrets: Iterable[str]) -> BaseException | None:
    """``exc`` when its text is free of secrets (so it may be chained), else ``None``."""
    text = str(exc)
    return exc if _redact(text, secrets, limit=len(text) + 1) == text else None


def _origin(base: httpx2.URL, location: str | None) -> str:
    """``scheme://host[:port]`` of a redirect target, never its path, query or user info."""
    if not location or not location.strip():
        return "a location it did not name"
    try:
        target = base.join(location.strip())
    except (httpx2.InvalidURL, ValueError, TypeError):
        return "an unusable location"
    if not target.scheme or not target.host:
        return "an unusable location"
    host = f"[{target.host}]" if ":" in target.host else target.host
    port = f":{target.port}" if target.port is not None else ""
    return f"{target.scheme}://{host}{port}"


_CREDENTIAL_PARAMETER = re.compile(r"(?i)sig|token|credential|key|policy|auth")


class _SignedUrlLogFilter(logging.Filter):
    """Keeps signed URLs' queries and era-B media tokens out of httpx2's and httpcore2's own
    log lines.

    httpx2 logs every request at INFO (``HTTP Request: PUT <url> ...``) and httpcore2 traces
    response headers at DEBUG (a redirect's ``location``); a signed upload or download URL
    carries its signature in its query, an era-B media URL its token in its path
    (``/m/<token>/...``). This filter replaces the query of a logged URL when one of its
    parameter names looks like a credential (``X-Goog-Signature``, ``signature``, ``token``,
    ...) and masks a ``/m/<token>`` segment as ``/m/***``; other log lines pass unchanged.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(map(_holds_credential, record.args)):
            record.args = tuple(_url_logged(arg) for arg in record.args)
        if isinstance(record.msg, str):  # httpcore2's traces: headers
            if "?" in record.msg:
                record.msg = _URL_QUERY.sub(_signed_query_redacted, record.msg)
            record.msg = _media_tokens_masked(record.msg)
        return True


def _signed_query_redacted(match: re.Match[str]) -> str:
    """A URL in free text, its query replaced when it looks signed (see ``_signed``)."""
    url = match.group(0)
    try:
        signed = _signed(httpx2.URL(url))
    except (httpx2.InvalidURL, ValueError, TypeError):
        signed = True  # cannot tell: assume the worst
    return f"{match.group(1)}?{_REDACTED}" if signed else url


def _holds_credential(value: object) -> bool:
    """A URL with a signed query or an era-B media token in its path."""
    return isinstance(value, httpx2.URL) and (_signed(value) or "/m/" in value.path)


def _url_logged(value: object) -> object:
    """A URL as a log line may show it: no signed query, no media token."""
    if not _holds_credential(value):
        return value
    assert isinstance(value, httpx2.URL)
    shown = f"{value.copy_with(query=None)}?{_REDACTED}" if _signed(value) else str(value)
    return _media_tokens_masked(shown)


def _signed(value: object) -> bool:
    if not isinstance(value, httpx2.URL) or not value.query:
        return False
    names = (name for name, _ in value.params.multi_items())
    return any(_CREDENTIAL_PARAMETER.search(name) for name in names)


_SIGNED_URL_LOG_FILTER = _SignedUrlLogFilter()


def _keep_signed_urls_out_of_httpx_logs() -> None:
    for name in ("httpx2", "httpcore2.http11", "httpcore2.http2"):
        library_logger = logging.getLogger(name)  # filters are per logger, not inherited
        if _SIGNED_URL_LOG_FILTER not in library_logger.filters:
            library_logger.addFilter(_SIGNED_URL_LOG_FILTER)


def _nothing() -> None:
    """Does nothing: the release of a request that took no slot, the probe of a loop."""


class _RequestSlots:
    """At most ``size`` requests inside httpcore2 at once; the others wait here, first come
    first served. httpcore2's own queue costs every request a scan of every queued request and
    connection (httpcore#1093): at 128 files in flight on a 64-connection pool that scan was
    most of the client's CPU. The limiter is made on the first request, on the one event loop
    the pool serves (see :meth:`_Shared.check_loop`)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._limiter: anyio.CapacityLimiter | None = None

    async def acquire(self) -> Callable[[], None]:
        """Wait for a slot; return the function that gives it back (safe to call twice)."""
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.size)
        limiter, owner = self._limiter, object()
        await limiter.acquire_on_behalf_of(owner)
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                limiter.release_on_behalf_of(owner)

        return release


class _ReleasingStream(httpx2.AsyncByteStream):
    """A streamed response body that gives its request slot back when it is closed."""

    def __init__(self, inner: httpx2.AsyncByteStream, release: Callable[[], None]) -> None:
        self._inner = inner
        self._release = release

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._inner.__aiter__()

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            self._release()


_OTHER_LOOP = (
    "this AsyncDiffio sent its first request on another event loop, which owns its "
    "connections (no other loop can use them, even after that one ended): create one client "
    "per event loop (inside the function you pass to anyio.run or asyncio.run), or use the "
    "blocking diffio_async.Diffio from synchronous code"
)

_CLOSE_ON_OTHER_LOOP = (
    "this AsyncDiffio's connections belong to the event loop of its first request, which "
    "still runs: close it there (await client.aclose() on that loop); once that loop has "
    "ended, any event loop may close the client"
)


@attrs.define(eq=False)
class _Shared:
    """What copies of a transport share: the httpx2 client and whether it is closed."""

    http: httpx2.AsyncClient
    owns_http: bool
    closed: bool = False
    listeners: list[Callable[[BaseException], None]] = attrs.field(factory=list)
    slots: _RequestSlots | None = None
    loop: anyio.lowlevel.EventLoopToken | None = None
    """The event loop of the first request: the pool's connections belong to it."""

    def on_other_loop(self) -> bool:
        """Whether the running event loop is not the one of the first request (which this
        call makes it, when there was none)."""
        loop = anyio.lowlevel.current_token()
        if self.loop is None:
            self.loop = loop
        return loop != self.loop

    def loop_ended(self) -> bool:
        """Whether the event loop of the first request has finished running (asyncio's
        loop is closed, trio's run is over): a no-op sent to it is refused then."""
        if self.loop is None:
            return False
        try:
            self.loop.backend_class.run_sync_soon(_nothing, (), self.loop.native_token)
        except anyio.RunFinishedError:
            return True
        return False

    def check_loop(self) -> None:
        """:class:`EventLoopMismatchError` unless running on the pool's event loop."""
        if self.on_other_loop():
            raise EventLoopMismatchError(_OTHER_LOOP)

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
        http_client: httpx2.AsyncClient | None = None,
        pool_of: Transport | None = None,
    ) -> None:
        """``pool_of``: share that transport's connection pool (and its closing), as
        :meth:`copy` does; ``http_client`` must then be ``None``."""
        self._api_key = _check_api_key(api_key)
        self.auth_header: AuthHeader = _check_auth_header(auth_header)
        self.base_url = _check_base_url(base_url)
        self.timeout = _coerce_timeout(timeout)
        self.retry = _coerce_retry(max_retries)
        self.headers = _check_headers(headers)
        http_client = _check_http_client(http_client)
        _keep_signed_urls_out_of_httpx_logs()
        self._shared: _Shared
        if pool_of is not None:
            if http_client is not None:
                raise ConfigurationError("pass http_client or pool_of, not both")
            self._shared = pool_of._shared
        else:
            # Our own pool's size is known: requests beyond it wait in _RequestSlots, not in
            # httpcore2. A caller's client keeps its own limits and queue.
            self._shared = _Shared(
                http=http_client or _default_http_client(),
                owns_http=http_client is None,
                slots=_RequestSlots(MAX_CONNECTIONS) if http_client is None else None,
            )
        self._is_copy = pool_of is not None
        self._closed = False

    def __repr__(self) -> str:
        return f"<Transport base_url={self.base_url!r} auth_header={self.auth_header!r}>"

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether this transport, the one it was copied from, or the pool was closed."""
        return self._closed or self._shared.closed or self._shared.http.is_closed

    @property
    def http(self) -> httpx2.AsyncClient:
        """The underlying httpx2 client (shared by copies)."""
        self._check_open()
        return self._shared.http

    def copy(self, options: RequestOptions) -> Transport:
        """A transport with ``options`` applied that shares this one's connection pool."""
        if not isinstance(options, RequestOptions):
            raise ConfigurationError(
                f"options must be a RequestOptions, not a {type(options).__name__}"
            )
        return Transport(
            api_key=self._api_key if options.api_key is None else options.api_key,
            base_url=self.base_url,
            auth_header=self.auth_header,
            timeout=self.timeout if options.timeout is None else options.timeout,
            max_retries=self.retry if options.max_retries is None else options.max_retries,
            headers={**self.headers, **_check_headers(options.headers)},
            pool_of=self,
        )

    async def aclose(self) -> None:
        """Close the connection pool if this SDK created it; safe to call twice.

        A copy only marks itself closed: the pool belongs to the transport it came from.
        """
        dead_pool = False
        open_pool = not (self._is_copy or self._shared.closed) and self._shared.owns_http
        if open_pool and self._shared.on_other_loop():
            # The connections of another loop cannot be closed from this one. While that loop
            # runs: refuse, and stay open for an aclose() on it. Once it ended, no loop can
            # close them: drop the pool without touching them (freed with the client).
            if not self._shared.loop_ended():
                raise EventLoopMismatchError(_CLOSE_ON_OTHER_LOOP)
            dead_pool = True
        self._closed = True
        if self._is_copy or self._shared.closed:
            return
        self._shared.closed = True
        if self._shared.owns_http and not dead_pool:
            await self._shared.http.aclose()

    def _check_open(self) -> None:
        if self._closed or self._shared.closed:
            raise ClientClosedError("the AsyncDiffio client is closed")
        if self._shared.http.is_closed:
            raise ClientClosedError("the httpx2.AsyncClient given to AsyncDiffio is closed")

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
        transport = self.copy(options) if options is not None else self
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
            request.stream = _PassThrough(content)
            response = await self._send(request, endpoint=endpoint, api_call=True)
            return _api_response(
                response, endpoint=endpoint, attempts=number, secrets=(self._api_key,)
            )

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
        self, request: httpx2.Request, *, endpoint: str, api_call: bool, stream: bool = False
    ) -> httpx2.Response:
        """Send one attempt; raise :class:`RetryableFailure` for failures.

        Redirects are never followed (``follow_redirects=False`` overrides the client's own
        setting): a 3xx is a final :class:`~diffio_async.RedirectError`.
        """
        self._check_open()
        self._shared.check_loop()
        counter = _ATTEMPTS.get()
        if counter is not None:
            counter[0] += 1
        secrets = [self._api_key, *_request_secrets(request)]
        slots = self._shared.slots
        release = await slots.acquire() if slots is not None else _nothing
        try:
            response = await self._exchange(
                request, endpoint=endpoint, api_call=api_call, secrets=secrets, stream=stream
            )
        except BaseException:
            release()
            raise
        if stream and isinstance(response.stream, httpx2.AsyncByteStream):
            # The slot is held until the caller closes the streamed answer.
            response.stream = _ReleasingStream(response.stream, release)
        else:
            release()
        return response

    async def _exchange(
        self,
        request: httpx2.Request,
        *,
        endpoint: str,
        api_call: bool,
        secrets: list[str],
        stream: bool,
    ) -> httpx2.Response:
        """One request and its answer: a success is returned, anything else raised."""
        try:
            response = await self._shared.http.send(request, stream=stream, follow_redirects=False)
        except httpx2.HTTPError as exc:
            raise _transport_failure(
                exc, endpoint=endpoint, api_call=api_call, secrets=secrets
            ) from _safe_cause(exc, secrets)
        except RuntimeError as exc:
            if self._shared.http.is_closed:
                raise ClientClosedError(
                    "the httpx2.AsyncClient given to AsyncDiffio is closed"
                ) from _safe_cause(exc, secrets)
            raise
        logger.debug("%s %s -> %d", request.method, endpoint, response.status_code)
        if response.is_success:
            return response
        try:
            if stream:
                await response.aread()
        except httpx2.HTTPError as exc:
            raise _transport_failure(
                exc, endpoint=endpoint, api_call=api_call, secrets=secrets
            ) from _safe_cause(exc, secrets)
        finally:
            await response.aclose()
        hint = parse_retry_after(response.headers)
        error = _status_error(
            response, endpoint=endpoint, api_call=api_call, retry_after=hint, secrets=secrets
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
    ) -> AsyncIterator[httpx2.Response]:
        """Send a request to a signed URL or the edge host, retrying it under the policy.

        ``content`` is a factory called once per attempt (so each retry re-opens the source).
        The API key is never added (nor the client's extra ``headers``); ``headers`` carry
        whatever auth the URL needs (the edge upload token). A header value that cannot go in
        an HTTP header raises :class:`~diffio_async.InvalidRequestError` before anything is
        sent, naming the header but not its value. Yields the successful response (streamed
        when ``stream_response``), closing it on exit.
        """
        self._check_open()
        timeout = self.timeout.to_httpx()
        base_headers = identity_headers()
        for name, value in (headers or {}).items():
            if (
                not isinstance(name, str)
                or not isinstance(value, str)
                or _header_name_problem(name) is not None
                or not _header_value_ok(value)
            ):
                raise InvalidRequestError(
                    f"{endpoint}: the {cap_message(str(name), 64)!r} header cannot be sent: "
                    "it is not a str or has characters that are not allowed in an HTTP header"
                )
            base_headers[name] = value

        async def attempt(number: int) -> httpx2.Response:
            body = content() if content is not None else None
            streamed = body is not None and not isinstance(body, bytes | str)
            request = self._shared.http.build_request(
                method,
                url,
                headers=base_headers,
                content=None if streamed else body,
                timeout=timeout,
            )
            request.stream = _PassThrough(body if body is not None else b"")
            return await self._send(
                request, endpoint=endpoint, api_call=False, stream=stream_response
            )

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


class _PassThrough(httpx2.AsyncByteStream):
    """Hands httpcore2 the body's own iterator: httpx2's wrapper is an async generator that an
    attempt failing mid-body abandons unclosed (trio warns when it is collected)."""

    def __init__(self, body: Any) -> None:
        self._body = body.encode() if isinstance(body, str) else body

    def __aiter__(self) -> AsyncIterator[bytes]:
        if isinstance(self._body, bytes):
            return _Once(self._body)
        return self._body.__aiter__()  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        pass


class _Once:
    """Yields one ``bytes`` (a plain iterator, not an async generator)."""

    def __init__(self, data: bytes) -> None:
        self._data: bytes | None = data

    def __aiter__(self) -> _Once:
        return self

    async def __anext__(self) -> bytes:
        if not self._data:
            raise StopAsyncIteration
        data, self._data = self._data, None
        return data


async def iter_response_bytes(
    response: httpx2.Response, *, endpoint: str, chunk_size: int
) -> AsyncIterator[bytes]:
    """Stream a media response body, turning httpx2 errors into :class:`APIConnectionError`."""
    try:
        async for chunk in response.aiter_bytes(chunk_size):
            yield chunk
    except httpx2.HTTPError as exc:
        try:
            secrets = _request_secrets(response.request)
        except RuntimeError:  # a response built by hand has no request
            secrets = []
        failure = _transport_failure(exc, endpoint=endpoint, api_call=False, secrets=secrets)
        error = failure.error if isinstance(failure, RetryableFailure) else failure
        raise error from _safe_cause(exc, secrets)


def _transport_failure(
    exc: httpx2.HTTPError, *, endpoint: str, api_call: bool, secrets: Iterable[str] = ()
) -> Exception:
    kind = classify_exception(exc)
    if isinstance(exc, httpx2.UnsupportedProtocol | httpx2.InvalidURL):
        return ConfigurationError(f"{endpoint}: bad URL ({type(exc).__name__})")
    detail = f"{type(exc).__name__}"
    text = _redact(str(exc), secrets, limit=500)
    if text:
        detail += f": {text}"
    error: APIConnectionError
    if isinstance(exc, httpx2.TimeoutException):
        error = APITimeoutError(
            f"{endpoint} timed out ({detail})", endpoint=endpoint, api_call=api_call
        )
    else:
        error = APIConnectionError(
            f"{endpoint} failed ({detail})", endpoint=endpoint, api_call=api_call
        )
    if kind is FailureKind.FINAL:
        return error
    return RetryableFailure(error, kind=kind)


def _status_error(
    response: httpx2.Response,
    *,
    endpoint: str,
    api_call: bool,
    retry_after: float | None,
    secrets: Iterable[str],
) -> APIStatusError:
    """The typed error for a non-2xx answer, its message redacted (and, for a 3xx, naming
    only the redirect target's origin)."""
    secrets = list(secrets)
    request_id = response.headers.get("x-request-id")
    error = status_error_from_response(
        status_code=response.status_code,
        content=response.content,
        request_id=_redact(request_id, secrets, limit=200) if request_id is not None else None,
        retry_after=retry_after,
        endpoint=endpoint,
        api_call=api_call,
    )
    if 300 <= response.status_code < 400:
        origin = _origin(response.request.url, response.headers.get("location"))
        message = f"{endpoint} was redirected to {_redact(origin, secrets, limit=300)}"
        message += "; the SDK does not follow redirects, so the request was not sent there"
    else:
        message = _redact(error.message, secrets)
    if message != error.message:
        error.message = message
        error.args = (message,)
    return error


def _api_response(
    response: httpx2.Response, *, endpoint: str, attempts: int, secrets: Iterable[str] = ()
) -> ApiResponse:
    content_type = response.headers.get("content-type", "")
    text = response.text
    try:
        data = json.loads(text) if text.strip() else None
    except ValueError:
        data = None
    if "json" not in content_type.lower() or not isinstance(data, dict):
        snippet = _redact(" ".join(text[:1000].split())[:120], secrets)
        raise APIResponseValidationError(
            f"{endpoint} answered {response.status_code} with a body that is not a JSON object"
            + (f": {snippet}" if snippet else " (empty body)"),
            body=data if data is not None else text,
            endpoint=endpoint,
            attempts=attempts,
        )
    secrets = [secret for secret in secrets if secret]
    headers = response.headers
    if any(secret in value for value in headers.values() for secret in secrets):
        headers = httpx2.Headers([(k, _redact(v, secrets)) for k, v in headers.multi_items()])
    return ApiResponse(
        data=data,
        attempts=attempts,
        request_id=headers.get("x-request-id"),
        status_code=response.status_code,
        headers=headers,
    )
