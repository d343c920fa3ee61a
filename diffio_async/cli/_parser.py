"""The command line: argparse types that refuse bad values in one line, and the parser."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import NoReturn

from .._catalog import KNOWN_MODELS
from .._version import __version__
from ..types import DownloadType
from ..workflows._options import MAX_CONCURRENCY
from ._errors import UsageError

__all__ = [
    "DEMO_MAX_FILES",
    "bounded_int",
    "build_parser",
    "host_port",
    "model_key",
    "positive_finite_float",
]

_VERSION_HELP = "print the version and exit"
_QUIET_HELP = (
    "print only results and errors: no progress display, notes or summary table (a batch's "
    "count line still shows when a file failed)"
)
_VERBOSE_HELP = (
    "log the SDK's retries and re-polls on stderr (-vv: every request too), as "
    "DIFFIO_LOG=info (debug) does"
)

_SERVER_DEFAULT = (
    "not given: what the server serves by default (the video of a project with video, "
    "otherwise the MP3 audio)"
)

DEMO_MAX_FILES = 1000
"""The most sample files ``demo --files`` makes (each is generated, uploaded and compared)."""


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


def host_port(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6; ``:PORT`` for every interface)."""
    host, colon, port = text.rpartition(":")
    if not colon or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, not {text!r}")
    host = host.removeprefix("[").removesuffix("]") if host.startswith("[") else host
    return host or "0.0.0.0", int(port)


def build_parser() -> argparse.ArgumentParser:
    """The ``diffio-async`` parser; its errors raise :class:`UsageError`."""
    parser = _Parser(
        prog="diffio-async", description="Restore speech recordings with the Diffio API."
    )
    parser.add_argument(
        "--version", action="version", version=f"diffio-async {__version__}", help=_VERSION_HELP
    )
    commands = parser.add_subparsers(
        dest="command",
        required=True,
        metavar="COMMAND",
        help="what to do (COMMAND --help: its options)",
    )

    def connection(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--api-key", help="API key (default: $DIFFIO_API_KEY)")
        sub.add_argument("--base-url", help="API base URL (default: $DIFFIO_API_BASE_URL)")

    def output(sub: argparse.ArgumentParser, json_help: str) -> None:
        sub.add_argument("--json", action="store_true", help=json_help)
        loudness = sub.add_mutually_exclusive_group()
        loudness.add_argument("-q", "--quiet", action="store_true", help=_QUIET_HELP)
        loudness.add_argument("-v", "--verbose", action="count", default=0, help=_VERBOSE_HELP)

    restore = commands.add_parser("restore", help="restore files or folders")
    restore.add_argument("paths", nargs="+", metavar="PATH", help="files or folders")
    _restore_settings(restore, in_flight="files in flight")
    restore.add_argument(
        "--ledger",
        help="SQLite file (or postgresql:// URL) that makes the batch resumable",
    )
    restore.add_argument(
        "--on-collision",
        choices=["error", "rename"],
        default="error",
        help="when two sources would write one output: refuse the batch (error, the "
        "default) or give each a distinct name (rename)",
    )
    restore.add_argument(
        "--download-type",
        default=None,
        choices=[*DownloadType.ALL, "mp3"],
        help=f"what to download for each file; {_SERVER_DEFAULT}, each output named after it",
    )
    restore.add_argument("--emulator", action="store_true", help="use an in-process emulator")
    restore.add_argument("--era", choices=["a", "b"], default="a", help="emulator API era")
    restore.add_argument(
        "--webhook-listen",
        type=host_port,
        metavar="HOST:PORT",
        help="receive Diffio webhook deliveries here: each wakes its file at once and polling "
        "slows to a safety net (needs --webhook-secret or $DIFFIO_WEBHOOK_SECRET)",
    )
    restore.add_argument(
        "--webhook-secret", help="the webhook endpoint's whsec_ secret ($DIFFIO_WEBHOOK_SECRET)"
    )
    restore.add_argument(
        "--timeout",
        type=positive_finite_float,
        default=1800.0,
        help="per-file wait in seconds, above 0 (1800)",
    )
    connection(restore)
    output(restore, "one JSON line per file on stdout instead of the live display")

    demo = commands.add_parser("demo", help="restore sample files through the emulator")
    demo.add_argument(
        "--files",
        type=bounded_int(1, DEMO_MAX_FILES),
        default=6,
        help=f"how many sample files, 1 to {DEMO_MAX_FILES} (6)",
    )
    demo.add_argument("--era", choices=["a", "b"], default="a", help="emulator API era")
    demo.add_argument("-o", "--output-dir", help="keep the outputs here")
    output(demo, "one JSON line per file on stdout instead of the live display")

    emulator = commands.add_parser(
        "emulator", help="serve a local Diffio API", add_help=False, prefix_chars="\0"
    )
    emulator.add_argument(
        "rest",
        nargs=argparse.REMAINDER,
        metavar="OPTION",
        help="the emulator's own options (see 'diffio-async emulator --help')",
    )

    projects = commands.add_parser("projects", help="list projects")
    connection(projects)
    output(projects, "one JSON object per project on stdout")
    generations = commands.add_parser("generations", help="list a project's generations")
    generations.add_argument("project_id", help="the project whose generations to list")
    connection(generations)
    output(generations, "one JSON object per generation on stdout")
    progress = commands.add_parser("progress", help="show a generation's progress")
    progress.add_argument("generation_id", help="the generation to show")
    progress.add_argument("--project", help="its project id")
    connection(progress)
    output(progress, "the progress as one JSON object on stdout")
    download = commands.add_parser("download", help="download a generation's result")
    download.add_argument("generation_id", help="the generation whose result to download")
    download.add_argument("--project", required=True, help="its project id")
    download.add_argument("-o", "--output", required=True, help="file or folder")
    download.add_argument(
        "--download-type",
        default=None,
        choices=[*DownloadType.ALL, "mp3"],
        help=f"what to download; {_SERVER_DEFAULT}, a file -o taking its suffix",
    )
    connection(download)
    output(download, 'the written file as {"path": ...} on stdout')

    batch = commands.add_parser(
        "batch", help="a named batch on a PostgreSQL ledger, worked by many machines"
    )
    actions = batch.add_subparsers(
        dest="action", required=True, metavar="ACTION", help="add, status, run or resume"
    )

    def named(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("name", metavar="NAME", help="the batch's name")
        sub.add_argument("--ledger", required=True, help="the postgresql:// URL of the ledger")

    add = actions.add_parser(
        "add", help="register files or folders (adding one twice adds it once)"
    )
    named(add)
    add.add_argument("paths", nargs="+", metavar="SOURCE", help="files or folders")
    add.add_argument("--json", action="store_true", help="the counts as one JSON object")
    status = actions.add_parser(
        "status", help="counts per state and per worker, throughput and ETA"
    )
    named(status)
    status.add_argument("--json", action="store_true", help="the status as one JSON object")
    resume = actions.add_parser(
        "resume",
        help="clear the stop a fatal error (401, 402, API 403) put on the batch, once fixed; "
        "its failed files are tried again",
    )
    named(resume)
    run = actions.add_parser(
        "run", help="work the batch here until every file is finished (run one per machine)"
    )
    named(run)
    _restore_settings(run, in_flight="files in flight on this worker")
    run.add_argument(
        "--lease",
        type=positive_finite_float,
        default=60.0,
        help="seconds a claimed file stays this worker's without a renewal; a killed "
        "worker's files move on after it (60)",
    )
    run.add_argument(
        "--download-type",
        default=None,
        choices=[*DownloadType.ALL, "mp3"],
        help=f"what to download for each file; {_SERVER_DEFAULT}, each output named after it",
    )
    run.add_argument(
        "--timeout",
        type=positive_finite_float,
        default=1800.0,
        help="per-file wait in seconds, above 0 (1800)",
    )
    run.add_argument("--emulator", action="store_true", help="use an in-process emulator")
    run.add_argument("--era", choices=["a", "b"], default="a", help="emulator API era")
    connection(run)
    output(run, "one JSON line per file on stdout")
    return parser


def _restore_settings(parser: argparse.ArgumentParser, *, in_flight: str) -> None:
    """The output folder, model and concurrency that ``restore`` and ``batch run`` share."""
    parser.add_argument("-o", "--output-dir", required=True, help="where outputs go")
    parser.add_argument(
        "--model", type=model_key, help=f"model key (known: {', '.join(KNOWN_MODELS)})"
    )
    parser.add_argument(
        "--concurrency",
        type=bounded_int(1, MAX_CONCURRENCY),
        default=8,
        help=f"{in_flight}, 1 to {MAX_CONCURRENCY} (8)",
    )
