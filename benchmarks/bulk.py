"""bulk: N files at C in flight, end to end (upload, generate, wait, download), per client.

Clients, each in its own process (so its CPU and peak RSS are its own), each against a fresh
emulator process (``--clock wall``, ``--generation-seconds G``):

* ``asyncio`` / ``trio``: diffio-async ``restore_many(..., batch=BatchOptions(concurrency=C))``
  on that backend, every other option at its default;
* ``official``: the official ``diffio`` SDK on a pool of C threads (0.1.114 against an era A
  emulator, 0.3.10 against era B; ``nox -s bench`` installs both in their own virtualenvs);
* ``raw``: the floor, a minimal httpx2 + anyio script with fixed 0.5 s polls and no retries.

Reported per client: wall / ideal, where ideal = ceil(N / C) x (G + seconds-per-MiB x file
MiB) (the generation time the emulator imposes, nothing else); requests and progress polls
per file (counted by the emulator: ``GET /_emulator/requests``); the client's CPU (user + sys)
per file, for the batch only (imports excluded; the JSON has the whole process too); its
peak RSS (``ru_maxrss`` from ``wait4``); files intact (output bytes equal to the input's, as
the emulator passes audio through); and the emulator's CPU per file.

    python benchmarks/bulk.py                          # 256 files, C = 64 and 128, G = 10, A and B
    python benchmarks/bulk.py --quick                  # 32 files, C = 16, G = 2
    python benchmarks/bulk.py --generation-seconds 10 60
    python benchmarks/bulk.py --seconds-per-mib 2 --file-kib 4096
    python benchmarks/bulk.py --era b --clients asyncio raw --concurrency 8 32

Prints a table, writes benchmarks/results/bulk.json and bulk.png.
"""

from __future__ import annotations

import math
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import (
    CLIENTS,
    MIB,
    Emulator,
    apply_quick,
    client_command,
    count_intact,
    environment,
    eras,
    grouped_bars,
    one_line,
    parser,
    print_table,
    request_counts,
    run_child,
    save_chart,
    write_inputs,
    write_results,
)

DEFAULTS = {
    "files": 256,
    "concurrency": [64, 128],
    "generation_seconds": [10.0],
    "era": "both",
    "clients": list(CLIENTS),
    "file_kib": 64,
}
QUICK = {"files": 32, "concurrency": [16], "generation_seconds": [2.0]}


def ideal_seconds(files: int, concurrency: int, generation: float, args: Any) -> float:
    """ceil(N / C) rounds of one generation each (G, plus seconds-per-MiB x file MiB)."""
    per_generation = generation + (args.seconds_per_mib or 0.0) * args.file_kib / 1024
    return math.ceil(files / concurrency) * per_generation


def run_one(
    client: str, era: str, concurrency: int, generation: float, args: Any, work: Path
) -> dict[str, Any]:
    """One client, one era, one concurrency, one G, against a fresh emulator."""
    inputs = work / "in"
    name = f"{era}-{concurrency}-{generation:g}-{client}"
    out = work / f"out-{name}"
    row: dict[str, Any] = {
        "era": era,
        "concurrency": concurrency,
        "generation_seconds": generation,
        "client": client,
    }
    with Emulator(
        era,
        generation_seconds=generation,
        seconds_per_mib=args.seconds_per_mib,
        storage_dir=work / f"emulator-{name}",
    ) as emulator:
        spec = {
            "url": emulator.url,
            "era": era,
            "inputs": str(inputs),
            "out": str(out),
            "concurrency": concurrency,
        }
        command = client_command(client, spec)
        if isinstance(command, str):
            row["skipped"] = command
            return row
        ideal = ideal_seconds(args.files, concurrency, generation, args)
        try:
            report = run_child(command, timeout=ideal * 6 + 300)
        except RuntimeError as error:  # a crashed or killed client is a result, not the end
            row["skipped"] = f"the client failed: {one_line(str(error), 1000)}"
            return row
        counts = request_counts(emulator.requests())
        projects = emulator.projects()
    files = args.files
    process = report["process"] or {}
    row.update(
        files=files,
        ok=report["ok"],
        intact=count_intact(sorted(inputs.glob("*.wav")), out),
        seconds=report["seconds"],
        ideal_s=ideal,
        wall_over_ideal=report["seconds"] / ideal if ideal else float("nan"),
        requests_per_file=counts["requests"] / files,
        polls_per_file=counts["progress_polls"] / files,
        cpu_ms_per_file=1000 * report["work_cpu_s"] / files,
        process_cpu_ms_per_file=1000 * process.get("cpu_s", float("nan")) / files,
        peak_rss_mib=process.get("max_rss_mib", report["max_rss_mib"]),
        server_cpu_ms_per_file=1000 * (emulator.usage or {}).get("cpu_s", float("nan")) / files,
        projects=len(projects),
        generations=sum(project["generationCount"] for project in projects),
        errors=report.get("errors", []),
        child=report,
        emulator_usage=emulator.usage,
        **counts,
    )
    shutil.rmtree(out, ignore_errors=True)
    return row


COLUMNS = [
    ("client", "client", ""),
    ("era", "era", ""),
    ("G s", "generation_seconds", "g"),
    ("C", "concurrency", "d"),
    ("intact", "intact_text", ""),
    ("wall s", "seconds", ".1f"),
    ("ideal s", "ideal_s", ".1f"),
    ("wall/ideal", "wall_over_ideal", ".2f"),
    ("req/file", "requests_per_file", ".1f"),
    ("polls/file", "polls_per_file", ".1f"),
    ("CPU ms/file", "cpu_ms_per_file", ".1f"),
    ("peak RSS MiB", "peak_rss_mib", ".1f"),
    ("server CPU ms/file", "server_cpu_ms_per_file", ".1f"),
]


def _group(row: dict[str, Any]) -> tuple[str, float, int]:
    return row["era"], row["generation_seconds"], row["concurrency"]


def chart(rows: list[dict[str, Any]], args: Any) -> Any:
    """Four panels: wall / ideal, requests per file, CPU per file, peak RSS."""
    measured = [row for row in rows if "skipped" not in row]
    groups = sorted({_group(row) for row in measured})
    several = len({row["generation_seconds"] for row in measured}) > 1
    labels = [f"era {e}, C={c}" + (f", G={g:g}" if several else "") for e, g, c in groups]
    clients = [c for c in CLIENTS if any(row["client"] == c for row in measured)]

    def series(key: str) -> dict[str, list[float | None]]:
        table = {(*_group(row), row["client"]): row[key] for row in measured}
        return {c: [table.get((*group, c)) for group in groups] for c in clients}

    def draw(pyplot: Any) -> Any:
        figure, panels = pyplot.subplots(2, 2, figsize=(11, 7))
        grouped_bars(
            panels[0][0],
            labels,
            series("wall_over_ideal"),
            title="wall / ideal (1 = only the generations' time)",
            ylabel="ratio",
            reference=1.0,
        )
        grouped_bars(
            panels[0][1],
            labels,
            series("requests_per_file"),
            title="requests per file (progress polls hatched below)",
            ylabel="requests",
        )
        grouped_bars(
            panels[1][0],
            labels,
            series("cpu_ms_per_file"),
            title="client CPU per file",
            ylabel="ms (user + sys)",
        )
        grouped_bars(
            panels[1][1], labels, series("peak_rss_mib"), title="client peak RSS", ylabel="MiB"
        )
        polls = series("polls_per_file")
        count = max(len(polls), 1)
        width = 0.8 / count
        for index, values in enumerate(polls.values()):
            positions = [g + (index - (count - 1) / 2) * width for g in range(len(labels))]
            heights = [float("nan") if v is None else v for v in values]
            panels[0][1].bar(positions, heights, width, fill=False, hatch="//", linewidth=0)
        panels[0][0].legend(fontsize=8)
        spm = f", {args.seconds_per_mib} s/MiB" if args.seconds_per_mib else ""
        figure.suptitle(
            f"bulk: {args.files} files of {args.file_kib} KiB, "
            f"G = {', '.join(f'{g:g}' for g in args.generation_seconds)} s{spm}"
        )
        return figure

    return draw


def report_progress(row: dict[str, Any]) -> None:
    """One line on standard error per run (and its first errors)."""
    where = f"era {row['era']} G={row['generation_seconds']:g} C={row['concurrency']}"
    if "skipped" in row:
        print(f"  {where} {row['client']}: skipped ({row['skipped']})", file=sys.stderr)
        return
    row["intact_text"] = f"{row['intact']}/{row['files']}"
    print(
        f"  {where} {row['client']:8}: {row['seconds']:.1f} s, {row['intact_text']} intact",
        file=sys.stderr,
        flush=True,
    )
    for error in row["errors"][:2]:
        print(f"      {error}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    cli = parser(__doc__.split("\n\n")[0])
    cli.add_argument("--files", type=int, default=None, help="N (default 256; quick 32)")
    cli.add_argument(
        "--concurrency", type=int, nargs="+", default=None, help="C values (default 64 128)"
    )
    cli.add_argument(
        "--generation-seconds",
        type=float,
        nargs="+",
        default=None,
        help="G values (default 10; quick 2); e.g. 10 60",
    )
    cli.add_argument(
        "--seconds-per-mib",
        type=float,
        default=None,
        help="passed to the emulator (generation time grows with the file) only when given",
    )
    cli.add_argument("--clients", nargs="+", choices=CLIENTS, default=None)
    cli.add_argument("--file-kib", type=int, default=None, help="file size (default 64 KiB)")
    args = cli.parse_args(argv)
    apply_quick(args, DEFAULTS, QUICK)

    rows = []
    work = Path(tempfile.mkdtemp(prefix="diffio-bench-bulk-"))
    try:
        write_inputs(work / "in", args.files, args.file_kib * 1024)
        for era in eras(args.era):
            for generation in args.generation_seconds:
                for concurrency in args.concurrency:
                    for client in args.clients:
                        row = run_one(client, era, concurrency, generation, args, work)
                        rows.append(row)
                        report_progress(row)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    measured = [row for row in rows if "skipped" not in row]
    print()
    print_table(COLUMNS, measured)
    for row in rows:
        if "skipped" in row:
            print(
                f"skipped: {row['client']} (era {row['era']}, G={row['generation_seconds']:g}, "
                f"C={row['concurrency']}): {row['skipped']}"
            )
    settings = {
        key: getattr(args, key)
        for key in ("files", "concurrency", "generation_seconds", "seconds_per_mib", "file_kib")
    }
    settings["file_mib"] = args.file_kib * 1024 / MIB
    path = write_results(
        "bulk", {"benchmark": "bulk", "settings": settings, "env": environment(), "rows": rows}
    )
    picture = save_chart("bulk", chart(rows, args))
    print(f"\nwritten: {path}" + (f", {picture}" if picture else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
