"""The diffio-async command: demo, bad input, and a batch that survives SIGKILL three times."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from diffio_async.cli import main
from diffio_async.emulator import Emulator, EmulatorClock, serve_in_thread

KEY = "diffio_live_cli_test_key"


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
    assert all(line["ok"] and line["generationId"] for line in lines)


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
    project, generation = line["projectId"], line["generationId"]

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
