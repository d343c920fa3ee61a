"""scale_out: one named batch on a PostgreSQL ledger worked by 1 worker process, then by 3.

Everything runs here, each in its own process: a throwaway PostgreSQL server (started the way
the tests start theirs, ``tests/postgres_server.py``: ``initdb`` + ``postgres``, as
``nobody`` through ``setpriv`` when run as root), one emulator (``--clock wall``, every
generation taking G seconds, so its processing time dominates), and the workers, each
``diffio-async batch run NAME --concurrency 8 --json`` (``-m diffio_async``).

For each worker count W (1, then 3): a fresh batch of N small files (``batch add``), then W
workers started together; *wall* runs from just before the first worker is started until the
last one has exited (a worker exits once every file of the batch is finished). Also measured:
when the last file was reported done (a worker prints a JSON line per file as it is written),
so *exit lag* = wall - that is the time the workers took to notice the batch was finished
(they look again every min(lease / 3, 5) s while other workers hold the last files); and the
start-up of W worker processes, approximated just before by W ``batch status --json``
processes started together (the same imports and connection to the ledger, no work), which
*speedup (last done - start-up)* leaves out of both runs. Checked: every output written with its
source's bytes (the emulator passes audio through), and exactly one generation per file (the
emulator's ``list_projects``, the projects created by that run).

*ideal* = ceil(N / (W x C)) x G, the generations' time alone; the ideal speedup of 3 workers
is ideal(1) / ideal(3) (3.0 when N is a multiple of 24). Speedups are ratios of two runs of
the same invocation.

    python benchmarks/scale_out.py                        # 96 files, G = 5 s, C = 8: 1 and 3
    python benchmarks/scale_out.py --quick                # 24 files, G = 2 s
    python benchmarks/scale_out.py --files 192 --generation-seconds 10 --lease 15

Needs the ``postgres`` extra (psycopg) and PostgreSQL's server binaries (on ``PATH`` or
Debian's ``/usr/lib/postgresql/*/bin``). Prints a table, writes
benchmarks/results/scale_out.json (or ``--json PATH``).
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from _common import (
    API_KEY,
    HERE,
    Emulator,
    Process,
    apply_quick,
    count_intact,
    environment,
    parser,
    print_table,
    write_inputs,
    write_results,
)

DEFAULTS = {
    "files": 96,
    "generation_seconds": 5.0,
    "concurrency": 8,
    "workers": [1, 3],
    "lease": 60.0,
    "file_kib": 4,
}
QUICK = {"files": 24, "generation_seconds": 2.0}
TARGET = 2.5
"""The issue's target: 3 workers at least 2.5x faster than 1."""


def postgres_server() -> Any:
    """``tests/postgres_server.running_server()``, or why it cannot start here (a string)."""
    sys.path.insert(0, str(HERE.parent / "tests"))
    import postgres_server as server

    try:
        import psycopg  # noqa: F401
    except ModuleNotFoundError:
        return "psycopg is not installed (pip install 'diffio-async[postgres]')"
    if server.find_binaries() is None:
        return "initdb/postgres not found on PATH or in /usr/lib/postgresql/*/bin"
    return server.running_server()


def cli(*args: str) -> list[str]:
    """A ``diffio-async`` command run by this interpreter."""
    return [sys.executable, "-m", "diffio_async", *args]


def startup_seconds(ledger: str, batch: str, count: int) -> float:
    """Wall seconds of ``count`` ``batch status --json`` processes started together: what
    starting ``count`` workers costs (their imports and ledger connections), without work."""
    started = time.monotonic()
    command = cli("batch", "status", batch, "--ledger", ledger, "--json")
    processes = [subprocess.Popen(command, stdout=subprocess.DEVNULL) for _ in range(count)]
    if any(process.wait() != 0 for process in processes):
        raise RuntimeError("batch status failed")
    return time.monotonic() - started


class Worker:
    """One ``batch run`` process; a thread notes when each of its JSON lines arrived."""

    def __init__(self, command: list[str], started: float) -> None:
        """Start the process (``started``: the run's ``time.monotonic()`` origin)."""
        self.started = started
        self.errors = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (kept for stderr())
        self.process = Process(
            command, stdout=subprocess.PIPE, stderr=self.errors, text=True, bufsize=1
        )
        self.lines: list[tuple[float, dict[str, Any]]] = []
        self.exited: float | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.popen.stdout is not None
        for line in self.process.popen.stdout:
            if line.strip():
                self.lines.append((time.monotonic() - self.started, json.loads(line)))

    def wait(self, timeout: float) -> int:
        """Wait for the exit (noted in ``exited``); the exit code."""
        code = self.process.wait(timeout)
        self.exited = time.monotonic() - self.started
        self._reader.join()
        return code

    def stderr(self) -> str:
        """What the worker wrote on standard error (the end of it)."""
        self.errors.seek(0)
        return self.errors.read()[-3000:]


def ideal_seconds(files: int, workers: int, concurrency: int, generation: float) -> float:
    """ceil(N / (W x C)) rounds of one generation each."""
    return math.ceil(files / (workers * concurrency)) * generation


def run_one(workers: int, args: Any, ledger: str, emulator: Emulator, work: Path) -> dict[str, Any]:
    """A fresh batch of ``args.files`` files, worked by ``workers`` processes started together."""
    batch = f"scale-{workers}-{uuid.uuid4().hex[:8]}"
    inputs = work / f"in-{workers}"
    out = work / f"out-{workers}"
    sources = write_inputs(inputs, args.files, args.file_kib * 1024, seed=workers)
    subprocess.run(
        cli("batch", "add", batch, str(inputs), "--ledger", ledger, "--json"),
        check=True,
        capture_output=True,
    )
    known = {project["apiProjectId"] for project in emulator.projects()}
    command = cli("batch", "run", batch, "--ledger", ledger, "-o", str(out), "--json")
    command += ["--concurrency", str(args.concurrency), "--lease", f"{args.lease:g}"]
    command += ["--api-key", API_KEY, "--base-url", emulator.url, "--quiet"]
    ideal = ideal_seconds(args.files, workers, args.concurrency, args.generation_seconds)
    startup = startup_seconds(ledger, batch, workers)
    started = time.monotonic()
    running = [Worker(command, started) for _ in range(workers)]
    try:
        codes = [worker.wait(timeout=ideal * 6 + 300) for worker in running]
    finally:
        for worker in running:  # a worker left running after a failure or a timeout
            worker.process.stop()
    wall = max(worker.exited or 0.0 for worker in running)
    for worker, code in zip(running, codes, strict=True):
        if code != 0:
            raise RuntimeError(f"a worker exited {code}:\n{worker.stderr()}")
    done = [(at, line) for worker in running for at, line in worker.lines]
    new = [project for project in emulator.projects() if project["apiProjectId"] not in known]
    generations: Counter[str] = Counter()
    for project in new:
        generations[project["originalFileName"]] += project["generationCount"]
    one_each = generations == Counter({source.name: 1 for source in sources})
    last_done = max(at for at, _ in done)
    row = {
        "workers": workers,
        "files": args.files,
        "concurrency": args.concurrency,
        "generation_seconds": args.generation_seconds,
        "lease_seconds": args.lease,
        "seconds": wall,
        "last_done_s": last_done,
        "first_done_s": min(at for at, _ in done),
        "exit_lag_s": wall - last_done,
        "ideal_s": ideal,
        "startup_s": startup,
        "reported_ok": sum(1 for _, line in done if line["ok"]),
        "reported": len(done),
        "intact": count_intact(sources, out),
        "projects": len(new),
        "generations": sum(generations.values()),
        "one_generation_per_file": one_each,
        "per_worker": [
            {
                "files": len(worker.lines),
                "done_s": sorted(round(at, 2) for at, _ in worker.lines),
                "first_done_s": min((at for at, _ in worker.lines), default=None),
                "last_done_s": max((at for at, _ in worker.lines), default=None),
                "exited_s": worker.exited,
                "process": worker.process.usage,
            }
            for worker in running
        ],
    }
    row["check"] = "ok" if row["intact"] == args.files and one_each else "FAILED"
    row["per_worker_files"] = "/".join(str(entry["files"]) for entry in row["per_worker"])
    shutil.rmtree(out, ignore_errors=True)
    return row


COLUMNS = [
    ("workers", "workers", "d"),
    ("files", "files", "d"),
    ("per worker", "per_worker_files", ""),
    ("wall s", "seconds", ".1f"),
    ("last done s", "last_done_s", ".1f"),
    ("exit lag s", "exit_lag_s", ".1f"),
    ("ideal s", "ideal_s", ".1f"),
    ("speedup", "speedup", ".2f"),
    ("speedup (last done)", "speedup_last_done", ".2f"),
    ("start-up s", "startup_s", ".1f"),
    ("speedup (last done - start-up)", "speedup_after_startup", ".2f"),
    ("ideal speedup", "ideal_speedup", ".2f"),
    ("intact, 1 gen/file", "check", ""),
]


def main(argv: list[str] | None = None) -> int:
    cli_args = parser(__doc__.split("\n\n")[0])
    cli_args.add_argument("--files", type=int, default=None, help="N (default 96; quick 24)")
    cli_args.add_argument(
        "--generation-seconds", type=float, default=None, help="G (default 5; quick 2)"
    )
    cli_args.add_argument(
        "--concurrency", type=int, default=None, help="C, files in flight per worker (8)"
    )
    cli_args.add_argument(
        "--workers", type=int, nargs="+", default=None, help="worker counts, 1 first (1 3)"
    )
    cli_args.add_argument("--lease", type=float, default=None, help="batch run --lease (60)")
    cli_args.add_argument("--file-kib", type=int, default=None, help="file size (4 KiB)")
    cli_args.add_argument("--json", type=Path, default=None, help="write the results here")
    args = cli_args.parse_args(argv)
    apply_quick(args, DEFAULTS, QUICK)
    args.era = args.era or "a"
    if args.era == "both":
        cli_args.error("one era at a time (--era a or --era b)")

    server = postgres_server()
    if isinstance(server, str):
        print(f"scale_out needs a PostgreSQL server: {server}", file=sys.stderr)
        return 2
    rows = []
    work = Path(tempfile.mkdtemp(prefix="diffio-bench-scale-"))
    try:
        with (
            server as postgres,
            Emulator(
                args.era, generation_seconds=args.generation_seconds, storage_dir=work / "emulator"
            ) as emulator,
        ):
            ledger = postgres.url()
            subprocess.run(  # creates the schema, so no worker run pays for it
                cli("batch", "status", "warm-up", "--ledger", ledger, "--json"),
                check=True,
                capture_output=True,
            )
            for workers in args.workers:
                row = run_one(workers, args, ledger, emulator, work)
                rows.append(row)
                print(
                    f"  {workers} worker(s): {row['seconds']:.1f} s, last file done at "
                    f"{row['last_done_s']:.1f} s, {row['intact']}/{row['files']} intact, "
                    f"{row['generations']} generations",
                    file=sys.stderr,
                    flush=True,
                )
        emulator_usage = emulator.usage
    finally:
        shutil.rmtree(work, ignore_errors=True)

    base = rows[0]
    for row in rows:
        row["speedup"] = base["seconds"] / row["seconds"]
        row["speedup_last_done"] = base["last_done_s"] / row["last_done_s"]
        row["ideal_speedup"] = base["ideal_s"] / row["ideal_s"]
        row["speedup_after_startup"] = (base["last_done_s"] - base["startup_s"]) / (
            row["last_done_s"] - row["startup_s"]
        )
    print()
    print_table(COLUMNS, rows)
    print(
        f"\ntarget: {max(args.workers)} workers at least {TARGET}x faster than "
        f"{base['workers']} (G = {args.generation_seconds:g} s, C = {args.concurrency}, "
        f"lease {args.lease:g} s)"
    )
    settings = {
        key: getattr(args, key)
        for key in (
            "files",
            "generation_seconds",
            "concurrency",
            "workers",
            "lease",
            "file_kib",
            "era",
        )
    }
    report = {
        "benchmark": "scale_out",
        "settings": settings,
        "env": environment(),
        "emulator_usage": emulator_usage,
        "target_speedup": TARGET,
        "rows": rows,
    }
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")
        path = args.json
    else:
        path = write_results("scale_out", report)
    print(f"\nwritten: {path}")
    return 0 if all(row["check"] == "ok" for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
