"""``DIFFIO_LOG=debug|info`` prints the SDK's records on stderr, and every record of the
``diffio_async`` logger is redacted: no API key, signed URL query or upload token."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest

KEY = "diffio_live_logging_test_key_0123456789"
SIGNED = "https://media.example/x.wav?X-Goog-Signature=deadbeefcafe1234&token=tok_0123456789"

SCRIPT = """
import json, logging, sys, anyio
from diffio_async.testing import emulated_diffio

async def main():
    async with emulated_diffio(era=sys.argv[1], api_key=sys.argv[2], generation_seconds=0) as env:
        env.emulator.add_fault(path="/v1/create_project", status=503, retry_after="0")
        env.emulator.add_fault(path="/v1/get_generation_progress", status=503, count=3)
        await env.client.restore(b"RIFF" + bytes(4096), output=sys.argv[3])
        seen = [(r.path, r.query, dict(r.headers)) for r in env.emulator.requests]
    logger = logging.getLogger("diffio_async")
    logger.info("a signed URL in a message: %s", sys.argv[4])
    try:
        raise RuntimeError("failed: " + sys.argv[4])
    except RuntimeError:
        logger.exception("and in a traceback")
    print(json.dumps(seen))

anyio.run(main)
"""


def _run(era: str, level: str | None, tmp_path: object) -> tuple[str, list[object]]:
    env = {k: v for k, v in os.environ.items() if k not in ("DIFFIO_LOG", "DIFFIO_API_KEY")}
    if level is not None:
        env["DIFFIO_LOG"] = level
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, era, KEY, f"{tmp_path}/out.mp3", SIGNED],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    return done.stderr, json.loads(done.stdout)


def _secrets(seen: list[object]) -> set[str]:
    """The key, and every query value and credential header the emulator was sent."""
    found = {KEY, "deadbeefcafe1234", "tok_0123456789"}
    for _, query, headers in seen:  # type: ignore[misc]
        found |= {v for _, v in urllib.parse.parse_qsl(query) if len(v) >= 8}
        found |= {v for n, v in headers.items() if n in ("authorization", "x-api-key")}
    return found


@pytest.mark.parametrize("era", ["a", "b"])
def test_diffio_log_debug_prints_redacted_records_on_stderr(era: str, tmp_path: object) -> None:
    err, seen = _run(era, "debug", tmp_path)
    ours = [line for line in err.splitlines() if " diffio_async: " in line]
    assert any("DEBUG diffio_async: POST create_project -> 200" in line for line in ours), err
    assert any("DEBUG diffio_async: retrying create_project" in line for line in ours), err
    assert any("INFO diffio_async: polling" in line for line in ours), err
    assert (
        "INFO diffio_async: a signed URL in a message: https://media.example/x.wav?<redacted>\n"
        in err
    )
    assert "RuntimeError: failed: https://media.example/x.wav?<redacted>" in err
    signed = [q for _, q, _ in seen if "sig" in q.lower() or "token" in q.lower()]  # type: ignore[misc]
    assert signed or era == "b"  # era A uploads to a signed URL: there is something to leak
    leaked = sorted(secret for secret in _secrets(seen) if secret in err)
    assert leaked == []


def test_diffio_log_info_leaves_out_debug_records(tmp_path: object) -> None:
    err, _ = _run("a", "INFO", tmp_path)
    assert "INFO diffio_async: polling" in err
    assert "DEBUG" not in err


def test_without_diffio_log_nothing_is_printed(tmp_path: object) -> None:
    err, _ = _run("a", None, tmp_path)
    assert " diffio_async: " not in err
    assert "deadbeefcafe1234" not in err  # logging's last resort prints the ERROR record


def test_records_reach_your_own_handlers_redacted(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("diffio_async")
    with caplog.at_level(logging.DEBUG, logger="diffio_async"):
        logger.warning("downloading %s", SIGNED)
        try:
            raise ValueError(SIGNED)
        except ValueError:
            logger.exception("failed")
    assert "deadbeefcafe1234" not in caplog.text and "tok_0123456789" not in caplog.text
    assert caplog.text.count("https://media.example/x.wav?<redacted>") == 2
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="diffio_async"):
        logger.info("already redacted: https://media.example/x.wav?<redacted>")
    assert caplog.messages == ["already redacted: https://media.example/x.wav?<redacted>"]


def test_records_never_show_an_era_b_media_token(caplog: pytest.LogCaptureFixture) -> None:
    token = "mt_0123456789abcdefghij"
    media = f"https://edge.example/m/{token}/generations/g1/out.mp3"
    logger = logging.getLogger("diffio_async")
    with caplog.at_level(logging.DEBUG, logger="diffio_async"):
        logger.info("downloading %s", media)
        try:
            raise ValueError(f"'{media}' failed")
        except ValueError:
            logger.exception("failed")
    assert token not in caplog.text
    assert caplog.text.count("https://edge.example/m/***/generations/g1/out.mp3") == 2


def test_setup_twice_adds_one_handler(monkeypatch: pytest.MonkeyPatch) -> None:
    from diffio_async import _logging

    logger = logging.getLogger("diffio_async")
    before, level = list(logger.handlers), logger.level
    monkeypatch.setenv("DIFFIO_LOG", "debug")
    try:
        _logging.setup_from_environment()
        _logging.setup_from_environment()
        added = [h for h in logger.handlers if h not in before]
        assert len(added) == 1 and logger.level == logging.DEBUG
    finally:
        logger.handlers[:] = before
        logger.setLevel(level)


HTTPX2_SCRIPT = """
import logging, sys, anyio
from diffio_async.testing import emulated_diffio

logging.basicConfig(level=logging.INFO)
if sys.argv[1] == "hide":
    logging.getLogger("httpx2").setLevel(logging.WARNING)  # the README's line

async def main():
    async with emulated_diffio() as env:
        await env.client.projects.list()

anyio.run(main)
"""


@pytest.mark.parametrize("hide", [False, True], ids=["shown", "hidden"])
def test_the_readme_line_hides_httpx2_request_lines(hide: bool) -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert 'logging.getLogger("httpx2").setLevel(logging.WARNING)' in readme
    env = {k: v for k, v in os.environ.items() if k != "DIFFIO_LOG"}
    done = subprocess.run(
        [sys.executable, "-c", HTTPX2_SCRIPT, "hide" if hide else "show"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert ("HTTP Request: POST" in done.stderr) is not hide, done.stderr
