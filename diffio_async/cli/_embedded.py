"""An emulator started inside the command (``restore --emulator``, ``demo``): served on
loopback in a background thread, with a client connected to it. Needs the ``emulator`` extra.

This is a product feature, so it starts :mod:`diffio_async.emulator` itself rather than
going through :mod:`diffio_async.testing`, which is for users' tests.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Literal

import anyio
import attrs

from .._http.transport import Timeout
from ..client import AsyncDiffio
from ..emulator import Emulator, EmulatorClock, serve_in_thread

__all__ = ["EMBEDDED_API_KEY", "EmbeddedEmulator", "embedded_emulator"]

EMBEDDED_API_KEY = "diffio_embedded_emulator_key"
"""The admin key of an embedded emulator (it listens on 127.0.0.1 only, for this process)."""


@attrs.frozen(kw_only=True)
class EmbeddedEmulator:
    """A running embedded emulator and a client connected to it."""

    client: AsyncDiffio
    emulator: Emulator


@asynccontextmanager
async def embedded_emulator(
    *, era: Literal["a", "b"], generation_seconds: float = 2.0
) -> AsyncIterator[EmbeddedEmulator]:
    """Start an emulator on a free loopback port, its clock following real time, and yield it
    with a connected client; stop both on exit."""
    clock = EmulatorClock(time_source=time.monotonic)
    async with AsyncExitStack() as stack:
        emulator = stack.enter_context(
            Emulator(
                era=era,
                api_key=EMBEDDED_API_KEY,
                generation_seconds=generation_seconds,
                clock=clock,
            )
        )
        server = serve_in_thread(emulator)
        base_url = await anyio.to_thread.run_sync(server.__enter__)
        stack.push_async_callback(anyio.to_thread.run_sync, server.__exit__, None, None, None)
        client = AsyncDiffio(EMBEDDED_API_KEY, base_url, timeout=Timeout(total=60.0))
        stack.push_async_callback(client.aclose)
        yield EmbeddedEmulator(client=client, emulator=emulator)
