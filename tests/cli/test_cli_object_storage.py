"""The command with URLs: ``restore s3://... -o s3://...`` through the local S3 (moto, see
``s3_server.py``) and the in-process emulator, ``batch add`` of a prefix, and the one line
naming ``pip install 'diffio-async[cloud]'`` (in the command and in the library) when the
extra is missing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from postgres_server import PostgresServer
from s3_server import SECRET, Buckets

from diffio_async.cli import main

CLOUD_HINT = "pip install 'diffio-async[cloud]'"

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


def _without(blocked: set[str], then: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DIFFIO_API_KEY"}
    script = BLOCKER.format(blocked=blocked, then=then)
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env
    )


def test_restore_reads_and_writes_buckets(s3: Buckets) -> None:
    s3.put("in/a.wav", b"RIFF" + b"a" * 3000)
    s3.put("in/sub/b.wav", b"RIFF" + b"b" * 3000)
    done = subprocess.run(
        [
            *(sys.executable, "-m", "diffio_async", "restore", f"s3://{s3.source}/in"),
            *("-o", f"s3://{s3.output}/out", "--emulator", "--json"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert sorted(line["output"] for line in lines) == [
        f"s3://{s3.output}/out/a.mp3",
        f"s3://{s3.output}/out/sub/b.mp3",
    ]
    assert s3.get(f"s3://{s3.output}/out/sub/b.mp3") == b"RIFF" + b"b" * 3000
    assert SECRET not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["restore", "nosuchproto://b/x.wav", "-o", "{tmp}/out"], "unknown protocol"),
        (["restore", "s3://", "-o", "{tmp}/out"], "names no bucket"),
        (["restore", "{tmp}", "-o", "s3://"], "names no bucket"),
    ],
)
def test_an_unusable_url_is_one_line(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = main([a.format(tmp=tmp_path) for a in argv] + ["--emulator"])
    err = capsys.readouterr().err
    assert status == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_batch_add_registers_the_objects_of_a_prefix_by_url(
    s3: Buckets, postgres_server: PostgresServer, capsys: pytest.CaptureFixture[str]
) -> None:
    s3.put("in/a.wav", b"RIFF-a")
    s3.put("in/deep/b.wav", b"RIFF-b")
    name, ledger = f"b-{uuid.uuid4().hex[:12]}", postgres_server.url()
    argv = ["batch", "add", name, f"s3://{s3.source}/in", "--ledger", ledger, "--json"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out) == {"batch": name, "added": 2, "total": 2}
    assert main(argv) == 0  # idempotent: the URLs are the keys
    assert json.loads(capsys.readouterr().out)["added"] == 0


@pytest.mark.parametrize("missing", ["fsspec", "s3fs"])
@pytest.mark.parametrize("where", ["source", "output"])
def test_without_the_cloud_extra_the_command_names_it(
    missing: str, where: str, tmp_path: Path
) -> None:
    local = tmp_path / "a.wav"
    local.write_bytes(b"RIFF-a")
    source, out = ("s3://bucket-x/a.wav", str(tmp_path / "out"))
    if where == "output":
        source, out = str(local), "s3://bucket-x/out"
    argv = ["diffio-async", "restore", source, "-o", out, "--emulator"]
    done = _without({missing}, f"sys.argv = {argv!r}\nrunpy.run_module('diffio_async')")
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert CLOUD_HINT in done.stderr and f"{missing} is not installed" in done.stderr


@pytest.mark.parametrize("missing", ["fsspec", "s3fs"])
def test_without_the_cloud_extra_the_library_names_it_before_any_request(missing: str) -> None:
    then = """
import anyio
from diffio_async import ConfigurationError
from diffio_async.testing import emulated_diffio

async def run(sources, output_dir):
    async with emulated_diffio(loopback=False) as env:
        try:
            async with env.client.restore_many(sources, output_dir=output_dir) as items:
                async for _ in items:
                    pass
        except ConfigurationError as exc:
            print(str(exc))
        print(len(env.emulator.requests))

anyio.run(run, ["s3://bucket-x/a.wav"], "/tmp/never-written")
anyio.run(run, "s3://bucket-x/in/", "/tmp/never-written")
anyio.run(run, ["/dev/null"], "s3://bucket-x/out")
"""
    done = _without({missing}, then)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 6, done.stdout
    for message, requests in zip(lines[::2], lines[1::2], strict=True):
        assert CLOUD_HINT in message and f"{missing} is not installed" in message
        assert requests == "0"
