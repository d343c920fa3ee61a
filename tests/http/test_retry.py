"""Retries: the pure logic (Retry-After parsing, classification, delays, the loop) and the
behaviour over real loopback sockets with faults injected by the emulator.

What is retried depends on whether the failed attempt could have had an effect (see
``diffio_async/_http/retry.py``): never-sent failures and 429s always; ambiguous ones (5xx,
drops, read timeouts) only for idempotent calls; other 4xx never. Long backoff waits run on
virtual time (``VIRTUAL``) against the in-process emulator.
"""

from __future__ import annotations

import email.utils
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import httpx2
import pytest
from shared import FAST
from virtual_clock import VIRTUAL_BACKENDS, virtual_backend

from diffio_async import (
    APIConnectionError,
    APITimeoutError,
    AsyncDiffio,
    InternalServerError,
    RateLimitError,
    RetryPolicy,
    Timeout,
    errors,
)
from diffio_async._http.retry import (
    FailureKind,
    RetryableFailure,
    classify_exception,
    classify_status,
    delays,
    hinted_delay,
    parse_retry_after,
    retry_loop,
    should_retry,
)
from diffio_async.errors import ConfigurationError
from diffio_async.testing import TEST_API_KEY, EmulatedDiffio, emulated_diffio

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
        (httpx2.ConnectError("refused"), FailureKind.NEVER_SENT),
        (httpx2.ConnectTimeout("slow"), FailureKind.NEVER_SENT),
        (httpx2.PoolTimeout("pool"), FailureKind.NEVER_SENT),
        (httpx2.ReadTimeout("slow"), FailureKind.AMBIGUOUS),
        (httpx2.WriteTimeout("slow"), FailureKind.AMBIGUOUS),
        (httpx2.ReadError("reset"), FailureKind.AMBIGUOUS),
        (httpx2.WriteError("reset"), FailureKind.AMBIGUOUS),
        (httpx2.RemoteProtocolError("dropped"), FailureKind.AMBIGUOUS),
        (httpx2.LocalProtocolError("bad"), FailureKind.FINAL),
        (httpx2.UnsupportedProtocol("ftp"), FailureKind.FINAL),
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


# --- over loopback, with the emulator's faults ------------------------------------------

VIRTUAL = pytest.mark.parametrize("anyio_backend", VIRTUAL_BACKENDS, indirect=True)

WAV = b"RIFF" + b"\x01" * 4000


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    """Both backends; tests marked ``VIRTUAL`` get them on virtual time (see virtual_clock)."""
    return virtual_backend(request.param)


@pytest.fixture
async def env() -> AsyncIterator[EmulatedDiffio]:
    async with emulated_diffio(generation_seconds=0.2, client_options={"max_retries": FAST}) as env:
        yield env


Call = Callable[[EmulatedDiffio, dict[str, str]], Awaitable[Any]]


async def _project(env: EmulatedDiffio, ids: dict[str, str]) -> None:
    project = await env.client.projects.create(WAV, file_name="a.wav")
    generation = await env.client.generations.create(project, model="diffio-2")
    key = await env.client.api_keys.create(label="k", scopes=["projects:read"])
    ids.update(project=project.api_project_id, generation=generation.id, key=key.key_id)
    env.emulator.requests.clear()


# (name, path, call, idempotent)
ENDPOINTS: list[tuple[str, str, Call, bool]] = [
    (
        "create_project",
        "/v1/create_project",
        lambda e, i: e.client.projects.register(file_name="a.wav"),
        False,
    ),
    ("list_projects", "/v1/list_projects", lambda e, i: e.client.projects.list(), True),
    (
        "list_project_generations",
        "/v1/list_project_generations",
        lambda e, i: e.client.projects.list_generations(i["project"]),
        True,
    ),
    (
        "generation create",
        "/v1/diffio-2.0-generation",
        lambda e, i: e.client.generations.create(i["project"], model="diffio-2"),
        True,
    ),
    (
        "get_generation_progress",
        "/v1/get_generation_progress",
        lambda e, i: e.client.generations.get_progress(i["generation"]),
        True,
    ),
    (
        "send_test_event",
        "/v1/webhooks/send_test_event",
        lambda e, i: e.client.webhooks.send_test_event("generation.queued"),
        False,
    ),
    (
        "webhooks configure",
        "/v1/webhooks/configure",
        lambda e, i: e.client.webhooks.configure(url="https://example.com/h"),
        True,
    ),
    (
        "api_keys create",
        "/v1/api_keys/create",
        lambda e, i: e.client.api_keys.create(label="x", scopes=["usage:read"]),
        False,
    ),
    ("api_keys list", "/v1/api_keys/list", lambda e, i: e.client.api_keys.list(), True),
    (
        "api_keys rotate",
        "/v1/api_keys/rotate",
        lambda e, i: e.client.api_keys.rotate(i["key"]),
        False,
    ),
    (
        "api_keys revoke",
        "/v1/api_keys/revoke",
        lambda e, i: e.client.api_keys.revoke(i["key"]),
        True,
    ),
    ("usage summary", "/v1/usage/summary", lambda e, i: e.client.usage.summary(), True),
    ("account get", "/v1/account/settings/get", lambda e, i: e.client.account.get_settings(), True),
    (
        "account update",
        "/v1/account/settings/update",
        lambda e, i: e.client.account.update_settings(billing_policy="customerStripe"),
        True,
    ),
]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("name", "path", "call", "idempotent"), ENDPOINTS, ids=[e[0] for e in ENDPOINTS]
)
async def test_ambiguous_503_is_retried_only_for_idempotent_calls(
    env: EmulatedDiffio, name: str, path: str, call: Call, idempotent: bool
) -> None:
    ids: dict[str, str] = {}
    await _project(env, ids)
    env.emulator.add_fault(path=path, status=503)
    if idempotent:
        await call(env, ids)
        assert [e.status for e in env.emulator.requests.find(path=path)] == [503, 200]
    else:
        with pytest.raises(InternalServerError) as info:
            await call(env, ids)
        assert info.value.attempts == 1
        assert [e.status for e in env.emulator.requests.find(path=path)] == [503]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("name", "path", "call", "idempotent"), ENDPOINTS, ids=[e[0] for e in ENDPOINTS]
)
async def test_drop_is_retried_only_for_idempotent_calls(
    env: EmulatedDiffio, name: str, path: str, call: Call, idempotent: bool
) -> None:
    ids: dict[str, str] = {}
    await _project(env, ids)
    env.emulator.add_fault(path=path, drop=True)
    if idempotent:
        await call(env, ids)
        assert [e.status for e in env.emulator.requests.find(path=path)] == [None, 200]
    else:
        with pytest.raises(APIConnectionError):
            await call(env, ids)
        assert len(env.emulator.requests.find(path=path)) == 1


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("name", "path", "call", "idempotent"), ENDPOINTS, ids=[e[0] for e in ENDPOINTS]
)
async def test_429_is_retried_for_every_call(
    env: EmulatedDiffio, name: str, path: str, call: Call, idempotent: bool
) -> None:
    ids: dict[str, str] = {}
    await _project(env, ids)
    env.emulator.add_fault(path=path, status=429, retry_after_ms=20)
    await call(env, ids)
    assert [e.status for e in env.emulator.requests.find(path=path)] == [429, 200]


@pytest.mark.anyio
@pytest.mark.parametrize("status", [400, 401, 402, 403, 404, 409, 410, 413, 422])
async def test_final_statuses_are_never_retried(env: EmulatedDiffio, status: int) -> None:
    ids: dict[str, str] = {}
    await _project(env, ids)
    path = "/v1/get_generation_progress"
    env.emulator.add_fault(path=path, status=status, retry_after="0", count=None)
    with pytest.raises(errors.APIStatusError) as info:
        await env.client.generations.get_progress(ids["generation"])
    assert info.value.status_code == status
    assert len(env.emulator.requests.find(path=path)) == 1


@pytest.mark.anyio
async def test_same_idempotency_key_on_every_attempt(env: EmulatedDiffio) -> None:
    ids: dict[str, str] = {}
    await _project(env, ids)
    path = "/v1/diffio-2.0-generation"
    env.emulator.add_fault(path=path, status=502)
    env.emulator.add_fault(path=path, drop=True)
    generation = await env.client.generations.create(ids["project"], model="diffio-2")
    bodies = [e.json for e in env.emulator.requests.find(path=path)]
    assert len(bodies) == 3
    keys = {body["idempotencyKey"] for body in bodies}
    assert keys == {generation.idempotency_key}


@pytest.mark.anyio
async def test_lost_answer_replays_the_same_generation(env: EmulatedDiffio) -> None:
    """The server created the generation but the answer was lost: no second generation."""
    ids: dict[str, str] = {}
    await _project(env, ids)
    before = len(env.emulator.generation_ids)
    path = "/v1/diffio-2.0-generation"
    env.emulator.add_fault(path=path, drop=True, after=True)
    generation = await env.client.generations.create(ids["project"], model="diffio-2")
    assert generation.created.idempotent_replay
    assert len(env.emulator.generation_ids) == before + 1
    assert [e.status for e in env.emulator.requests.find(path=path)] == [None, 200]


@pytest.mark.anyio
async def test_retry_after_over_the_cap_raises_at_once(env: EmulatedDiffio) -> None:
    env.emulator.add_fault(path="/v1/list_projects", status=429, retry_after="3600")
    with pytest.raises(RateLimitError) as info:
        await env.client.projects.list()
    assert info.value.retry_after == 3600.0
    assert info.value.attempts == 1
    assert len(env.emulator.requests.find(path="/v1/list_projects")) == 1


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("header", "value", "seconds"),
    [("retry_after", "0.3", 0.3), ("retry_after_ms", 300, 0.3), ("retry_after", "1", 1.0)],
)
async def test_retry_after_is_waited_for(
    env: EmulatedDiffio, header: str, value: Any, seconds: float
) -> None:
    env.emulator.add_fault(path="/v1/list_projects", status=503, **{header: value})
    started = anyio.current_time()
    await env.client.projects.register(file_name="x.wav")  # not idempotent: the hint makes it safe
    env.emulator.add_fault(path="/v1/create_project", status=503, **{header: value})
    await env.client.projects.register(file_name="x.wav")
    await env.client.projects.list()
    assert anyio.current_time() - started >= seconds * 2
    statuses = [e.status for e in env.emulator.requests if e.path == "/v1/create_project"]
    assert statuses == [200, 503, 200]


@pytest.mark.anyio
async def test_exhausted_retries_report_attempts(env: EmulatedDiffio) -> None:
    env.emulator.add_fault(path="/v1/list_projects", status=500, count=None)
    with pytest.raises(InternalServerError) as info:
        await env.client.projects.list()
    assert info.value.attempts == 3
    assert len(env.emulator.requests.find(path="/v1/list_projects")) == 3


@pytest.mark.anyio
async def test_connect_errors_are_retried_even_for_create_project() -> None:
    async with emulated_diffio() as env:
        url = env.base_url
    # The server is gone: every attempt fails to connect, so it was never sent.
    async with AsyncDiffio(TEST_API_KEY, url, max_retries=FAST) as client:
        with pytest.raises(APIConnectionError) as info:
            await client.projects.register(file_name="a.wav")
    assert info.value.attempts == 3


@pytest.mark.anyio
async def test_read_timeout_is_ambiguous(env: EmulatedDiffio) -> None:
    slow = env.client.with_options(timeout=Timeout(read=0.2, total=30))
    create_fault = env.emulator.add_fault(path="/v1/create_project", delay=1.0, count=None)
    with pytest.raises(APITimeoutError):
        await slow.projects.register(file_name="a.wav")
    assert create_fault.hits == 1
    list_fault = env.emulator.add_fault(path="/v1/list_projects", delay=1.0)
    await slow.projects.list()
    assert list_fault.hits == 1
    assert [e.status for e in env.emulator.requests.find(path="/v1/list_projects")] == [200]


@pytest.mark.anyio
async def test_overall_deadline_bounds_a_call(env: EmulatedDiffio) -> None:
    hurried = env.client.with_options(timeout=Timeout(read=0.2, total=0.5), max_retries=50)
    env.emulator.add_fault(path="/v1/list_projects", delay=1.0, count=None)
    started = anyio.current_time()
    with pytest.raises(APITimeoutError, match="deadline"):
        await hurried.projects.list()
    assert anyio.current_time() - started < 5


@pytest.mark.anyio
async def test_per_call_retry_override(env: EmulatedDiffio) -> None:
    env.emulator.add_fault(path="/v1/list_projects", status=503)
    with pytest.raises(InternalServerError):
        await env.client.with_options(max_retries=0).projects.list()
    assert len(env.emulator.requests.find(path="/v1/list_projects")) == 1


@pytest.mark.anyio
@VIRTUAL
async def test_a_retry_after_date_in_the_past_falls_back_to_the_normal_backoff() -> None:
    slow_backoff = RetryPolicy(max_retries=1, initial_delay=30, max_delay=30)
    async with emulated_diffio(loopback=False, client_options={"max_retries": slow_backoff}) as env:
        env.emulator.add_fault(
            path="/v1/list_projects", status=429, retry_after="Wed, 21 Oct 2015 07:28:00 GMT"
        )
        started = anyio.current_time()
        await env.client.projects.list()
        waited = anyio.current_time() - started
        statuses = [e.status for e in env.emulator.requests.find(path="/v1/list_projects")]
    assert statuses == [429, 200]
    assert 15 <= waited < 60  # the backoff step (30 s, equal jitter), not "retry at once"
