"""Shared pieces of the benchmarks: the emulator process, measured children, tables, results.

Standard library only at import time: the official SDK's child (``_official_client.py``)
imports this module inside a virtualenv that holds nothing but ``diffio``. matplotlib is
imported only when a chart is drawn.

* :class:`Server` / :class:`Emulator`: a server process (the emulator, ``python -m
  diffio_async.emulator --port 0 ...``, or the fault proxy); the base URL comes from its
  ``listening on URL`` line; the emulator's request log and projects are read back
  (``GET /_emulator/requests``, ``list_projects``), its CPU time from ``wait4``.
* :func:`client_command`: how each bulk client (``asyncio``, ``trio``, ``official``, ``raw``)
  is started.
* :func:`run_child`: one measured client process; its CPU and peak RSS are its own
  (``os.wait4`` gives the child's ``rusage``); it reports a JSON object on its last line.
* :func:`work_usage` / :func:`child_report`: what a child measures of itself.
* :func:`print_table`, :func:`write_results`, :func:`save_chart`: the three outputs of every
  benchmark (a table on stdout, ``benchmarks/results/<name>.json``, ``<name>.png``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
API_KEY = "diffio_live_benchmark_key_0123456789"
MIB = 1024 * 1024
MODELS = {"a": "diffio-4.0-flash", "b": "diffio-4.6-flash"}
"""The model each client asks for: the current model of the era (what the SDK picks by itself)."""
OFFICIAL_VERSIONS = {"a": "0.1.114", "b": "0.3.10"}
"""The official ``diffio`` release that speaks each API era."""
PROGRESS_PATH = "/v1/get_generation_progress"


# --- command line ---------------------------------------------------------------------------


def parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark takes (``--quick``, ``--era``)."""
    made = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    made.add_argument("--quick", action="store_true", help="a small smoke run (see each preset)")
    made.add_argument("--era", choices=("a", "b", "both"), default=None, help="API era(s)")
    return made


def eras(choice: str) -> list[str]:
    """``"both"`` -> ``["a", "b"]``; otherwise the one era."""
    return ["a", "b"] if choice == "both" else [choice]


def apply_quick(args: argparse.Namespace, defaults: dict[str, Any], quick: dict[str, Any]) -> None:
    """Fill every option left at ``None`` from ``quick`` (with ``--quick``) or ``defaults``."""
    preset = {**defaults, **quick} if args.quick else defaults
    for name, value in preset.items():
        if getattr(args, name, None) is None:
            setattr(args, name, value)


# --- the emulator ---------------------------------------------------------------------------


def _request(url: str, *, method: str = "GET", body: Any = None, key: str | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if key is not None:
        request.add_header("Authorization", f"Bearer {key}")
    with urllib.request.urlopen(request, timeout=120) as answer:
        return json.loads(answer.read())


def rusage_dict(usage: Any) -> dict[str, float]:
    """CPU seconds (user, sys, both) and peak RSS in MiB from a ``resource.struct_rusage``."""
    return {
        "user_s": usage.ru_utime,
        "sys_s": usage.ru_stime,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "max_rss_mib": usage.ru_maxrss / 1024,  # KiB on Linux
    }


class Process:
    """A child process whose own ``rusage`` is collected when it ends (``os.wait4``)."""

    def __init__(self, command: Sequence[str], **popen: Any) -> None:
        """Start ``command`` (``popen`` goes to :class:`subprocess.Popen`)."""
        self.command = list(command)
        self.popen = subprocess.Popen(self.command, **popen)
        self.usage: dict[str, float] | None = None

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the end (``TimeoutError`` after ``timeout``); returns the exit code."""
        if self.popen.returncode is not None:
            return self.popen.returncode
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(self.popen.pid, os.WNOHANG)
            if pid:
                self.usage = rusage_dict(usage)
                self.popen.returncode = os.waitstatus_to_exitcode(status)
                return self.popen.returncode
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{self.command[:3]} did not end in {timeout} s")
            time.sleep(0.02)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s; always collects the ``rusage``."""
        if self.popen.returncode is not None:
            return
        self.popen.terminate()
        try:
            self.wait(10)
        except TimeoutError:
            self.popen.kill()
            self.wait()


class Server:
    """A server process that prints ``listening on URL`` first (use as a context manager).

    ``url`` is that URL; after the ``with`` block, ``usage`` holds the process's own CPU time
    and peak RSS. Its standard error goes to a temp file, shown if it fails to start.
    """

    def __init__(self, command: Sequence[str], what: str) -> None:
        """Describe the server; it starts on ``__enter__``."""
        self.command = list(command)
        self.what = what
        self.url = ""
        self.usage: dict[str, float] | None = None
        self._process: Process | None = None
        self._log: Any = None

    def __enter__(self) -> Any:
        """Start the process and read its URL."""
        self._log = tempfile.TemporaryFile(mode="w+")
        self._process = Process(self.command, stdout=subprocess.PIPE, stderr=self._log, text=True)
        assert self._process.popen.stdout is not None
        first = self._process.popen.stdout.readline()
        match = re.search(r"listening on (http://\S+)", first)
        if match is None:
            self._process.stop()
            self._log.seek(0)
            raise RuntimeError(f"{self.what} did not start: {first!r}\n{self._log.read()[-2000:]}")
        self.url = match.group(1)
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Stop the process; keep its ``rusage``."""
        assert self._process is not None
        self._process.stop()
        self.usage = self._process.usage
        self._log.close()


class Emulator(Server):
    """``python -m diffio_async.emulator --port 0 --clock wall ...`` in its own process.

    ``seconds_per_mib`` is passed as ``--seconds-per-mib`` only when given.
    """

    def __init__(
        self,
        era: str,
        *,
        generation_seconds: float,
        seconds_per_mib: float | None = None,
        storage_dir: Path | None = None,
        extra: Sequence[str] = (),
    ) -> None:
        """Describe the emulator; it starts on ``__enter__``."""
        command = [
            sys.executable,
            "-m",
            "diffio_async.emulator",
            "--port",
            "0",
            "--era",
            era,
            "--api-key",
            API_KEY,
            "--clock",
            "wall",
            "--generation-seconds",
            str(generation_seconds),
        ]
        if seconds_per_mib is not None:
            command += ["--seconds-per-mib", str(seconds_per_mib)]
        if storage_dir is not None:
            command += ["--storage-dir", str(storage_dir)]
        super().__init__(command + list(extra), "the emulator")
        self.era = era

    def requests(self) -> list[dict[str, Any]]:
        """The request log (``GET /_emulator/requests``; control routes are not in it)."""
        return list(_request(f"{self.url}/_emulator/requests")["requests"])

    def clear_requests(self) -> None:
        """Forget the request log so far."""
        _request(f"{self.url}/_emulator/requests", method="DELETE")

    def projects(self) -> list[dict[str, Any]]:
        """Every project, with its ``generationCount`` (``list_projects`` with the admin key)."""
        answer = _request(f"{self.url}/v1/list_projects", method="POST", body={}, key=API_KEY)
        return list(answer["projects"])


def request_counts(requests: list[dict[str, Any]]) -> dict[str, int]:
    """Totals over a request log: all requests, progress polls, and requests answered 2xx."""
    return {
        "requests": len(requests),
        "progress_polls": sum(1 for entry in requests if entry["path"] == PROGRESS_PATH),
        "answered_2xx": sum(1 for entry in requests if 200 <= (entry["status"] or 0) < 300),
    }


# --- measured children ----------------------------------------------------------------------


def run_child(
    command: Sequence[str], *, timeout: float, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run one measured child; return its JSON report plus ``"process"``: its own rusage.

    The child prints one JSON object on its last line of standard output. Its standard error
    is kept in a temp file and shown (the last 3,000 characters) when it fails.
    """
    with tempfile.TemporaryFile(mode="w+") as errors:
        process = Process(
            command,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            env=None if env is None else {**os.environ, **env},
        )
        assert process.popen.stdout is not None
        try:
            with _alarm(process, timeout):
                output = process.popen.stdout.read()
            code = process.wait(timeout=30)
        finally:
            process.stop()
        errors.seek(0)
        stderr = errors.read()
    lines = [line for line in output.splitlines() if line.strip()]
    if code != 0 or not lines:
        raise RuntimeError(f"{Path(command[1]).name} exited {code}:\n{stderr[-3000:]}")
    report: dict[str, Any] = json.loads(lines[-1])
    report["process"] = process.usage
    return report


@contextlib.contextmanager
def _alarm(process: Process, timeout: float) -> Iterator[None]:
    """Kill ``process`` if the block takes longer than ``timeout`` seconds."""
    import threading

    done = threading.Event()

    def watch() -> None:
        if not done.wait(timeout):
            print(f"  ! {process.command[1]} ran over {timeout:.0f} s: killed", file=sys.stderr)
            process.popen.kill()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()


def work_usage() -> dict[str, float]:
    """This process's CPU seconds (user + sys, every thread) and peak RSS so far."""
    return rusage_dict(resource.getrusage(resource.RUSAGE_SELF))


def child_report(started: dict[str, float], seconds: float, **fields: Any) -> None:
    """Print a child's report: ``fields``, the wall ``seconds`` and the CPU used since
    ``started`` (a :func:`work_usage` taken just before the measured work)."""
    now = work_usage()
    fields.update(
        seconds=seconds,
        work_cpu_s=now["cpu_s"] - started["cpu_s"],
        work_user_s=now["user_s"] - started["user_s"],
        work_sys_s=now["sys_s"] - started["sys_s"],
        max_rss_mib=now["max_rss_mib"],
    )
    print(json.dumps(fields), flush=True)


def one_line(text: str, limit: int = 300) -> str:
    """``text`` on one line (whitespace runs made one space), cut to ``limit`` characters."""
    return " ".join(text.split())[:limit]


def official_python(era: str) -> str | None:
    """The interpreter that has the official SDK of ``era`` installed, or ``None``.

    ``$DIFFIO_BENCH_OFFICIAL_A`` / ``_B`` (``nox -s bench`` sets them), else this interpreter
    when it has exactly that ``diffio`` version.
    """
    configured = os.environ.get(f"DIFFIO_BENCH_OFFICIAL_{era.upper()}")
    if configured:
        return configured
    try:
        import importlib.metadata

        if importlib.metadata.version("diffio") == OFFICIAL_VERSIONS[era]:
            return sys.executable
    except importlib.metadata.PackageNotFoundError:
        pass
    return None


CLIENTS = ("asyncio", "trio", "official", "raw")
"""The bulk clients: diffio-async on each backend, the official SDK, the raw httpx2 floor."""


def client_command(client: str, spec: dict[str, Any]) -> list[str] | str:
    """The command that runs bulk ``client`` with ``spec``, or why it cannot run here.

    ``spec``: ``url``, ``era``, ``inputs`` (a folder of ``*.wav``), ``out``, ``concurrency``.
    """
    if client == "official":
        python = official_python(spec["era"])
        if python is None:
            return (
                f"no official SDK {OFFICIAL_VERSIONS[spec['era']]} for era {spec['era']} "
                f"(set DIFFIO_BENCH_OFFICIAL_{spec['era'].upper()}, or use nox -s bench)"
            )
        return [python, str(HERE / "_official_client.py"), json.dumps(spec)]
    if client == "trio":
        try:
            import trio  # noqa: F401
        except ImportError:
            return "trio is not installed"
    kind = "raw" if client == "raw" else "sdk"
    backend = "trio" if client == "trio" else "asyncio"
    return [
        sys.executable,
        str(HERE / "_bulk_clients.py"),
        json.dumps({**spec, "client": kind, "backend": backend}),
    ]


# --- media ----------------------------------------------------------------------------------


def write_inputs(folder: Path, count: int, size: int, seed: int = 7) -> list[Path]:
    """``count`` files of ``size`` pseudo-random bytes (``f00000.wav`` ...), each different."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    paths = []
    for index in range(count):
        path = folder / f"f{index:05}.wav"
        path.write_bytes(b"RIFF" + index.to_bytes(4, "big") + rng.randbytes(max(size - 8, 0)))
        paths.append(path)
    return paths


def output_for(source: Path, out_dir: Path) -> Path:
    """Where every client writes the restored ``source``: ``out_dir/<stem>.mp3``."""
    return out_dir / f"{source.stem}.mp3"


def count_intact(sources: Sequence[Path], out_dir: Path) -> int:
    """How many outputs exist with exactly their source's bytes (the emulator passes audio
    through)."""
    intact = 0
    for source in sources:
        target = output_for(source, out_dir)
        if target.is_file() and target.read_bytes() == source.read_bytes():
            intact += 1
    return intact


# --- outputs --------------------------------------------------------------------------------


def fmt(value: Any, spec: str) -> str:
    """``value`` formatted with ``spec``; ``-`` for ``None`` and NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def print_table(columns: Sequence[tuple[str, str, str]], rows: Sequence[dict[str, Any]]) -> None:
    """Print ``rows`` as a table; ``columns`` are ``(header, key, format spec)``."""
    cells = [[fmt(row.get(key), spec) for _, key, spec in columns] for row in rows]
    widths = [
        max([len(header)] + [len(line[index]) for line in cells])
        for index, (header, _, _) in enumerate(columns)
    ]
    header = "  ".join(
        name.ljust(width) if index == 0 else name.rjust(width)
        for index, ((name, _, _), width) in enumerate(zip(columns, widths, strict=True))
    )
    print(header)
    print("-" * len(header))
    for line in cells:
        print(
            "  ".join(
                cell.ljust(width) if index == 0 else cell.rjust(width)
                for index, (cell, width) in enumerate(zip(line, widths, strict=True))
            )
        )


def environment() -> dict[str, Any]:
    """Where the numbers come from: versions, machine, time."""
    versions: dict[str, str] = {}
    for name in ("diffio-async", "httpx2", "anyio", "trio", "uvicorn"):
        with contextlib.suppress(Exception):
            import importlib.metadata

            versions[name] = importlib.metadata.version(name)
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average": list(os.getloadavg()),
        "versions": versions,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def write_results(name: str, report: dict[str, Any]) -> Path:
    """Write ``benchmarks/results/<name>.json``; return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return path


def save_chart(name: str, draw: Callable[[Any], Any]) -> Path | None:
    """Draw ``benchmarks/results/<name>.png``: ``draw(pyplot)`` returns the figure.

    Without matplotlib (``pip install -e '.[bench]'``) the chart is skipped with a note.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        from matplotlib import pyplot
    except ImportError:
        print(f"(no chart: matplotlib is not installed; {name}.png skipped)", file=sys.stderr)
        return None
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.png"
    figure = draw(pyplot)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
    return path


def grouped_bars(
    axes: Any,
    groups: Sequence[str],
    series: dict[str, Sequence[float | None]],
    *,
    title: str,
    ylabel: str,
    reference: float | None = None,
) -> None:
    """One panel of grouped bars: ``series`` maps a label to one value per group."""
    count = max(len(series), 1)
    width = 0.8 / count
    for index, (label, values) in enumerate(series.items()):
        positions = [group + (index - (count - 1) / 2) * width for group in range(len(groups))]
        heights = [float("nan") if value is None else value for value in values]
        axes.bar(positions, heights, width, label=label)
    axes.set_xticks(range(len(groups)))
    axes.set_xticklabels(groups, fontsize=8)
    axes.set_title(title, fontsize=10)
    axes.set_ylabel(ylabel, fontsize=9)
    if reference is not None:
        axes.axhline(reference, color="grey", linewidth=0.8, linestyle="--")
    axes.grid(axis="y", alpha=0.3)
