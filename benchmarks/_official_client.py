"""The official ``diffio`` SDK as a bulk client: C threads, run as a measured child.

    <official venv>/bin/python benchmarks/_official_client.py '{"url": ..., "era": "a", ...}'

The official SDK is synchronous and has no batch helper, so a user fans it out on a thread
pool: one shared ``DiffioClient`` (its own ``httpx.Client``, default limits), ``C`` threads,
and per file the calls of ``tests/crosscheck/official_flow.py``: ``create_project`` (with the
upload), ``create_generation``, ``wait_for_generation`` at its default 2 s ``pollInterval``,
``generations.download``. Every option is left at its default (no retries), as a user gets it.

Runs in a virtualenv holding only ``diffio`` (0.1.114 for era A, 0.3.10 for era B): standard
library and ``_common`` only. Prints one JSON line (:func:`_common.child_report`).
"""

from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from _common import API_KEY, MODELS, child_report, one_line, output_for, work_usage


def main() -> int:
    spec: dict[str, Any] = json.loads(sys.argv[1])
    import importlib.metadata

    from diffio import DiffioClient

    sources = sorted(Path(spec["inputs"]).glob("*.wav"))
    out = Path(spec["out"])
    out.mkdir(parents=True, exist_ok=True)
    model = MODELS[spec["era"]]
    version = importlib.metadata.version("diffio")

    def restore(client: Any, source: Path) -> None:
        project = client.create_project(filePath=str(source))
        generation = client.create_generation(apiProjectId=project.apiProjectId, model=model)
        client.wait_for_generation(
            generationId=generation.generationId, apiProjectId=project.apiProjectId
        )
        client.generations.download(
            generationId=generation.generationId,
            apiProjectId=project.apiProjectId,
            downloadFilePath=str(output_for(source, out)),
            downloadType="audio",
        )

    ok = 0
    errors: list[str] = []
    started = work_usage()
    clock = time.perf_counter()
    with (
        DiffioClient(apiKey=API_KEY, baseUrl=spec["url"]) as client,
        ThreadPoolExecutor(max_workers=spec["concurrency"]) as pool,
    ):
        futures = [pool.submit(restore, client, source) for source in sources]
        for future in as_completed(futures):
            error = future.exception()
            if error is None:
                ok += 1
            elif len(errors) < 5:
                errors.append(one_line(f"{type(error).__name__}: {error}"))
    child_report(
        started,
        time.perf_counter() - clock,
        files=len(sources),
        ok=ok,
        errors=errors,
        diffio_version=version,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
