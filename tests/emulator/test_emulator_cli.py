"""The command-line runner: ``python -m diffio_async.emulator`` and ``run_cli``."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import diffio_async.emulator._server as emulator_server
from diffio_async.cli import main as diffio_async_main
from diffio_async.emulator import run_cli, serve_in_thread
from diffio_async.emulator._clock import isoformat

MIB = 1024 * 1024


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
    with httpx2.Client(base_url=url) as client:
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


def test_cli_media_time_and_webhooks_when_the_clock_passes_the_change() -> None:
    """``--seconds-per-mib`` reaches the emulator, and advancing its manual clock over HTTP
    delivers the status changes with nobody polling."""
    received: list[dict[str, object]] = []

    async def hook(request: Request) -> Response:
        received.append(json.loads(await request.body()))
        return Response(status_code=204)

    receiver = Starlette(routes=[Route("/hook", hook, methods=["POST"])])
    key = {"Authorization": "Bearer diffio_live_cli"}
    argv = ["--clock", "manual", "--generation-seconds", "1", "--seconds-per-mib", "2"]
    with (
        serve_in_thread(receiver) as hook_url,
        cli(*argv, env_key="diffio_live_cli") as (process, url),
        httpx2.Client(base_url=url, headers=key) as client,
    ):
        client.post(
            "/v1/webhooks/configure",
            json={
                "mode": "live",
                "url": f"{hook_url}/hook",
                "eventTypes": ["generation.completed"],
            },
        ).raise_for_status()
        created = client.post(
            "/v1/create_project",
            json={"fileName": "a.wav", "contentType": "audio/wav", "contentLength": MIB},
        ).json()
        client.put(
            created["uploadUrl"], content=b"\0" * MIB, headers={"Content-Type": "audio/wav"}
        ).raise_for_status()
        made = client.post(
            "/v1/diffio-2.0-generation", json={"apiProjectId": created["apiProjectId"]}
        ).json()
        started = client.get("/_emulator/clock").json()["epochSeconds"]
        client.post("/_emulator/advance", json={"seconds": 2.9}).raise_for_status()
        time.sleep(0.05)
        assert received == []  # 1 + 2 x 1 MiB = 3 s
        client.post("/_emulator/advance", json={"seconds": 0.1}).raise_for_status()
        deadline = time.monotonic() + 5
        while not received and time.monotonic() < deadline:
            time.sleep(0.005)
        requests = client.get("/_emulator/requests").json()["requests"]
        process.send_signal(signal.SIGINT)  # the scheduler stops with the server
        assert process.wait(10) == 0
    (event,) = received
    assert event["eventType"] == "generation.completed"
    assert event["generationId"] == made["generationId"]
    assert event["createdAt"] == isoformat(started + 3)
    assert not [r for r in requests if r["path"] == "/v1/get_generation_progress"]


def test_cli_without_a_key_accepts_any_key_and_cleans_up() -> None:
    with (
        cli("--api-key", "", env_key=None) as (process, url),
        httpx2.Client(base_url=url) as client,
    ):
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


def _one_error_line(err: str, prog: str, message: str) -> None:
    assert err.count("\n") == 1 and err.startswith(f"{prog}: error: "), err
    assert message in err and "Traceback" not in err and "usage:" not in err, err


_ANY_PORT = ["--port", "0"]  # should a bad value be accepted, nothing clashes on 8765
BAD_OPTIONS = [
    (["--port", "99999"], "--port"),
    (["--port", "65536"], "--port"),
    (["--port", "-1"], "--port"),
    (["--port=-1"], "--port"),
    (["--port", "abc"], "--port"),
    (["--port", "1.5"], "--port"),
    ([*_ANY_PORT, "--generation-seconds", "nan"], "--generation-seconds"),
    ([*_ANY_PORT, "--generation-seconds", "inf"], "--generation-seconds"),
    ([*_ANY_PORT, "--generation-seconds", "-1"], "--generation-seconds"),
    ([*_ANY_PORT, "--generation-seconds", "soon"], "--generation-seconds"),
    ([*_ANY_PORT, "--seconds-per-mib", "nan"], "--seconds-per-mib"),
    ([*_ANY_PORT, "--seconds-per-mib", "inf"], "--seconds-per-mib"),
    ([*_ANY_PORT, "--seconds-per-mib", "-0.5"], "--seconds-per-mib"),
    ([*_ANY_PORT, "--seconds-per-mib", "fast"], "--seconds-per-mib"),
    ([*_ANY_PORT, "--part-size-bytes", "0"], "--part-size-bytes"),
    ([*_ANY_PORT, "--part-size-bytes", "big"], "--part-size-bytes"),
    ([*_ANY_PORT, "--log-level", "loud"], "--log-level"),
    ([*_ANY_PORT, "--era", "c"], "--era"),
    ([*_ANY_PORT, "--clock", "sundial"], "--clock"),
    ([*_ANY_PORT, "--bogus"], "unrecognized arguments"),
    ([*_ANY_PORT, "--host", "bad..host"], "cannot listen"),
    ([*_ANY_PORT, "--host", "127.0.0.1\0"], "cannot listen"),
]


@pytest.fixture
def no_serving(monkeypatch: pytest.MonkeyPatch) -> None:
    """``run_cli`` prints its banner and returns at once instead of serving."""

    def run(self: object, sockets: object = None) -> None:
        return None

    monkeypatch.setattr(emulator_server.uvicorn.Server, "run", run)


@pytest.mark.usefixtures("no_serving")
@pytest.mark.parametrize(("argv", "message"), BAD_OPTIONS)
def test_a_bad_option_value_is_one_line_and_exit_status_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(argv) == 2
    captured = capsys.readouterr()
    _one_error_line(captured.err, "python -m diffio_async.emulator", message)
    assert captured.out == ""


@pytest.mark.usefixtures("no_serving")
@pytest.mark.parametrize(("argv", "message"), BAD_OPTIONS[:6])
def test_diffio_async_emulator_reports_a_bad_option_under_its_own_name(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert diffio_async_main(["emulator", *argv]) == 2
    _one_error_line(capsys.readouterr().err, "diffio-async emulator", message)


@pytest.mark.usefixtures("no_serving")
def test_an_unusable_storage_dir_is_one_line_and_exit_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = tmp_path / "not-a-directory"
    a_file.write_bytes(b"")
    assert run_cli(["--port", "0", "--storage-dir", str(a_file)]) == 2
    _one_error_line(capsys.readouterr().err, "python -m diffio_async.emulator", "--storage-dir")


def test_the_module_entry_point_exits_2_without_a_traceback() -> None:
    finished = subprocess.run(
        [sys.executable, "-m", "diffio_async.emulator", "--port", "99999"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert finished.returncode == 2
    _one_error_line(finished.stderr, "python -m diffio_async.emulator", "--port")


@pytest.mark.usefixtures("no_serving")
@pytest.mark.parametrize("source", ["option", "environment"])
def test_the_banner_masks_an_adopted_api_key(
    source: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key = "diffio_live_0123456789abcdefSECRET"
    argv = ["--port", "0"]
    if source == "option":
        monkeypatch.delenv("DIFFIO_API_KEY", raising=False)
        argv += ["--api-key", key]
    else:
        monkeypatch.setenv("DIFFIO_API_KEY", key)
    assert run_cli(argv) == 0
    banner = capsys.readouterr().out
    assert "listening on http://127.0.0.1:" in banner.splitlines()[0]
    assert key not in banner and "0123456789abcdef" not in banner
    assert "API key: diff...CRET" in banner


@pytest.mark.usefixtures("no_serving")
def test_the_banner_masks_a_short_api_key_entirely(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DIFFIO_API_KEY", raising=False)
    assert run_cli(["--port", "0", "--api-key", "hunter2"]) == 0
    banner = capsys.readouterr().out
    assert "hunter2" not in banner and "API key: ***" in banner
