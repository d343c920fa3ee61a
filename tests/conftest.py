"""Shared fixtures: every async test runs on asyncio and on trio."""

from __future__ import annotations

import pytest

# The fixtures users get (diffio_env) are tested the way users load them.
pytest_plugins = ["diffio_async.testing"]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run each ``@pytest.mark.anyio`` test once per backend (a missing trio fails loudly)."""
    return str(request.param)
