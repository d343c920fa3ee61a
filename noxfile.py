"""nox sessions: tests, lint, types, crosscheck (official SDKs against our emulator), bench;
coverage on demand."""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint", "types", "crosscheck"]
nox.options.default_venv_backend = "venv"


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite on asyncio and trio."""
    session.install("-e", ".[dev]")
    session.run("pytest", "-q", *session.posargs)


@nox.session
def coverage(session: nox.Session) -> None:
    """The test suite under coverage (lines and branches, threads and subprocesses), then the
    report, with and without the emulator. Not a default session: it takes a few minutes more."""
    session.install("-e", ".[dev]")
    session.run("coverage", "erase")
    # The soak test's size adds time, not code reached: 100 files unless told otherwise.
    env = {"DIFFIO_SOAK_FILES": os.environ.get("DIFFIO_SOAK_FILES", "100")}
    try:
        session.run("coverage", "run", "-m", "pytest", "-q", *session.posargs, env=env)
    finally:  # a failing test still gets its report (the session fails all the same)
        session.run("coverage", "combine", "--quiet")
        session.run("coverage", "report")
        session.log("Without the emulator:")
        session.run("coverage", "report", "--omit=*/emulator/*", "--format=total")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and format check."""
    session.install("ruff")
    session.run("ruff", "check", "diffio_async", "tests", "benchmarks", "examples")
    session.run("ruff", "format", "--check", "diffio_async", "tests", "benchmarks", "examples")


@nox.session
def types(session: nox.Session) -> None:
    """mypy --strict over the package."""
    session.install("-e", ".[dev]")
    session.run("mypy", "--strict", "diffio_async")


@nox.session
@nox.parametrize("official", ["0.1.114", "0.3.10"])
def crosscheck(session: nox.Session, official: str) -> None:
    """The official diffio SDK (0.1.114: era A, 0.3.10: era B) runs its flow on our emulator."""
    session.install(f"diffio=={official}", "-e", ".[emulator]")
    session.run("python", "tests/crosscheck/official_flow.py")


BENCHMARKS = ("bulk", "chaos", "overhead", "memory")
OFFICIAL = {"a": "0.1.114", "b": "0.3.10"}


@nox.session
def bench(session: nox.Session) -> None:
    """The benchmarks of issue 7 (bulk, chaos, overhead, memory) with the issue's defaults.

    Not a default session. Arguments after ``--`` go to every benchmark, or to the ones named
    first::

        nox -s bench                         # everything, full size (an hour or more)
        nox -s bench -- --quick              # smoke run of every benchmark
        nox -s bench -- bulk chaos --quick   # only these two
        nox -s bench -- bulk --generation-seconds 10 60
        nox -s bench -- bulk --seconds-per-mib 2 --file-kib 4096

    The official SDK (0.1.114 for era A, 0.3.10 for era B) gets a virtualenv of its own each,
    as in ``crosscheck``; the benchmarks find them through ``DIFFIO_BENCH_OFFICIAL_A`` / ``_B``.
    """
    session.install(".[bench,emulator]", "trio")
    env = {}
    for era, version in OFFICIAL.items():
        location = Path(session.cache_dir) / f"bench-official-{version}"
        python = location / "bin" / "python"
        if not python.exists():
            session.run_install("python", "-m", "venv", str(location))
        session.run_install(
            str(python), "-m", "pip", "install", "--quiet", f"diffio=={version}", external=True
        )
        env[f"DIFFIO_BENCH_OFFICIAL_{era.upper()}"] = str(python)
    names = []
    args = list(session.posargs)
    while args and args[0] in BENCHMARKS:
        names.append(args.pop(0))
    for name in names or BENCHMARKS:
        session.run("python", f"benchmarks/{name}.py", *args, env=env)
