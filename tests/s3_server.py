"""A throwaway S3 for the tests: moto's server mode (``python -m moto.server``) in its own
process on a free loopback port, stopped at the end of the session.

moto keeps objects in memory, which suits tests and the memory benchmark (it is a separate
process). The SDK reaches it the way a user reaches any S3-compatible store: through the
environment s3fs (botocore) reads, ``AWS_ENDPOINT_URL`` for the endpoint and fake
``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` (:meth:`S3Server.environment`; the tests
set them for one test only). :data:`SECRET` is distinctive so that a test can look for it in
logs, errors and the ledger. Without moto (or s3fs) the tests that need it skip, unless
``DIFFIO_REQUIRE_S3=1`` makes that a failure.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import attrs
import pytest

REQUIRE_ENV = "DIFFIO_REQUIRE_S3"
ACCESS_KEY = "AKIADIFFIOTESTKEY"
SECRET = "diffio-fake-SECRET-q8Zr2Lw7Xv"
"""The fake secret access key: no log line, error, repr or ledger row may contain it."""
STARTUP_LIMIT = 60.0  # seconds for the server to accept connections (not a timing assertion)


@attrs.frozen(kw_only=True)
class S3Server:
    """A running moto server."""

    endpoint: str

    def environment(self) -> dict[str, str]:
        """The variables that point s3fs at this server with fake credentials."""
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": "us-east-1",
        }


def unavailable(reason: str) -> None:
    """Skip, or fail when ``DIFFIO_REQUIRE_S3=1``."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{REQUIRE_ENV}=1 but no local S3: {reason}")
    pytest.skip(f"no local S3: {reason} (pip install 'moto[server]' 'diffio-async[cloud]')")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def running_server() -> Iterator[S3Server]:
    """Start moto's server (or skip/fail, see :func:`unavailable`); stop it on exit."""
    try:
        import moto.server  # noqa: F401
        import s3fs  # noqa: F401
    except ModuleNotFoundError as exc:
        unavailable(f"{exc.name} is not installed")
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + STARTUP_LIMIT
        while True:
            if process.poll() is not None:
                unavailable(f"moto.server exited with {process.returncode}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if time.monotonic() > deadline:
                unavailable(f"moto.server did not listen within {STARTUP_LIMIT:g} s")
            time.sleep(0.1)
        yield S3Server(endpoint=f"http://127.0.0.1:{port}")
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@attrs.frozen(kw_only=True)
class Buckets:
    """Two fresh buckets on the server, and an s3fs filesystem to look at them."""

    fs: object = attrs.field(repr=False)
    source: str
    output: str

    def put(self, key: str, data: bytes, *, bucket: str | None = None) -> str:
        """Store ``data`` at ``key`` (in the source bucket by default); return its URL."""
        path = f"{bucket or self.source}/{key}"
        self.fs.pipe_file(path, data)  # type: ignore[attr-defined]
        return f"s3://{path}"

    def get(self, url: str) -> bytes:
        """The bytes of the object at ``url`` (read fresh, not from a listing cache)."""
        self.fs.invalidate_cache()  # type: ignore[attr-defined]
        return bytes(self.fs.cat_file(url))  # type: ignore[attr-defined]

    def keys(self, bucket: str) -> list[str]:
        """Every key in ``bucket``, sorted."""
        self.fs.invalidate_cache()  # type: ignore[attr-defined]
        found = self.fs.find(bucket)  # type: ignore[attr-defined]
        return sorted(str(path).removeprefix(f"{bucket}/") for path in found)

    def unfinished_uploads(self, bucket: str) -> list[object]:
        """The multipart uploads started in ``bucket`` and neither completed nor aborted."""
        return list(self.fs.list_multipart_uploads(bucket))  # type: ignore[attr-defined]


def fresh_buckets(name: str) -> Buckets:
    """Create two buckets named after ``name`` (the environment must point at the server)."""
    import uuid

    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem()
    token = uuid.uuid4().hex[:12]
    buckets = Buckets(fs=fs, source=f"src-{name}-{token}", output=f"dst-{name}-{token}")
    for bucket in (buckets.source, buckets.output):
        fs.mkdir(bucket)
    return buckets
