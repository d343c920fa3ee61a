"""Shared fixtures: every async test runs on asyncio and on trio; one PostgreSQL server per
session for the tests that ask for it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from postgres_server import PostgresServer, running_server

# The fixtures users get (diffio_env) are tested the way users load them.
pytest_plugins = ["diffio_async.testing"]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run each ``@pytest.mark.anyio`` test once per backend (a missing trio fails loudly)."""
    return str(request.param)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL server for the session (see ``postgres_server.py``); skips
    without PostgreSQL, unless ``DIFFIO_REQUIRE_POSTGRES=1`` makes that a failure."""
    with running_server() as server:
        yield server
