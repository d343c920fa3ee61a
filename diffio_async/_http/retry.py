"""Retry policy: which failures may be retried, how long to wait, and the retry loop.

The rule is "could the failed attempt have had an effect on the server?":

============================================  =======================  ==========================
failure                                       kind                     retried for
============================================  =======================  ==========================
connect error, connect/pool timeout           ``NEVER_SENT``           every call
429, or 503 with a ``Retry-After`` hint       ``REFUSED``              every call
408, 500, 502, 503, 504, read/write timeout,  ``AMBIGUOUS``            idempotent calls only
reset, dropped connection
any other status (3xx redirects, 400, 401,    ``FINAL``                nothing
402, 403, 404, 409, 410, 413, 422, ...)
============================================  =======================  ==========================

Delays come from backoff's ``expo`` generator with "equal" jitter (half fixed, half random), so
they never collapse to zero. A server hint (``retry-after-ms``, ``Retry-After`` in seconds or as
an HTTP date still in the future) wins and is never jittered downwards; a hint above
``max_retry_after`` is not waited for: the error is raised at once with ``retry_after`` set. An
unusable hint (negative, not a number, a date already past) counts as no hint at all. Sleeping
is ``anyio.sleep`` (backoff's own async decorators call ``asyncio.sleep`` and break trio).
"""

from __future__ import annotations

import email.utils
import enum
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import TypeVar

import anyio
import attrs
import backoff
import httpx2

from ..errors import ConfigurationError

__all__ = [
    "MAX_RETRIES_LIMIT",
    "FailureKind",
    "RetryPolicy",
    "check_max_retries",
    "check_seconds",
    "classify_exception",
    "classify_status",
    "delays",
    "parse_retry_after",
    "retry_loop",
    "should_retry",
]

logger = logging.getLogger("diffio_async")

T = TypeVar("T")


MAX_RETRIES_LIMIT = 100
"""The largest ``max_retries`` a :class:`RetryPolicy` accepts."""


def check_seconds(name: str, value: object, *, allow_zero: bool = False) -> float:
    """``value`` as seconds, or :class:`ConfigurationError` naming ``name``.

    Refuses bools, non-numbers, NaN, infinities, negatives and (unless ``allow_zero``) zero.
    The message says what is wrong without echoing the value.
    """
    bound = ">= 0" if allow_zero else "> 0"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(
            f"{name} must be a number of seconds {bound}, not a {type(value).__name__}"
        )
    try:
        seconds = float(value)
    except OverflowError:
        seconds = math.inf
    if math.isnan(seconds):
        problem = "NaN"
    elif math.isinf(seconds):
        problem = "infinite"
    elif seconds < 0:
        problem = "negative"
    elif seconds == 0 and not allow_zero:
        problem = "zero"
    else:
        return seconds
    raise ConfigurationError(f"{name} must be a finite number of seconds {bound}; it is {problem}")


def _seconds_validator(
    *, allow_zero: bool
) -> Callable[[object, attrs.Attribute[float], object], None]:
    def validate(instance: object, attribute: attrs.Attribute[float], value: object) -> None:
        check_seconds(f"{type(instance).__name__}.{attribute.name}", value, allow_zero=allow_zero)

    return validate


def check_max_retries(value: object, *, name: str = "max_retries") -> int:
    """``value`` as a retry count, or :class:`ConfigurationError` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigurationError(f"{name} must be an int, not a {type(value).__name__}")
    if not 0 <= value <= MAX_RETRIES_LIMIT:
        raise ConfigurationError(f"{name} must be between 0 and {MAX_RETRIES_LIMIT}")
    return value


def _validate_max_retries(instance: object, attribute: attrs.Attribute[int], value: object) -> None:
    check_max_retries(value, name=f"{type(instance).__name__}.{attribute.name}")


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How a call is retried.

    ``max_retries`` counts extra attempts (``2`` means at most three attempts); it is an
    ``int`` from 0 to :data:`MAX_RETRIES_LIMIT` (100).
    ``initial_delay`` and ``max_delay`` shape the exponential backoff (seconds, finite, > 0).
    ``max_retry_after`` is the longest server ``Retry-After`` hint the client waits for
    (seconds, finite, >= 0); a longer one raises :class:`~diffio_async.RateLimitError` with
    ``retry_after`` at once. Anything else (NaN, infinities, negatives, bools, strings) raises
    :class:`~diffio_async.ConfigurationError`.
    """

    max_retries: int = attrs.field(default=2, validator=_validate_max_retries)
    initial_delay: float = attrs.field(default=0.5, validator=_seconds_validator(allow_zero=False))
    max_delay: float = attrs.field(default=8.0, validator=_seconds_validator(allow_zero=False))
    max_retry_after: float = attrs.field(
        default=60.0, validator=_seconds_validator(allow_zero=True)
    )


class FailureKind(enum.Enum):
    """How far a failed attempt got, which decides whether it may be retried."""

    NEVER_SENT = "never_sent"
    """The request never reached the server (connect error, pool timeout)."""
    REFUSED = "refused"
    """The server refused without processing (429, or 503 with a Retry-After hint)."""
    AMBIGUOUS = "ambiguous"
    """The server may have processed the request (timeouts after sending, 5xx, drops)."""
    FINAL = "final"
    """Retrying cannot help (other 4xx, local protocol errors)."""


_AMBIGUOUS_STATUSES = frozenset({408, 500, 502, 503, 504})


def classify_status(status_code: int, *, has_hint: bool) -> FailureKind:
    """Classify a non-2xx status; ``has_hint`` says whether a Retry-After hint came with it."""
    if status_code == 429 or (status_code == 503 and has_hint):
        return FailureKind.REFUSED
    if status_code in _AMBIGUOUS_STATUSES:
        return FailureKind.AMBIGUOUS
    return FailureKind.FINAL


def classify_exception(exc: BaseException) -> FailureKind:
    """Classify an httpx2 exception raised while sending a request or reading its answer."""
    if isinstance(exc, httpx2.ConnectError | httpx2.ConnectTimeout | httpx2.PoolTimeout):
        return FailureKind.NEVER_SENT
    if isinstance(exc, httpx2.TimeoutException | httpx2.NetworkError | httpx2.RemoteProtocolError):
        return FailureKind.AMBIGUOUS
    return FailureKind.FINAL


def should_retry(kind: FailureKind, *, idempotent: bool) -> bool:
    """Whether a failure of ``kind`` may be retried for an (non-)idempotent call."""
    if kind in (FailureKind.NEVER_SENT, FailureKind.REFUSED):
        return True
    return kind is FailureKind.AMBIGUOUS and idempotent


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Read the server's wait hint in seconds, or ``None`` when there is no usable one.

    ``retry-after-ms`` (milliseconds) wins over ``Retry-After``, which may be a number of
    seconds (fractions allowed) or an HTTP date. Negative, non-finite and unparsable values
    are ignored, and so is a date that is not in the future: ``None`` then means the normal
    backoff applies (a past date is a stale or clock-skewed hint, not "retry at once").
    ``Retry-After: 0`` (a number) is a real hint of no wait. ``now`` (Unix seconds) is for
    tests.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_ms = lowered.get("retry-after-ms")
    if raw_ms is not None:
        value = _parse_number(raw_ms)
        if value is not None:
            return value / 1000.0
    raw = lowered.get("retry-after")
    if raw is None:
        return None
    value = _parse_number(raw)
    if value is not None:
        return value
    try:
        parsed = email.utils.parsedate_to_datetime(raw.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        return None
    current = time.time() if now is None else now
    remaining = parsed.timestamp() - current
    return remaining if remaining > 0 else None


def _parse_number(raw: str) -> float | None:
    try:
        value = float(raw.strip())
    except ValueError:
        return None
    if not math.isfinite(value) or value < 0:
        return None
    return value


def delays(policy: RetryPolicy, *, rng: random.Random | None = None) -> Iterator[float]:
    """Yield the backoff delays for successive retries (equal jitter, capped).

    The base sequence is ``initial_delay * 2**n`` capped at ``max_delay`` (backoff's ``expo``);
    each value ``d`` becomes ``d/2 + uniform(0, d/2)``.
    """
    uniform = (rng or random).uniform
    base = backoff.expo(base=2, factor=policy.initial_delay, max_value=policy.max_delay)
    base.send(None)  # prime the generator (backoff's own decorators do the same)
    for value in base:
        d = float(value)
        yield d / 2 + uniform(0, d / 2)


def hinted_delay(hint: float, *, rng: random.Random | None = None) -> float:
    """Wait a little *longer* than a server hint (up to 10 %), never shorter."""
    return hint + (rng or random).uniform(0, 0.1 * hint)


class RetryableFailure(Exception):
    """Raised by an attempt function to report a failure the loop may retry.

    ``kind`` classifies it; ``retry_after`` carries a server hint; ``error`` is what to raise
    if the loop gives up (an SDK exception built by the transport).
    """

    def __init__(
        self, error: BaseException, *, kind: FailureKind, retry_after: float | None = None
    ) -> None:
        super().__init__(str(error))
        self.error = error
        self.kind = kind
        self.retry_after = retry_after


async def retry_loop(
    attempt: Callable[[int], Awaitable[T]],
    *,
    policy: RetryPolicy,
    idempotent: bool,
    endpoint: str,
    on_failure: Callable[[BaseException], None] | None = None,
) -> T:
    """Run ``attempt(n)`` (n = 1, 2, ...) until it returns or the failure is final.

    ``attempt`` raises :class:`RetryableFailure` for failures; anything else propagates at once.
    A server hint above ``policy.max_retry_after`` ends the loop at once: the failure's error
    (a ``RateLimitError`` for a 429) is raised with its ``retry_after`` set. The exception that
    ends the loop has ``attempts`` set when it has that attribute. ``on_failure`` sees the
    error of every failed attempt, retried or not (the bulk runner watches for 429s).
    """
    backoff_delays = delays(policy)
    number = 0
    while True:
        number += 1
        try:
            return await attempt(number)
        except RetryableFailure as failure:
            error = failure.error
            if on_failure is not None:
                on_failure(error)
            if hasattr(error, "attempts"):
                error.attempts = number
            hint = failure.retry_after
            if hint is not None and hint > policy.max_retry_after:
                raise error from None
            if number > policy.max_retries or not should_retry(failure.kind, idempotent=idempotent):
                raise error from None
            delay = hinted_delay(hint) if hint is not None else next(backoff_delays)
            logger.debug(
                "retrying %s after attempt %d (%s, %s); sleeping %.2fs",
                endpoint,
                number,
                failure.kind.value,
                type(error).__name__,
                delay,
            )
            await anyio.sleep(delay)
