"""The workflow results can be handed on too: ``RestoreResult.to_dict()`` and
``ItemResult.to_dict()`` are JSON-safe (paths as text, exceptions as type and message, the
generation handle as its create answer), with secrets hidden as in reprs."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from shared import AUDIO

from diffio_async import ItemResult, NotFoundError
from diffio_async.testing import TEST_API_KEY, emulated_diffio

pytestmark = pytest.mark.anyio


async def test_a_restore_result_as_json(tmp_path: Path) -> None:
    source = tmp_path / "talk.wav"
    source.write_bytes(AUDIO)
    async with emulated_diffio(generation_seconds=0) as env:
        result = await env.client.restore(source, output=tmp_path / "out.mp3")
    data = result.to_dict()
    assert json.loads(result.to_json()) == data
    assert data["output"] == str(tmp_path / "out.mp3")
    assert data["generation"]["created"]["generation_id"] == result.generation_id
    assert data["generation"]["idempotency_key"] == result.generation.idempotency_key
    assert data["progress"]["status"] == "complete"
    assert data["timings"] == dict(result.timings) and data["attempts"] == dict(result.attempts)
    upload_url = result.project.upload_url
    assert upload_url is not None and "?" in upload_url
    assert data["project"]["upload_url"] == upload_url.split("?")[0] + "?\u2026"
    assert result.to_dict(include_secrets=True)["project"]["upload_url"] == upload_url
    assert TEST_API_KEY not in result.to_json(include_secrets=True)
    assert not hasattr(result, "to_wire")  # a result has no wire shape


async def test_batch_items_as_json(tmp_path: Path) -> None:
    (tmp_path / "a.wav").write_bytes(AUDIO)
    async with (
        emulated_diffio(generation_seconds=0) as env,
        env.client.restore_many([tmp_path / "a.wav"], output_dir=tmp_path) as items,
    ):
        (item,) = [item async for item in items]
    assert item.to_dict()["ok"] is True
    assert item.to_dict()["output"] == str(item.output)
    failed = ItemResult(
        source="b.wav",
        ok=False,
        stage="generation",
        error=NotFoundError("Project not found.", status_code=404),
    )
    assert json.loads(failed.to_json())["error"] == {
        "type": "NotFoundError",
        "message": str(failed.error),
    }
    assert failed.to_dict()["output"] is None


async def test_an_in_memory_restore_result_as_json(tmp_path: Path) -> None:
    """FAILS (review of issue 9): with ``output=None`` the result holds ``content`` bytes,
    which ``to_dict()`` passes through as bytes (not JSON-safe) and ``to_json()`` dies on
    (``TypeError: Object of type bytes is not JSON serializable``)."""
    async with emulated_diffio(generation_seconds=0) as env:
        result = await env.client.restore(AUDIO, output=None)
    assert result.content == AUDIO
    data = json.loads(result.to_json())
    assert data == json.loads(json.dumps(result.to_dict()))
    assert data["output"] is None
    assert base64.b64decode(data["content"]) == AUDIO  # bytes as base64 text
