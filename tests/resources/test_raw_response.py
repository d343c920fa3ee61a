"""``with_raw_response``: a method's result with the status, headers and request id of its API
call, against the emulator on loopback (and a mock transport for a server that sends a request
id, which the emulator does not)."""

from __future__ import annotations

import anyio
import httpx2
import pytest
from shared import AUDIO, FAST, MODELS

from diffio_async import (
    AsyncDiffio,
    InvalidRequestError,
    NotFoundError,
    Project,
    RawResponse,
    UsageSummary,
    with_raw_response,
)
from diffio_async.testing import TEST_API_KEY, EmulatedDiffio

pytestmark = pytest.mark.anyio


def _no_key_in(raw: RawResponse[object]) -> bool:
    texts = [repr(raw), *(f"{name}: {value}" for name, value in raw.headers.multi_items())]
    return not any(TEST_API_KEY in text for text in texts)


async def test_a_call_answers_its_data_status_and_headers(env: EmulatedDiffio) -> None:
    raw = await with_raw_response(env.client.usage.summary)
    assert isinstance(raw.data, UsageSummary)
    assert raw.data == await env.client.usage.summary()
    assert (raw.status_code, raw.endpoint, raw.attempts) == (200, "usage/summary", 1)
    assert raw.headers["content-type"].startswith("application/json")
    assert raw.request_id is None  # the emulator sends no X-Request-Id
    assert _no_key_in(raw)
    assert len(env.emulator.requests.find(path="/v1/usage/summary")) == 2


async def test_arguments_are_passed_on(env: EmulatedDiffio) -> None:
    created = await env.client.projects.create(AUDIO, file_name="talk.wav")
    raw = await with_raw_response(env.client.projects.list)
    assert [p.api_project_id for p in raw.data] == [created.api_project_id]
    assert all(isinstance(p, Project) for p in raw.data)
    generation = await env.client.generations.create(created, model=MODELS["a"])
    progress = await with_raw_response(generation.progress)
    assert progress.endpoint == "get_generation_progress"
    assert progress.data.generation_id == generation.id
    listed = await with_raw_response(env.client.projects.list_generations, created.api_project_id)
    assert [g.generation_id for g in listed.data] == [generation.id]


async def test_retries_are_counted_and_the_last_answer_is_reported(env: EmulatedDiffio) -> None:
    env.emulator.add_fault(path="/v1/list_projects", status=503)
    client = env.client.with_options(max_retries=FAST)
    raw = await with_raw_response(client.projects.list)
    assert (raw.status_code, raw.attempts) == (200, 2)


async def test_a_method_of_several_calls_reports_the_last(env_b: EmulatedDiffio) -> None:
    raw = await with_raw_response(env_b.client.projects.create, AUDIO, file_name="talk.wav")
    assert raw.endpoint == "complete_project_upload"  # after create_project and the upload
    assert raw.data.era == "b"


async def test_errors_are_raised_as_usual(env: EmulatedDiffio) -> None:
    with pytest.raises(NotFoundError) as info:
        await with_raw_response(env.client.projects.list_generations, "no-such-project")
    assert info.value.status_code == 404


async def test_concurrent_calls_each_get_their_own_answer(env: EmulatedDiffio) -> None:
    found: dict[str, str] = {}

    async def usage() -> None:
        found["usage"] = (await with_raw_response(env.client.usage.summary)).endpoint

    async def projects() -> None:
        found["projects"] = (await with_raw_response(env.client.projects.list)).endpoint

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(usage)
            tg.start_soon(projects)
    assert found == {"usage": "usage/summary", "projects": "list_projects"}


async def test_a_callable_without_an_api_call_is_refused() -> None:
    async def local() -> int:
        return 1

    with pytest.raises(InvalidRequestError, match="local made no API call"):
        await with_raw_response(local)


async def test_the_request_id_and_headers_of_a_server_that_sends_them() -> None:
    def answer(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            200,
            json={"projects": []},
            headers={"X-Request-Id": "req_123", "X-Echo": f"Bearer {TEST_API_KEY}"},
        )

    http = httpx2.AsyncClient(transport=httpx2.MockTransport(answer))
    async with AsyncDiffio(
        api_key=TEST_API_KEY, base_url="https://api.test", http_client=http
    ) as client:
        raw = await with_raw_response(client.projects.list)
    assert (raw.data, raw.request_id, raw.status_code) == ((), "req_123", 200)
    assert raw.headers["x-echo"].startswith("Bearer ") and _no_key_in(raw)


async def test_an_enclosing_call_sees_the_answers_of_a_nested_one(env: EmulatedDiffio) -> None:
    """FAILS (review of issue 9): a function that itself uses ``with_raw_response`` (a helper
    returning ``raw.data``) hides its calls from an enclosing ``with_raw_response``, which then
    raises "made no API call" although the API answered."""

    async def listed_projects() -> object:
        return (await with_raw_response(env.client.projects.list)).data

    raw = await with_raw_response(listed_projects)
    assert (raw.endpoint, raw.status_code) == ("list_projects", 200)
