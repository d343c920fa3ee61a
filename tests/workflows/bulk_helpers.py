"""What the restore_many test modules share: a quick poll policy and a result collector."""

from __future__ import annotations

from pathlib import Path

from shared import batch_arguments

from diffio_async import PollPolicy
from diffio_async.testing import EmulatedDiffio
from diffio_async.workflows.bulk import ItemResult

FAST_POLL = PollPolicy(initial=0.02, maximum=0.1)
"""Polls every 20-100 ms: the emulator's generations take 50 ms in these tests."""


async def collect(
    env: EmulatedDiffio, sources: object, out: str | Path, **options: object
) -> list[ItemResult]:
    """Run ``restore_many(sources, output_dir=out, **options)`` and return every result."""
    results = []
    arguments = batch_arguments(poll=FAST_POLL, **options)
    async with env.client.restore_many(
        sources,  # type: ignore[arg-type]
        output_dir=out,
        **arguments,
    ) as items:
        async for item in items:
            results.append(item)
    return results
