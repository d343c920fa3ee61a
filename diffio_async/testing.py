"""Test your own code against a local Diffio, offline: an emulator plus a client wired to it.

::

    from diffio_async.testing import emulated_diffio

    async def test_my_upload_flow():
        async with emulated_diffio() as env:
            result = await env.client.restore(b"RIFF...", output=tmp_path)
            assert env.emulator.generation_ids == [result.generation_id]

With pytest, add ``pytest_plugins = ["diffio_async.testing"]`` to your ``conftest.py`` and
take the ``diffio_env`` fixture (an :class:`EmulatedDiffio`) in async tests run by anyio's
plugin (``@pytest.mark.anyio``) or by pytest-asyncio (``@pytest.mark.asyncio`` in strict
mode, any ``async def`` test in auto mode).

Two transports:

* ``loopback=True`` (default): the emulator is served by uvicorn on ``127.0.0.1`` in a
  background thread, and the client talks to it over real sockets (what streaming, retry and
  cancellation tests need). Its clock follows real time, so generations take
  ``generation_seconds`` real seconds.
* ``loopback=False``: the emulator runs in-process on the test's own event loop through
  ``httpx2.ASGITransport``; its clock follows ``anyio.current_time()``, so a trio
  ``MockClock`` (or any virtual clock) drives generations without real waiting. The ASGI
  transport buffers whole responses and cannot drop connections, so use loopback for media.

Needs the ``emulator`` extra.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, Literal

import anyio
import attrs
import httpx2

from ._http.transport import Timeout
from .client import AsyncDiffio
from .emulator import Emulator, EmulatorClock, serve_in_thread

__all__ = ["TEST_API_KEY", "EmulatedDiffio", "diffio_env", "emulated_diffio"]

TEST_API_KEY = "diffio_test_key_0123456789"
"""The admin key of emulators started here."""


@attrs.frozen(kw_only=True)
class EmulatedDiffio:
    """A running emulator and a client connected to it.

    ``emulator`` gives the clock (``emulator.advance``), faults (``emulator.add_fault``), the
    request log (``emulator.requests``) and key helpers; ``base_url`` is where it listens.
    """

    client: AsyncDiffio
    emulator: Emulator
    base_url: str


@asynccontextmanager
async def emulated_diffio(
    *,
    era: Literal["a", "b"] = "a",
    loopback: bool = True,
    api_key: str = TEST_API_KEY,
    generation_seconds: float = 1.0,
    client_options: dict[str, Any] | None = None,
    **emulator_options: Any,
) -> AsyncIterator[EmulatedDiffio]:
    """Start an emulator and yield an :class:`EmulatedDiffio`; stop both on exit.

    ``client_options`` go to :class:`AsyncDiffio` (e.g. ``max_retries``, ``timeout``);
    other keyword arguments go to :class:`~diffio_async.emulator.Emulator`.
    """
    if "clock" not in emulator_options:
        source = time.monotonic if loopback else anyio.current_time
        emulator_options["clock"] = EmulatorClock(time_source=source)
    options: dict[str, Any] = {"timeout": Timeout(total=60.0), **(client_options or {})}
    async with AsyncExitStack() as stack:
        emulator = stack.enter_context(
            Emulator(
                era=era, api_key=api_key, generation_seconds=generation_seconds, **emulator_options
            )
        )
        if loopback:
            server = serve_in_thread(emulator)
            base_url = await anyio.to_thread.run_sync(server.__enter__)
            stack.push_async_callback(anyio.to_thread.run_sync, server.__exit__, None, None, None)
            client = AsyncDiffio(api_key, base_url, **options)
        else:
            base_url = "http://emulator.invalid"
            http = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=emulator))
            stack.push_async_callback(http.aclose)
            client = AsyncDiffio(api_key, base_url, http_client=http, **options)
        stack.push_async_callback(client.aclose)
        yield EmulatedDiffio(client=client, emulator=emulator, base_url=base_url)


try:  # the fixtures are only defined when pytest is installed
    import pytest
except ImportError:  # pragma: no cover
    pass
else:

    @pytest.fixture
    def diffio_env(request: pytest.FixtureRequest) -> EmulatedDiffio:
        """An :class:`EmulatedDiffio` on loopback (era A) for async tests run by anyio's
        plugin (``@pytest.mark.anyio``: asyncio and trio) or by pytest-asyncio (strict mode's
        ``@pytest.mark.asyncio``, or auto mode). It is started on the test's own event loop."""
        if "anyio_backend" in request.fixturenames:
            env: EmulatedDiffio = request.getfixturevalue("_diffio_env_on_anyio")
        elif request.node.get_closest_marker("asyncio") is not None:
            env = request.getfixturevalue("_diffio_env_on_pytest_asyncio")
        else:
            raise pytest.UsageError(
                f"{request.node.nodeid}: diffio_env needs an async test run by anyio's plugin "
                "(@pytest.mark.anyio) or by pytest-asyncio (@pytest.mark.asyncio, or "
                "asyncio_mode = auto)"
            )
        return env

    @pytest.fixture
    async def _diffio_env_on_anyio() -> AsyncIterator[EmulatedDiffio]:
        """``diffio_env`` for anyio's plugin (it runs async fixtures of anyio tests)."""
        async with emulated_diffio() as env:
            yield env

    try:
        import pytest_asyncio
    except ImportError:  # pragma: no cover
        pass
    else:

        @pytest_asyncio.fixture
        async def _diffio_env_on_pytest_asyncio() -> AsyncIterator[EmulatedDiffio]:
            """``diffio_env`` for pytest-asyncio (marked for it, so strict mode runs it too)."""
            async with emulated_diffio() as env:
                yield env
