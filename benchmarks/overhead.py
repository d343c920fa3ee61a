"""overhead: many small API calls through the SDK against raw httpx.AsyncClient.

The call is ``get_generation_progress`` of one running generation: through diffio-async
(``client.generations.get_progress(id, project_id=...)``: body model, retry wrapper, error
mapping, response parsing into a frozen model) and through a bare ``httpx.AsyncClient`` that
POSTs the same JSON with the same headers (identity headers, ``Authorization``,
``Content-Type``) and calls ``response.json()``. Each (client, backend, concurrency) runs in
its own process after a warm-up, against one emulator process; ``concurrency`` tasks share
the calls. Reported: calls per second, CPU (user + sys) per call, and the ratios SDK / raw
measured in the same run. The emulator's log is checked: every call is one request (no
retries), and both clients sent the same header names.

    python benchmarks/overhead.py             # 5000 calls, concurrency 1 and 16, both backends
    python benchmarks/overhead.py --quick     # 1000 calls
    python benchmarks/overhead.py --calls 10000 --concurrency 1 4 64 --backends trio

Prints a table, writes benchmarks/results/overhead.json and overhead.png.
"""

from __future__ import annotations

import argparse
import json
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
}
QUICK = {"calls": 1000, "warmup": 50}


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
    import httpx

    url = f"{spec['url'].rstrip('/')}/v1/get_generation_progress"
    body = {"generationId": spec["generation_id"], "apiProjectId": spec["project_id"]}
    headers = raw_headers()
    async with httpx.AsyncClient(timeout=60) as http:

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
                "raw httpx": [r["raw_calls_per_s"] for r in rows],
            },
            title="calls per second (higher is better)",
            ylabel="calls/s",
        )
        grouped_bars(
            panels[1],
            labels,
            {
                "diffio-async": [r["sdk_cpu_us"] for r in rows],
                "raw httpx": [r["raw_cpu_us"] for r in rows],
            },
            title="client CPU per call (lower is better)",
            ylabel="µs (user + sys)",
        )
        panels[0].legend(fontsize=8)
        for panel in panels:
            panel.tick_params(axis="x", labelrotation=15)
        figure.suptitle(f"overhead: {args.calls} get_generation_progress calls per run")
        return figure

    return draw


def main(argv: list[str] | None = None) -> int:
    cli = parser(__doc__.split("\n\n")[0])
    cli.add_argument("--calls", type=int, default=None, help="measured calls (5000; quick 1000)")
    cli.add_argument("--concurrency", type=int, nargs="+", default=None, help="(default 1 16)")
    cli.add_argument("--backends", nargs="+", choices=("asyncio", "trio"), default=None)
    cli.add_argument("--warmup", type=int, default=None, help="calls before measuring (100)")
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
                    row: dict[str, Any] = {
                        "backend": backend,
                        "era": era,
                        "concurrency": concurrency,
                    }
                    headers = {}
                    for client in ("sdk", "raw"):
                        emulator.clear_requests()
                        spec = {
                            "client": client,
                            "backend": backend,
                            "url": emulator.url,
                            "generation_id": generation_id,
                            "project_id": project_id,
                            "calls": args.calls,
                            "warmup": args.warmup,
                            "concurrency": concurrency,
                        }
                        report = run_child(
                            [sys.executable, __file__, "--child", json.dumps(spec)],
                            timeout=600,
                        )
                        log = emulator.requests()
                        polls = [entry for entry in log if entry["path"] == PROGRESS_PATH]
                        headers[client] = sorted({name for name, _ in polls[-1]["headers"]})
                        row[f"{client}_report"] = report
                        row[f"{client}_requests"] = len(log)
                        row[f"{client}_calls_per_s"] = args.calls / report["seconds"]
                        row[f"{client}_cpu_us"] = 1e6 * report["work_cpu_s"] / args.calls
                    row["calls_ratio"] = row["sdk_calls_per_s"] / row["raw_calls_per_s"]
                    row["cpu_ratio"] = row["sdk_cpu_us"] / row["raw_cpu_us"]
                    row["requests_per_call"] = row["sdk_requests"] / (args.calls + args.warmup)
                    row["same_headers"] = "yes" if headers["sdk"] == headers["raw"] else "NO"
                    row["header_names"] = headers
                    rows.append(row)
                    print(
                        f"  {backend} era {era} C={concurrency}: SDK "
                        f"{row['sdk_calls_per_s']:.0f}/s, raw {row['raw_calls_per_s']:.0f}/s",
                        file=sys.stderr,
                        flush=True,
                    )

    print()
    print_table(COLUMNS, rows)
    settings = {key: getattr(args, key) for key in ("calls", "concurrency", "backends", "warmup")}
    path = write_results(
        "overhead",
        {"benchmark": "overhead", "settings": settings, "env": environment(), "rows": rows},
    )
    picture = save_chart("overhead", chart(rows, args))
    print(f"\nwritten: {path}" + (f", {picture}" if picture else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
