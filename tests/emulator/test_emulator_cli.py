"""The command-line runner: ``python -m diffio_async.emulator`` and ``run_cli``."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from diffio_async.emulator import run_cli


@contextlib.contextmanager
def cli(*args: str, env_key: str | None) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Start ``python -m diffio_async.emulator --port 0 …`` and yield it with its base URL."""
    env = {k: v for k, v in os.environ.items() if k != "DIFFIO_API_KEY"}
    if env_key is not None:
        env["DIFFIO_API_KEY"] = env_key
    process = subprocess.Popen(
        [sys.executable, "-m", "diffio_async.emulator", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        match = re.search(r"listening on (http://\S+)", first)
        assert match, first + (process.stderr.read() if process.stderr else "")
        yield process, match.group(1)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:  # pragma: no cover
                process.kill()
                process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def cli_process() -> Iterator[tuple[subprocess.Popen[str], str]]:
    with cli(
        "--era",
        "b",
        "--clock",
        "manual",
        "--generation-seconds",
        "30",
        env_key="diffio_live_from_env",
    ) as running:
        yield running


def test_module_cli_serves_and_stops_cleanly(
    cli_process: tuple[subprocess.Popen[str], str],
) -> None:
    process, url = cli_process
    with httpx.Client(base_url=url) as client:
        info = client.get("/_emulator").json()
        assert info["era"] == "b"
        ok = client.post(
            "/v1/list_projects", json={}, headers={"Authorization": "Bearer diffio_live_from_env"}
        )
        assert ok.status_code == 200 and ok.json() == {"projects": []}
        denied = client.post(
            "/v1/list_projects", json={}, headers={"Authorization": "Bearer other"}
        )
        assert denied.status_code == 401
        before = client.get("/_emulator/clock").json()["epochSeconds"]
        assert client.get("/_emulator/clock").json()["epochSeconds"] == before  # manual clock
    process.send_signal(signal.SIGINT)
    assert process.wait(10) == 0


def test_cli_without_a_key_accepts_any_key_and_cleans_up() -> None:
    with cli("--api-key", "", env_key=None) as (process, url), httpx.Client(base_url=url) as client:
        response = client.post(
            "/v1/account/settings/get", json={}, headers={"X-Api-Key": "whatever"}
        )
        assert response.status_code == 200
        assert response.json()["apiKeyId"] == "key_admin"
        assert client.get("/_emulator").json()["era"] == "a"
        process.send_signal(signal.SIGINT)
        assert process.wait(10) == 0


def test_run_cli_reports_a_busy_port(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert run_cli(["--port", str(port)]) == 2
    assert "cannot listen" in capsys.readouterr().err


def test_run_cli_help_exits_zero() -> None:
    with pytest.raises(SystemExit) as exited:
        run_cli(["--help"])
    assert exited.value.code == 0
