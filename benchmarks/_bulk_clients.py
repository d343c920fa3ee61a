"""The async bulk clients, each run as a measured child by ``bulk.py`` and ``chaos.py``.

    python benchmarks/_bulk_clients.py '{"client": "sdk", "backend": "trio", ...}'

* ``sdk``: diffio-async's ``restore_many`` with ``BatchOptions(concurrency=C)`` and every other
  option at its default (polling, retries, transfer slots): what a user gets.
* ``raw``: the floor. A minimal script on httpx2 + anyio that does the same work per file
  (create the project, upload in the era's protocol, create the generation, poll its progress
  every 0.5 s, fetch the download URL, download) with no retries and no checks.

Each reads every ``*.wav`` of ``inputs``, writes ``out/<stem>.mp3``, and prints one JSON line
(:func:`_common.child_report`): files, ok, the first errors, wall seconds and CPU of the work.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import httpx2
from _common import API_KEY, MODELS, child_report, one_line, output_for, work_usage

POLL_SECONDS = 0.5
"""The raw client's fixed polling interval."""


async def run_sdk(spec: dict[str, Any], sources: list[Path], out: Path) -> dict[str, Any]:
    """diffio-async: one ``restore_many`` over every source."""
    from diffio_async import AsyncDiffio, BatchOptions

    ok = 0
    errors: list[str] = []
    batch = BatchOptions(concurrency=spec["concurrency"])
    async with (
        AsyncDiffio(API_KEY, spec["url"]) as client,
        client.restore_many(sources, output_dir=out, batch=batch) as results,
    ):
        async for item in results:
            ok += item.ok
            if not item.ok and len(errors) < 5:
                errors.append(one_line(f"{item.stage}: {type(item.error).__name__}: {item.error}"))
    return {"ok": ok, "errors": errors}


async def _api(http: httpx2.AsyncClient, base: str, endpoint: str, body: dict[str, Any]) -> Any:
    answer = await http.post(
        f"{base}/v1/{endpoint}", json=body, headers={"Authorization": f"Bearer {API_KEY}"}
    )
    answer.raise_for_status()
    return answer.json()


async def _upload(
    http: httpx2.AsyncClient, base: str, project: dict[str, Any], data: bytes
) -> None:
    upload = project.get("upload")
    if upload is None:  # era A: one signed PUT
        method = project.get("uploadMethod") or "PUT"
        answer = await http.request(
            method, project["uploadUrl"], content=data, headers={"Content-Type": "audio/wav"}
        )
        answer.raise_for_status()
        return
    edge = upload["edgeBaseUrl"].rstrip("/")  # era B: edge multipart
    auth = {"Authorization": f"Bearer {upload['uploadToken']}"}
    started = await http.post(f"{edge}/v1/uploads/start", json={}, headers=auth)
    started.raise_for_status()
    upload_id = started.json()["uploadId"]
    part_size = int(started.json().get("partSizeBytes") or upload["partSizeBytes"])
    parts = []
    for number, offset in enumerate(range(0, max(len(data), 1), part_size), start=1):
        answer = await http.put(
            f"{edge}/v1/uploads/parts/{number}",
            params={"uploadId": upload_id},
            content=data[offset : offset + part_size],
            headers={**auth, "Content-Type": "application/octet-stream"},
        )
        answer.raise_for_status()
        parts.append({"partNumber": number, "etag": answer.json()["etag"]})
    done = await http.post(
        f"{edge}/v1/uploads/complete", json={"uploadId": upload_id, "parts": parts}, headers=auth
    )
    done.raise_for_status()
    await _api(http, base, "complete_project_upload", {"apiProjectId": project["apiProjectId"]})


async def _restore_raw(
    http: httpx2.AsyncClient, base: str, model: str, source: Path, target: Path
) -> None:
    data = source.read_bytes()  # noqa: ASYNC240 - 64 KiB; the floor does the least
    project = await _api(
        http,
        base,
        "create_project",
        {"fileName": source.name, "contentType": "audio/wav", "contentLength": len(data)},
    )
    project_id = project["apiProjectId"]
    await _upload(http, base, project, data)
    created = await _api(http, base, f"{model}-generation", {"apiProjectId": project_id})
    ids = {"generationId": created["generationId"], "apiProjectId": project_id}
    while True:
        await anyio.sleep(POLL_SECONDS)
        status = (await _api(http, base, "get_generation_progress", ids))["status"]
        if status == "complete":
            break
        if status in ("failed", "error"):
            raise RuntimeError(f"generation {status}")
    download = await _api(http, base, "get_generation_download", {**ids, "downloadType": "audio"})
    media = await http.get(download["downloadUrl"])
    media.raise_for_status()
    target.write_bytes(media.content)  # noqa: ASYNC240


async def run_raw(spec: dict[str, Any], sources: list[Path], out: Path) -> dict[str, Any]:
    """The floor: C tasks pull files from a shared list; fixed 0.5 s polls."""
    base = spec["url"].rstrip("/")
    model = MODELS[spec["era"]]
    pending = list(reversed(sources))
    ok = 0
    errors: list[str] = []
    limits = httpx2.Limits(max_connections=spec["concurrency"], max_keepalive_connections=None)

    async def worker(http: httpx2.AsyncClient) -> None:
        nonlocal ok
        while pending:
            source = pending.pop()
            try:
                await _restore_raw(http, base, model, source, output_for(source, out))
                ok += 1
            except Exception as error:  # the floor has no retries: a failure is a lost file
                if len(errors) < 5:
                    errors.append(one_line(f"{type(error).__name__}: {error}"))

    async with (
        httpx2.AsyncClient(timeout=60, limits=limits) as http,
        anyio.create_task_group() as group,
    ):
        for _ in range(min(spec["concurrency"], len(sources))):
            group.start_soon(worker, http)
    return {"ok": ok, "errors": errors}


def main() -> int:
    spec = json.loads(sys.argv[1])
    sources = sorted(Path(spec["inputs"]).glob("*.wav"))
    out = Path(spec["out"])
    out.mkdir(parents=True, exist_ok=True)
    run = run_sdk if spec["client"] == "sdk" else run_raw
    if spec["client"] == "sdk":  # imported before the measurement starts (raw never loads it)
        import diffio_async  # noqa: F401
    if spec.get("backend") == "trio":
        import trio  # noqa: F401
    started = work_usage()
    clock = time.perf_counter()
    result = anyio.run(run, spec, sources, out, backend=spec.get("backend", "asyncio"))
    child_report(started, time.perf_counter() - clock, files=len(sources), **result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
