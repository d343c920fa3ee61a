"""The ``diffio_env`` fixture works under each async test plugin a user may have: anyio's
(asyncio and trio), pytest-asyncio in strict mode (``@pytest.mark.asyncio``) and in auto mode.

Our own suite runs with pytest-asyncio's plugin off (``-p no:asyncio``), so each case writes a
user's project (conftest, ini, one test file) into ``tmp_path`` and runs pytest on it in a
subprocess, as the user would."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

CONFTEST = 'pytest_plugins = ["diffio_async.testing"]\n'

BODY = """
    project = await diffio_env.client.projects.create(b"RIFF" + bytes(64), file_name="a.wav")
    seen = diffio_env.emulator.requests.find(path="/v1/create_project")
    assert [r.json["fileName"] for r in seen] == ["a.wav"]
    assert project.api_project_id
"""

ANYIO_TESTS = (
    """
import pytest

@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param

@pytest.mark.anyio
async def test_env(diffio_env, anyio_backend):
"""
    + BODY
)

STRICT_TESTS = (
    """
import asyncio
import pytest

@pytest.mark.asyncio
async def test_env(diffio_env):
    asyncio.get_running_loop()  # pytest-asyncio's loop, the one the client runs on
"""
    + BODY
)

AUTO_TESTS = (
    """
import asyncio

async def test_env(diffio_env):
    asyncio.get_running_loop()
"""
    + BODY
)

SYNC_TEST = """
def test_env(diffio_env):
    pass
"""


def _ini(mode: str | None, *plugins: str) -> str:
    lines = ["[pytest]", f"addopts = -p no:cacheprovider {' '.join(plugins)}".rstrip()]
    lines += ["filterwarnings = error"]  # an unclosed client or loop fails the run
    if mode is not None:
        lines += [f"asyncio_mode = {mode}", "asyncio_default_fixture_loop_scope = function"]
    return "\n".join(lines) + "\n"


def _pytest(tmp_path: Path, ini: str, tests: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "pytest.ini").write_text(ini)
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_users.py").write_text(textwrap.dedent(tests))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")},
    )


@pytest.mark.parametrize(
    ("ini", "tests", "passed"),
    [
        pytest.param(_ini(None, "-p no:asyncio"), ANYIO_TESTS, 2, id="anyio-alone"),
        pytest.param(_ini("strict"), ANYIO_TESTS, 2, id="anyio-beside-pytest-asyncio"),
        pytest.param(_ini("strict", "-p asyncio"), STRICT_TESTS, 1, id="pytest-asyncio-strict"),
        pytest.param(
            _ini("strict", "-p asyncio", "-p no:anyio"),
            STRICT_TESTS,
            1,
            id="pytest-asyncio-strict-alone",
        ),
        pytest.param(_ini("auto", "-p asyncio", "-p no:anyio"), AUTO_TESTS, 1, id="auto"),
    ],
)
def test_diffio_env_runs_under_each_plugin(
    ini: str, tests: str, passed: int, tmp_path: Path
) -> None:
    done = _pytest(tmp_path, ini, tests)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{passed} passed" in done.stdout, done.stdout
    assert "warning" not in done.stdout.lower(), done.stdout


def test_a_test_no_plugin_runs_gets_a_clear_error(tmp_path: Path) -> None:
    done = _pytest(tmp_path, _ini("strict"), SYNC_TEST)
    assert done.returncode != 0
    assert "diffio_env needs an async test run by anyio's plugin" in done.stdout, done.stdout


def test_a_broken_user_test_fails(tmp_path: Path) -> None:
    """The check can fail: a failing assertion in the user's test fails the run."""
    broken = STRICT_TESTS.replace('== ["a.wav"]', '== ["b.wav"]')
    done = _pytest(tmp_path, _ini("strict", "-p asyncio"), broken)
    assert done.returncode == 1 and "1 failed" in done.stdout, done.stdout
