"""Fixtures for the emulator tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from emulator_helpers import ADMIN

from diffio_async.emulator import Emulator, serve_in_thread


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """An era A emulator with a fixed admin key."""
    with Emulator(api_key=ADMIN) as emulator:
        yield emulator


@pytest.fixture
def emulator_b() -> Iterator[Emulator]:
    """An era B emulator with a fixed admin key and 1 KiB parts (fast multipart tests)."""
    with Emulator(era="b", api_key=ADMIN, part_size_bytes=1024) as emulator:
        yield emulator


@pytest.fixture
def served(emulator: Emulator) -> Iterator[str]:
    """The era A emulator served on a real loopback socket; yields its base URL."""
    with serve_in_thread(emulator) as url:
        yield url
