"""A throwaway PostgreSQL server for the tests: ``initdb`` and ``postgres`` in a temp folder,
on a free loopback port, stopped (and deleted) at the end of the session.

The binaries come from ``PATH`` or Debian's ``/usr/lib/postgresql/<version>/bin`` (the
``postgresql`` package, which ``.ci/run`` installs). Without them (or without psycopg) the
tests that need the server skip, unless ``DIFFIO_REQUIRE_POSTGRES=1`` (set by ``.ci/run``),
which makes that a failure: CI never skips them silently.

PostgreSQL refuses to run as root. As root, the server runs as ``nobody`` through ``setpriv``
(util-linux, on every Debian), which execs the server in place (unlike ``su``/``runuser``, no
parent process is left between us and it, so our signals reach the server itself, and its
``--pdeathsig`` stops the server if the test run dies without cleaning up); its folder
is a fresh ``mkdtemp`` under the system temp folder (pytest's own temp folders are private to
root) handed over to ``nobody``. The server asks for a password (SCRAM) on TCP, so the tests
can check that a password never leaks.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

REQUIRE_ENV = "DIFFIO_REQUIRE_POSTGRES"
USER = "diffio"
PASSWORD = "pw-Zq7!x@secret"  # has URL-special characters: the tests write it percent-encoded
DATABASE = "postgres"
STARTUP_LIMIT = 60.0  # seconds for the server to accept connections (not a timing assertion)


@attrs.frozen(kw_only=True)
class PostgresServer:
    """A running server: where it listens and who may log in."""

    host: str
    port: int

    def url(self, database: str = DATABASE, *, password: str = PASSWORD) -> str:
        """A ``postgresql://`` URL for ``database`` (with the password percent-encoded)."""
        from urllib.parse import quote

        return f"postgresql://{USER}:{quote(password, safe='')}@{self.host}:{self.port}/{database}"


def unavailable(reason: str) -> None:
    """Skip, or fail when ``DIFFIO_REQUIRE_POSTGRES=1`` (CI must run these tests)."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{REQUIRE_ENV}=1 but no PostgreSQL server: {reason}")
    pytest.skip(f"no PostgreSQL server: {reason} (install Debian's postgresql package)")


def find_binaries() -> Path | None:
    """The folder holding ``initdb`` and ``postgres`` (the newest Debian version first)."""
    on_path = shutil.which("initdb")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    debian = Path("/usr/lib/postgresql").glob("*/bin")
    candidates += sorted(debian, key=lambda p: _version(p.parent.name), reverse=True)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "postgres").is_file():
            return folder
    return None


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def running_server() -> Iterator[PostgresServer]:
    """Start a server for the session (or skip/fail, see :func:`unavailable`)."""
    try:
        import psycopg  # noqa: F401
    except ModuleNotFoundError:
        unavailable("psycopg is not installed (pip install 'diffio-async[postgres]')")
    binaries = find_binaries()
    if binaries is None:
        unavailable("initdb/postgres not found on PATH or in /usr/lib/postgresql/*/bin")
        return  # unreachable (unavailable raises); for the type checker
    root = Path(tempfile.mkdtemp(prefix="diffio-pg-"))
    # --pdeathsig: the server gets a fast shutdown if the test run itself is killed.
    as_server_user = ["setpriv", "--pdeathsig=SIGINT", "--"]
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.chown(root, nobody.pw_uid, nobody.pw_gid)
        as_server_user[1:1] = [
            f"--reuid={nobody.pw_uid}",
            f"--regid={nobody.pw_gid}",
            "--clear-groups",
        ]
    try:
        password_file = root / "password"
        password_file.write_text(PASSWORD)
        if os.geteuid() == 0:
            os.chown(password_file, pwd.getpwnam("nobody").pw_uid, -1)
        data = root / "data"
        subprocess.run(
            [
                *as_server_user,
                str(binaries / "initdb"),
                f"--pgdata={data}",
                f"--username={USER}",
                f"--pwfile={password_file}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--no-instructions",
            ],
            check=True,
            capture_output=True,
            cwd=root,
        )
        with _started(binaries, data, root / "server.log", as_server_user) as server:
            yield server
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def _started(
    binaries: Path, data: Path, log: Path, as_server_user: list[str]
) -> Iterator[PostgresServer]:
    import psycopg

    server = PostgresServer(host="127.0.0.1", port=_free_port())
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [
                *as_server_user,
                str(binaries / "postgres"),
                "-D",
                str(data),
                "-p",
                str(server.port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "unix_socket_directories=",  # TCP only: no socket folder to own
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=data.parent,
        )
    try:
        deadline = time.monotonic() + STARTUP_LIMIT
        while True:
            try:
                psycopg.connect(server.url(), connect_timeout=5).close()
                break
            except psycopg.OperationalError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the test PostgreSQL server did not start:\n{log.read_text()}"
                    ) from None
                time.sleep(0.1)
        yield server
    finally:
        process.send_signal(signal.SIGINT)  # "fast" shutdown: ends sessions, then stops
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
