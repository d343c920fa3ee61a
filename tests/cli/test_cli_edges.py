"""The command's rough edges (issue 9): --version, -q and -v, --json on every command with
one key casing, the count of an aborted batch, a connection error naming the URL, Ctrl-C
naming the ledger, and help for every argument."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

import diffio_async
from diffio_async.cli import main
from diffio_async.cli._parser import build_parser
from diffio_async.client import AsyncDiffio
from diffio_async.emulator import Emulator, EmulatorClock, serve_in_thread
from diffio_async.emulator._server import _build_parser
from diffio_async.emulator._server import _Parser as _EmulatorParser
from diffio_async.errors import AuthenticationError, BatchAbortedError
from diffio_async.workflows.bulk import ItemResult

KEY = "diffio_live_cli_edges_key_0123"
PROGRESS = "/v1/get_generation_progress"
SNAKE = re.compile(r"[a-z][a-z0-9_]*")


@pytest.fixture
def served() -> Iterator[tuple[Emulator, str]]:
    with (
        Emulator(
            api_key=KEY, generation_seconds=0.2, clock=EmulatorClock(time_source=time.monotonic)
        ) as emulator,
        serve_in_thread(emulator) as url,
    ):
        yield emulator, url


def _cli(*argv: str, url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIFFIO_")}
    if url is not None:
        env.update(DIFFIO_API_KEY=KEY, DIFFIO_API_BASE_URL=url)
    return subprocess.run(
        [sys.executable, "-m", "diffio_async", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def _wav(path: Path, size: int = 3000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF" + bytes(size))
    return path


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"diffio-async {diffio_async.__version__}\n"


# -- every argument has help -----------------------------------------------------------


def _without_help(parser: argparse.ArgumentParser, prog: str = "") -> list[str]:
    missing = []
    for action in parser._actions:
        if not action.help or action.help == argparse.SUPPRESS:
            missing.append(
                f"{prog or parser.prog} {'/'.join(action.option_strings) or action.dest}"
            )
        if isinstance(action, argparse._SubParsersAction):
            helped = {choice.dest for choice in action._choices_actions if choice.help}
            missing += [f"{parser.prog} {name}" for name in action.choices if name not in helped]
            for sub in action.choices.values():
                missing += _without_help(sub)
    return missing


def test_every_argument_and_command_has_help() -> None:
    assert _without_help(build_parser()) == []
    emulator = _build_parser("diffio-async emulator", _EmulatorParser)  # its own options
    assert _without_help(emulator) == []


def test_the_help_walk_finds_an_argument_without_help() -> None:
    parser = argparse.ArgumentParser(prog="p")
    commands = parser.add_subparsers(dest="command", help="commands")
    sub = commands.add_parser("sub", help="a command")
    sub.add_argument("--bare")
    commands.add_parser("unhelped")
    assert _without_help(parser) == ["p unhelped", "p sub --bare"]


# -- --json: every command, one casing ---------------------------------------------------


def _keys(value: object) -> Iterator[str]:
    if isinstance(value, dict):
        for key, inner in value.items():
            yield key
            yield from _keys(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _keys(inner)


def _json_lines(out: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in out.splitlines()]  # nothing but JSON on stdout
    assert lines and all(isinstance(line, dict) for line in lines)
    return lines


def test_json_on_every_command_with_snake_case_keys(
    served: tuple[Emulator, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, url = served
    monkeypatch.setenv("DIFFIO_API_KEY", KEY)
    monkeypatch.setenv("DIFFIO_API_BASE_URL", url)
    source = _wav(tmp_path / "talk.wav")
    outputs: dict[str, list[dict[str, object]]] = {}

    assert main(["restore", str(source), "-o", str(tmp_path / "out"), "--json"]) == 0
    outputs["restore"] = _json_lines(capsys.readouterr().out)
    project = str(outputs["restore"][0]["project_id"])
    generation = str(outputs["restore"][0]["generation_id"])
    assert main(["projects", "--json"]) == 0
    outputs["projects"] = _json_lines(capsys.readouterr().out)
    assert main(["generations", project, "--json"]) == 0
    outputs["generations"] = _json_lines(capsys.readouterr().out)
    assert main(["progress", generation, "--project", project, "--json"]) == 0
    outputs["progress"] = _json_lines(capsys.readouterr().out)
    target = tmp_path / "again.mp3"
    assert main(["download", generation, "--project", project, "-o", str(target), "--json"]) == 0
    outputs["download"] = _json_lines(capsys.readouterr().out)
    assert main(["demo", "--files", "2", "--json"]) == 0
    outputs["demo"] = _json_lines(capsys.readouterr().out)

    assert [p["api_project_id"] for p in outputs["projects"]] == [project]
    assert [g["generation_id"] for g in outputs["generations"]] == [generation]
    (progress,) = outputs["progress"]
    assert progress["status"] == "complete" and progress["percent"] == 100
    assert isinstance(progress["pre_processing"], dict)
    assert outputs["download"] == [{"path": str(target)}]
    assert len(outputs["demo"]) == 2 and all(line["ok"] for line in outputs["demo"])
    odd = {
        command: sorted({key for key in _keys(lines) if not SNAKE.fullmatch(key)})
        for command, lines in outputs.items()
    }
    assert odd == {command: [] for command in outputs}
    assert not SNAKE.fullmatch("projectId")  # the check can fail


# -- -q and -v ---------------------------------------------------------------------------


def test_quiet_prints_nothing_but_results_and_the_count_of_a_failure(
    served: tuple[Emulator, str], tmp_path: Path
) -> None:
    _, url = served
    inputs = tmp_path / "in"
    _wav(inputs / "a.wav")
    done = _cli("restore", str(inputs), "-o", str(tmp_path / "out"), "-q", url=url)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    (inputs / "empty.wav").write_bytes(b"")  # fails as an item
    done = _cli("restore", str(inputs), "-o", str(tmp_path / "out2"), "-q", url=url)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == "2 files: 1 restored, 0 already done, 1 failed\n"
    demo = _cli("demo", "--files", "1", "-q")
    assert (demo.returncode, demo.stdout, demo.stderr) == (0, "", "")


def test_verbose_logs_the_sdks_records_on_stderr(
    served: tuple[Emulator, str], tmp_path: Path
) -> None:
    emulator, url = served
    source = _wav(tmp_path / "a.wav")
    emulator.add_fault(path=PROGRESS, status=503, count=3)
    once = _cli("restore", str(source), "-o", str(tmp_path / "o1"), "--json", "-v", url=url)
    assert once.returncode == 0, once.stderr
    assert "INFO diffio_async: polling" in once.stderr and "DEBUG" not in once.stderr
    twice = _cli("restore", str(source), "-o", str(tmp_path / "o2"), "--json", "-vv", url=url)
    assert "DEBUG diffio_async: POST get_generation_download -> 200" in twice.stderr
    assert KEY not in once.stderr + twice.stderr
    plain = _cli("restore", str(source), "-o", str(tmp_path / "o3"), "--json", url=url)
    assert " diffio_async: " not in plain.stderr


def test_quiet_and_verbose_together_is_one_line() -> None:
    done = _cli("projects", "-q", "-v")
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "not allowed with argument" in done.stderr


# -- failures ----------------------------------------------------------------------------


def _fake_restore_many(
    monkeypatch: pytest.MonkeyPatch, results: tuple[ItemResult, ...], then: BaseException
) -> None:
    @asynccontextmanager
    async def restore_many(
        self: AsyncDiffio, *args: object, **kwargs: object
    ) -> AsyncIterator[AsyncIterator[ItemResult]]:
        async def items() -> AsyncIterator[ItemResult]:
            for result in results:
                yield result
            raise then

        yield items()

    monkeypatch.setattr(AsyncDiffio, "restore_many", restore_many)


@pytest.mark.parametrize("json_lines", [False, True], ids=["table", "json"])
def test_an_aborted_batch_counts_the_files_that_never_finished(
    json_lines: bool,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    inputs = tmp_path / "in"
    for name in ("a.wav", "b.wav", "c.wav"):
        _wav(inputs / name)
    done = ItemResult(source=str(inputs / "a.wav"), ok=True, stage="done")
    stop = AuthenticationError("invalid API key", status_code=401)
    _fake_restore_many(monkeypatch, (done,), BatchAbortedError("stopped", cause=stop))
    argv = ["restore", str(inputs), "-o", str(tmp_path / "out"), "--api-key", KEY]
    assert main([*argv, *(["--json"] if json_lines else [])]) == 1
    err = capsys.readouterr().err
    assert "3 files: 1 restored, 0 already done, 0 failed, 2 never finished" in err


def test_a_connection_error_names_the_url(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["projects", "--api-key", KEY, "--base-url", "http://127.0.0.1:9"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        "diffio-async: projects failed: cannot connect to http://127.0.0.1:9/v1: "
    )
    assert err.count("\n") == 1 and KEY not in err


def test_ctrl_c_names_the_ledger_that_resumes_the_batch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    source = _wav(tmp_path / "a.wav")
    _fake_restore_many(monkeypatch, (), KeyboardInterrupt())
    ledger = tmp_path / "my batch.sqlite"
    argv = ["restore", str(source), "-o", str(tmp_path / "out"), "--api-key", KEY, "--json"]
    assert main([*argv, "--ledger", str(ledger)]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"run the same command again with --ledger '{ledger}' to resume" in err
