"""How much memory do queued sources add to restore_many? (Issue: 10,000 sources < 20 MiB.)

Runs the emulator in a separate process (so its state is not counted), then, for each batch
size, a fresh child process that restores that many tiny files with ``restore_many`` (the
sources passed as a list of paths) and reports its max RSS (and, with ``--heap``, its Python
heap peak via tracemalloc). The memory the queue adds is the difference between the large
batch and a 100-file baseline measured in the same run.

    python benchmarks/bulk_memory.py                 # 100 vs 10,000 files, asyncio and trio
    python benchmarks/bulk_memory.py --sizes 100 2000 --backends trio

Prints a table and writes benchmarks/results/bulk_memory.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from diffio_async import BatchOptions, RestoreOptions

KEY = "diffio_live_benchmark_key"
RESULTS = Path(__file__).parent / "results"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child(size: int, backend: str, url: str, folder: Path, heap: bool) -> dict[str, float]:
    """Restore ``size`` files (already on disk in ``folder``); measure this process."""
    import anyio

    from diffio_async import AsyncDiffio, PollPolicy

    paths = [folder / f"f{index:05}.wav" for index in range(size)]
    out = Path(tempfile.mkdtemp(prefix="bulk-out-"))

    async def run() -> int:
        ok = 0
        async with AsyncDiffio(KEY, url) as client:
            if heap:
                tracemalloc.start()
            async with client.restore_many(
                paths,
                output_dir=out,
                options=RestoreOptions(poll=PollPolicy(initial=0.02, maximum=0.2)),
                batch=BatchOptions(concurrency=32),
            ) as results:
                async for item in results:
                    ok += item.ok
        return ok

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    ok = anyio.run(run, backend=backend)
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory() if heap else (0, float("nan"))
    return {
        "files": size,
        "ok": ok,
        "seconds": seconds,
        "heap_peak_mib": peak / 2**20,
        "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_before_mib": rss_before,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[100, 10_000], metavar=("BASE", "N"))
    parser.add_argument("--backends", nargs="+", default=["asyncio", "trio"])
    parser.add_argument(
        "--heap", action="store_true", help="also trace the Python heap (tracemalloc, ~3x slower)"
    )
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        size, backend, url, folder, heap = args.child
        print(json.dumps(child(int(size), backend, url, Path(folder), heap == "1")))
        return 0

    base, large = args.sizes
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "diffio_async.emulator",
            "--port",
            str(port),
            "--api-key",
            KEY,
            "--generation-seconds",
            "0.05",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert server.stdout is not None
        server.stdout.readline()  # "... listening on http://..."
        url = f"http://127.0.0.1:{port}"
        with tempfile.TemporaryDirectory(prefix="bulk-in-") as folder:
            for index in range(large):
                Path(folder, f"f{index:05}.wav").write_bytes(b"RIFF" + index.to_bytes(4, "big"))
            rows = []
            for backend in args.backends:
                for size in (base, large):
                    done = subprocess.run(
                        [
                            sys.executable,
                            __file__,
                            "--child",
                            str(size),
                            backend,
                            url,
                            folder,
                            "1" if args.heap else "0",
                        ],
                        capture_output=True,
                        text=True,
                        check=True,
                    )
                    row = json.loads(done.stdout.strip().splitlines()[-1])
                    row["backend"] = backend
                    rows.append(row)
                    print(f"  {backend:7} {size:6} files: {row['seconds']:.1f} s", file=sys.stderr)
    finally:
        server.terminate()
        server.wait(timeout=10)

    print(f"\n{'backend':8} {'files':>7} {'ok':>7} {'seconds':>8} {'heap peak':>10} {'max RSS':>9}")
    for row in rows:
        heap = "-" if math.isnan(row["heap_peak_mib"]) else f"{row['heap_peak_mib']:.2f} MiB"
        print(
            f"{row['backend']:8} {row['files']:7d} {row['ok']:7d} {row['seconds']:8.1f} "
            f"{heap:>10} {row['max_rss_mib']:6.1f} MiB"
        )
    summary = {}
    for backend in args.backends:
        small, big = (r for r in rows if r["backend"] == backend)
        added_heap = big["heap_peak_mib"] - small["heap_peak_mib"]
        added_rss = big["max_rss_mib"] - small["max_rss_mib"]
        summary[backend] = {"added_heap_mib": added_heap, "added_rss_mib": added_rss}
        verdict = "OK" if added_rss < 20 and not added_heap >= 20 else "OVER 20 MiB"
        heap_text = "" if math.isnan(added_heap) else f"{added_heap:.2f} MiB of heap and "
        print(
            f"{backend}: {large - base} more queued files add {heap_text}"
            f"{added_rss:.1f} MiB of max RSS ({verdict})"
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bulk_memory.json").write_text(
        json.dumps({"rows": rows, "added": summary}, indent=2)
    )
    return 0


if __name__ == "__main__":
    os.environ.pop("DIFFIO_API_BASE_URL", None)
    sys.exit(main())
