"""memory: how much the SDK's own memory grows, for one huge file and for a long queue.

Three parts (the first two formerly ``restore_memory.py`` and ``bulk_memory.py``), every
measurement in its own child process against an emulator process (media on disk), so only
the SDK is measured:

* ``restore``: one large file (default 1 GiB of pseudo-random bytes) restored end to end with
  ``AsyncDiffio.restore`` (upload, generation, wait, download) per backend and era. The child
  first restores a 1 MiB warm-up file (imports, pool, caches), resets the kernel's peak-RSS
  counter (``/proc/self/clear_refs``, then ``VmHWM``; where that is impossible it falls back
  to ``ru_maxrss``, a peak since the start), restores the big file and reports the peak
  growth. The output must have the input's sha256; the growth must stay under 32 MiB.
* ``queue``: ``restore_many`` over a BASE-file and an N-file batch (default 100 and 10,000
  tiny files, concurrency 32, fast polling) per backend; the memory the queue adds is the
  difference of the two children's max RSS (and, with ``--heap``, of their tracemalloc heap
  peaks). It must stay under 20 MiB.
* ``fastapi-upload``: ``examples/fastapi_upload.py`` served by uvicorn in a child process;
  this process posts one large multipart upload (default 1 GiB, generated as it is sent,
  never on disk on the client side) per era, which the example restores (upload to the
  emulator, generation, download). The server first takes a 1 MiB warm-up upload, then
  resets its peak RSS; its peak growth during the big request must stay under 32 MiB, and
  the emulator must have stored the sha256 that was sent. Not part of ``--part both``.
* ``s3-restore``: one large object (default 1 GiB) restored from a local S3 to it with
  ``restore_many(["s3://..."], output_dir="s3://...")`` per backend and era: moto's server
  in its own process (objects in its memory), the emulator in its own process, the SDK in
  the measured child (warm-up object first, then the peak reset as for ``restore``). The
  source streams from the bucket into the upload and the output from the media URL into the
  bucket; the output object must have the source's sha256 and the growth must stay under
  32 MiB. Needs the ``cloud`` extra and ``moto[server]``. Not part of ``--part both``.

    python benchmarks/memory.py                          # both parts: 1 GiB, 100 vs 10,000
    python benchmarks/memory.py --quick                  # 64 MiB, 100 vs 1,000
    python benchmarks/memory.py --part restore --size-mib 64 --era both
    python benchmarks/memory.py --part queue --sizes 100 2000 --backends trio --heap
    python benchmarks/memory.py --part fastapi-upload --size-mib 1024 --era both
    python benchmarks/memory.py --part s3-restore --size-mib 1024 --era both

Prints the tables, writes benchmarks/results/memory.json and memory.png; exits 1 when a
check fails (bytes differ, a growth over its limit).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import importlib.util
import json
import math
import os
import random
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from _common import (
    API_KEY,
    MIB,
    Emulator,
    Process,
    Server,
    apply_quick,
    environment,
    eras,
    grouped_bars,
    parser,
    print_table,
    run_child,
    save_chart,
    write_results,
)

RESTORE_LIMIT_MIB = 32.0
S3_LIMIT_MIB = 32.0
S3_SECRET = "bench-fake-secret"
UPLOAD_LIMIT_MIB = 32.0
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
QUEUE_LIMIT_MIB = 20.0
DEFAULTS = {
    "part": "both",
    "size_mib": 1024,
    "sizes": [100, 10_000],
    "backends": ["asyncio", "trio"],
    "era": "a",
}
QUICK = {"size_mib": 64, "sizes": [100, 1000]}


# --- memory of this process -----------------------------------------------------------------


def _status_kib(field: str) -> int | None:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    match = re.search(rf"^{field}:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) if match else None


def rss_mib() -> float:
    """Current resident set size (the peak where there is no ``/proc``)."""
    kib = _status_kib("VmRSS")
    if kib is None:
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


# --- files ----------------------------------------------------------------------------------


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
    """The sha256 of a file, read 1 MiB at a time."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(MIB):
            digest.update(chunk)
    return digest.hexdigest()


# --- children -------------------------------------------------------------------------------


async def measured_restore(
    restore: Callable[[], Awaitable[Any]], after_imports: float
) -> dict[str, Any]:
    """Reset the peak, run ``restore()`` (warmed up already); report its RSS growth."""
    gc.collect()
    resettable = reset_peak()
    before = rss_mib()
    started = time.perf_counter()
    result = await restore()
    elapsed = time.perf_counter() - started
    peak = peak_mib(resettable)
    after = rss_mib()
    return {
        "output": str(result.output),
        "timings_s": {k: round(v, 3) for k, v in result.timings.items()},
        "total_s": round(elapsed, 3),
        "rss_after_imports_mib": round(after_imports, 1),
        "rss_before_mib": round(before, 1),
        "rss_peak_mib": round(peak, 1),
        "rss_after_mib": round(after, 1),
        "rss_growth_mib": round(peak - before, 1),
        "peak_source": "VmHWM (reset)" if resettable else "ru_maxrss (since start)",
    }


def child_restore(spec: dict[str, Any]) -> dict[str, Any]:
    """Warm up, reset the peak, restore the big file; report the growth."""
    import anyio

    from diffio_async import AsyncDiffio

    after_imports = rss_mib()
    out_dir = Path(spec["out_dir"])

    async def run() -> dict[str, Any]:
        async with AsyncDiffio(API_KEY, spec["url"]) as client:
            warm = await client.restore(spec["warmup"], output=out_dir / "warmup.mp3")
            warm.output.unlink()
            return await measured_restore(
                lambda: client.restore(spec["source"], output=out_dir / "restored.mp3"),
                after_imports,
            )

    report = anyio.run(run, backend=spec["backend"])
    report["ru_maxrss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return report


def child_queue(spec: dict[str, Any]) -> dict[str, Any]:
    """Restore ``size`` tiny files (already on disk) with ``restore_many``; measure."""
    import tracemalloc

    import anyio

    from diffio_async import AsyncDiffio, BatchOptions, PollPolicy, RestoreOptions

    folder = Path(spec["folder"])
    paths = [folder / f"f{index:05}.wav" for index in range(spec["size"])]
    out = Path(spec["out_dir"])
    heap = spec["heap"]

    async def run() -> int:
        ok = 0
        async with AsyncDiffio(API_KEY, spec["url"]) as client:
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
    ok = anyio.run(run, backend=spec["backend"])
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] / MIB if heap else float("nan")
    return {
        "files": spec["size"],
        "ok": ok,
        "seconds": seconds,
        "heap_peak_mib": peak,
        "max_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_before_mib": rss_before,
    }


def child_s3_restore(spec: dict[str, Any]) -> dict[str, Any]:
    """Warm up, reset the peak, restore the big object bucket to bucket; report the growth."""
    import anyio

    from diffio_async import AsyncDiffio

    os.environ.update(spec["environment"])
    after_imports = rss_mib()

    async def restore(client: Any, source: str, output_dir: str) -> Any:
        async with client.restore_many([source], output_dir=output_dir) as results:
            [result] = [item async for item in results]
        if not result.ok:
            raise RuntimeError(f"{source}: {result.stage}: {result.error}")
        return result

    async def run() -> dict[str, Any]:
        async with AsyncDiffio(API_KEY, spec["url"]) as client:
            await restore(client, spec["warmup"], spec["warmup_out"])
            return await measured_restore(
                lambda: restore(client, spec["source"], spec["out"]), after_imports
            )

    return anyio.run(run, backend=spec["backend"])


def child(spec: dict[str, Any]) -> int:
    children = {"restore": child_restore, "queue": child_queue, "s3-restore": child_s3_restore}
    report = children[spec["part"]](spec)
    print(json.dumps(report), flush=True)
    return 0


def _child_command(spec: dict[str, Any]) -> list[str]:
    return [sys.executable, __file__, "--child", json.dumps(spec)]


# --- the restore part -----------------------------------------------------------------------


def restore_part(args: Any, work: Path) -> list[dict[str, Any]]:
    """One large restore per era and backend, each in its own child."""
    source = work / "recording.wav"
    warmup = work / "warmup.wav"
    print(f"writing {args.size_mib} MiB of pseudo-random data to {source} ...", file=sys.stderr)
    expected = write_source(source, args.size_mib * MIB)
    write_source(warmup, MIB, seed=1)
    size = source.stat().st_size
    rows = []
    for era in eras(args.era):
        for backend in args.backends:
            print(f"  restore: {backend}, era {era} ...", file=sys.stderr, flush=True)
            storage = work / f"emulator-{backend}-{era}"
            out_dir = work / f"out-{backend}-{era}"
            out_dir.mkdir()
            with Emulator(era, generation_seconds=1, storage_dir=storage) as emulator:
                spec = {
                    "part": "restore",
                    "backend": backend,
                    "url": emulator.url,
                    "source": str(source),
                    "warmup": str(warmup),
                    "out_dir": str(out_dir),
                }
                row = run_child(_child_command(spec), timeout=3600)
            output = Path(row.pop("output"))
            row["sha256_equal"] = sha256_of(output) == expected
            shutil.rmtree(out_dir, ignore_errors=True)
            shutil.rmtree(storage, ignore_errors=True)
            rows.append(restore_row(row, backend, era, size, RESTORE_LIMIT_MIB))
    return rows


def restore_row(
    row: dict[str, Any], backend: str, era: str, size: int, limit_mib: float
) -> dict[str, Any]:
    """A child's report (with ``sha256_equal``) completed into a table row: the run, its
    throughput (up and down), its stages, and whether it stayed under ``limit_mib``."""
    row.update(
        backend=backend,
        era=era,
        size_mib=round(size / MIB, 1),
        throughput_mib_s=round(2 * size / MIB / row["total_s"], 1),  # up + down
        ok=row["sha256_equal"] and row["rss_growth_mib"] < limit_mib,
    )
    for stage in ("upload", "wait", "download"):
        row[f"{stage}_s"] = row["timings_s"].get(stage)
    row["sha256"] = "equal" if row["sha256_equal"] else "DIFF"
    row["verdict"] = "yes" if row["ok"] else "NO"
    return row


RESTORE_COLUMNS = [
    ("backend", "backend", ""),
    ("era", "era", ""),
    ("size MiB", "size_mib", ".0f"),
    ("upload s", "upload_s", ".2f"),
    ("wait s", "wait_s", ".2f"),
    ("download s", "download_s", ".2f"),
    ("total s", "total_s", ".2f"),
    ("MiB/s", "throughput_mib_s", ".0f"),
    ("sha256", "sha256", ""),
    ("RSS before", "rss_before_mib", ".1f"),
    ("RSS peak", "rss_peak_mib", ".1f"),
    ("growth MiB", "rss_growth_mib", ".1f"),
    (f"< {RESTORE_LIMIT_MIB:.0f} MiB", "verdict", ""),
]


# --- the queue part -------------------------------------------------------------------------


def queue_part(args: Any, work: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """BASE and N files per backend, each in its own child; the difference is the queue's."""
    base, large = args.sizes
    folder = work / "queue-in"
    folder.mkdir()
    for index in range(large):
        (folder / f"f{index:05}.wav").write_bytes(b"RIFF" + index.to_bytes(4, "big"))
    rows = []
    summary: dict[str, Any] = {}
    for era in eras(args.era):
        with Emulator(era, generation_seconds=0.05) as emulator:
            for backend in args.backends:
                pair = []
                for size in (base, large):
                    out_dir = work / f"queue-out-{backend}-{era}-{size}"
                    spec = {
                        "part": "queue",
                        "backend": backend,
                        "url": emulator.url,
                        "folder": str(folder),
                        "size": size,
                        "out_dir": str(out_dir),
                        "heap": args.heap,
                    }
                    row = run_child(_child_command(spec), timeout=3600)
                    shutil.rmtree(out_dir, ignore_errors=True)
                    heap = row["heap_peak_mib"]
                    row.update(
                        backend=backend,
                        era=era,
                        heap_text="-" if math.isnan(heap) else f"{heap:.2f}",
                    )
                    pair.append(row)
                    print(
                        f"  queue: {backend}, era {era}, {size:6} files: {row['seconds']:.1f} s",
                        file=sys.stderr,
                    )
                rows.extend(pair)
                small, big = pair
                added_heap = big["heap_peak_mib"] - small["heap_peak_mib"]
                added_rss = big["max_rss_mib"] - small["max_rss_mib"]
                summary[f"{backend}, era {era}"] = {
                    "added_heap_mib": added_heap,
                    "added_rss_mib": added_rss,
                    "ok": added_rss < QUEUE_LIMIT_MIB and not added_heap >= QUEUE_LIMIT_MIB,
                    "all_restored": small["ok"] == small["files"] and big["ok"] == big["files"],
                }
    return rows, summary


QUEUE_COLUMNS = [
    ("backend", "backend", ""),
    ("era", "era", ""),
    ("files", "files", "d"),
    ("ok", "ok", "d"),
    ("seconds", "seconds", ".1f"),
    ("heap peak MiB", "heap_text", ""),
    ("max RSS MiB", "max_rss_mib", ".1f"),
]


# --- the fastapi-upload part ----------------------------------------------------------------


def _memory_route(app: Any) -> Any:
    """``app`` plus ``/_bench/memory``: POST resets the peak RSS, GET reads it (JSON)."""
    state = {"resettable": False}

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/_bench/memory":
            await app(scope, receive, send)
            return
        if scope["method"] == "POST":
            gc.collect()
            state["resettable"] = reset_peak()
        body = json.dumps(
            {
                "rss_mib": round(rss_mib(), 1),
                "peak_mib": round(peak_mib(state["resettable"]), 1),
                "peak_source": "VmHWM (reset)" if state["resettable"] else "ru_maxrss",
            }
        ).encode()
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return wrapped


def serve_fastapi(spec: dict[str, Any]) -> int:
    """The server child: the FastAPI example (with the memory route) under uvicorn."""
    import uvicorn

    os.environ.update(
        DIFFIO_API_KEY=API_KEY, DIFFIO_API_BASE_URL=spec["url"], RESTORED_DIR=spec["out_dir"]
    )
    module_spec = importlib.util.spec_from_file_location(
        "fastapi_upload", EXAMPLES / "fastapi_upload.py"
    )
    assert module_spec is not None and module_spec.loader is not None
    example = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(example)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    print(f"listening on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(
        _memory_route(example.app), lifespan="on", log_level="warning", access_log=False
    )
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def _multipart_upload(size: int, seed: int, digest: Any) -> tuple[dict[str, str], Iterator[bytes]]:
    """A multipart/form-data body with one ``file`` of ``size`` pseudo-random bytes, made as
    it is sent (hashed into ``digest``)."""
    boundary = "diffio-bench-5d2e91"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
        f'filename="recording.wav"\r\nContent-Type: audio/wav\r\n\r\n'
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def body() -> Iterator[bytes]:
        yield head
        rng = random.Random(seed)
        remaining = size
        while remaining:
            chunk = rng.randbytes(min(MIB, remaining))
            digest.update(chunk)
            remaining -= len(chunk)
            yield chunk
        yield tail

    headers = {
        "Content-Type": f"multipart/form-data; boundary={boundary}",
        "Content-Length": str(len(head) + size + len(tail)),
    }
    return headers, body()


def _post_upload(http: Any, url: str, size: int, seed: int) -> tuple[dict[str, Any], str]:
    digest = hashlib.sha256()
    headers, body = _multipart_upload(size, seed, digest)
    answer = http.post(f"{url}/restore", content=body, headers=headers)
    answer.raise_for_status()
    return answer.json(), digest.hexdigest()


def fastapi_upload_part(args: Any, work: Path) -> list[dict[str, Any]]:
    """Per era: the example in its own process, a warm-up, then the big upload, measured."""
    import httpx2

    size = args.size_mib * MIB
    rows = []
    for era in eras(args.era):
        print(f"  fastapi-upload: era {era}, {args.size_mib} MiB ...", file=sys.stderr, flush=True)
        storage = work / f"emulator-fastapi-{era}"
        out_dir = work / f"out-fastapi-{era}"
        with Emulator(era, generation_seconds=1, storage_dir=storage) as emulator:
            spec = {"url": emulator.url, "out_dir": str(out_dir)}
            command = [sys.executable, __file__, "--serve-fastapi", json.dumps(spec)]
            with (
                Server(command, "the FastAPI example") as server,
                httpx2.Client(timeout=3600) as http,
            ):
                _post_upload(http, server.url, MIB, seed=1)  # warm-up
                before = http.post(f"{server.url}/_bench/memory").json()
                started = time.perf_counter()
                reply, sent = _post_upload(http, server.url, size, seed=20240601)
                seconds = time.perf_counter() - started
                after = http.get(f"{server.url}/_bench/memory").json()
            stored = sha256_of(storage / "originals" / reply["projectId"])
        shutil.rmtree(out_dir, ignore_errors=True)
        shutil.rmtree(storage, ignore_errors=True)
        growth = round(after["peak_mib"] - before["rss_mib"], 1)
        row = {
            "era": era,
            "size_mib": args.size_mib,
            "status": reply["status"],
            "request_s": round(seconds, 2),
            "throughput_mib_s": round(args.size_mib / seconds, 1),
            "sha256_equal": stored == sent,
            "rss_before_mib": before["rss_mib"],
            "rss_peak_mib": after["peak_mib"],
            "rss_after_mib": after["rss_mib"],
            "rss_growth_mib": growth,
            "peak_source": after["peak_source"],
        }
        row["ok"] = row["sha256_equal"] and growth < UPLOAD_LIMIT_MIB
        row["sha256"] = "equal" if row["sha256_equal"] else "DIFF"
        row["verdict"] = "yes" if row["ok"] else "NO"
        rows.append(row)
    return rows


UPLOAD_COLUMNS = [
    ("era", "era", ""),
    ("size MiB", "size_mib", ".0f"),
    ("status", "status", ""),
    ("request s", "request_s", ".2f"),
    ("MiB/s", "throughput_mib_s", ".0f"),
    ("sha256", "sha256", ""),
    ("RSS before", "rss_before_mib", ".1f"),
    ("RSS peak", "rss_peak_mib", ".1f"),
    ("growth MiB", "rss_growth_mib", ".1f"),
    (f"< {UPLOAD_LIMIT_MIB:.0f} MiB", "verdict", ""),
]


# --- the s3-restore part --------------------------------------------------------------------


@contextlib.contextmanager
def moto_server() -> Iterator[dict[str, str]]:
    """moto's S3 server in its own process on a free loopback port; yields the environment
    that points s3fs at it (fake credentials)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = Process(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(600):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("moto.server did not start")
        yield {
            "AWS_ACCESS_KEY_ID": "bench-access-key",
            "AWS_SECRET_ACCESS_KEY": S3_SECRET,
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    finally:
        process.stop()


def _put_object(fs: Any, path: str, size: int, seed: int) -> str:
    """Upload ``size`` pseudo-random bytes to ``path`` 1 MiB at a time; return the sha256."""
    rng = random.Random(seed)
    digest = hashlib.sha256()
    with fs.open(path, "wb", block_size=8 * MIB) as out:
        remaining = size
        while remaining:
            chunk = rng.randbytes(min(MIB, remaining))
            out.write(chunk)
            digest.update(chunk)
            remaining -= len(chunk)
    return digest.hexdigest()


def _object_sha256(fs: Any, path: str) -> str:
    digest = hashlib.sha256()
    with fs.open(path, "rb", block_size=8 * MIB) as handle:
        while chunk := handle.read(MIB):
            digest.update(chunk)
    return digest.hexdigest()


def s3_restore_part(args: Any, work: Path) -> list[dict[str, Any]]:
    """One large object restored bucket to bucket per era and backend, each in its child."""
    size = args.size_mib * MIB
    rows = []
    with moto_server() as s3_environment:
        os.environ.update(s3_environment)
        import s3fs

        s3fs.S3FileSystem.clear_instance_cache()
        fs = s3fs.S3FileSystem()
        fs.mkdir("bench-src")
        fs.mkdir("bench-dst")
        print(f"uploading {args.size_mib} MiB to s3://bench-src ...", file=sys.stderr)
        expected = _put_object(fs, "bench-src/recording.wav", size, seed=20240601)
        _put_object(fs, "bench-src/warmup.wav", MIB, seed=1)
        for era in eras(args.era):
            for backend in args.backends:
                print(f"  s3-restore: {backend}, era {era} ...", file=sys.stderr, flush=True)
                storage = work / f"emulator-s3-{backend}-{era}"
                with Emulator(era, generation_seconds=1, storage_dir=storage) as emulator:
                    spec = {
                        "part": "s3-restore",
                        "backend": backend,
                        "url": emulator.url,
                        "environment": s3_environment,
                        "source": "s3://bench-src/recording.wav",
                        "warmup": "s3://bench-src/warmup.wav",
                        "out": f"s3://bench-dst/{backend}-{era}",
                        "warmup_out": f"s3://bench-dst/warmup-{backend}-{era}",
                    }
                    row = run_child(_child_command(spec), timeout=3600)
                shutil.rmtree(storage, ignore_errors=True)
                output = row.pop("output")
                fs.invalidate_cache()
                row["sha256_equal"] = _object_sha256(fs, output) == expected
                fs.rm(output)
                rows.append(restore_row(row, backend, era, size, S3_LIMIT_MIB))
    return rows


# --- outputs --------------------------------------------------------------------------------


def chart(restore_rows: list[dict[str, Any]], summary: dict[str, Any], args: Any) -> Any:
    """Two panels: the restore's peak growth, the queue's added memory."""

    def draw(pyplot: Any) -> Any:
        figure, panels = pyplot.subplots(1, 2, figsize=(11, 4.2))
        groups = sorted({row["era"] for row in restore_rows})
        table = {(row["era"], row["backend"]): row["rss_growth_mib"] for row in restore_rows}
        grouped_bars(
            panels[0],
            [f"era {era}" for era in groups],
            {b: [table.get((era, b)) for era in groups] for b in args.backends},
            title=f"restore of {args.size_mib} MiB: peak RSS growth",
            ylabel="MiB",
            reference=RESTORE_LIMIT_MIB,
        )
        backends = list(summary)
        grouped_bars(
            panels[1],
            backends,
            {
                "max RSS": [summary[b]["added_rss_mib"] for b in backends],
                **(
                    {"heap (tracemalloc)": [summary[b]["added_heap_mib"] for b in backends]}
                    if args.heap
                    else {}
                ),
            },
            title=f"queue: memory {args.sizes[1]} files add over {args.sizes[0]}",
            ylabel="MiB",
            reference=QUEUE_LIMIT_MIB,
        )
        for panel in panels:
            panel.legend(fontsize=8)
        figure.suptitle("memory (dashed: the limit)")
        return figure

    return draw


def main(argv: list[str] | None = None) -> int:
    cli = parser(__doc__.split("\n\n")[0])
    cli.add_argument(
        "--part",
        choices=("restore", "queue", "both", "fastapi-upload", "s3-restore", "all"),
        default=None,
    )
    cli.add_argument(
        "--size-mib",
        type=int,
        default=None,
        help="restore, fastapi-upload, s3-restore: file size (1024)",
    )
    cli.add_argument(
        "--sizes", type=int, nargs=2, default=None, metavar=("BASE", "N"), help="queue: 100 10000"
    )
    cli.add_argument("--backends", nargs="+", choices=("asyncio", "trio"), default=None)
    cli.add_argument("--heap", action="store_true", help="queue: also trace the heap (~3x slower)")
    cli.add_argument("--workdir", type=Path, default=None, help="default: a temp folder")
    cli.add_argument("--child", help=argparse.SUPPRESS)
    cli.add_argument("--serve-fastapi", help=argparse.SUPPRESS)
    args = cli.parse_args(argv)
    if args.child:
        return child(json.loads(args.child))
    if args.serve_fastapi:
        return serve_fastapi(json.loads(args.serve_fastapi))
    apply_quick(args, DEFAULTS, QUICK)

    restore_rows: list[dict[str, Any]] = []
    queue_rows: list[dict[str, Any]] = []
    upload_rows: list[dict[str, Any]] = []
    s3_rows: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}
    work = Path(tempfile.mkdtemp(prefix="diffio-bench-memory-", dir=args.workdir))
    try:
        if args.part in ("restore", "both", "all"):
            restore_rows = restore_part(args, work)
        if args.part in ("queue", "both", "all"):
            queue_rows, summary = queue_part(args, work)
        if args.part in ("fastapi-upload", "all"):
            upload_rows = fastapi_upload_part(args, work)
        if args.part in ("s3-restore", "all"):
            s3_rows = s3_restore_part(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    if restore_rows:
        print(f"\nrestore of one {args.size_mib} MiB file (peak RSS growth of the SDK):")
        print_table(RESTORE_COLUMNS, restore_rows)
    if queue_rows:
        print(f"\nqueue: restore_many over {args.sizes[0]} and {args.sizes[1]} files:")
        print_table(QUEUE_COLUMNS, queue_rows)
        base, large = args.sizes
        for name, added in summary.items():
            heap = added["added_heap_mib"]
            heap_text = "" if math.isnan(heap) else f"{heap:.2f} MiB of heap and "
            verdict = "OK" if added["ok"] else f"OVER {QUEUE_LIMIT_MIB:.0f} MiB"
            print(
                f"{name}: {large - base} more queued files add {heap_text}"
                f"{added['added_rss_mib']:.1f} MiB of max RSS ({verdict})"
            )
    if upload_rows:
        print(
            f"\nfastapi-upload: one {args.size_mib} MiB multipart upload through "
            "examples/fastapi_upload.py (peak RSS growth of the server process):"
        )
        print_table(UPLOAD_COLUMNS, upload_rows)
    if s3_rows:
        print(
            f"\ns3-restore: one {args.size_mib} MiB object restored from a local S3 to it "
            "(peak RSS growth of the SDK):"
        )
        print_table(RESTORE_COLUMNS, s3_rows)
    settings = {
        key: getattr(args, key) for key in ("part", "size_mib", "sizes", "backends", "era", "heap")
    }
    report = {
        "benchmark": "memory",
        "settings": settings,
        "limits_mib": {
            "restore": RESTORE_LIMIT_MIB,
            "queue": QUEUE_LIMIT_MIB,
            "fastapi_upload": UPLOAD_LIMIT_MIB,
            "s3_restore": S3_LIMIT_MIB,
        },
        "env": environment(),
        "restore": restore_rows,
        "queue": {"rows": queue_rows, "added": summary},
        "fastapi_upload": upload_rows,
        "s3_restore": s3_rows,
    }
    path = write_results("memory", report)
    picture = save_chart("memory", chart(restore_rows, summary, args))
    print(f"\nwritten: {path}" + (f", {picture}" if picture else ""))
    passed = all(row["ok"] for row in restore_rows + upload_rows + s3_rows) and all(
        added["ok"] and added["all_restored"] for added in summary.values()
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
