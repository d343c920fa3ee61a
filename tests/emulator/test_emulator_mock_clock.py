"""A trio MockClock drives an in-process emulator through ``time_source=anyio.current_time``."""

from __future__ import annotations

import anyio
import pytest
import trio.testing
from emulator_helpers import generation, inproc, progress, project_a

from diffio_async.emulator import Emulator, EmulatorClock


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, object]]:
    """Trio only, with a clock that jumps over sleeps instantly."""
    return ("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)})


@pytest.mark.anyio
async def test_virtual_time_drives_a_300_second_job() -> None:
    clock = EmulatorClock(time_source=anyio.current_time)
    with Emulator(api_key="k", clock=clock) as emulator:
        started = anyio.current_time()
        async with inproc(emulator) as client:
            pid = (await project_a(client, key="k"))["apiProjectId"]
            emulator.script_next_generation(duration=300)
            made = await generation(client, pid, key="k")
            await anyio.sleep(299)
            assert (await progress(client, made["generationId"], key="k"))["status"] == (
                "processing"
            )
            await anyio.sleep(1)
            assert (await progress(client, made["generationId"], key="k"))["status"] == ("complete")
        assert anyio.current_time() - started >= 300
