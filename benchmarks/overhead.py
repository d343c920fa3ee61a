"""overhead: many small API calls through the SDK against raw httpx2.AsyncClient.

The call is ``get_generation_progress`` of one running generation: through diffio-async
(``client.generations.get_progress(id, project_id=...)``: body model, retry wrapper, error
mapping, response parsing into a frozen model) and through a bare ``httpx2.AsyncClient`` that
POSTs the same JSON with the same headers (identity headers, ``Authorization``,
``Content-Type``) and calls ``response.json()``. Each (client, backend, concurrency) runs in
its own process after a warm-up, against one emulator process; ``concurrency`` tasks share
the calls. Each client runs ``--rounds`` times, interleaved with the other (SDK, raw, raw,
SDK, ...), so a change of load on the machine hits both alike. Reported: the median calls
per second and CPU (user + sys) per call, and the ratios SDK / raw of those medians. The
emulator's log is checked: every call is one request (no retries), and both clients sent the
same header names. Calls per second include the emulator's time: on a loaded 2-core machine
the CPU ratio is the steadier number.

    python benchmarks/overhead.py             # 5000 calls x 5 rounds, C = 1 and 16, both backends
    python benchmarks/overhead.py --quick     # 1000 calls, 3 rounds
    python benchmarks/overhead.py --calls 10000 --concurrency 1 4 64 --backends trio

Prints a table, writes benchmarks/results/overhead.json and overhead.png.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

from _common import (
    API_KEY,
    MODELS,
    PROGRESS_PATH,
    Emulator,
    apply_quick,
    child_report,
    environment,
    eras,
    grouped_bars,
    parser,
    print_table,
    run_child,
    save_chart,
    work_usage,
    write_results,
)

DEFAULTS = {
    "calls": 5000,
    "concurrency": [1, 16],
    "backends": ["asyncio", "trio"],
    "era": "a",
    "warmup": 100,
    "rounds": 5,
}
QUICK = {"calls": 1000, "warmup": 50, "rounds": 3}


# --- the measured child ---------------------------------------------------------------------


def raw_headers() -> dict[str, str]:
    """The headers diffio-async sends on an API call, written out by hand."""
    import importlib.metadata
    import platform

    version = importlib.metadata.version("diffio-async")
    return {
        "User-Agent": f"diffio-async/{version}",
        "X-Diffio-SDK-Language": "Python",
        "X-Diffio-SDK-Name": "diffio-async",
        "X-Diffio-SDK-Version": version,
        "X-Diffio-SDK-Runtime": f"python/{platform.python_version()}",
        "Content-Type": "application/json",
        "Authorization": f"Bearer {API_KEY}",
    }


async def _measure(spec: dict[str, Any], call: Any) -> dict[str, Any]:
    import anyio

    for _ in range(spec["warmup"]):
        await call()
    concurrency = spec["concurrency"]
    shares = [
        spec["calls"] // concurrency + (i < spec["calls"] % concurrency) for i in range(concurrency)
    ]

    async def worker(count: int) -> None:
        for _ in range(count):
            await call()

    started = work_usage()
    clock = time.perf_counter()
    async with anyio.create_task_group() as group:
        for count in shares:
            group.start_soon(worker, count)
    return {"started": started, "seconds": time.perf_counter() - clock}


async def child_sdk(spec: dict[str, Any]) -> dict[str, Any]:
    from diffio_async import AsyncDiffio

    async with AsyncDiffio(API_KEY, spec["url"]) as client:
        generations = client.generations

        async def call() -> None:
            await generations.get_progress(spec["generation_id"], project_id=spec["project_id"])

        return await _measure(spec, call)


async def child_raw(spec: dict[str, Any]) -> dict[str, Any]:
    import httpx2

    url = f"{spec['url'].rstrip('/')}/v1/get_generation_progress"
    body = {"generationId": spec["generation_id"], "apiProjectId": spec["project_id"]}
    headers = raw_headers()
    async with httpx2.AsyncClient(timeout=60) as http:

        async def call() -> None:
            answer = await http.post(url, json=body, headers=headers)
            answer.raise_for_status()
            answer.json()

        return await _measure(spec, call)


def child(spec: dict[str, Any]) -> int:
    import anyio

    if spec["client"] == "sdk":
        import diffio_async  # noqa: F401
    run = child_sdk if spec["client"] == "sdk" else child_raw
    measured = anyio.run(run, spec, backend=spec["backend"])
    child_report(measured["started"], measured["seconds"], calls=spec["calls"])
    return 0


# --- the parent -----------------------------------------------------------------------------


def make_generation(url: str, era: str) -> tuple[str, str]:
    """A project and a generation that stays ``processing`` for the whole run."""
    import anyio

    from diffio_async import AsyncDiffio

    async def make() -> tuple[str, str]:
        async with AsyncDiffio(API_KEY, url) as client:
            project = await client.projects.create(b"RIFF" + bytes(4092), file_name="probe.wav")
            generation = await client.generations.create(project, model=MODELS[era])
            return generation.id, generation.project_id

    return anyio.run(make)


def measure_pair(emulator: Emulator, spec: dict[str, Any], rounds: int) -> dict[str, Any]:
    """``rounds`` runs of each client, interleaved (SDK, raw, raw, SDK, ...) so that a change
    of load on the machine hits both alike; the medians, their ratios, and every run."""
    runs: dict[str, list[dict[str, Any]]] = {"sdk": [], "raw": []}
    headers: dict[str, list[str]] = {}
    for index in range(rounds):
        for client in ("sdk", "raw") if index % 2 == 0 else ("raw", "sdk"):
            emulator.clear_requests()
            report = run_child(
                [sys.executable, __file__, "--child", json.dumps({**spec, "client": client})],
                timeout=600,
            )
            log = emulator.requests()
            polls = [entry for entry in log if entry["path"] == PROGRESS_PATH]
            headers[client] = sorted({name for name, _ in polls[-1]["headers"]})
            report["requests"] = len(log)
            runs[client].append(report)
    calls = spec["calls"]
    row: dict[str, Any] = {"runs": runs, "header_names": headers}
    for client, reports in runs.items():
        row[f"{client}_calls_per_s"] = statistics.median(calls / r["seconds"] for r in reports)
        row[f"{client}_cpu_us"] = statistics.median(1e6 * r["work_cpu_s"] / calls for r in reports)
    row["calls_ratio"] = row["sdk_calls_per_s"] / row["raw_calls_per_s"]
    row["cpu_ratio"] = row["sdk_cpu_us"] / row["raw_cpu_us"]
    requests = sum(r["requests"] for r in runs["sdk"])
    row["requests_per_call"] = requests / (rounds * (calls + spec["warmup"]))
    row["same_headers"] = "yes" if headers["sdk"] == headers["raw"] else "NO"
    return row


COLUMNS = [
    ("backend", "backend", ""),
    ("era", "era", ""),
    ("C", "concurrency", "d"),
    ("SDK calls/s", "sdk_calls_per_s", ".0f"),
    ("raw calls/s", "raw_calls_per_s", ".0f"),
    ("calls/s SDK/raw", "calls_ratio", ".2f"),
    ("SDK CPU µs/call", "sdk_cpu_us", ".0f"),
    ("raw CPU µs/call", "raw_cpu_us", ".0f"),
    ("CPU SDK/raw", "cpu_ratio", ".2f"),
    ("requests/call", "requests_per_call", ".3f"),
    ("same headers", "same_headers", ""),
]


def chart(rows: list[dict[str, Any]], args: Any) -> Any:
    """Two panels: calls per second and CPU per call, SDK and raw side by side."""
    labels = [f"{r['backend']}, era {r['era']}, C={r['concurrency']}" for r in rows]

    def draw(pyplot: Any) -> Any:
        figure, panels = pyplot.subplots(1, 2, figsize=(12, 4.2))
        grouped_bars(
            panels[0],
            labels,
            {
                "diffio-async": [r["sdk_calls_per_s"] for r in rows],
                "raw httpx2": [r["raw_calls_per_s"] for r in rows],
            },
            title="calls per second (higher is better)",
            ylabel="calls/s",
        )
        grouped_bars(
            panels[1],
            labels,
            {
                "diffio-async": [r["sdk_cpu_us"] for r in rows],
                "raw httpx2": [r["raw_cpu_us"] for r in rows],
            },
            title="client CPU per call (lower is better)",
            ylabel="µs (user + sys)",
        )
        panels[0].legend(fontsize=8)
        for panel in panels:
            panel.tick_params(axis="x", labelrotation=15)
        figure.suptitle(
            f"overhead: {args.calls} get_generation_progress calls per run, "
            f"medians of {args.rounds} runs"
        )
        return figure

    return draw


def main(argv: list[str] | None = None) -> int:
    cli = parser(__doc__.split("\n\n")[0])
    cli.add_argument("--calls", type=int, default=None, help="measured calls (5000; quick 1000)")
    cli.add_argument("--concurrency", type=int, nargs="+", default=None, help="(default 1 16)")
    cli.add_argument("--backends", nargs="+", choices=("asyncio", "trio"), default=None)
    cli.add_argument("--warmup", type=int, default=None, help="calls before measuring (100)")
    cli.add_argument(
        "--rounds", type=int, default=None, help="runs per client, interleaved (5; quick 3)"
    )
    cli.add_argument("--child", help=argparse.SUPPRESS)
    args = cli.parse_args(argv)
    if args.child:
        return child(json.loads(args.child))
    apply_quick(args, DEFAULTS, QUICK)

    rows = []
    for era in eras(args.era):
        with Emulator(era, generation_seconds=24 * 3600) as emulator:
            generation_id, project_id = make_generation(emulator.url, era)
            for backend in args.backends:
                for concurrency in args.concurrency:
                    spec = {
                        "backend": backend,
                        "url": emulator.url,
                        "generation_id": generation_id,
                        "project_id": project_id,
                        "calls": args.calls,
                        "warmup": args.warmup,
                        "concurrency": concurrency,
                    }
                    row = measure_pair(emulator, spec, args.rounds)
                    row.update(backend=backend, era=era, concurrency=concurrency)
                    rows.append(row)
                    print(
                        f"  {backend} era {era} C={concurrency}: SDK "
                        f"{row['sdk_calls_per_s']:.0f}/s, raw {row['raw_calls_per_s']:.0f}/s "
                        f"(medians of {args.rounds})",
                        file=sys.stderr,
                        flush=True,
                    )

    print()
    print_table(COLUMNS, rows)
    settings = {
        key: getattr(args, key) for key in ("calls", "concurrency", "backends", "warmup", "rounds")
    }
    path = write_results(
        "overhead",
        {"benchmark": "overhead", "settings": settings, "env": environment(), "rows": rows},
    )
    picture = save_chart("overhead", chart(rows, args))
    print(f"\nwritten: {path}" + (f", {picture}" if picture else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
