"""Pure retry logic: Retry-After parsing, classification, delays, and the loop itself."""

from __future__ import annotations

import email.utils
import random

import anyio
import httpx
import pytest

from diffio_async._http.retry import (
    FailureKind,
    RetryableFailure,
    RetryPolicy,
    classify_exception,
    classify_status,
    delays,
    hinted_delay,
    parse_retry_after,
    retry_loop,
    should_retry,
)
from diffio_async.errors import ConfigurationError, InternalServerError, RateLimitError

NOW = 1_800_000_000.0


def _http_date(offset: float) -> str:
    return email.utils.formatdate(NOW + offset, usegmt=True)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"Retry-After": "0"}, 0.0),
        ({"Retry-After": "1.5"}, 1.5),
        ({"Retry-After": " 3 "}, 3.0),
        ({"retry-after": "12"}, 12.0),
        ({"RETRY-AFTER": "2"}, 2.0),
        ({"Retry-After": "-1"}, None),
        ({"Retry-After": "nan"}, None),
        ({"Retry-After": "inf"}, None),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": ""}, None),
        ({"Retry-After": "100000"}, 100000.0),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "1500.5"}, 1.5005),
        ({"retry-after-ms": "250", "Retry-After": "9"}, 0.25),
        ({"retry-after-ms": "-5", "Retry-After": "9"}, 9.0),
        ({"retry-after-ms": "garbage", "Retry-After": "4"}, 4.0),
        ({"Retry-After": _http_date(30)}, 30.0),
        # A date that is not in the future is no usable hint: the normal backoff applies.
        ({"Retry-After": _http_date(-30)}, None),
        ({"Retry-After": _http_date(0)}, None),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}, None),
        ({"retry-after-ms": "-5", "Retry-After": _http_date(-30)}, None),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00"}, None),
        ({"Retry-After": "Mon, 99 Foo 2015 07:28:00 GMT"}, None),
        ({}, None),
        ({"X-Other": "5"}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    result = parse_retry_after(headers, now=NOW)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    ("status", "has_hint", "kind"),
    [
        (429, False, FailureKind.REFUSED),
        (429, True, FailureKind.REFUSED),
        (503, True, FailureKind.REFUSED),
        (503, False, FailureKind.AMBIGUOUS),
        (500, False, FailureKind.AMBIGUOUS),
        (502, False, FailureKind.AMBIGUOUS),
        (504, False, FailureKind.AMBIGUOUS),
        (408, False, FailureKind.AMBIGUOUS),
        (400, False, FailureKind.FINAL),
        (401, False, FailureKind.FINAL),
        (402, False, FailureKind.FINAL),
        (403, False, FailureKind.FINAL),
        (404, False, FailureKind.FINAL),
        (409, False, FailureKind.FINAL),
        (410, True, FailureKind.FINAL),
        (413, False, FailureKind.FINAL),
        (422, False, FailureKind.FINAL),
    ],
)
def test_classify_status(status: int, has_hint: bool, kind: FailureKind) -> None:
    assert classify_status(status, has_hint=has_hint) is kind


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (httpx.ConnectError("refused"), FailureKind.NEVER_SENT),
        (httpx.ConnectTimeout("slow"), FailureKind.NEVER_SENT),
        (httpx.PoolTimeout("pool"), FailureKind.NEVER_SENT),
        (httpx.ReadTimeout("slow"), FailureKind.AMBIGUOUS),
        (httpx.WriteTimeout("slow"), FailureKind.AMBIGUOUS),
        (httpx.ReadError("reset"), FailureKind.AMBIGUOUS),
        (httpx.WriteError("reset"), FailureKind.AMBIGUOUS),
        (httpx.RemoteProtocolError("dropped"), FailureKind.AMBIGUOUS),
        (httpx.LocalProtocolError("bad"), FailureKind.FINAL),
        (httpx.UnsupportedProtocol("ftp"), FailureKind.FINAL),
    ],
)
def test_classify_exception(exc: Exception, kind: FailureKind) -> None:
    assert classify_exception(exc) is kind


def test_should_retry_matrix() -> None:
    assert should_retry(FailureKind.NEVER_SENT, idempotent=False)
    assert should_retry(FailureKind.REFUSED, idempotent=False)
    assert not should_retry(FailureKind.AMBIGUOUS, idempotent=False)
    assert should_retry(FailureKind.AMBIGUOUS, idempotent=True)
    assert not should_retry(FailureKind.FINAL, idempotent=True)


def test_delays_grow_capped_and_never_collapse() -> None:
    policy = RetryPolicy(initial_delay=0.5, max_delay=8.0)
    values = [v for _, v in zip(range(12), delays(policy, rng=random.Random(7)), strict=False)]
    bases = [0.5, 1, 2, 4, 8, 8, 8, 8, 8, 8, 8, 8]
    for value, base in zip(values, bases, strict=True):
        assert base / 2 <= value <= base


def test_hinted_delay_is_never_shorter_than_the_hint() -> None:
    rng = random.Random(3)
    for hint in (0.0, 0.1, 1.0, 7.0, 59.0):
        for _ in range(50):
            assert hint <= hinted_delay(hint, rng=rng) <= hint * 1.1


def _failing(errors: list[RetryableFailure], result: str = "ok") -> tuple[list[int], object]:
    calls: list[int] = []

    async def attempt(number: int) -> str:
        calls.append(number)
        if errors:
            raise errors.pop(0)
        return result

    return calls, attempt


def _server_error(status: int = 503, hint: float | None = None) -> RetryableFailure:
    error = InternalServerError("boom", status_code=status, retry_after=hint)
    return RetryableFailure(
        error, kind=classify_status(status, has_hint=hint is not None), retry_after=hint
    )


@pytest.mark.anyio
async def test_loop_retries_then_succeeds_with_virtual_time() -> None:
    calls, attempt = _failing([_server_error(), _server_error()])
    start = anyio.current_time()
    result = await retry_loop(
        attempt,  # type: ignore[arg-type]
        policy=RetryPolicy(max_retries=2, initial_delay=0.01, max_delay=0.02),
        idempotent=True,
        endpoint="x",
    )
    assert result == "ok"
    assert calls == [1, 2, 3]
    assert anyio.current_time() - start < 5


@pytest.mark.anyio
async def test_loop_gives_up_after_max_retries_and_counts_attempts() -> None:
    failures = [_server_error() for _ in range(5)]
    calls, attempt = _failing(failures)
    with pytest.raises(InternalServerError) as info:
        await retry_loop(
            attempt,  # type: ignore[arg-type]
            policy=RetryPolicy(max_retries=2, initial_delay=0.001, max_delay=0.001),
            idempotent=True,
            endpoint="x",
        )
    assert calls == [1, 2, 3]
    assert info.value.attempts == 3


@pytest.mark.anyio
async def test_loop_does_not_retry_ambiguous_for_non_idempotent() -> None:
    calls, attempt = _failing([_server_error(500)])
    with pytest.raises(InternalServerError):
        await retry_loop(
            attempt,  # type: ignore[arg-type]
            policy=RetryPolicy(initial_delay=0.001),
            idempotent=False,
            endpoint="x",
        )
    assert calls == [1]


@pytest.mark.anyio
async def test_loop_raises_at_once_for_hint_over_cap() -> None:
    error = RateLimitError("slow down", status_code=429, retry_after=3600.0)
    failure = RetryableFailure(error, kind=FailureKind.REFUSED, retry_after=3600.0)
    calls, attempt = _failing([failure])
    with pytest.raises(RateLimitError) as info:
        await retry_loop(
            attempt,  # type: ignore[arg-type]
            policy=RetryPolicy(max_retry_after=60),
            idempotent=True,
            endpoint="x",
        )
    assert calls == [1]
    assert info.value.retry_after == 3600.0


@pytest.mark.anyio
async def test_loop_waits_at_least_the_hint() -> None:
    calls, attempt = _failing([_server_error(503, hint=0.2)])
    start = anyio.current_time()
    await retry_loop(
        attempt,  # type: ignore[arg-type]
        policy=RetryPolicy(initial_delay=0.001, max_delay=0.001),
        idempotent=False,
        endpoint="x",
    )
    assert calls == [1, 2]
    assert anyio.current_time() - start >= 0.2


def test_a_retry_after_date_in_the_past_is_no_hint_even_on_the_real_clock() -> None:
    past = email.utils.formatdate(0, usegmt=True)  # 1970: before any "now"
    assert parse_retry_after({"Retry-After": past}) is None


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"max_retries": -1}, "max_retries must be between 0 and 100"),
        ({"max_retries": 101}, "max_retries must be between 0 and 100"),
        ({"max_retries": True}, "max_retries must be an int, not a bool"),
        ({"max_retries": 2.0}, "max_retries must be an int, not a float"),
        ({"max_retries": "2"}, "max_retries must be an int, not a str"),
        ({"initial_delay": 0}, "initial_delay .* zero"),
        ({"initial_delay": -1}, "initial_delay .* negative"),
        ({"initial_delay": float("nan")}, "initial_delay .* NaN"),
        ({"initial_delay": float("inf")}, "initial_delay .* infinite"),
        ({"initial_delay": True}, "initial_delay .* bool"),
        ({"initial_delay": "0.5"}, "initial_delay .* str"),
        ({"max_delay": 0}, "max_delay .* zero"),
        ({"max_delay": float("nan")}, "max_delay .* NaN"),
        ({"max_delay": float("-inf")}, "max_delay .* infinite"),
        ({"max_delay": None}, "max_delay .* NoneType"),
        ({"max_retry_after": -1}, "max_retry_after .* negative"),
        ({"max_retry_after": float("nan")}, "max_retry_after .* NaN"),
        ({"max_retry_after": float("inf")}, "max_retry_after .* infinite"),
        ({"max_retry_after": False}, "max_retry_after .* bool"),
    ],
)
def test_a_retry_policy_refuses_what_is_not_a_sane_count_or_duration(
    options: dict[str, object], match: str
) -> None:
    with pytest.raises(ConfigurationError, match=f"RetryPolicy.{match}"):
        RetryPolicy(**options)  # type: ignore[arg-type]


def test_a_retry_policy_accepts_its_limits() -> None:
    policy = RetryPolicy(max_retries=100, initial_delay=1, max_delay=1e-3, max_retry_after=0)
    assert policy.max_retries == 100 and policy.max_retry_after == 0
