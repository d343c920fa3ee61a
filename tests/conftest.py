"""Shared fixtures: every async test runs on asyncio and on trio; one PostgreSQL server and one
local S3 (moto) per session for the tests that ask for them."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator

import pytest
import s3_server as s3_server_module
from postgres_server import PostgresServer, running_server

# The fixtures users get (diffio_env) are tested the way users load them.
pytest_plugins = ["diffio_async.testing"]

# A suite started in the background by a shell without job control (`cmd &` in a script)
# inherits SIGINT ignored, and so would every process it starts: the Ctrl-C tests' scripts
# would then wait for an interrupt that never comes. Handled (not ignored), it is back to its
# default in the processes the tests start.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


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


@pytest.fixture(scope="session")
def s3_server() -> Iterator[s3_server_module.S3Server]:
    """One local S3 (moto's server in its own process) for the session; see ``s3_server.py``."""
    with s3_server_module.running_server() as server:
        yield server


@pytest.fixture
def s3(
    s3_server: s3_server_module.S3Server,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> Iterator[s3_server_module.Buckets]:
    """Two fresh buckets; for this test only, the environment points s3fs at the local S3
    with fake credentials, and fsspec's cached filesystems are dropped before and after."""
    import s3fs

    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    for name, value in s3_server.environment().items():
        monkeypatch.setenv(name, value)
    name = re.sub(r"[^a-z0-9]", "", request.node.name.lower().removeprefix("test"))[:10]
    yield s3_server_module.fresh_buckets(name or "t")
    s3fs.S3FileSystem.clear_instance_cache()
