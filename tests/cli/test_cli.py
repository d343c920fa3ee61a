"""The diffio-async command: demo, bad input (one line, exit 2, never the key), and a batch
that survives SIGKILL three times."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest

from diffio_async.cli import _commands, _demo, main
from diffio_async.cli._paths import count_files
from diffio_async.client import AsyncDiffio
from diffio_async.emulator import Emulator, EmulatorClock, serve_in_thread
from diffio_async.errors import (
    ConfigurationError,
    LedgerError,
    LedgerLockedError,
)
from diffio_async.resources.projects import Projects
from diffio_async.workflows.bulk import ItemResult

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found, unused-ignore]

KEY = "diffio_live_cli_test_key"
PROGRESS = "/v1/get_generation_progress"
SECRET = "SECRET_sentinel"
"""Part of every odd test key: it must never appear in anything the CLI prints."""


def _run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "diffio_async", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_demo_shows_progress_and_summary(tmp_path: Path) -> None:
    done = _run("demo", "--files", "3", "-o", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert "restoring" in done.stderr and "3/3" in done.stderr  # the progress display
    assert "3 files: 3 restored" in done.stderr  # the summary
    assert "match the inputs byte for byte" in done.stderr
    assert len(list((tmp_path / "out").glob("*.mp3"))) == 3


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["restore", "/no/such/file.wav", "-o", "{tmp}/out", "--api-key", "k"], "no such file"),
        (
            ["restore", "{tmp}/in", "-o", "{tmp}/out", "--model", "diffio-99", "--api-key", "k"],
            "unknown model",
        ),
        (["restore", "{tmp}/in", "-o", "{tmp}/out"], "--emulator"),
        (["restore", "{tmp}/in", "-o", "{tmp}/in/a.wav/x", "--api-key", "k"], "cannot write"),
        (
            ["restore", "{tmp}/in", "-o", "{tmp}/out", "--concurrency", "0", "--api-key", "k"],
            "concurrency",
        ),
    ],
)
def test_bad_input_is_one_line(
    argv: list[str],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DIFFIO_API_KEY", raising=False)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.wav").write_bytes(b"RIFF")
    status = main([part.replace("{tmp}", str(tmp_path)) for part in argv])
    err = capsys.readouterr().err
    assert status == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_restore_with_emulator_flag_and_json_lines(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    for name in ("a.wav", "b.wav"):
        (tmp_path / "in" / name).write_bytes(b"RIFF" + name.encode() * 100)
    done = _run(
        "restore", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--emulator", "--json"
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert sorted(Path(line["source"]).name for line in lines) == ["a.wav", "b.wav"]
    assert all(line["ok"] and line["generation_id"] for line in lines)


def test_the_file_count_follows_the_batch_runners_rules(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The progress total is one per result the batch yields: a link to a file already seen,
    hidden files and the output folder inside the source are left out; an empty file is a
    (failed) result."""
    inputs = tmp_path / "in"
    (inputs / "sub").mkdir(parents=True)
    (inputs / "a.wav").write_bytes(b"RIFF" + b"a" * 300)
    (inputs / "sub" / "b.wav").write_bytes(b"RIFF" + b"b" * 300)
    (inputs / "again.wav").symlink_to(inputs / "a.wav")
    (inputs / ".hidden.wav").write_bytes(b"RIFF")
    (inputs / "empty.wav").write_bytes(b"")
    out = inputs / "out"
    out.mkdir()
    (out / "old.mp3").write_bytes(b"RIFF")
    total = anyio.run(count_files, [str(inputs), str(inputs / "a.wav")], str(out), "error")
    assert total == 3  # a.wav, sub/b.wav, empty.wav
    argv = ["restore", str(inputs), str(inputs / "a.wav"), "-o", str(out), "--emulator", "--json"]
    assert main(argv) == 1  # the empty file fails
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == total
    assert sorted(Path(line["source"]).name for line in lines if line["ok"]) == ["a.wav", "b.wav"]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Emulator, str]]:
    with (
        Emulator(
            api_key=KEY, generation_seconds=0.3, clock=EmulatorClock(time_source=time.monotonic)
        ) as emulator,
        serve_in_thread(emulator) as url,
    ):
        yield emulator, url


def _wait_for(condition: Callable[[], bool], process: subprocess.Popen[str], what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert process.poll() is None, f"the CLI finished before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_sigkill_at_three_points_then_resume(served: tuple[Emulator, str], tmp_path: Path) -> None:
    emulator, url = served
    inputs = tmp_path / "in"
    inputs.mkdir()
    for index in range(24):
        (inputs / f"take{index:02}.wav").write_bytes(b"RIFF" + bytes([index]) * (3000 + index))
    out, ledger = tmp_path / "out", tmp_path / "batch.sqlite"
    command = [
        sys.executable,
        "-m",
        "diffio_async",
        "restore",
        str(inputs),
        "-o",
        str(out),
        "--ledger",
        str(ledger),
        "--concurrency",
        "4",
        "--json",
    ]
    env = {**os.environ, "DIFFIO_API_KEY": KEY, "DIFFIO_API_BASE_URL": url}

    def start() -> subprocess.Popen[str]:
        return subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )

    def kill(process: subprocess.Popen[str]) -> None:
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
        assert process.returncode == -signal.SIGKILL

    # 1. Killed while projects are being created and uploaded.
    process = start()
    _wait_for(
        lambda: len(emulator.requests.find(path="/v1/create_project")) >= 6, process, "uploads"
    )
    kill(process)

    # 2. Killed after the server created a generation but before the answer arrived: the
    #    ledger has no generation id, only the key derived from the recorded project.
    hold = emulator.add_fault(path="/v1/diffio-3.5-generation", after=True, delay=30.0, count=None)
    before = len(emulator.generation_ids)
    process = start()
    _wait_for(lambda: len(emulator.generation_ids) > before and hold.hits >= 1, process, "a create")
    kill(process)
    emulator.clear_faults()

    # 3. Killed in the middle of downloads (temp files exist, outputs not yet in place).
    media = emulator.add_fault(path="/_storage/*", method="GET", delay=30.0, count=None)
    process = start()
    _wait_for(lambda: media.hits >= 2, process, "downloads")
    kill(process)
    emulator.clear_faults()

    final = start()
    _, stderr = final.communicate(timeout=120)
    assert final.returncode == 0, stderr
    for source in inputs.iterdir():
        assert (out / source.with_suffix(".mp3").name).read_bytes() == source.read_bytes()
    assert not [p.name for p in out.iterdir() if p.name.startswith(".") or p.suffix == ".part"]
    core = emulator._core
    with core.state.lock:
        names = {pid: project.file_name for pid, project in core.state.projects.items()}
        per_file = Counter(names[g.project_id] for g in core.state.generations.values())
    assert len(per_file) == 24 and set(per_file.values()) == {1}, per_file


def test_inspection_commands(
    served: tuple[Emulator, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, url = served
    monkeypatch.setenv("DIFFIO_API_KEY", KEY)
    monkeypatch.setenv("DIFFIO_API_BASE_URL", url)
    source = tmp_path / "talk.wav"
    source.write_bytes(b"RIFF" + b"\x07" * 5000)
    assert main(["restore", str(source), "-o", str(tmp_path / "out"), "--json"]) == 0
    line = json.loads(capsys.readouterr().out.splitlines()[-1])
    project, generation = line["project_id"], line["generation_id"]

    assert main(["projects"]) == 0
    assert project in capsys.readouterr().out
    assert main(["generations", project]) == 0
    assert generation in capsys.readouterr().out
    assert main(["progress", generation, "--project", project]) == 0
    shown = capsys.readouterr().out
    assert "complete" in shown and "preProcessing" in shown and "inference" in shown
    assert (
        main(["download", generation, "--project", project, "-o", str(tmp_path / "again.mp3")]) == 0
    )
    assert (tmp_path / "again.mp3").read_bytes() == source.read_bytes()
    assert main(["progress", "no-such-generation"]) == 1
    assert "Generation not found" in capsys.readouterr().err


# -- bad input: one line on stderr, exit status 2, before any work ------------------------


def _one_error_line(err: str, message: str = "") -> None:
    assert err.count("\n") == 1 and err.startswith("diffio-async: error: "), err
    assert message in err and "Traceback" not in err and "usage:" not in err


@pytest.fixture
def no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the command gets as far as looking at paths or starting a batch."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the command started working on bad input")

    for module, name in [
        (_commands, "check_paths"),
        (_commands, "count_files"),
        (_commands, "run_batch"),
        (_demo, "run_batch"),
        (_demo, "make_samples"),
    ]:
        monkeypatch.setattr(module, name, refuse)


RESTORE = ["restore", "in.wav", "-o", "out", "--emulator"]


def _case(argv: list[str], message: str) -> object:
    return pytest.param(argv, message, id=" ".join(argv[-2:]))


@pytest.mark.usefixtures("no_work")
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        *[
            _case([*RESTORE, "--timeout", value], "--timeout: must be a positive finite number")
            for value in ("nan", "inf", "-1", "0", "1e999")
        ],
        _case([*RESTORE, "--timeout=-inf"], "--timeout: must be a positive finite number"),
        _case([*RESTORE, "--timeout", "abc"], "--timeout: expected a number of seconds"),
        *[
            _case([*RESTORE, "--concurrency", value], "--concurrency: must be from 1 to 1024")
            for value in ("0", "-5", "1025")
        ],
        _case([*RESTORE, "--concurrency", "abc"], "whole number from 1 to 1024"),
        *[
            _case(["demo", "--files", value], "--files: must be from 1 to 1000")
            for value in ("0", "-3", "1001", "100000")
        ],
        _case([*RESTORE, "--era", "c"], "--era: invalid choice"),
        _case([*RESTORE, "--webhook-listen", "nowhere"], "--webhook-listen: expected HOST:PORT"),
        _case([*RESTORE, "--webhook-listen", "h:99999"], "--webhook-listen: expected HOST:PORT"),
        _case([*RESTORE, "--webhook-listen", ":0"], "needs --webhook-secret"),
        _case([*RESTORE, "--webhook-secret", "whsec_x"], "needs --webhook-listen"),
        _case(
            [*RESTORE, "--webhook-listen", ":0", "--webhook-secret", "whsec_%%%SECRETISH%%%"],
            "secret",
        ),
        _case(["demo", "--era", "z"], "--era: invalid choice"),
        _case([*RESTORE, "--model", "diffio-99"], "unknown model 'diffio-99'"),
        _case(["restore", "in.wav", "--emulator"], "required: -o/--output-dir"),
        _case(["teleport"], "invalid choice: 'teleport'"),
    ],
)
def test_a_bad_argument_is_one_line_before_any_work(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    _one_error_line(capsys.readouterr().err, message)


def test_help_states_the_limits(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["restore", "--help"])
    assert exited.value.code == 0
    shown = " ".join(capsys.readouterr().out.split())
    assert "1 to 1024" in shown and "above 0" in shown


@pytest.mark.parametrize(
    ("ledger", "message"),
    [
        ("{tmp}/in", "is a folder"),  # an existing folder
        ("{tmp}/in/a.wav/batch.sqlite", "is not a folder"),  # a file in place of its folder
        ("{tmp}/missing/batch.sqlite", "does not exist"),
    ],
)
def test_an_unusable_ledger_is_refused_before_the_batch_starts(
    ledger: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.wav").write_bytes(b"RIFF")
    out = tmp_path / "out"
    argv = ["restore", str(tmp_path / "in"), "-o", str(out), "--emulator", "--ledger"]
    assert main([*argv, ledger.replace("{tmp}", str(tmp_path))]) == 2
    err = capsys.readouterr().err
    _one_error_line(err, f"--ledger {tmp_path}")
    assert message in err and not out.exists()


ODD_KEYS = {
    "crlf": f"dfo_{SECRET}_\r\n1234",
    "nul": f"dfo_{SECRET}\x00_1234",
    "non-ascii": f"dfo_{SECRET}é_1234",
    "escape": f"dfo_{SECRET}\x1b[2J_1234",
    "empty": "",
    "blank": " \t ",
}


@pytest.mark.parametrize(
    ("key", "origin"),
    [
        pytest.param(key, origin, id=f"{name} {origin}")
        for name, key in ODD_KEYS.items()
        for origin in ("--api-key", "DIFFIO_API_KEY")
        if not (origin == "DIFFIO_API_KEY" and "\x00" in key)  # no NUL in the environment
    ],
)
def test_an_unusable_api_key_is_one_line_and_never_shown(
    key: str,
    origin: str,
    served: tuple[Emulator, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emulator, url = served
    monkeypatch.setenv("DIFFIO_API_BASE_URL", url)
    if origin == "--api-key":
        monkeypatch.setenv("DIFFIO_API_KEY", KEY)  # --api-key wins, even when it is empty
        argv = ["projects", "--api-key", key]
    else:
        monkeypatch.setenv("DIFFIO_API_KEY", key)
        argv = ["projects"]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    _one_error_line(err, f"the API key from {origin}")
    assert SECRET not in out + err and "1234" not in out + err
    assert not emulator.requests  # refused before anything was sent


def test_restore_refuses_a_bad_key_before_touching_the_output_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIFFIO_API_KEY", f"dfo_{SECRET}\r\n_1234")
    monkeypatch.setenv("DIFFIO_API_BASE_URL", "http://127.0.0.1:9")
    (tmp_path / "a.wav").write_bytes(b"RIFF")
    out = tmp_path / "out"
    assert main(["restore", str(tmp_path / "a.wav"), "-o", str(out), "--json"]) == 2
    stdout, err = capsys.readouterr()
    _one_error_line(err, "the API key from DIFFIO_API_KEY contains a control character")
    assert SECRET not in stdout + err and not out.exists()


def test_the_command_never_prints_an_odd_key_from_the_environment(
    served: tuple[Emulator, str],
) -> None:
    _, url = served
    for key in (f"dfo_{SECRET}\r\nX-Injected: 1", f"dfo_{SECRET}é_1234"):
        done = _run("projects", env={"DIFFIO_API_KEY": key, "DIFFIO_API_BASE_URL": url})
        assert done.returncode == 2, done.stderr
        _one_error_line(done.stderr, "DIFFIO_API_KEY")
        assert SECRET not in done.stdout + done.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["demo", "--api-key", f"dfo_{SECRET}_1234"],  # demo takes no key: "unrecognized"
        ["demo", f"--api-key=dfo_{SECRET}_1234"],
        ["projects", "--api-k", f"dfo_{SECRET}_1234", "--frobnicate"],
        ["projects", "--base-url", "ftp://x", f"dfo_{SECRET}_1234"],
    ],
    ids=["option", "option=value", "abbreviated", "stray-positional"],
)
def test_a_parse_error_never_echoes_the_key(
    argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIFFIO_API_KEY", f"dfo_{SECRET}_1234")
    assert main(argv) == 2
    out, err = capsys.readouterr()
    _one_error_line(err, "unrecognized arguments")
    assert SECRET not in out + err


@pytest.mark.parametrize("when", ["constructing the client", "calling the API"])
def test_a_key_the_sdk_refuses_is_one_line_without_the_key(
    when: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = f"dfo_{SECRET}_1234"

    def careless(*args: object, **kwargs: object) -> None:  # a message that echoes the key
        raise ConfigurationError(f"the API key {key!r} is not usable:\n{key}")

    if when == "constructing the client":
        monkeypatch.setattr(_commands, "AsyncDiffio", careless)
    else:
        monkeypatch.setattr(Projects, "list", careless)
    assert main(["projects", "--api-key", key, "--base-url", "http://127.0.0.1:9"]) == 2
    out, err = capsys.readouterr()
    _one_error_line(err, "is not usable")
    assert SECRET not in out + err


@pytest.mark.parametrize(
    "base_url", ["http://[::1", "http://exa mple.com\n", "ftp://example.com", "http://"]
)
def test_a_bad_base_url_is_one_line(
    base_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIFFIO_API_KEY", KEY)
    assert main(["projects", "--base-url", base_url]) == 2
    _one_error_line(capsys.readouterr().err)


def test_an_id_the_sdk_refuses_is_bad_input(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIFFIO_API_KEY", KEY)
    assert main(["generations", "", "--base-url", "http://127.0.0.1:9"]) == 2
    _one_error_line(capsys.readouterr().err, "project_id")


# -- download ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("{tmp}/a.wav/", "is a file, not a folder"),  # a folder that is a file
        ("{tmp}/a.wav/x.mp3", "is not a folder"),  # a file inside a file
        ("{tmp}/missing/x.mp3", "does not exist"),
    ],
)
def test_download_into_an_unusable_place_is_refused_before_asking_the_server(
    output: str,
    message: str,
    served: tuple[Emulator, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emulator, url = served
    monkeypatch.setenv("DIFFIO_API_KEY", KEY)
    monkeypatch.setenv("DIFFIO_API_BASE_URL", url)
    (tmp_path / "a.wav").write_bytes(b"RIFF")
    target = output.replace("{tmp}", str(tmp_path))
    assert main(["download", "gen_1", "--project", "proj_1", "-o", target]) == 2
    _one_error_line(capsys.readouterr().err, message)
    assert not emulator.requests and not (tmp_path / "missing").exists()


def test_a_download_the_server_fails_is_one_line_and_exit_1(
    served: tuple[Emulator, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emulator, url = served
    monkeypatch.setenv("DIFFIO_API_KEY", KEY)
    monkeypatch.setenv("DIFFIO_API_BASE_URL", url)
    (tmp_path / "talk.wav").write_bytes(b"RIFF" + b"\x03" * 3000)
    assert main(["restore", str(tmp_path / "talk.wav"), "-o", str(tmp_path / "out"), "--json"]) == 0
    line = json.loads(capsys.readouterr().out.splitlines()[-1])
    emulator.add_fault(path="/_storage/*", method="GET", status=410, count=None)
    target = tmp_path / "again.mp3"
    argv = ["download", line["generation_id"], "--project", line["project_id"], "-o", str(target)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("diffio-async: download failed: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and not target.exists()
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".part"]


# -- a batch that cannot start, or fails on the way ---------------------------------------


def _fake_restore_many(
    monkeypatch: pytest.MonkeyPatch,
    *,
    at_start: BaseException | None,
    midway: BaseException | None,
    results: tuple[ItemResult, ...] = (),
) -> None:
    """Replace ``restore_many``: raise ``at_start`` on entry, else yield ``results`` and then
    raise ``midway`` (when given)."""

    @asynccontextmanager
    async def restore_many(
        self: AsyncDiffio, *args: object, **kwargs: object
    ) -> AsyncIterator[AsyncIterator[ItemResult]]:
        if at_start is not None:
            raise at_start

        async def items() -> AsyncIterator[ItemResult]:
            for result in results:
                yield result
            if midway is not None:
                raise midway

        yield items()

    monkeypatch.setattr(AsyncDiffio, "restore_many", restore_many)


def _restore_argv(tmp_path: Path, *extra: str) -> list[str]:
    (tmp_path / "a.wav").write_bytes(b"RIFF")
    return [
        "restore",
        str(tmp_path / "a.wav"),
        "-o",
        str(tmp_path / "out"),
        "--api-key",
        KEY,
        "--base-url",
        "http://127.0.0.1:9",
        *extra,
    ]


def test_an_output_collision_is_one_line_naming_a_few_clashes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    for n in range(8):  # take<n>.wav and take<n>.flac both want out/take<n>.<served suffix>
        for suffix in (".wav", ".flac"):
            (inputs / f"take{n}{suffix}").write_bytes(b"RIFF" + suffix.encode())
    assert main(["restore", str(inputs), "-o", str(out), "--emulator"]) == 2
    err = capsys.readouterr().err
    _one_error_line(err, "8 output file(s) would each be written by several sources: take0.* <- ")
    assert err.count(" <- ") == 5 and "; and 3 more" in err and "take7" not in err
    assert "--on-collision rename" in err
    assert not [p for p in out.rglob("*") if not p.name.startswith(".")]  # nothing created


def test_on_collision_rename_restores_both_sources(tmp_path: Path) -> None:
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    (inputs / "take.wav").write_bytes(b"RIFF" + b"w" * 500)
    (inputs / "take.flac").write_bytes(b"fLaC" + b"f" * 500)
    done = _run(
        "restore", str(inputs), "-o", str(out), "--emulator", "--json", "--on-collision", "rename"
    )
    assert done.returncode == 0, done.stderr
    outputs = sorted(p.read_bytes()[:4] for p in out.glob("take-*.mp3"))
    assert outputs == [b"RIFF", b"fLaC"]


def test_a_locked_ledger_is_one_line_naming_the_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    error = LedgerLockedError("the ledger is held by another process")
    _fake_restore_many(monkeypatch, at_start=error, midway=AssertionError())
    ledger = str(tmp_path / "batch.sqlite")
    assert main(_restore_argv(tmp_path, "--ledger", ledger)) == 2
    _one_error_line(capsys.readouterr().err, f"cannot use --ledger {ledger}: the ledger is held")


def test_a_ledger_failure_in_the_middle_of_a_batch_is_a_runtime_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_restore_many(monkeypatch, at_start=None, midway=LedgerError("disk I/O error"))
    assert main(_restore_argv(tmp_path, "--json")) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == "diffio-async: batch failed: disk I/O error", err
    assert "Traceback" not in err


@pytest.mark.parametrize("grouped", [False, True], ids=["plain", "in-a-task-group"])
def test_an_os_error_from_a_users_path_is_one_line(
    grouped: bool,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    denied = PermissionError(13, "Permission denied", str(tmp_path / "out"))
    error = BaseExceptionGroup("task group", [denied]) if grouped else denied
    _fake_restore_many(monkeypatch, at_start=error, midway=AssertionError())
    assert main(_restore_argv(tmp_path)) == 2
    _one_error_line(capsys.readouterr().err, f"{tmp_path / 'out'}: Permission denied")


def test_demo_into_an_unwritable_folder_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_work: None
) -> None:
    (tmp_path / "file").write_bytes(b"")
    assert main(["demo", "--files", "1", "-o", str(tmp_path / "file" / "out")]) == 2
    _one_error_line(capsys.readouterr().err, "cannot write to")


@pytest.mark.parametrize(
    ("error", "status"), [(RuntimeError("a bug"), None), (KeyboardInterrupt(), 130)]
)
def test_a_bug_still_propagates_and_ctrl_c_is_130(
    error: BaseException,
    status: int | None,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _fake_restore_many(monkeypatch, at_start=error, midway=AssertionError())
    if status is None:
        with pytest.raises(RuntimeError, match="a bug"):
            main(_restore_argv(tmp_path))
    else:
        assert main(_restore_argv(tmp_path)) == status
        err = capsys.readouterr().err
        assert err.startswith("diffio-async: interrupted; without --ledger a rerun starts")
        assert err.count("\n") == 1


@pytest.mark.parametrize("json_lines", [True, False], ids=["json", "table"])
def test_a_failed_item_never_shows_the_key(
    json_lines: bool,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = f"dfo_{SECRET}_1234"
    leaky = ItemResult(
        source=str(tmp_path / "a.wav"), ok=False, stage="upload", error=RuntimeError(f"key={key}")
    )
    _fake_restore_many(monkeypatch, at_start=None, midway=None, results=(leaky,))
    argv = _restore_argv(tmp_path, *(["--json"] if json_lines else []))
    argv[argv.index("--api-key") + 1] = key
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert SECRET not in out + err
    shown = json.loads(out)["error"] if json_lines else err
    assert "key=<API key>" in shown and "Traceback" not in err


def test_an_output_folder_that_is_a_source_folder_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "a.wav").write_bytes(b"RIFF" + bytes(64))
    assert main(["restore", str(inputs), "-o", str(inputs), "--emulator"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert sorted(p.name for p in inputs.iterdir()) == ["a.wav"]  # nothing written


def test_a_bad_webhook_secret_is_one_line_that_never_shows_it(
    capsys: pytest.CaptureFixture[str], no_work: None
) -> None:
    argv = [*RESTORE, "--webhook-listen", ":0", "--webhook-secret", "whsec_%%SECRETISH%%"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    _one_error_line(err, "secret")
    assert "SECRETISH" not in err


def test_restore_with_a_webhook_listener_is_woken_by_the_deliveries(
    served: tuple[Emulator, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator, url = served
    with socket.socket() as probe:  # a free port for the command's listener
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    async def configure() -> None:
        async with AsyncDiffio(KEY, url) as client:
            await client.webhooks.configure(url=f"http://127.0.0.1:{port}/")

    anyio.run(configure)
    inputs = tmp_path / "in"
    inputs.mkdir()
    for index in range(4):
        (inputs / f"take{index}.wav").write_bytes(b"RIFF" + bytes([index]) * 3000)
    argv = ["restore", str(inputs), "-o", str(tmp_path / "out"), "--api-key", KEY]
    argv += ["--base-url", url, "--json", "--webhook-listen", f"127.0.0.1:{port}"]
    argv += ["--webhook-secret", emulator.webhook_secret]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert f"listening for webhooks on http://127.0.0.1:{port}/" in captured.err
    assert emulator.webhook_secret not in captured.err + captured.out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        f"take{index}.mp3" for index in range(4)
    ]
    lines = [json.loads(line) for line in captured.out.splitlines()]
    # Woken by a delivery: the safety net's first poll would only have come at 10 s.
    assert all(line["ok"] and line["timings"]["wait"] < 10 for line in lines), lines
    polls = [e.json["generationId"] for e in emulator.requests.find(path=PROGRESS)]
    assert all(polls.count(g) <= 4 for g in emulator.generation_ids)


# -- --download-type: not given, the server's default (as the library) --------------------

VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40
DOWNLOAD = "/v1/get_generation_download"


@pytest.fixture
def instant(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """An emulator on loopback whose generations are complete at once, in the environment."""
    with Emulator(api_key=KEY, generation_seconds=0) as emulator, serve_in_thread(emulator) as url:
        monkeypatch.setenv("DIFFIO_API_KEY", KEY)
        monkeypatch.setenv("DIFFIO_API_BASE_URL", url)
        yield emulator


def _download_types(emulator: Emulator) -> list[object]:
    return [entry.json.get("downloadType") for entry in emulator.requests.find(path=DOWNLOAD)]


def test_download_type_defaults_to_the_servers_choice_and_says_so() -> None:
    from diffio_async.cli._parser import build_parser

    parser = build_parser()
    for argv in (["restore", "a.wav", "-o", "out"], ["download", "g", "--project", "p", "-o", "x"]):
        assert parser.parse_args(argv).download_type is None
        command = parser._subparsers._group_actions[0].choices[argv[0]]  # type: ignore[union-attr]
        [option] = [a for a in command._actions if "--download-type" in a.option_strings]
        assert option.help is not None and "what the server serves by default" in option.help


def test_restore_names_outputs_after_what_the_server_served(
    instant: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "clip.mp4").write_bytes(VIDEO)  # a project with video
    (tmp_path / "in" / "talk.wav").write_bytes(b"RIFF" + b"\x07" * 5000)
    assert main(["restore", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "-q"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["clip.mp4", "talk.mp3"]
    assert (tmp_path / "out" / "clip.mp4").read_bytes() == VIDEO
    assert _download_types(instant) == [None, None]  # left out: the server's default
    capsys.readouterr()

    args = ["restore", str(tmp_path / "in" / "clip.mp4"), "-o", str(tmp_path / "audio"), "-q"]
    assert main([*args, "--download-type", "audio"]) == 0
    assert [p.name for p in (tmp_path / "audio").iterdir()] == ["clip.mp3"]
    assert _download_types(instant)[-1] == "audio"


def test_download_takes_the_served_suffix_unless_a_type_is_given(
    instant: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(VIDEO)
    assert main(["restore", str(clip), "-o", str(tmp_path / "out"), "--json"]) == 0
    line = json.loads(capsys.readouterr().out.splitlines()[-1])
    ids = [line["generation_id"], "--project", line["project_id"]]
    assert main(["download", *ids, "-o", str(tmp_path / "again.wav")]) == 0
    assert capsys.readouterr().out == f"{tmp_path / 'again.mp4'}\n"
    assert (tmp_path / "again.mp4").read_bytes() == VIDEO
    assert not (tmp_path / "again.wav").exists()
    assert main(["download", *ids, "-o", str(tmp_path / "a.wav"), "--download-type", "mp3"]) == 0
    assert capsys.readouterr().out == f"{tmp_path / 'a.wav'}\n"  # a type given: the name kept
    assert _download_types(instant)[-2:] == [None, "audio"]  # mp3 is audio on the wire
