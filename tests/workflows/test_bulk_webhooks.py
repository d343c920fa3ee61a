"""``restore_many(router=...)`` with the emulator sending its webhooks when each change happens:
every file is woken by its ``generation.completed`` delivery, and polling slows to the safety
net (without webhooks the same batch would wait for its first safety-net poll, 10 s)."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from diffio_async import BatchOptions
from diffio_async.testing import emulated_diffio
from diffio_async.webhook_listener import listen_for_webhooks
from diffio_async.webhooks import WebhookRouter
from diffio_async.workflows.bulk import SAFETY_NET

pytestmark = pytest.mark.anyio

PROGRESS = "/v1/get_generation_progress"


async def test_webhooks_wake_every_file_and_polling_slows_to_the_safety_net(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    media = {str(folder / f"take{n}.wav"): b"RIFF" + bytes([n]) * 4000 for n in range(6)}
    for name, data in media.items():
        await anyio.Path(name).write_bytes(data)
    paths = list(media)
    async with emulated_diffio(generation_seconds=0.5) as env:
        router = WebhookRouter(env.emulator.webhook_secret)
        async with listen_for_webhooks(router) as hook_url:
            await env.client.webhooks.configure(url=hook_url)
            async with env.client.restore_many(
                paths, output_dir=tmp_path / "out", batch=BatchOptions(concurrency=3), router=router
            ) as items:
                results = [item async for item in items]
        assert [item.ok for item in results] == [True] * 6
        for item in results:
            assert item.output is not None
            assert await anyio.Path(item.output).read_bytes() == media[item.source]
            # Woken by the delivery: long before the safety net's first poll would have come.
            assert item.timings["wait"] < SAFETY_NET.initial
        polls = [e.json["generationId"] for e in env.emulator.requests.find(path=PROGRESS)]
        for generation_id in env.emulator.generation_ids:
            # At most: a first look, then one poll per status event that woke it.
            assert polls.count(generation_id) <= 4
