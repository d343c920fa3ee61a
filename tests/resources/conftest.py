"""Fixtures of the resource tests: an emulator of each era on loopback, with a client wired to it.

Generations take ``JOB_SECONDS`` of emulator time, so nothing moves on its own during a test:
a test that needs a finished generation advances the emulator clock (no real waiting).
Modules that define their own ``env`` (test_generation_handle) keep theirs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from shared import ERAS, JOB_SECONDS

from diffio_async.testing import EmulatedDiffio, emulated_diffio

PART_SIZE = 4096
"""Era-B parts of 4 KiB: a small upload still takes several parts."""


@pytest.fixture
async def env() -> AsyncIterator[EmulatedDiffio]:
    """Era A: signed PUT uploads, the documented models."""
    async with emulated_diffio(generation_seconds=JOB_SECONDS) as env:
        yield env


@pytest.fixture
async def env_b() -> AsyncIterator[EmulatedDiffio]:
    """Era B: edge multipart uploads, ``complete_project_upload``, the 4.6 models."""
    async with emulated_diffio(
        era="b", generation_seconds=JOB_SECONDS, part_size_bytes=PART_SIZE
    ) as env:
        yield env


@pytest.fixture(params=ERAS)
async def era_env(request: pytest.FixtureRequest) -> AsyncIterator[EmulatedDiffio]:
    """Each era in turn, for endpoints whose requests or answers differ between eras."""
    async with emulated_diffio(
        era=request.param, generation_seconds=JOB_SECONDS, part_size_bytes=PART_SIZE
    ) as env:
        yield env
