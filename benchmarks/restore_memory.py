"""Memory benchmark: restore a large file end to end and measure how much this process grows.

The emulator runs in a separate process (``python -m diffio_async.emulator``, media on disk),
so only the SDK's own memory is measured here. For each backend (asyncio, trio) and era, the
script runs one small warm-up restore, resets the kernel's peak-RSS counter, restores the big
file with ``AsyncDiffio.restore`` (upload, generation, wait, download), checks that the
downloaded bytes have the same sha256 as the uploaded ones, and reports the peak RSS growth.

    python benchmarks/restore_memory.py                     # 1 GiB, asyncio and trio, era a
    python benchmarks/restore_memory.py --size-mib 64 --era both

Peak RSS comes from ``VmHWM`` in ``/proc/self/status`` after resetting it through
``/proc/self/clear_refs`` (Linux); where that is not possible it falls back to
``getrusage(RUSAGE_SELF).ru_maxrss`` (a peak since the process started). Results are printed
as a table and written to ``benchmarks/results/restore_memory.json``.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import platform
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio

from diffio_async import AsyncDiffio, __version__

MIB = 1024 * 1024
API_KEY = "diffio_bench_key_0123456789"
LIMIT_MIB = 32.0
RESULTS = Path(__file__).resolve().parent / "results" / "restore_memory.json"


# --- memory ---------------------------------------------------------------------------------


def _status_kib(field: str) -> int | None:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else None


def rss_mib() -> float:
    """Current resident set size."""
    kib = _status_kib("VmRSS")
    if kib is None:  # no /proc: the best we have is the peak
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return kib / 1024


def reset_peak() -> bool:
    """Reset the kernel's peak RSS (VmHWM) to the current RSS; False when not supported."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return _status_kib("VmHWM") is not None


def peak_mib(resettable: bool) -> float:
    """Peak RSS since the last :func:`reset_peak` (or since the process started)."""
    kib = _status_kib("VmHWM") if resettable else None
    if kib is None:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return kib / 1024


# --- files and the emulator -----------------------------------------------------------------


def write_source(path: Path, size: int, seed: int = 20240601) -> str:
    """Write ``size`` pseudo-random bytes in 1 MiB chunks (no holes); return their sha256."""
    rng = random.Random(seed)
    digest = hashlib.sha256()
    with path.open("wb") as out:
        remaining = size
        while remaining:
            chunk = rng.randbytes(min(MIB, remaining))
            out.write(chunk)
            digest.update(chunk)
            remaining -= len(chunk)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(MIB):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def emulator_process(era: str, storage: Path) -> Iterator[str]:
    """Run the emulator in its own process on a free port; yield its base URL."""
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
        "--generation-seconds",
        "1",
        "--storage-dir",
        str(storage),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        match = re.search(r"listening on (http://\S+)", first)
        if match is None:
            raise RuntimeError(f"the emulator did not start: {first!r}")
        yield match.group(1)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- one run --------------------------------------------------------------------------------


async def restore_and_measure(
    base_url: str, source: Path, warmup: Path, out_dir: Path
) -> dict[str, Any]:
    async with AsyncDiffio(API_KEY, base_url) as client:
        # Warm-up: imports, the connection pool, thread pools, TLS-free sockets, caches.
        warm = await client.restore(warmup, output=out_dir / "warmup.mp3")
        warm.output.unlink()
        gc.collect()
        resettable = reset_peak()
        before = rss_mib()
        started = time.perf_counter()
        result = await client.restore(source, output=out_dir / "restored.mp3")
        elapsed = time.perf_counter() - started
        peak = peak_mib(resettable)
        after = rss_mib()
    return {
        "output": str(result.output),
        "timings_s": {k: round(v, 3) for k, v in result.timings.items()},
        "total_s": round(elapsed, 3),
        "rss_before_mib": round(before, 1),
        "rss_peak_mib": round(peak, 1),
        "rss_after_mib": round(after, 1),
        "rss_growth_mib": round(peak - before, 1),
        "peak_source": "VmHWM (reset)" if resettable else "ru_maxrss (since start)",
        "project_id": result.project_id,
        "generation_id": result.generation_id,
    }


def run(backend: str, era: str, source: Path, expected: str, work: Path) -> dict[str, Any]:
    storage = work / f"emulator-{backend}-{era}"
    out_dir = work / f"out-{backend}-{era}"
    out_dir.mkdir()
    warmup = work / "warmup.wav"
    if not warmup.exists():
        write_source(warmup, MIB, seed=1)
    with emulator_process(era, storage) as base_url:
        row = anyio.run(restore_and_measure, base_url, source, warmup, out_dir, backend=backend)
    output = Path(row.pop("output"))
    row["sha256_equal"] = sha256_of(output) == expected
    output.unlink()
    shutil.rmtree(storage, ignore_errors=True)
    size = source.stat().st_size
    row.update(
        backend=backend,
        era=era,
        size_mib=round(size / MIB, 1),
        throughput_mib_s=round(2 * size / MIB / row["total_s"], 1),  # up + down
        ok=row["sha256_equal"] and row["rss_growth_mib"] < LIMIT_MIB,
    )
    return row


def print_table(rows: list[dict[str, Any]]) -> None:
    header = (
        f"{'backend':8} {'era':3} {'size MiB':>8} {'upload s':>8} {'wait s':>6} "
        f"{'download s':>10} {'total s':>7} {'MiB/s':>6} {'sha256':>6} "
        f"{'RSS before':>10} {'RSS peak':>8} {'growth MiB':>10} {'< 32 MiB':>8}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        t = row["timings_s"]
        print(
            f"{row['backend']:8} {row['era']:3} {row['size_mib']:8.0f} {t['upload']:8.2f} "
            f"{t['wait']:6.2f} {t['download']:10.2f} {row['total_s']:7.2f} "
            f"{row['throughput_mib_s']:6.0f} {'equal' if row['sha256_equal'] else 'DIFF':>6} "
            f"{row['rss_before_mib']:10.1f} {row['rss_peak_mib']:8.1f} "
            f"{row['rss_growth_mib']:10.1f} {'yes' if row['ok'] else 'NO':>8}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="file size (default 1024)")
    parser.add_argument("--backend", choices=("asyncio", "trio", "both"), default="both")
    parser.add_argument("--era", choices=("a", "b", "both"), default="a")
    parser.add_argument("--workdir", type=Path, default=None, help="default: a temp folder")
    args = parser.parse_args(argv)

    start_rss = rss_mib()  # after imports, before any file or client exists
    backends = ["asyncio", "trio"] if args.backend == "both" else [args.backend]
    eras = ["a", "b"] if args.era == "both" else [args.era]
    work = Path(tempfile.mkdtemp(prefix="diffio-bench-", dir=args.workdir))
    try:
        source = work / "recording.wav"
        print(f"writing {args.size_mib} MiB of pseudo-random data to {source} ...", flush=True)
        expected = write_source(source, args.size_mib * MIB)
        rows = []
        for era in eras:
            for backend in backends:
                print(f"restoring on {backend}, era {era} ...", flush=True)
                rows.append(run(backend, era, source, expected, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    overall_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    overall = round(overall_peak - start_rss, 1)
    print()
    print_table(rows)
    print(
        f"\nwhole process: {start_rss:.1f} MiB after imports, peak {overall_peak:.1f} MiB "
        f"(ru_maxrss) over every run and warm-up: +{overall:.1f} MiB"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "benchmark": "restore_memory",
        "limit_mib": LIMIT_MIB,
        "diffio_async": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "pid": os.getpid(),
        "rss_after_imports_mib": round(start_rss, 1),
        "ru_maxrss_peak_mib": round(overall_peak, 1),
        "whole_process_growth_mib": overall,
        "rows": rows,
    }
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {RESULTS}")
    return 0 if all(row["ok"] for row in rows) and overall < LIMIT_MIB else 1


if __name__ == "__main__":
    sys.exit(main())
