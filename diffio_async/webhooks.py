"""Verify and sign Diffio webhook deliveries (Svix / Standard Webhooks scheme), without svix.

Diffio delivers webhooks through Svix. Every delivery carries three headers:

* ``svix-id``: the message id (``msg_...``), the same on every retry of one message;
* ``svix-timestamp``: integer Unix seconds of this attempt;
* ``svix-signature``: space-separated ``v1,<base64>`` entries (several while a secret rotates).

The white-label names ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` are accepted
too. The signature is ``base64(HMAC-SHA256(key, f"{id}.{timestamp}.{raw body}"))`` where ``key``
is the base64-decoded signing secret after its ``whsec_`` prefix. While a secret rotates, pass
the old and the new one (a list); a delivery verifies when any of them matches. Asymmetric
``v1a`` signatures are not supported.

Typical use in a web handler (pass the body exactly as received, never re-serialised JSON)::

    from diffio_async.webhooks import WebhookVerificationError, verify_event

    try:
        event = verify_event(await request.body(), request.headers, secret)
    except WebhookVerificationError:
        return Response(status_code=400)
    if event.event_type == "generation.completed":
        ...

Differences from the official SDK: no client or API key is needed, the tolerance is
configurable, ``now`` can be frozen for tests, failures raise :class:`WebhookVerificationError`
(a :class:`ValueError`, not an API error), both header families are accepted, a list of
secrets verifies during a rotation, and the ``whsec_`` prefix of a secret is required (a bare
base64 secret is refused up front, like every other unusable secret, with a
:class:`WebhookVerificationError` that is also a :class:`~diffio_async.errors.ConfigurationError`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import numbers
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol, cast

import anyio
import anyio.lowlevel

from ._convert import structure
from .errors import APIResponseValidationError, ConfigurationError, WebhookVerificationError
from .types import WebhookEvent

__all__ = [
    "DEFAULT_TOLERANCE",
    "HeadersLike",
    "SecretLike",
    "WebhookRouter",
    "WebhookVerificationError",
    "construct_event",
    "sign",
    "verify",
    "verify_event",
]

DEFAULT_TOLERANCE: float = 300.0
"""Default allowed distance, in seconds, between ``svix-timestamp`` and now (Svix uses ±5 min)."""

_SECRET_PREFIX = "whsec_"
_FIELDS = ("id", "timestamp", "signature")
_HEADER_FAMILIES = ("svix", "webhook")
_TIMESTAMP_RE = re.compile(r"[0-9]{1,20}")
_SIGNATURE_SPLIT_RE = re.compile(r"[\s,]+")
_BAD_SECRET = "expected 'whsec_' followed by non-empty standard base64"
_V1A_ONLY = "v1a (asymmetric) signatures are not supported; use a whsec_ symmetric secret"

SecretLike = str | Sequence[str]
"""One signing secret (``whsec_<base64>``), or several while a secret rotates."""


class _SecretError(WebhookVerificationError, ConfigurationError):
    """An unusable signing secret: a :class:`WebhookVerificationError` (as it has always been)
    and a :class:`~diffio_async.errors.ConfigurationError` (it is a configuration mistake)."""


class _SupportsItems(Protocol):
    def items(self) -> Iterable[tuple[Any, Any]]: ...


HeadersLike = (
    Mapping[str, str]
    | Mapping[str, Sequence[str]]
    | Iterable[tuple[str, str]]
    | Iterable[tuple[bytes, bytes]]
    | _SupportsItems
)
"""Request headers in any common shape.

A mapping (``dict``, ``httpx2.Headers``, Starlette/Django/aiohttp headers), an iterable of
``(name, value)`` pairs (ASGI ``scope["headers"]`` with bytes works too), or anything with an
``items()`` method. Names are matched case-insensitively; a list value, or a name that occurs
several times, is joined with ``,`` as the official SDK does.
"""


def sign(secret: SecretLike, *, msg_id: str, timestamp: int, payload: bytes | str) -> str:
    """Return the ``v1,<base64>`` signature Svix would send for this message.

    ``secret`` is the endpoint's signing secret (``whsec_<base64>``), ``msg_id`` the
    ``svix-id`` value, ``timestamp`` the ``svix-timestamp`` value in Unix seconds and
    ``payload`` the exact request body (a ``str`` is signed as UTF-8). With a sequence of
    secrets (a rotation), the result holds one space-separated ``v1,`` entry per secret, as the
    ``svix-signature`` header does while a secret rotates.

    Raises :class:`WebhookVerificationError` (also a
    :class:`~diffio_async.errors.ConfigurationError`) for an unusable secret, and
    :class:`TypeError` for a ``timestamp`` that is not an ``int``.
    """
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise TypeError(f"timestamp must be an int (Unix seconds), not {type(timestamp).__name__}")
    keys = _decode_secrets(secret)
    body = _body_bytes(payload)
    return " ".join("v1," + _signature(key, msg_id, str(timestamp), body) for key in keys)


def verify(
    payload: bytes | str,
    headers: HeadersLike,
    secret: SecretLike,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> None:
    """Check that a webhook delivery was signed with ``secret`` and is recent; return ``None``.

    ``payload`` must be the raw request body exactly as received. ``headers`` may hold the
    ``svix-*`` or the ``webhook-*`` names (see :data:`HeadersLike`). ``secret`` is one
    ``whsec_`` secret or, while a secret rotates, a sequence of them. The delivery is accepted
    when any ``v1`` entry of the signature header matches any secret (constant-time
    comparisons; other versions are ignored) and the timestamp is within ``tolerance`` seconds
    of ``now`` (default: the current time), boundaries included. Pass ``tolerance=math.inf`` to
    skip the timestamp check.

    Raises :class:`WebhookVerificationError` whose message starts with the reason:
    ``invalid secret``, ``missing headers: ...``, ``invalid timestamp header``,
    ``timestamp too old``, ``timestamp too new``, ``v1a (asymmetric) signatures are not
    supported`` (the header holds only ``v1a`` entries) or ``no matching signature``. Messages
    never contain the secret. An ``invalid secret`` error is also a
    :class:`~diffio_async.errors.ConfigurationError`. Raises
    :class:`~diffio_async.errors.ConfigurationError` for a ``tolerance`` that is not a
    non-negative number or a ``now`` that is not a finite number, and :class:`TypeError` for a
    payload that is not bytes or str.
    """
    # Argument errors come in a fixed order: tolerance, now, payload, secret (then headers).
    checked_tolerance = _check_tolerance(tolerance)
    current = _check_now(now)
    body = _body_bytes(payload)
    keys = _decode_secrets(secret)
    _verify(body, headers, keys, tolerance=checked_tolerance, now=current)


def construct_event(payload: bytes | str) -> WebhookEvent:
    """Parse a webhook body into a :class:`~diffio_async.WebhookEvent`, *without* checking
    any signature.

    Use :func:`verify_event` for requests from the network; this is for bodies that were
    already verified (or for tests). Unknown fields are ignored; ``event.status`` is
    ``queued``, ``processing``, ``error`` or ``complete``.

    Raises :class:`WebhookVerificationError` if the body is not UTF-8 JSON, not an object, or
    lacks the event fields.
    """
    try:
        data = json.loads(_body_bytes(payload))
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise WebhookVerificationError(f"payload is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise WebhookVerificationError(f"payload is not a JSON object (got {type(data).__name__})")
    try:
        return structure(data, WebhookEvent, endpoint="webhook event")
    except APIResponseValidationError as exc:
        raise WebhookVerificationError(str(exc)) from None


def verify_event(
    payload: bytes | str,
    headers: HeadersLike,
    secret: SecretLike,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> WebhookEvent:
    """:func:`verify` the delivery, then return its parsed event (see :func:`construct_event`).

    This is the counterpart of the official SDK's ``webhooks.verify_signature``. ``secret``
    may be a sequence of secrets while one rotates. Raises :class:`WebhookVerificationError`
    on any verification failure or a body that is not a JSON object (and the errors of
    :func:`verify` for bad arguments).
    """
    verify(payload, headers, secret, tolerance=tolerance, now=now)
    return construct_event(payload)


def _verify(
    body: bytes, headers: HeadersLike, keys: Sequence[bytes], *, tolerance: float, now: float
) -> str:
    """Verify with already checked arguments; returns the message id."""
    msg_id, timestamp_text, signature_header = _pick_headers(_normalise_headers(headers))

    timestamp_text = timestamp_text.strip()
    if not _TIMESTAMP_RE.fullmatch(timestamp_text):
        # Header values are not echoed: a message should never carry secret-looking text.
        raise WebhookVerificationError("invalid timestamp header: expected integer Unix seconds")
    timestamp = int(timestamp_text)
    if timestamp < now - tolerance:
        raise WebhookVerificationError(
            f"timestamp too old: {timestamp} is {now - timestamp:.0f} s before now "
            f"(tolerance {tolerance:g} s)"
        )
    if timestamp > now + tolerance:
        raise WebhookVerificationError(
            f"timestamp too new: {timestamp} is {timestamp - now:.0f} s after now "
            f"(tolerance {tolerance:g} s)"
        )

    candidates, asymmetric = _parse_signatures(signature_header)
    if not candidates and asymmetric:
        raise WebhookVerificationError(_V1A_ONLY)
    matched = False
    for key in keys:
        # Sign the parsed integer, as svix does (so "0123" is checked as "123").
        expected = _signature(key, msg_id, str(timestamp), body).encode("ascii")
        for candidate in candidates:
            # Check every pair (no early exit); each comparison is constant-time.
            matched |= hmac.compare_digest(candidate.encode("utf-8"), expected)
    if not matched:
        raise WebhookVerificationError("no matching signature")
    return msg_id


def _check_tolerance(tolerance: object, name: str = "tolerance") -> float:
    """``tolerance`` as a float: a non-negative number (``math.inf`` allowed), not a bool."""
    if isinstance(tolerance, bool) or not isinstance(tolerance, numbers.Real):
        raise ConfigurationError(
            f"{name} must be a non-negative number of seconds (math.inf skips the check), "
            f"not {type(tolerance).__name__}"
        )
    value = float(tolerance)
    if math.isnan(value) or value < 0:
        raise ConfigurationError(
            f"{name} must be a non-negative number of seconds (math.inf skips the check), "
            f"not {value!r}"
        )
    return value


def _check_now(now: object) -> float:
    """``now`` as a float (the current time for ``None``): finite Unix seconds, not a bool."""
    if now is None:
        return time.time()
    if isinstance(now, bool) or not isinstance(now, numbers.Real):
        raise ConfigurationError(
            f"now must be a number of Unix seconds or None, not {type(now).__name__}"
        )
    value = float(now)
    if not math.isfinite(value):
        raise ConfigurationError(f"now must be a finite number of Unix seconds, not {value!r}")
    return value


def _body_bytes(payload: object) -> bytes:
    if isinstance(payload, str):
        return payload.encode("utf-8")
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return bytes(payload)
    raise TypeError(
        "payload must be the raw request body as bytes or str, "
        f"not {type(payload).__name__} (do not pass parsed JSON)"
    )


def _decode_secrets(secret: object) -> tuple[bytes, ...]:
    """The HMAC keys of one secret or of a non-empty sequence of secrets.

    Every failure raises :class:`_SecretError` naming the problem, never the secret.
    """
    if isinstance(secret, str):
        return (_decode_secret(secret),)
    if isinstance(secret, (bytes, bytearray, memoryview)) or not isinstance(secret, Sequence):
        raise _SecretError(
            "invalid secret: expected a 'whsec_' str or a sequence of them, "
            f"not {type(secret).__name__}"
        )
    if not secret:
        raise _SecretError("invalid secret: the sequence of secrets is empty")
    keys: list[bytes] = []
    for position, item in enumerate(secret):
        if not isinstance(item, str):
            raise _SecretError(
                f"invalid secret: item {position} of the sequence is a "
                f"{type(item).__name__}, not a 'whsec_' str"
            )
        keys.append(_decode_secret(item, position))
    return tuple(keys)


def _decode_secret(secret: str, position: int | None = None) -> bytes:
    where = "" if position is None else f" (item {position} of the sequence)"
    encoded = secret.strip()
    key = b""
    if encoded.startswith(_SECRET_PREFIX):
        try:
            key = base64.b64decode(encoded[len(_SECRET_PREFIX) :], validate=True)
        except (binascii.Error, ValueError):
            key = b""
    if not key:
        # Never echo the secret (or any part of it) in the message.
        raise _SecretError(f"invalid secret{where}: {_BAD_SECRET}")
    return key


def _signature(key: bytes, msg_id: str, timestamp: str, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def _text(value: object) -> str:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("latin-1")
    return str(value)


def _normalise_headers(headers: HeadersLike) -> dict[str, str]:
    if isinstance(headers, (str, bytes)):
        raise TypeError("headers must be a mapping or an iterable of (name, value) pairs")
    items_method = getattr(headers, "items", None)
    items = cast("Iterable[Any]", items_method() if callable(items_method) else headers)
    collected: dict[str, list[str]] = {}
    for name, value in items:
        if value is None:  # some frameworks' .get()-style mappings
            continue
        values: Iterable[object] = [value] if isinstance(value, (str, bytes, bytearray)) else value
        collected.setdefault(_text(name).lower(), []).extend(_text(v) for v in values)
    return {name: ",".join(values) for name, values in collected.items()}


def _pick_headers(headers: Mapping[str, str]) -> tuple[str, str, str]:
    first_partial: list[str] | None = None
    for family in _HEADER_FAMILIES:
        names = [f"{family}-{field}" for field in _FIELDS]
        values = [headers.get(name, "") for name in names]
        missing = [name for name, value in zip(names, values, strict=True) if not value.strip()]
        if not missing:
            return values[0], values[1], values[2]
        if first_partial is None and len(missing) < len(names):
            first_partial = missing
    missing = first_partial or [f"svix-{field}" for field in _FIELDS]
    raise WebhookVerificationError(f"missing headers: {', '.join(missing)}")


def _parse_signatures(header: str) -> tuple[list[str], bool]:
    """The ``v1`` signatures of a signature header, and whether it holds any ``v1a`` entry."""
    # Entries are "<version>,<base64>" separated by spaces; base64 never contains "," or spaces
    # and is never "v1" or "v1a" (its length is a multiple of 4), so splitting on both also
    # copes with list values joined by "," or ", ".
    tokens = _SIGNATURE_SPLIT_RE.split(header.strip())
    v1 = [tokens[i + 1] for i, token in enumerate(tokens[:-1]) if token == "v1"]
    return v1, "v1a" in tokens


class WebhookRouter:
    """Verify deliveries and wake the :class:`~diffio_async.Generation` waits they concern.

    Give one router to your web handler and to ``Generation.wait(router=...)`` (both on the
    same event loop)::

        router = WebhookRouter(secret)

        @app.post("/diffio-webhook")                    # FastAPI / Starlette
        async def hook(request: Request) -> Response:
            try:
                await router.handle(await request.body(), request.headers)
            except WebhookVerificationError:
                return Response(status_code=400)
            return Response(status_code=204)

        final = await generation.wait(router=router)    # polls at once when an event arrives

    A delivery only *wakes* the wait, which then polls the API for the truth: a lost, late or
    duplicated webhook can delay nothing beyond the normal polling schedule. Deliveries are
    de-duplicated by their message id (Svix retries keep it).
    """

    def __init__(
        self,
        secret: SecretLike,
        *,
        tolerance: float = DEFAULT_TOLERANCE,
        remember: int = 10_000,
    ) -> None:
        """Check every argument now, not on the first delivery.

        ``secret`` is one ``whsec_`` secret or, while a secret rotates, a sequence of them (a
        delivery verifies when any matches). ``tolerance`` is as for :func:`verify`;
        ``remember`` is how many message ids are kept for de-duplication.

        Raises :class:`WebhookVerificationError` (also a
        :class:`~diffio_async.errors.ConfigurationError`) for an unusable secret, and
        :class:`~diffio_async.errors.ConfigurationError` for a bad ``tolerance`` or
        ``remember``. Messages never contain the secret.
        """
        self._keys = _decode_secrets(secret)  # only the decoded keys are kept
        self._tolerance = _check_tolerance(tolerance)
        if isinstance(remember, bool) or not isinstance(remember, int) or remember < 0:
            shown = remember if isinstance(remember, int) else type(remember).__name__
            raise ConfigurationError(f"remember must be a non-negative int, not {shown!r}")
        self._remember = remember
        self._seen: dict[str, None] = {}
        self._waiters: dict[str, list[anyio.Event]] = {}
        self._unclaimed: dict[str, None] = {}  # generations with news nobody has waited for

    def __repr__(self) -> str:
        return f"<WebhookRouter waiting on {len(self._waiters)} generation(s)>"

    async def handle(self, payload: bytes | str, headers: HeadersLike) -> WebhookEvent:
        """Verify one delivery, wake the waits on its generation and return the event.

        Raises :class:`WebhookVerificationError` for a delivery that does not verify (answer
        it with a 4xx so that nothing trusts it).
        """
        body = _body_bytes(payload)
        message_id = _verify(body, headers, self._keys, tolerance=self._tolerance, now=time.time())
        event = construct_event(body)
        if message_id in self._seen:
            return event
        self._seen[message_id] = None
        if len(self._seen) > self._remember:
            del self._seen[next(iter(self._seen))]
        waiters = self._waiters.pop(event.generation_id, [])
        for waiter in waiters:
            waiter.set()
        if not waiters:
            # Nobody waits on it right now (a wait may be mid-poll): the next wait_for on this
            # generation returns at once instead of missing the news.
            self._unclaimed[event.generation_id] = None
            if len(self._unclaimed) > self._remember:
                del self._unclaimed[next(iter(self._unclaimed))]
        return event

    async def wait_for(self, generation_id: str) -> None:
        """Return when the next event about ``generation_id`` has been handled (at once when
        one arrived since the last ``wait_for`` on it returned, while nobody was waiting)."""
        if self._unclaimed.pop(generation_id, False) is None:
            await anyio.lowlevel.checkpoint()
            return
        waiter = anyio.Event()
        self._waiters.setdefault(generation_id, []).append(waiter)
        try:
            await waiter.wait()
        finally:
            waiters = self._waiters.get(generation_id)
            if waiters is not None and waiter in waiters:
                waiters.remove(waiter)
                if not waiters:
                    del self._waiters[generation_id]
