"""A web service that restores uploads and wakes waits from Diffio webhooks.

One client per process (created in the lifespan, closed on shutdown), shared by every
request; a ``WebhookRouter`` turns verified deliveries into prompt wake-ups of
``Generation.wait``. Run with ``uvicorn examples.starlette_app:app`` (needs the ``emulator``
extra for starlette/uvicorn, and DIFFIO_API_KEY and DIFFIO_WEBHOOK_SECRET).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from diffio_async import AsyncDiffio, MediaSource, PollPolicy
from diffio_async.webhooks import WebhookRouter, WebhookVerificationError

router = WebhookRouter(os.environ.get("DIFFIO_WEBHOOK_SECRET", "whsec_c2VjcmV0"))


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    async with AsyncDiffio() as client:
        app.state.diffio = client
        yield


async def restore(request: Request) -> Response:
    client: AsyncDiffio = request.app.state.diffio
    body = await request.body()  # small uploads only; stream big ones to disk first
    source = MediaSource.from_bytes(body, file_name=request.query_params.get("name", "a.wav"))
    project = await client.projects.create(source)
    generation = await client.generations.create(project, model="diffio-3.5")
    final = await generation.wait(router=router, poll=PollPolicy(initial=5, maximum=120))
    info = await generation.download_info()
    return JSONResponse({"status": final.status, "downloadUrl": info.download_url})


async def webhook(request: Request) -> Response:
    try:
        await router.handle(await request.body(), request.headers)
    except WebhookVerificationError:
        return Response(status_code=400)
    return Response(status_code=204)


app = Starlette(
    routes=[
        Route("/restore", restore, methods=["POST"]),
        Route("/diffio-webhook", webhook, methods=["POST"]),
    ],
    lifespan=lifespan,
)
