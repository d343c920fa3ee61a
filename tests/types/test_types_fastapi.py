"""Models handed on from a FastAPI endpoint: ``model.to_dict()`` answers 200 with the expected
JSON; the model itself is not something FastAPI can serialise (attrs is not pydantic), which is
what the README says. Real models come from the emulator on loopback; the FastAPI app is
reached through ``httpx2.ASGITransport``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from fastapi.exceptions import FastAPIError

from diffio_async import GenerationProgress, Project
from diffio_async.testing import emulated_diffio

pytestmark = pytest.mark.anyio

AUDIO = b"RIFF" + bytes(range(256)) * 16


@pytest.fixture
async def served() -> AsyncIterator[tuple[httpx2.AsyncClient, GenerationProgress, Project]]:
    """A FastAPI app whose endpoints hand on a real progress and project."""
    async with emulated_diffio(generation_seconds=600) as env:
        created = await env.client.projects.create(AUDIO, file_name="talk.wav")
        generation = await env.client.generations.create(created, model="diffio-3.5")
        progress = await generation.progress()
        (project,) = await env.client.projects.list()

    app = FastAPI()

    @app.get("/progress")
    async def show_progress() -> dict[str, Any]:
        return progress.to_dict()

    @app.get("/project")
    async def show_project() -> dict[str, Any]:
        return project.to_dict()

    @app.get("/project-as-is")
    async def show_project_as_is():  # unannotated: an annotation would be refused (below)
        return project

    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://app.test") as http:
        yield http, progress, project


async def test_to_dict_models_answer_200_with_their_json(
    served: tuple[httpx2.AsyncClient, GenerationProgress, Project],
) -> None:
    http, progress, project = served
    answer = await http.get("/progress")
    assert answer.status_code == 200
    body = answer.json()
    assert body == progress.to_dict()
    assert (body["generation_id"], body["status"]) == (progress.generation_id, "queued")
    assert body["inference"]["status"] == progress.inference.status
    assert body["extra"] == {}
    answer = await http.get("/project")
    assert answer.status_code == 200
    assert answer.json() == project.to_dict()
    assert answer.json()["original_file_name"] == "talk.wav"
    assert answer.json()["created_at"].endswith("Z")


async def test_the_model_itself_is_not_served(
    served: tuple[httpx2.AsyncClient, GenerationProgress, Project],
) -> None:
    http, _, _ = served
    with pytest.raises(ValueError, match="not iterable"):
        await http.get("/project-as-is")  # FastAPI's encoder knows pydantic, not attrs
    with pytest.raises(FastAPIError, match="Invalid args for response field"):

        @FastAPI().get("/typed")
        async def typed() -> Project:  # a return annotation is refused when the route is made
            raise AssertionError
