"""An aiohttp handler that streams a multipart field straight into a restore.

``POST /restore`` takes a multipart form with a ``size`` field (the file's size in bytes:
uploads declare their length up front, and a multipart part does not say its own) followed
by a ``file`` field, and answers JSON (``output`` is ``<request id>/<the server's file
name>`` under RESTORED_DIR: a folder per request, so callers never overwrite each other).
The field is read in order, a chunk at a time, while the SDK uploads it: the request body is
never held in memory or written to disk. On an era-B (edge) server a part that must be
re-sent is re-sent from the copy kept of that one part; on an era-A server the single upload
request cannot be re-sent once bytes went out (the error says so).

One client per process (created on startup, closed on cleanup) is shared by every request.
Run with ``python examples/aiohttp_upload.py`` (needs aiohttp, and DIFFIO_API_KEY;
RESTORED_DIR is where outputs go, default a temp folder)::

    curl -F size=$(stat -c %s talk.wav) -F file=@talk.wav http://127.0.0.1:8080/restore
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
from aiohttp import BodyPartReader, web

from diffio_async import AsyncDiffio, InvalidRequestError, MediaSource, RestoreError

RESTORED_DIR = Path(os.environ.get("RESTORED_DIR") or Path(tempfile.gettempdir()) / "restored")
DIFFIO = web.AppKey("diffio", AsyncDiffio)


async def diffio_client(app: web.Application) -> AsyncIterator[None]:
    await anyio.Path(RESTORED_DIR).mkdir(parents=True, exist_ok=True)
    async with AsyncDiffio() as client:
        app[DIFFIO] = client
        yield


async def restore(request: web.Request) -> web.Response:
    reader = await request.multipart()
    size_field = await reader.next()
    if not isinstance(size_field, BodyPartReader) or size_field.name != "size":
        raise web.HTTPBadRequest(text="send a 'size' field before the 'file' field")
    try:
        size = int(await size_field.text())
    except ValueError:
        raise web.HTTPBadRequest(text="'size' must be a whole number of bytes") from None
    field = await reader.next()
    if not isinstance(field, BodyPartReader) or field.name != "file":
        raise web.HTTPBadRequest(text="send the recording in a 'file' field")
    try:
        # The field's name and content type come from its part headers.
        source = MediaSource.from_file(field, size=size)
        # A folder per request: two callers uploading "talk.wav" never share an output.
        folder = RESTORED_DIR / uuid.uuid4().hex
        await anyio.Path(folder).mkdir()
        result = await request.app[DIFFIO].restore(source, output=folder)
    except InvalidRequestError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from exc
    except RestoreError as exc:
        return web.json_response({"error": str(exc)}, status=502)
    return web.json_response(
        {
            "projectId": result.project_id,
            "generationId": result.generation_id,
            "status": result.progress.status,
            "output": result.output.relative_to(RESTORED_DIR).as_posix(),
        }
    )


def make_app() -> web.Application:
    """The application: one route, one shared client."""
    app = web.Application()
    app.cleanup_ctx.append(diffio_client)
    app.router.add_post("/restore", restore)
    return app


if __name__ == "__main__":
    web.run_app(make_app(), host="127.0.0.1", port=8080)
