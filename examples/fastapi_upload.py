"""A FastAPI endpoint that restores an uploaded file through one shared ``AsyncDiffio``.

``POST /restore`` takes a multipart form with a ``file`` field and answers JSON (the ids, the
final status and where the restored file went: ``<request id>/<the server's file name>``
under RESTORED_DIR, a folder per request so that callers never overwrite each other).
FastAPI spools the upload to a temporary file (1 MiB in memory, the rest on disk) and the SDK
uploads it from there, a chunk at a time in a worker thread: a large request body is never
held in memory, by either side.

One client per process (created in the lifespan, closed on shutdown) is shared by every
request. Run with ``uvicorn examples.fastapi_upload:app`` (needs fastapi and
python-multipart, and DIFFIO_API_KEY; RESTORED_DIR is where outputs go, default a temp
folder)::

    curl -F file=@talk.wav http://127.0.0.1:8000/restore
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI, HTTPException, Request, UploadFile

from diffio_async import AsyncDiffio, RestoreError

RESTORED_DIR = Path(os.environ.get("RESTORED_DIR") or Path(tempfile.gettempdir()) / "restored")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    await anyio.Path(RESTORED_DIR).mkdir(parents=True, exist_ok=True)
    async with AsyncDiffio() as client:
        app.state.diffio = client
        yield


app = FastAPI(lifespan=lifespan)


@app.post("/restore")
async def restore(request: Request, file: UploadFile) -> dict[str, Any]:
    client: AsyncDiffio = request.app.state.diffio
    # A folder per request: two callers uploading "talk.wav" never share an output.
    folder = RESTORED_DIR / uuid.uuid4().hex
    await anyio.Path(folder).mkdir()
    try:
        # The UploadFile itself: its name and content type come along.
        result = await client.restore(file, output=folder)
    except RestoreError as exc:
        raise HTTPException(status_code=502, detail=str(exc)) from exc
    finally:
        await file.close()
    return {
        "projectId": result.project_id,
        "generationId": result.generation_id,
        "status": result.progress.status,
        "output": result.output.relative_to(RESTORED_DIR).as_posix(),
    }
