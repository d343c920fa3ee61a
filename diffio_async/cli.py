"""The ``diffio-async`` command: restore files, run the emulator, try the demo, inspect.

::

    diffio-async demo                                  # the whole flow, offline, one command
    diffio-async restore talk.wav interviews/ -o out/ --ledger batch.sqlite
    diffio-async restore talk.wav -o out/ --emulator   # against an in-process emulator
    diffio-async emulator --port 8765 --era b          # a local Diffio for your own code
    diffio-async projects | generations PROJECT_ID | progress GENERATION_ID --project P
    diffio-async download GENERATION_ID --project P -o out/

The key comes from ``--api-key`` or ``DIFFIO_API_KEY``, the server from ``--base-url`` or
``DIFFIO_API_BASE_URL``. Bad input (an argument, a path, the key) gets one line on stderr
(``diffio-async: error: ...``) and exit status 2, before any work; the key is never printed.
``restore`` exits 1 when any file failed. The live display needs the ``cli`` extra (rich);
without it, plain lines are printed.
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
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NoReturn, TextIO

import anyio
import httpx

from ._catalog import KNOWN_MODELS
from .client import AsyncDiffio
from .errors import (
    BatchAbortedError,
    ConfigurationError,
    DiffioError,
    InvalidRequestError,
    LedgerError,
    OutputCollisionError,
)
from .resources.generations import DOWNLOAD_TYPES
from .workflows._sources import Collision
from .workflows.bulk import MAX_CONCURRENCY, ItemResult

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found, unused-ignore]

__all__ = ["main"]

STAGES = ("hash", "upload", "generation", "wait", "download")

DEMO_MAX_FILES = 1000
"""The most sample files ``demo --files`` makes (each is generated, uploaded and compared)."""

MAX_CLASHES_SHOWN = 5
"""How many contested outputs an output-collision error names."""


class UsageError(Exception):
    """Bad input: printed as one line, exit status 2."""


# -- argument parsing --------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line (``diffio-async: error: ...``), not usage."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def positive_finite_float(text: str) -> float:
    """A number of seconds: finite and above zero (no ``nan``, ``inf``, ``0`` or ``-1``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, not {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive finite number, not {text!r}")
    return value


def bounded_int(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: an integer from ``low`` to ``high`` inclusive."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a whole number from {low} to {high}, not {text!r}"
            ) from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}, not {value}")
        return value

    parse.__name__ = f"int_{low}_to_{high}"
    return parse


def model_key(text: str) -> str:
    """A model key the SDK knows."""
    if text not in KNOWN_MODELS:
        raise argparse.ArgumentTypeError(
            f"unknown model {text!r}; known: {', '.join(KNOWN_MODELS)}"
        )
    return text


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="diffio-async", description="Restore speech recordings with the Diffio API."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def connection(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--api-key", help="API key (default: $DIFFIO_API_KEY)")
        sub.add_argument("--base-url", help="API base URL (default: $DIFFIO_API_BASE_URL)")

    restore = commands.add_parser("restore", help="restore files or folders")
    restore.add_argument("paths", nargs="+", metavar="PATH", help="files or folders")
    restore.add_argument("-o", "--output-dir", required=True, help="where outputs go")
    restore.add_argument(
        "--model", type=model_key, help=f"model key (known: {', '.join(KNOWN_MODELS)})"
    )
    restore.add_argument(
        "--concurrency",
        type=bounded_int(1, MAX_CONCURRENCY),
        default=8,
        help=f"files in flight, 1 to {MAX_CONCURRENCY} (8)",
    )
    restore.add_argument("--ledger", help="SQLite file that makes the batch resumable")
    restore.add_argument(
        "--on-collision",
        choices=["error", "rename"],
        default="error",
        help="when two sources would write one output: refuse the batch (error, the "
        "default) or give each a distinct name (rename)",
    )
    restore.add_argument("--download-type", default="audio", choices=[*DOWNLOAD_TYPES, "mp3"])
    restore.add_argument("--emulator", action="store_true", help="use an in-process emulator")
    restore.add_argument("--era", choices=["a", "b"], default="a", help="emulator API era")
    restore.add_argument("--json", action="store_true", help="one JSON line per file")
    restore.add_argument(
        "--timeout",
        type=positive_finite_float,
        default=1800.0,
        help="per-file wait in seconds, above 0 (1800)",
    )
    connection(restore)

    demo = commands.add_parser("demo", help="restore sample files through the emulator")
    demo.add_argument(
        "--files",
        type=bounded_int(1, DEMO_MAX_FILES),
        default=6,
        help=f"how many sample files, 1 to {DEMO_MAX_FILES} (6)",
    )
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
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = _parser().parse_args(argv)
    except UsageError as exc:  # argparse may echo a stray key ("unrecognized arguments: ...")
        return _fail(_scrub(str(exc), _keys_in(argv)))
    if args.command == "emulator":
        from .emulator import run_cli

        return run_cli(list(args.rest), prog="diffio-async emulator")
    try:
        try:
            return anyio.run(_run, args)
        except BaseExceptionGroup as group:
            lone = _lone(group)
            if lone is None:
                raise
            raise lone from None
    except UsageError as exc:
        return _fail(_scrub(str(exc), _keys_in(argv)))
    except OSError as exc:  # one of the user's paths (an unwritable output, a vanished folder)
        return _fail(_scrub(_os_message(exc), _keys_in(argv)))
    except KeyboardInterrupt:
        print("diffio-async: interrupted", file=sys.stderr)
        return 130


def _fail(message: str) -> int:
    print(f"diffio-async: error: {_one_line(message)}", file=sys.stderr)
    return 2


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _lone(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    """The one exception inside nested single-member groups (task groups wrap what they raise)."""
    inner: BaseException = group
    while isinstance(inner, BaseExceptionGroup):
        if len(inner.exceptions) != 1:
            return None
        inner = inner.exceptions[0]
    return inner


def _os_message(exc: OSError) -> str:
    reason = exc.strerror or type(exc).__name__
    if exc.filename is None:
        return f"{reason}: {exc}" if exc.strerror is None else reason
    where = os.fsdecode(exc.filename)
    if exc.filename2 is not None:
        where += f" -> {os.fsdecode(exc.filename2)}"
    return f"{where}: {reason}"


def _keys_in(argv: Sequence[str]) -> list[str]:
    """Every API key the user may have given: ``$DIFFIO_API_KEY`` and the value of
    ``--api-key`` (or an abbreviation argparse accepts, ``--api-k``; ``--api-key=...``)."""
    keys = [os.environ.get("DIFFIO_API_KEY") or ""]
    for index, option in enumerate(argv):
        value = argv[index + 1] if index + 1 < len(argv) else ""
        name, equals, inline = option.partition("=")
        if len(name) >= len("--a") and "--api-key".startswith(name):
            keys.append(inline if equals else value)
    return keys


def _scrub(text: str, keys: Sequence[str]) -> str:
    """``text`` without any of ``keys``, in case something echoed one (it should not)."""
    for key in keys:
        for form in {key, key.strip(), repr(key)[1:-1], repr(key.strip())[1:-1]}:
            if len(form) >= 4:
                text = text.replace(form, "<API key>")
    return text


async def _run(args: argparse.Namespace) -> int:
    if args.command == "demo":
        return await _demo(args)
    if not getattr(args, "emulator", False):
        args.resolved_key = _api_key(args)  # before any work
    if args.command == "restore":
        return await _restore(args)
    if args.command == "download":
        await anyio.to_thread.run_sync(_check_download_target, args.output)
    async with _client(args) as client:
        try:
            return await _inspect(client, args)
        except (ConfigurationError, InvalidRequestError) as exc:
            raise UsageError(str(exc)) from None
        except DiffioError as exc:
            message = _one_line(_scrub(str(exc), [args.resolved_key]))
            print(f"diffio-async: {args.command} failed: {message}", file=sys.stderr)
            return 1


def _api_key(args: argparse.Namespace) -> str:
    """The key from ``--api-key`` or ``$DIFFIO_API_KEY``, refused (never shown) when unusable."""
    key: str | None
    if args.api_key is not None:
        key, origin = args.api_key, "--api-key"
    else:
        key, origin = os.environ.get("DIFFIO_API_KEY"), "DIFFIO_API_KEY"
    if key is None:
        raise UsageError(
            "no API key: pass --api-key or set DIFFIO_API_KEY "
            "(or try it offline with --emulator, or 'diffio-async demo')"
        )
    key = key.strip()
    if not key:
        raise UsageError(f"the API key from {origin} is empty")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in key):
        problem = "a control character (a stray newline or carriage return?)"
    elif not key.isascii():
        problem = "a non-ASCII character"
    else:
        return key
    raise UsageError(f"the API key from {origin} contains {problem}; it is not shown")


@asynccontextmanager
async def _client(args: argparse.Namespace) -> AsyncIterator[AsyncDiffio]:
    if getattr(args, "emulator", False):
        from .testing import emulated_diffio

        async with emulated_diffio(era=args.era, generation_seconds=2.0) as env:
            yield env.client
        return
    try:
        client = AsyncDiffio(args.resolved_key, args.base_url)
    except DiffioError as exc:
        raise UsageError(str(exc)) from None
    except httpx.InvalidURL as exc:
        raise UsageError(f"bad base URL: {exc}") from None
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


def _check_paths(paths: Sequence[str], output_dir: str, ledger: str | None) -> int:
    """Fail fast on missing or unreadable inputs, an unwritable output or an unusable ledger;
    count the files."""
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
    if ledger is not None:
        _check_ledger(ledger)
    _check_output_dir(output_dir)
    return total


def _raise(error: OSError) -> None:
    raise error


def _check_output_dir(output_dir: str) -> None:
    """Create ``output_dir`` if needed and make sure a file can be written in it."""
    try:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        _probe(Path(output_dir))
    except OSError as exc:
        raise UsageError(f"cannot write to {output_dir}: {exc.strerror or exc}") from None


def _probe(folder: Path) -> None:
    with tempfile.NamedTemporaryFile(dir=folder, prefix=".diffio-async-probe-"):
        pass


def _check_ledger(raw: str) -> None:
    """The ledger must be a (new or existing) regular file in a folder we can write to
    (SQLite keeps its journal beside it)."""
    path = Path(raw)
    if path.is_dir():
        raise UsageError(f"--ledger {raw} is a folder; name a file, e.g. {path / 'batch.sqlite'}")
    if path.exists() and not path.is_file():
        raise UsageError(f"--ledger {raw} is not a regular file")
    _check_writable_folder(path.parent, f"--ledger {raw}")
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise UsageError(f"--ledger {raw} is read-only")


def _check_download_target(raw: str) -> None:
    """``download -o``: a folder (existing, or ending with a separator) we can write in, or a
    file whose folder exists and is writable. Checked before asking the server."""
    path = Path(raw)
    if path.is_dir() or raw.endswith((os.sep, "/")):
        if path.exists() and not path.is_dir():
            raise UsageError(f"cannot write to {raw}: it is a file, not a folder")
        _check_output_dir(raw)
        return
    _check_writable_folder(path.parent, f"cannot write {raw}")


def _check_writable_folder(folder: Path, context: str) -> None:
    """``folder`` exists, is a folder, and a file can be created in it."""
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise UsageError(f"{context}: {folder} {what}")
    try:
        _probe(folder)
    except OSError as exc:
        raise UsageError(f"{context}: cannot write in {folder}: {exc.strerror}") from None


async def _restore(args: argparse.Namespace) -> int:
    total = await anyio.to_thread.run_sync(_check_paths, args.paths, args.output_dir, args.ledger)
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
            secret=getattr(args, "resolved_key", None),
            on_collision=args.on_collision,
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
    secret: str | None = None,
    on_collision: Collision = "error",
) -> int:
    display = _Display(total, enabled=not json_lines, secret=secret)
    results: list[ItemResult] = []
    started = False
    try:
        # The batch starts (output folder, ledger, collision check) before the display does:
        # a batch that cannot start is one line, not a progress bar and a line.
        async with client.restore_many(
            paths,
            output_dir=output_dir,
            model=model,
            concurrency=concurrency,
            ledger=ledger,
            download_type=download_type,
            timeout=wait_timeout,
            on_stage=display.stage,
            on_collision=on_collision,
        ) as items:
            started = True
            with display:
                async for item in items:
                    results.append(item)
                    display.done(item)
                    if json_lines:
                        print(json.dumps(_item_json(item, secret)), flush=True)
    except BatchAbortedError as exc:
        display.summary(results)
        cause = _one_line(_hide(str(exc.cause), secret))
        print(f"diffio-async: batch stopped: {cause}", file=sys.stderr)
        return 1
    except DiffioError as exc:
        if not started:
            raise UsageError(_start_error(exc, output_dir, ledger)) from None
        display.summary(results)
        print(f"diffio-async: batch failed: {_one_line(_hide(str(exc), secret))}", file=sys.stderr)
        return 1
    if not json_lines:
        display.summary(results)
    return 0 if all(item.ok for item in results) else 1


def _start_error(exc: DiffioError, output_dir: str, ledger: str | None) -> str:
    """One line for a batch that could not start."""
    if isinstance(exc, OutputCollisionError) and exc.clashes:
        shown = [
            f"{_under(output, output_dir)} <- {', '.join(sources)}"
            for output, sources in sorted(exc.clashes.items())[:MAX_CLASHES_SHOWN]
        ]
        more = len(exc.clashes) - len(shown)
        return (
            f"{len(exc.clashes)} output file(s) would each be written by several sources: "
            + "; ".join(shown)
            + (f"; and {more} more" if more > 0 else "")
            + " (pass --on-collision rename, or restore them into separate -o folders)"
        )
    if isinstance(exc, LedgerError) and ledger is not None:
        return f"cannot use --ledger {ledger}: {exc}"
    return str(exc)


def _under(output: str, output_dir: str) -> str:
    """``output`` relative to ``output_dir`` when it lies inside it."""
    try:
        return str(Path(output).relative_to(output_dir))
    except ValueError:
        try:
            return str(Path(output).resolve().relative_to(Path(output_dir).resolve()))
        except ValueError:
            return output


def _hide(text: str, secret: str | None) -> str:
    return text.replace(secret, "<API key>") if secret else text


def _item_json(item: ItemResult, secret: str | None = None) -> dict[str, Any]:
    error = None if item.error is None else f"{type(item.error).__name__}: {item.error}"
    return {
        "source": item.source,
        "ok": item.ok,
        "skipped": item.skipped,
        "stage": item.stage,
        "error": None if error is None else _hide(error, secret),
        "projectId": item.project_id,
        "generationId": item.generation_id,
        "output": None if item.output is None else str(item.output),
        "attempts": item.attempts,
        "timings": dict(item.timings),
    }


class _Display:
    """Live progress (rich when installed): overall bar, counts per stage, rate and ETA."""

    def __init__(
        self,
        total: int,
        *,
        enabled: bool,
        stream: TextIO | None = None,
        secret: str | None = None,
    ) -> None:
        self.total = total
        self.enabled = enabled
        self.stream = sys.stderr if stream is None else stream  # the current one, not import's
        self.secret = secret
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
        self.console = Console(file=self.stream)
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
                detail = (
                    item.output.name
                    if item.output
                    else _hide(f"{item.stage}: {item.error}", self.secret)
                )
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
    keep = args.output_dir
    if keep:
        await anyio.to_thread.run_sync(_check_output_dir, keep)
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
