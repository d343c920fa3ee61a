"""``diffio-async batch add`` and ``batch status`` against the real PostgreSQL the suite starts."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest
from postgres_server import PASSWORD, PostgresServer

from diffio_async.cli import main


@pytest.fixture
def batch_args(postgres_server: PostgresServer) -> list[str]:
    """A new batch name and the ledger URL (the password inside)."""
    return [f"b-{uuid.uuid4().hex[:12]}", "--ledger", postgres_server.url()]


def _files(folder: Path, *names: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / name for name in names]
    for path in paths:
        path.write_bytes(b"RIFF" + path.name.encode())
    return paths


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict[str, object]:
    assert main(argv) == 0
    out = capsys.readouterr().out
    value = json.loads(out)
    assert isinstance(value, dict)
    return value


def test_adding_sources_twice_registers_them_once(
    batch_args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = _files(tmp_path / "in", "a.wav", "b.wav")
    (c,) = _files(tmp_path / "in" / "more", "c.wav")
    name, *ledger = batch_args
    first = _json(capsys, ["batch", "add", name, str(a), *ledger, "--json"])
    assert first == {"batch": name, "added": 1, "total": 1}
    # a again (as a relative spelling of the same file), and a folder holding b and c
    again = _json(
        capsys,
        ["batch", "add", name, os.path.relpath(a), str(tmp_path / "in"), *ledger, "--json"],
    )
    assert again == {"batch": name, "added": 2, "total": 3}
    status = _json(capsys, ["batch", "status", name, *ledger, "--json"])
    assert status["counts"] == {
        "pending": 3,
        "hashed": 0,
        "project_created": 0,
        "uploaded": 0,
        "generation_created": 0,
        "complete": 0,
        "downloaded": 0,
        "failed": 0,
    }
    assert status["total"] == 3
    assert status["unfinished"] == 3
    assert status["workers"] == []
    assert status["throughput_per_minute"] == 0.0
    assert status["eta_seconds"] is None
    assert status["stop"] is None
    assert sorted(status) == [
        "batch",
        "counts",
        "eta_seconds",
        "stop",
        "throughput_per_minute",
        "total",
        "unfinished",
        "workers",
    ]
    assert c.is_file() and b.is_file()


def test_status_prints_a_table_without_the_password(
    batch_args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (a,) = _files(tmp_path, "a.wav")
    name, *ledger = batch_args
    assert main(["batch", "add", name, str(a), *ledger]) == 0
    assert main(["batch", "status", name, *ledger]) == 0
    out = capsys.readouterr().out
    assert "1 added" in out
    assert "pending" in out and f"batch {name!r}: 1 files, 1 unfinished" in out
    assert PASSWORD not in out


def test_a_batch_needs_a_postgres_ledger_and_existing_sources(
    batch_args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name, _, url = batch_args
    (a,) = _files(tmp_path, "a.wav")
    sqlite = str(tmp_path / "l.sqlite")
    assert main(["batch", "add", name, str(a), "--ledger", sqlite]) == 2
    assert "PostgreSQL ledger" in capsys.readouterr().err
    assert main(["batch", "add", name, str(tmp_path / "nope.wav"), "--ledger", url]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    # nothing was registered by the refused command
    status = _json(capsys, ["batch", "status", name, "--ledger", url, "--json"])
    assert status["total"] == 0


def test_an_unreachable_ledger_is_one_line_without_its_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"postgresql://u:{PASSWORD}@127.0.0.1:1/db?connect_timeout=2"
    assert main(["batch", "status", "b", "--ledger", url]) == 2
    err = capsys.readouterr().err
    assert err.startswith("diffio-async: error: cannot use --ledger postgresql://u:***@")
    assert PASSWORD not in err and len(err.strip().splitlines()) == 1


def test_batch_run_works_the_batch_and_a_second_run_finds_nothing_left(
    batch_args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sources = _files(tmp_path / "in", "a.wav", "b.wav", "c.wav")
    name, *ledger = batch_args
    assert main(["batch", "add", name, str(tmp_path / "in"), *ledger]) == 0
    capsys.readouterr()
    run = ["batch", "run", name, *ledger, "-o", str(tmp_path / "out"), "--emulator", "--json"]
    assert main([*run, "--lease", "5"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(line["source"] for line in lines) == sorted(str(p) for p in sources)
    assert all(line["ok"] for line in lines)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.mp3", "b.mp3", "c.mp3"]
    assert main(run) == 0  # every file is finished: nothing to claim
    assert capsys.readouterr().out == ""
    status = _json(capsys, ["batch", "status", name, *ledger, "--json"])
    assert status["counts"]["downloaded"] == 3  # type: ignore[index]
    workers = status["workers"]
    assert isinstance(workers, list) and len(workers) == 1
    assert workers[0]["downloaded"] == 3 and workers[0]["leased"] == 0
    assert status["throughput_per_minute"] > 0  # type: ignore[operator]
    assert status["eta_seconds"] == 0


def test_batch_run_refuses_a_lease_of_a_day_or_more(
    batch_args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name, *ledger = batch_args
    run = ["batch", "run", name, *ledger, "-o", str(tmp_path), "--emulator", "--lease", "86400"]
    assert main(run) == 2
    assert "lease_seconds" in capsys.readouterr().err


def test_batch_resume_of_a_batch_that_runs_says_so_and_retries_its_failed_files(
    batch_args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (a,) = _files(tmp_path, "a.wav")
    name, *ledger = batch_args
    assert main(["batch", "add", name, str(a), *ledger]) == 0
    assert main(["batch", "resume", name, *ledger]) == 0
    out = capsys.readouterr().out
    assert f"batch {name!r} was not stopped; its failed files will be tried again" in out
    assert PASSWORD not in out
