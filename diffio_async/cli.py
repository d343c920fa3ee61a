"""The ``diffio-async`` command: restore files, run the emulator, try the demo, inspect.

::

    diffio-async demo                                  # the whole flow, offline, one command
    diffio-async restore talk.wav interviews/ -o out/ --ledger batch.sqlite
    diffio-async restore talk.wav -o out/ --emulator   # against an in-process emulator
    diffio-async emulator --port 8765 --era b          # a local Diffio for your own code
    diffio-async projects | generations PROJECT_ID | progress GENERATION_ID --project P
    diffio-async download GENERATION_ID --project P -o out/

The key comes from ``--api-key`` or ``DIFFIO_API_KEY``, the server from ``--base-url`` or
``DIFFIO_API_BASE_URL``. Bad input gets a one-line error and exit status 2; ``restore``
exits 1 when any file failed. The live display needs the ``cli`` extra (rich); without it,
plain lines are printed.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import math
import os
import struct
import sys
import tempfile
import wave
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TextIO

import anyio

from ._catalog import KNOWN_MODELS
from .bulk import ItemResult
from .client import AsyncDiffio
from .errors import BatchAbortedError, DiffioError
from .resources.generations import DOWNLOAD_TYPES

__all__ = ["main"]

STAGES = ("hash", "upload", "generation", "wait", "download")


class UsageError(Exception):
    """Bad input: printed as one line, exit status 2."""


# -- argument parsing --------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="diffio-async", description="Restore speech recordings with the Diffio API."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def connection(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--api-key", help="API key (default: $DIFFIO_API_KEY)")
        sub.add_argument("--base-url", help="API base URL (default: $DIFFIO_API_BASE_URL)")

    restore = commands.add_parser("restore", help="restore files or folders")
    restore.add_argument("paths", nargs="+", metavar="PATH", help="files or folders")
    restore.add_argument("-o", "--output-dir", required=True, help="where outputs go")
    restore.add_argument("--model", help=f"model key (known: {', '.join(KNOWN_MODELS)})")
    restore.add_argument("--concurrency", type=int, default=8, help="files in flight (8)")
    restore.add_argument("--ledger", help="SQLite file that makes the batch resumable")
    restore.add_argument("--download-type", default="audio", choices=[*DOWNLOAD_TYPES, "mp3"])
    restore.add_argument("--emulator", action="store_true", help="use an in-process emulator")
    restore.add_argument("--era", choices=["a", "b"], default="a", help="emulator API era")
    restore.add_argument("--json", action="store_true", help="one JSON line per file")
    restore.add_argument("--timeout", type=float, default=1800.0, help="per-file wait (s)")
    connection(restore)

    demo = commands.add_parser("demo", help="restore sample files through the emulator")
    demo.add_argument("--files", type=int, default=6, help="how many sample files (6)")
    demo.add_argument("--era", choices=["a", "b"], default="a", help="emulator API era")
    demo.add_argument("-o", "--output-dir", help="keep the outputs here")

    emulator = commands.add_parser(
        "emulator", help="serve a local Diffio API", add_help=False, prefix_chars="\0"
    )
    emulator.add_argument("rest", nargs=argparse.REMAINDER)

    projects = commands.add_parser("projects", help="list projects")
    connection(projects)
    generations = commands.add_parser("generations", help="list a project's generations")
    generations.add_argument("project_id")
    connection(generations)
    progress = commands.add_parser("progress", help="show a generation's progress")
    progress.add_argument("generation_id")
    progress.add_argument("--project", help="its project id")
    connection(progress)
    download = commands.add_parser("download", help="download a generation's result")
    download.add_argument("generation_id")
    download.add_argument("--project", required=True, help="its project id")
    download.add_argument("-o", "--output", required=True, help="file or folder")
    download.add_argument("--download-type", default="audio", choices=[*DOWNLOAD_TYPES, "mp3"])
    connection(download)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``diffio-async`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "emulator":
        from .emulator import run_cli

        return run_cli(list(args.rest), prog="diffio-async emulator")
    try:
        return anyio.run(_run, args)
    except UsageError as exc:
        print(f"diffio-async: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("diffio-async: interrupted", file=sys.stderr)
        return 130


async def _run(args: argparse.Namespace) -> int:
    if args.command == "demo":
        return await _demo(args)
    if args.command == "restore":
        return await _restore(args)
    async with _client(args) as client:
        try:
            return await _inspect(client, args)
        except DiffioError as exc:
            print(f"diffio-async: {args.command} failed: {exc}", file=sys.stderr)
            return 1


@asynccontextmanager
async def _client(args: argparse.Namespace) -> AsyncIterator[AsyncDiffio]:
    if getattr(args, "emulator", False):
        from .testing import emulated_diffio

        async with emulated_diffio(era=args.era, generation_seconds=2.0) as env:
            yield env.client
        return
    key = args.api_key or os.environ.get("DIFFIO_API_KEY")
    if not key:
        raise UsageError(
            "no API key: pass --api-key or set DIFFIO_API_KEY "
            "(or try it offline with --emulator, or 'diffio-async demo')"
        )
    try:
        client = AsyncDiffio(key, args.base_url)
    except DiffioError as exc:
        raise UsageError(str(exc)) from None
    async with client:
        yield client


# -- inspection commands -----------------------------------------------------------------


async def _inspect(client: AsyncDiffio, args: argparse.Namespace) -> int:
    if args.command == "projects":
        for project in await client.projects.list():
            print(
                f"{project.api_project_id}  {project.status:10} "
                f"{project.generation_count:3} gen  {project.original_file_name or ''}"
            )
    elif args.command == "generations":
        for generation in await client.projects.list_generations(args.project_id):
            percent = "" if generation.progress is None else f"{generation.progress}%"
            print(
                f"{generation.generation_id}  {generation.status:10} "
                f"{generation.model_key or '':16} {percent}"
            )
    elif args.command == "progress":
        progress = await client.generations.get_progress(
            args.generation_id, project_id=args.project
        )
        print(f"{progress.generation_id}  {progress.status}  {progress.percent:.0f}%")
        for name, stage in progress.stages:
            print(f"  {name:14} {stage.status:9} {stage.progress:3}%  {stage.status_message or ''}")
        if progress.error:
            print(f"  error: {progress.error} {progress.error_details or ''}")
    elif args.command == "download":
        handle = client.generations.get(args.generation_id, project_id=args.project)
        path = await handle.download(args.output, download_type=args.download_type)
        print(path)
    return 0


# -- restore -------------------------------------------------------------------------------


def _check_paths(paths: Sequence[str], output_dir: str) -> int:
    """Fail fast on missing or unreadable inputs and an unwritable output; count the files."""
    total = 0
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise UsageError(f"no such file or folder: {raw}")
        if not os.access(path, os.R_OK):
            raise UsageError(f"cannot read {raw}")
        if path.is_dir():
            try:
                for _, dirs, files in os.walk(path, onerror=_raise):
                    dirs[:] = [d for d in dirs if not d.startswith(".")]
                    total += sum(1 for f in files if not f.startswith("."))
            except OSError as exc:
                raise UsageError(f"cannot read folder {exc.filename}: {exc.strerror}") from None
        else:
            total += 1
    out = Path(output_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise UsageError(f"cannot write to {output_dir}: {exc.strerror}") from None
    return total


def _raise(error: OSError) -> None:
    raise error


async def _restore(args: argparse.Namespace) -> int:
    if args.model and args.model not in KNOWN_MODELS:
        raise UsageError(f"unknown model {args.model!r}; known: {', '.join(KNOWN_MODELS)}")
    if args.concurrency < 1:
        raise UsageError("--concurrency must be at least 1")
    total = await anyio.to_thread.run_sync(_check_paths, args.paths, args.output_dir)
    async with _client(args) as client:
        return await _run_batch(
            client,
            args.paths,
            output_dir=args.output_dir,
            total=total,
            model=args.model,
            concurrency=args.concurrency,
            ledger=args.ledger,
            download_type=args.download_type,
            wait_timeout=args.timeout,
            json_lines=args.json,
        )


async def _run_batch(
    client: AsyncDiffio,
    paths: Sequence[str],
    *,
    output_dir: str,
    total: int,
    model: str | None,
    concurrency: int,
    ledger: str | None,
    download_type: str,
    wait_timeout: float,
    json_lines: bool,
) -> int:
    display = _Display(total, enabled=not json_lines)
    results: list[ItemResult] = []
    try:
        with display:
            async with client.restore_many(
                paths,
                output_dir=output_dir,
                model=model,
                concurrency=concurrency,
                ledger=ledger,
                download_type=download_type,
                timeout=wait_timeout,
                on_stage=display.stage,
            ) as items:
                async for item in items:
                    results.append(item)
                    display.done(item)
                    if json_lines:
                        print(json.dumps(_item_json(item)), flush=True)
    except BatchAbortedError as exc:
        display.summary(results)
        print(f"diffio-async: batch stopped: {exc.cause}", file=sys.stderr)
        return 1
    except DiffioError as exc:
        raise UsageError(str(exc)) from None
    if not json_lines:
        display.summary(results)
    return 0 if all(item.ok for item in results) else 1


def _item_json(item: ItemResult) -> dict[str, Any]:
    return {
        "source": item.source,
        "ok": item.ok,
        "skipped": item.skipped,
        "stage": item.stage,
        "error": None if item.error is None else f"{type(item.error).__name__}: {item.error}",
        "projectId": item.project_id,
        "generationId": item.generation_id,
        "output": None if item.output is None else str(item.output),
        "attempts": item.attempts,
        "timings": dict(item.timings),
    }


class _Display:
    """Live progress (rich when installed): overall bar, counts per stage, rate and ETA."""

    def __init__(self, total: int, *, enabled: bool, stream: TextIO = sys.stderr) -> None:
        self.total = total
        self.enabled = enabled
        self.stream = stream
        self.stages: dict[str, str] = {}
        self.finished = Counter[str]()
        self._progress: Any = None
        self._task: Any = None
        try:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
        except ImportError:  # the cli extra is not installed: plain lines
            self.console = None
            return
        self.console = Console(file=stream)
        if enabled:
            self._progress = Progress(
                TextColumn("[bold]restoring"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[stages]}"),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self._task = self._progress.add_task("restore", total=total, stages="", rate="")
        self._started = 0.0

    def __enter__(self) -> _Display:
        self._started = anyio.current_time()
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._refresh()
            self._progress.stop()

    def stage(self, source: str, stage: str) -> None:
        if stage == "done":
            self.stages.pop(source, None)
        else:
            self.stages[source] = stage
        self._refresh()

    def done(self, item: ItemResult) -> None:
        self.stages.pop(item.source, None)
        self.finished["skipped" if item.skipped else "ok" if item.ok else "failed"] += 1
        if self._progress is None and self.enabled:
            mark = "skip" if item.skipped else "ok" if item.ok else f"FAILED at {item.stage}"
            print(
                f"[{sum(self.finished.values())}/{self.total}] {mark}  {item.source}",
                file=self.stream,
            )
        self._refresh()

    def _refresh(self) -> None:
        if self._progress is None:
            return
        counts = Counter(self.stages.values())
        stages = "  ".join(f"{name} {counts[name]}" for name in STAGES if counts[name])
        failed = self.finished["failed"]
        if failed:
            stages += f"  [red]failed {failed}[/red]"
        elapsed = max(1e-6, anyio.current_time() - self._started)
        done = sum(self.finished.values())
        self._progress.update(
            self._task, completed=done, stages=stages, rate=f"{done / elapsed:.1f} files/s"
        )

    def summary(self, results: Sequence[ItemResult]) -> None:
        ok = sum(1 for r in results if r.ok and not r.skipped)
        skipped = sum(1 for r in results if r.skipped)
        failed = [r for r in results if not r.ok]
        if self.console is not None:
            from rich.table import Table

            table = Table(title="diffio-async restore")
            for column in ("file", "result", "output / error", "attempts", "seconds"):
                table.add_column(column)
            shown = failed + [r for r in results if r.ok]
            for item in shown[:20]:
                detail = item.output.name if item.output else f"{item.stage}: {item.error}"
                table.add_row(
                    Path(item.source).name,
                    "[yellow]skipped"
                    if item.skipped
                    else "[green]ok"
                    if item.ok
                    else "[red]failed",
                    detail,
                    str(item.attempts),
                    f"{sum(item.timings.values()):.1f}",
                )
            if len(shown) > 20:
                table.add_row(f"... {len(shown) - 20} more", "", "", "", "")
            self.console.print(table)
        print(
            f"{len(results)} files: {ok} restored, {skipped} already done, {len(failed)} failed",
            file=self.stream,
        )


# -- demo ----------------------------------------------------------------------------------


def _write_sample(path: Path, *, seconds: float, frequency: float) -> None:
    """A short mono 16-bit WAV: a tone with a little 'noise' to restore."""
    rate = 16_000
    frames = bytearray()
    for n in range(int(rate * seconds)):
        value = 0.3 * math.sin(2 * math.pi * frequency * n / rate) + 0.05 * math.sin(n * 7.1)
        frames += struct.pack("<h", int(value * 32767))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(bytes(frames))


def _make_samples(folder: Path, count: int) -> None:
    folder.mkdir()
    for index in range(count):
        _write_sample(folder / f"take-{index + 1:02}.wav", seconds=0.5, frequency=220 + 55 * index)


def _outputs_match(inputs: Path, output: Path) -> bool:
    return all(
        filecmp.cmp(output / f.with_suffix(".mp3").name, f, shallow=False)
        for f in sorted(inputs.iterdir())
    )


async def _demo(args: argparse.Namespace) -> int:
    if args.files < 1:
        raise UsageError("--files must be at least 1")
    keep = args.output_dir
    with tempfile.TemporaryDirectory(prefix="diffio-demo-") as work:
        inputs = Path(work, "recordings")
        await anyio.to_thread.run_sync(_make_samples, inputs, args.files)
        output = Path(keep) if keep else Path(work, "restored")
        print(
            f"diffio-async demo: restoring {args.files} sample recordings through an "
            f"in-process emulator (API era {args.era}, no key needed)",
            file=sys.stderr,
        )
        from .testing import emulated_diffio

        async with emulated_diffio(era=args.era, generation_seconds=2.0) as env:
            status = await _run_batch(
                env.client,
                [str(inputs)],
                output_dir=str(output),
                total=args.files,
                model=None,
                concurrency=4,
                ledger=None,
                download_type="audio",
                wait_timeout=120,
                json_lines=False,
            )
            same = await anyio.to_thread.run_sync(_outputs_match, inputs, output)
            requests = len(env.emulator.requests)
        print(
            f"{requests} HTTP requests; outputs {'match' if same else 'DO NOT match'} the "
            f"inputs byte for byte (the emulator's 'restoration' passes audio through)"
            + (f"; kept in {output}" if keep else ""),
            file=sys.stderr,
        )
        return status if same else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
