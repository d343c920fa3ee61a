"""Without an optional extra, the command and ``diffio_async.testing`` say which
``pip install`` adds it, in one line, instead of a ``ModuleNotFoundError`` traceback.

The extras stay installed: each case runs in a fresh interpreter whose import system refuses
the extra's modules, as an interpreter without them would."""

from __future__ import annotations

import os
import subprocess
import sys
import wave
from pathlib import Path

import pytest

EMULATOR_HINT = "pip install 'diffio-async[emulator]'"
CLI_HINT = "pip install 'diffio-async[cli]'"

BLOCKER = """
import runpy, sys

class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, Blocker())
{then}
"""


def _without(
    blocked: set[str], then: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    script = BLOCKER.format(blocked=blocked, then=then)
    env = {k: v for k, v in os.environ.items() if k != "DIFFIO_API_KEY"}
    return subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=cwd,
    )


def _command(blocked: set[str], *argv: str) -> subprocess.CompletedProcess[str]:
    then = (
        f"sys.argv = ['diffio-async', *{list(argv)!r}]\n"
        "runpy.run_module('diffio_async', run_name='__main__')"
    )
    return _without(blocked, then)


def test_the_blocker_blocks() -> None:
    """The check can fail: the blocked module really cannot be imported."""
    done = _without({"starlette"}, "import starlette")
    assert done.returncode == 1
    assert "ModuleNotFoundError: No module named 'starlette'" in done.stderr


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    path = tmp_path / "in" / "a.wav"
    path.parent.mkdir()
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\x01\x00" * 800)
    return path


@pytest.mark.parametrize("missing", ["starlette", "uvicorn"])
@pytest.mark.parametrize(
    "argv",
    [
        ["demo", "--files", "1"],
        ["restore", "{wav}", "-o", "{out}", "--emulator"],
        ["emulator", "--port", "0"],
    ],
    ids=["demo", "restore-emulator", "emulator"],
)
def test_a_command_that_needs_the_emulator_names_the_extra(
    argv: list[str], missing: str, wav: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    argv = [a.format(wav=wav, out=out) for a in argv]
    done = _command({missing}, *argv)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr  # one line, no traceback
    assert "Traceback" not in done.stderr
    assert done.stderr.startswith("diffio-async: error: ")
    assert EMULATOR_HINT in done.stderr and f"{missing} is not installed" in done.stderr
    assert not out.exists()  # before any work


def test_commands_that_need_no_emulator_run_without_it(tmp_path: Path) -> None:
    done = _command({"starlette", "uvicorn"}, "projects", "--base-url", "http://127.0.0.1:9")
    assert "no API key" in done.stderr and done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr


def test_importing_the_testing_module_names_the_extra() -> None:
    done = _without({"uvicorn"}, "import diffio_async.testing")
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ModuleNotFoundError: the Diffio emulator needs the 'emulator' extra")
    assert last.endswith(EMULATOR_HINT), last
    assert done.stderr.count("Traceback") == 1  # the original error is not chained
    assert "During handling" not in done.stderr


def test_without_rich_the_demo_prints_plain_lines_and_the_install_line() -> None:
    done = _command({"rich"}, "demo", "--files", "2")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    hints = [line for line in done.stderr.splitlines() if CLI_HINT in line]
    assert hints == ["diffio-async: plain progress lines (" + CLI_HINT + " for the live display)"]
    assert "[2/2] ok" in done.stderr and "2 files: 2 restored" in done.stderr


def test_without_rich_json_output_has_no_hint(wav: Path, tmp_path: Path) -> None:
    done = _command(
        {"rich"}, "restore", str(wav), "-o", str(tmp_path / "o"), "--emulator", "--json"
    )
    assert done.returncode == 0, done.stderr
    assert CLI_HINT not in done.stderr + done.stdout
