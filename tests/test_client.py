"""The client as a whole against the emulator on loopback: auth headers, billing errors, bad
input, lifecycle, options, environment, and errors that keep the key out."""

from __future__ import annotations

import json
import math
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

from diffio_async import (
    APIResponseValidationError,
    AsyncDiffio,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    ConfigurationError,
    InvalidRequestError,
    ModelRetiredError,
    PaymentFailedError,
    PermissionDeniedError,
    SpendLimitExceededError,
)
from diffio_async.resources.generations import new_idempotency_key
from diffio_async.testing import TEST_API_KEY, EmulatedDiffio, emulated_diffio

pytestmark = pytest.mark.anyio

WAV = b"RIFF" + bytes(range(256)) * 64


@pytest.fixture
async def env() -> AsyncIterator[EmulatedDiffio]:
    async with emulated_diffio(generation_seconds=0.2) as env:
        yield env


@pytest.fixture
async def env_b() -> AsyncIterator[EmulatedDiffio]:
    async with emulated_diffio(era="b", generation_seconds=0.2, part_size_bytes=4096) as env:
        yield env


def _sent_bodies(env: EmulatedDiffio, path: str) -> list[Any]:
    return [entry.json for entry in env.emulator.requests.find(path=path)]


async def test_a_generation_without_a_key_sends_one_minted_key(env: EmulatedDiffio) -> None:
    project = await env.client.projects.create(WAV, file_name="talk.wav")
    generation = await env.client.generations.create(project, model="diffio-3.5")
    (body,) = _sent_bodies(env, "/v1/diffio-3.5-generation")
    assert body["idempotencyKey"] == generation.idempotency_key
    assert re.fullmatch(r"diffio-async-[0-9a-f]{32}", body["idempotencyKey"])
    assert new_idempotency_key() != new_idempotency_key()


async def test_upload_and_media_requests_never_carry_the_key(
    env: EmulatedDiffio, env_b: EmulatedDiffio, tmp_path: Path
) -> None:
    for each in (env, env_b):
        result = await each.client.restore(WAV, output=tmp_path / f"{each.emulator.era}.mp3")
        assert result.output.read_bytes() == WAV
        media = [
            e
            for e in each.emulator.requests
            if not e.path.startswith("/v1/") or "/uploads/" in e.path
        ]
        assert media, "expected upload/edge/media requests"
        for entry in media:
            assert all(TEST_API_KEY not in value for _, value in entry.headers)
            assert TEST_API_KEY not in entry.path and TEST_API_KEY not in entry.query


async def test_era_b_flow_and_complete_upload(env_b: EmulatedDiffio, tmp_path: Path) -> None:
    data = bytes(range(256)) * 50  # 12,800 bytes -> 4 parts of 4 KiB
    project = await env_b.client.projects.create(data, file_name="talk.wav")
    assert project.era == "b"
    parts = env_b.emulator.requests.find(method="PUT")
    assert sorted(e.path for e in parts) == [f"/v1/uploads/parts/{n}" for n in (1, 2, 3, 4)]
    assert [e.body_size for e in sorted(parts, key=lambda e: e.path)] == [4096, 4096, 4096, 512]
    (complete,) = env_b.emulator.requests.find(path="/v1/uploads/complete")
    assert [p["partNumber"] for p in complete.json["parts"]] == [1, 2, 3, 4]
    assert _sent_bodies(env_b, "/v1/complete_project_upload") == [
        {"apiProjectId": project.api_project_id}
    ]
    again = await env_b.client.projects.complete_upload(project.api_project_id)
    assert again.api_project_id == project.api_project_id
    generation = await env_b.client.generations.create(project, model="diffio-4.6-flash")
    await generation.wait(timeout=30)
    out = await generation.download(tmp_path)
    assert out.parent == tmp_path and out.read_bytes() == data


async def test_era_b_retired_model_is_typed(env_b: EmulatedDiffio) -> None:
    project = await env_b.client.projects.create(WAV, file_name="a.wav")
    with pytest.raises(ModelRetiredError) as info:
        await env_b.client.generations.create(project, model="diffio-2")
    assert "diffio-4.6-flash" in info.value.supported_models
    assert info.value.retired_model == "diffio-2"


@pytest.mark.parametrize("header", ["authorization", "x-api-key", "xi-api-key"])
async def test_all_auth_headers(header: str) -> None:
    async with emulated_diffio(client_options={"auth_header": header}) as env:
        await env.client.projects.list()
        (entry,) = env.emulator.requests
        expected = f"Bearer {TEST_API_KEY}" if header == "authorization" else TEST_API_KEY
        assert entry.header(header) == expected


async def test_auth_and_billing_errors(env: EmulatedDiffio) -> None:
    bad = env.client.with_options(api_key="diffio_live_unknown")
    with pytest.raises(AuthenticationError):
        await bad.projects.list()
    reader = env.emulator.mint_key(scopes=["projects:read"])
    with pytest.raises(PermissionDeniedError):
        await env.client.with_options(api_key=reader.key).api_keys.list()
    project = await env.client.projects.create(WAV, file_name="a.wav")
    limited = env.emulator.mint_key(admin=True, spend_limit_cents=1)
    with pytest.raises(SpendLimitExceededError):
        await env.client.with_options(api_key=limited.key).generations.create(
            project, model="diffio-2"
        )
    env.emulator.set_billing_hold(True)
    env.emulator.requests.clear()
    with pytest.raises(PaymentFailedError) as info:
        await env.client.projects.list()
    assert info.value.status_code == 402 and info.value.code == "paymentFailed"
    assert len(env.emulator.requests.find(path="/v1/list_projects")) == 1, "402 is never retried"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.generations.get_progress(""), "generation_id"),
        (lambda c: c.generations.get_download("g", project_id=" "), "project_id"),
        (
            lambda c: c.generations.get_download("g", project_id="p", download_type="wav"),
            "download_type",
        ),
        (lambda c: c.generations.create("p", model="diffio-99"), "diffio-99"),
        (lambda c: c.generations.create("p", model="diffio-2", idempotency_key="  "), "1-255"),
        (lambda c: c.generations.create("p", model="diffio-2", idempotency_key="k" * 256), "1-255"),
        (lambda c: c.generations.create("p", model="diffio-2", sampling=[1]), "sampling"),
        (lambda c: c.projects.list_generations(""), "project_id"),
        (lambda c: c.projects.register(file_name=""), "file_name"),
        (lambda c: c.projects.register(file_name="a", content_length=-1), "content_length"),
        (lambda c: c.projects.create(Path("/no/such/file.wav")), "no such file"),
        (lambda c: c.projects.create(Path("/")), "directory"),
        (lambda c: c.webhooks.send_test_event("generation.done"), "event type"),
        (lambda c: c.webhooks.send_test_event("generation.queued", mode="prod"), "mode"),
        (lambda c: c.webhooks.configure(url="ftp://x", event_types=[]), "url"),
        (lambda c: c.webhooks.configure(url="https://x", event_types=[]), "event_types"),
        (lambda c: c.api_keys.create(label="", scopes=["a"]), "label"),
        (lambda c: c.api_keys.create(label="x", scopes=[]), "scopes"),
        (lambda c: c.api_keys.rotate(""), "key_id"),
        (lambda c: c.account.update_settings(billing_policy="free"), "billing_policy"),
    ],
)
async def test_bad_input_is_rejected_before_any_request(
    env: EmulatedDiffio, call: Any, message: str
) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        await call(env.client)
    assert len(env.emulator.requests) == 0


async def test_too_large_source_creates_no_project(env: EmulatedDiffio, tmp_path: Path) -> None:
    big = tmp_path / "big.wav"
    with big.open("wb") as handle:
        handle.truncate(2 * 1024**3 + 1)  # sparse: no disk space used
    with pytest.raises(InvalidRequestError, match="2 GiB"):
        await env.client.projects.create(big)
    assert env.emulator.project_ids == []


async def test_model_escape_hatch_sends_to_named_endpoint(env: EmulatedDiffio) -> None:
    project = await env.client.projects.create(WAV, file_name="a.wav")
    generation = await env.client.generations.create(
        project, model="diffio-3.5-preview", endpoint="diffio-3.5-generation"
    )
    assert generation.model_key == "diffio-3.5"
    assert env.emulator.requests.find(path="/v1/diffio-3.5-generation")


async def test_lifecycle_closed_client_and_with_options() -> None:
    async with emulated_diffio() as env:
        client = env.client
        copy = client.with_options(max_retries=0, timeout=30)
        await copy.projects.list()
        await copy.aclose()
        assert copy.closed and not client.closed
        await client.projects.list()  # the pool survives the copy's close
        with pytest.raises(ClientClosedError):
            await copy.projects.list()
        await client.aclose()
        await client.aclose()  # idempotent
        with pytest.raises(ClientClosedError):
            await client.projects.list()


async def test_caller_http_client_is_not_closed_and_keeps_base_url() -> None:
    async with (
        emulated_diffio() as env,
        httpx2.AsyncClient(base_url="http://wrong.invalid") as http,
    ):
        async with AsyncDiffio(TEST_API_KEY, env.base_url, http_client=http) as client:
            assert await client.projects.list() == ()
        assert not http.is_closed
        await http.aclose()
        client = AsyncDiffio(TEST_API_KEY, env.base_url, http_client=http)
        with pytest.raises(ClientClosedError):
            await client.projects.list()


async def test_env_vars_and_missing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    async with emulated_diffio() as env:
        monkeypatch.setenv("DIFFIO_API_KEY", TEST_API_KEY)
        monkeypatch.setenv("DIFFIO_API_BASE_URL", env.base_url + "/v1")
        async with AsyncDiffio() as client:
            assert client.base_url == env.base_url + "/v1"
            await client.projects.list()
        assert env.emulator.requests.find(path="/v1/list_projects")
    monkeypatch.delenv("DIFFIO_API_KEY")
    with pytest.raises(ConfigurationError, match="DIFFIO_API_KEY"):
        AsyncDiffio()


async def test_key_not_in_repr_of_client_or_errors(env: EmulatedDiffio) -> None:
    assert TEST_API_KEY not in repr(env.client)
    with pytest.raises(AuthenticationError) as info:
        await env.client.with_options(api_key="diffio_live_wrong_key").projects.list()
    for text in (str(info.value), repr(info.value), json.dumps(info.value.body)):
        assert "diffio_live_wrong_key" not in text and TEST_API_KEY not in text


async def test_two_event_loops_in_a_row() -> None:
    """A client per run: no state leaks between two event loops."""

    async def once() -> int:
        async with emulated_diffio() as env:
            return len(await env.client.projects.list())

    assert await once() == 0
    assert await anyio.to_thread.run_sync(lambda: anyio.run(once)) == 0


async def test_the_users_pytest_fixture(diffio_env: EmulatedDiffio, tmp_path: Path) -> None:
    result = await diffio_env.client.restore(WAV, output=tmp_path / "out.mp3")
    assert result.output.read_bytes() == WAV
    assert diffio_env.emulator.generation_ids == [result.generation_id]


BIG = 5 * 1024 * 1024


@pytest.mark.parametrize("shape", ["json", "text"])
async def test_a_five_megabyte_error_body_gives_a_short_message_and_keeps_the_body(
    env: EmulatedDiffio, shape: str
) -> None:
    text = "overflowing detail " * (BIG // 19)
    body: Any = {"error": text, "code": "tooMuch"} if shape == "json" else text
    env.emulator.add_fault(path="/v1/list_projects", status=400, body=body)
    with pytest.raises(BadRequestError) as info:
        await env.client.projects.list()
    assert len(str(info.value)) < 1200 and len(repr(info.value)) < 1200
    assert info.value.body == body


async def test_a_five_megabyte_non_json_success_body_gives_a_short_message(
    env: EmulatedDiffio,
) -> None:
    text = "<html>" + "not json " * (BIG // 9)
    env.emulator.add_fault(path="/v1/list_projects", status=200, body=text)
    with pytest.raises(APIResponseValidationError) as info:
        await env.client.projects.list()
    assert len(str(info.value)) < 1200 and len(repr(info.value)) < 1200
    assert info.value.body == text


BAD_KEYS = [
    "diffio_live_abc\r\nX-Injected: 1",
    "diffio_live_abc\x00",
    "diffio_live_a bc",
    "diffio_live_\u00e9abc",
    b"diffio_live_abc",
]


@pytest.mark.parametrize("key", BAD_KEYS, ids=["crlf", "nul", "space", "non-ascii", "bytes"])
async def test_a_key_that_cannot_be_sent_is_refused_by_the_client_and_by_with_options(
    key: Any,
) -> None:
    with pytest.raises(ConfigurationError, match=r"api_key|API key") as info:
        AsyncDiffio(key, "http://127.0.0.1:9")
    assert "diffio_live" not in str(info.value)
    client = AsyncDiffio(TEST_API_KEY, "http://127.0.0.1:9")
    with pytest.raises(ConfigurationError, match=r"api_key|API key") as info:
        client.with_options(api_key=key)
    assert "diffio_live" not in str(info.value)
    await client.aclose()


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"timeout": math.nan}, "timeout"),
        ({"timeout": -1}, "timeout"),
        ({"timeout": math.inf}, "timeout"),
        ({"timeout": "5"}, "timeout"),
        ({"max_retries": 1000}, "max_retries"),
        ({"max_retries": True}, "max_retries"),
        ({"headers": {"X-Secret": "v\r\nX-Injected: 1"}}, "X-Secret"),
    ],
)
async def test_bad_numbers_and_headers_are_refused_by_the_client_and_by_with_options(
    options: dict[str, Any], named: str
) -> None:
    with pytest.raises(ConfigurationError, match=named) as info:
        AsyncDiffio(TEST_API_KEY, "http://127.0.0.1:9", **options)
    assert "X-Injected" not in str(info.value)
    client = AsyncDiffio(TEST_API_KEY, "http://127.0.0.1:9")
    with pytest.raises(ConfigurationError, match=named):
        client.with_options(**options)
    await client.aclose()


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"auth_header": 1}, "auth_header"),
        ({"base_url": 1}, "base_url"),
        ({"http_client": httpx2.Client()}, "http_client"),
    ],
)
async def test_settings_of_the_wrong_type_are_configuration_errors_naming_them(
    options: dict[str, Any], named: str
) -> None:
    settings: dict[str, Any] = {"base_url": "http://127.0.0.1:9", **options}
    with pytest.raises(ConfigurationError, match=named):
        AsyncDiffio(TEST_API_KEY, **settings)
