"""chaos: the same batch through a seeded fault-injecting proxy, against the fault-free run.

For each era and client, two runs of the same batch (fresh emulator each time):

* fault-free: through ``fault_proxy.py --rate 0`` (the same proxy, no faults, so the ratio
  measures the faults and not the extra hop; ``--baseline direct`` skips the proxy instead);
* faulty: through ``fault_proxy.py --rate 0.18 --seed S``: 503s, 429s with ``Retry-After: 1``,
  connections dropped before forwarding, dropped after the server acted, truncated bodies
  (see ``fault_proxy.py`` for the mix and for how uploads and downloads cross it too).

Reported: files intact (output bytes equal to the input's), generations per file and projects
per file (the emulator's ``list_projects``: every generation made counts, a duplicate one is
billed twice; a project orphaned by a failed create counts too), duplicate generations (more
than one on a project), the faults injected, and the wall ratio faulty / fault-free (a
client that gives files up early can be faster faulty than fault-free: read it with the
intact count). The clients are those of ``bulk.py`` (``asyncio``, ``trio``: diffio-async's
``restore_many`` at its defaults; ``official``: the official SDK on C threads at its
defaults, which means no retries; ``raw``: the no-retry floor).

    python benchmarks/chaos.py                 # 300 files, 32 in flight, G = 10, eras A and B
    python benchmarks/chaos.py --quick         # 48 files, 16 in flight, G = 2
    python benchmarks/chaos.py --clients asyncio --rate 0.3 --seed 11

Prints a table, writes benchmarks/results/chaos.json and chaos.png.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

from _common import (
    CLIENTS,
    HERE,
    Emulator,
    Server,
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
    "files": 300,
    "concurrency": 32,
    "generation_seconds": 10.0,
    "era": "both",
    "clients": ["asyncio", "trio", "official"],
    "file_kib": 64,
}
QUICK = {"files": 48, "concurrency": 16, "generation_seconds": 2.0}
FAULT_RATE = 0.18


def proxy(upstream: str, rate: float, seed: int) -> Server:
    """``fault_proxy.py`` in its own process, in front of ``upstream``."""
    command = [
        sys.executable,
        str(HERE / "fault_proxy.py"),
        "--upstream",
        upstream,
        "--rate",
        str(rate),
        "--seed",
        str(seed),
    ]
    return Server(command, "the fault proxy")


def proxy_stats(url: str) -> dict[str, int]:
    """The proxy's counts: requests, and each fault injected."""
    with urllib.request.urlopen(f"{url}/_proxy/stats", timeout=30) as answer:
        return dict(json.loads(answer.read()))


def run_once(client: str, era: str, mode: str, args: Any, work: Path) -> dict[str, Any] | str:
    """One batch; ``mode`` is ``faulty``, ``fault-free`` (proxy at rate 0) or ``direct``."""
    inputs = work / "in"
    out = work / f"out-{era}-{client}-{mode}"
    with Emulator(
        era,
        generation_seconds=args.generation_seconds,
        seconds_per_mib=args.seconds_per_mib,
        storage_dir=work / f"emulator-{era}-{client}-{mode}",
    ) as emulator:
        rate = args.rate if mode == "faulty" else 0.0
        with proxy(emulator.url, rate, args.seed) as front:
            url = emulator.url if mode == "direct" else front.url
            spec = {
                "url": url,
                "era": era,
                "inputs": str(inputs),
                "out": str(out),
                "concurrency": args.concurrency,
            }
            command = client_command(client, spec)
            if isinstance(command, str):
                return command
            ideal = math.ceil(args.files / args.concurrency) * args.generation_seconds
            try:
                report = run_child(command, timeout=ideal * 10 + 300)
            except RuntimeError as error:  # a crashed or killed client is a result
                return f"the client failed ({mode}): {one_line(str(error), 1000)}"
            stats = proxy_stats(front.url)
        counts = request_counts(emulator.requests())
        projects = emulator.projects()
    files = args.files
    run = {
        "mode": mode,
        "rate": rate,
        "intact": count_intact(sorted(inputs.glob("*.wav")), out),
        "ok": report["ok"],
        "seconds": report["seconds"],
        "generations_per_file": sum(p["generationCount"] for p in projects) / files,
        "projects_per_file": len(projects) / files,
        "duplicate_generations": sum(max(p["generationCount"] - 1, 0) for p in projects),
        "proxy_requests_per_file": stats.get("requests", 0) / files,
        "faults": {k: v for k, v in stats.items() if not k.startswith("requests")},
        "proxy_stats": stats,
        "emulator_requests": counts,
        "errors": report.get("errors", []),
        "child": report,
        "proxy_usage": front.usage,
        "emulator_usage": emulator.usage,
    }
    shutil.rmtree(out, ignore_errors=True)
    return run


def summarize(client: str, era: str, free: dict[str, Any], faulty: dict[str, Any], files: int):
    """One table row from the two runs."""
    injected = sum(
        faulty["faults"].get(kind, 0) for kind in ("503", "429", "drop", "drop-after", "truncate")
    )
    return {
        "client": client,
        "era": era,
        "files": files,
        "intact_free": free["intact"],
        "intact_faulty": faulty["intact"],
        "intact_text": f"{free['intact']} / {faulty['intact']}",
        "gens_free": free["generations_per_file"],
        "gens_faulty": faulty["generations_per_file"],
        "projects_faulty": faulty["projects_per_file"],
        "duplicates_faulty": faulty["duplicate_generations"],
        "faults_injected": injected,
        "faults_per_file": injected / files,
        "wall_free": free["seconds"],
        "wall_faulty": faulty["seconds"],
        "wall_ratio": faulty["seconds"] / free["seconds"],
        "runs": {"fault-free": free, "faulty": faulty},
    }


COLUMNS = [
    ("client", "client", ""),
    ("era", "era", ""),
    ("intact free / faulty", "intact_text", ""),
    ("gens/file free", "gens_free", ".3f"),
    ("gens/file faulty", "gens_faulty", ".3f"),
    ("projects/file faulty", "projects_faulty", ".3f"),
    ("duplicate gens", "duplicates_faulty", "d"),
    ("faults/file", "faults_per_file", ".2f"),
    ("wall free s", "wall_free", ".1f"),
    ("wall faulty s", "wall_faulty", ".1f"),
    ("wall ratio", "wall_ratio", ".2f"),
]


def chart(rows: list[dict[str, Any]], args: Any) -> Any:
    """Three panels: intact share, generations per file, wall ratio."""
    groups = sorted({row["era"] for row in rows})
    clients = [c for c in CLIENTS if any(row["client"] == c for row in rows)]
    table = {(row["era"], row["client"]): row for row in rows}

    def series(make: Any) -> dict[str, list[float | None]]:
        return {
            c: [make(table[(e, c)]) if (e, c) in table else None for e in groups] for c in clients
        }

    labels = [f"era {era}" for era in groups]

    def draw(pyplot: Any) -> Any:
        figure, panels = pyplot.subplots(1, 3, figsize=(13, 4.2))
        grouped_bars(
            panels[0],
            labels,
            series(lambda row: 100 * row["intact_faulty"] / row["files"]),
            title="files intact with faults",
            ylabel="% of files",
            reference=100.0,
        )
        grouped_bars(
            panels[1],
            labels,
            series(lambda row: row["gens_faulty"]),
            title="generations per file with faults",
            ylabel="generations",
            reference=1.0,
        )
        grouped_bars(
            panels[2],
            labels,
            series(lambda row: row["wall_ratio"]),
            title="wall time faulty / fault-free",
            ylabel="ratio",
            reference=1.0,
        )
        panels[0].legend(fontsize=8)
        figure.suptitle(
            f"chaos: {args.files} files, {args.concurrency} in flight, G = "
            f"{args.generation_seconds} s, {args.rate:.0%} of requests faulted (seed {args.seed})"
        )
        return figure

    return draw


def main(argv: list[str] | None = None) -> int:
    cli = parser(__doc__.split("\n\n")[0])
    cli.add_argument("--files", type=int, default=None, help="N (default 300; quick 48)")
    cli.add_argument("--concurrency", type=int, default=None, help="C (default 32; quick 16)")
    cli.add_argument("--generation-seconds", type=float, default=None, help="G (10; quick 2)")
    cli.add_argument(
        "--seconds-per-mib", type=float, default=None, help="to the emulator, if given"
    )
    cli.add_argument("--clients", nargs="+", choices=CLIENTS, default=None)
    cli.add_argument("--file-kib", type=int, default=None, help="file size (default 64 KiB)")
    cli.add_argument("--rate", type=float, default=FAULT_RATE, help="faulted share (0.18)")
    cli.add_argument("--seed", type=int, default=7, help="the proxy's seed (7)")
    cli.add_argument(
        "--baseline",
        choices=("proxy", "direct"),
        default="proxy",
        help="fault-free run through the proxy at rate 0 (default) or straight to the emulator",
    )
    args = cli.parse_args(argv)
    apply_quick(args, DEFAULTS, QUICK)

    rows = []
    skipped = []
    work = Path(tempfile.mkdtemp(prefix="diffio-bench-chaos-"))
    baseline = "fault-free" if args.baseline == "proxy" else "direct"
    try:
        write_inputs(work / "in", args.files, args.file_kib * 1024)
        for era in eras(args.era):
            for client in args.clients:
                runs = {}
                for mode in (baseline, "faulty"):
                    run = run_once(client, era, mode, args, work)
                    if isinstance(run, str):
                        skipped.append(f"{client} (era {era}): {run}")
                        break
                    runs[mode] = run
                    print(
                        f"  era {era} {client:8} {mode:10}: {run['seconds']:.1f} s, "
                        f"{run['intact']}/{args.files} intact",
                        file=sys.stderr,
                        flush=True,
                    )
                    for error in run["errors"][:2]:
                        print(f"      {error}", file=sys.stderr)
                if len(runs) == 2:
                    rows.append(summarize(client, era, runs[baseline], runs["faulty"], args.files))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print()
    print_table(COLUMNS, rows)
    for line in skipped:
        print(f"skipped: {line}")
    for row in rows:
        faults = row["runs"]["faulty"]["faults"]
        totals = {kind: count for kind, count in sorted(faults.items()) if ":" not in kind}
        by_traffic = {
            traffic: sum(n for kind, n in faults.items() if kind.endswith(f":{traffic}"))
            for traffic in ("api", "upload", "media")
        }
        print(
            f"{row['client']} era {row['era']}: faults injected {totals}; by traffic {by_traffic}"
        )
    settings = {
        key: getattr(args, key)
        for key in (
            "files",
            "concurrency",
            "generation_seconds",
            "seconds_per_mib",
            "file_kib",
            "rate",
            "seed",
            "baseline",
        )
    }
    path = write_results(
        "chaos",
        {"benchmark": "chaos", "settings": settings, "env": environment(), "rows": rows},
    )
    picture = save_chart("chaos", chart(rows, args)) if rows else None
    print(f"\nwritten: {path}" + (f", {picture}" if picture else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
