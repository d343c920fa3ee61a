"""Assembles the Starlette app: API, edge upload, signed media and control routes, and the
lifespan that runs the webhook scheduler while a server serves the app."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ._api_routes import make_api_endpoint
from ._control_routes import make_control_endpoint
from ._edge_upload_routes import make_edge_endpoint
from ._errors import json_response
from ._media_routes import make_edge_media_endpoint, make_storage_endpoint
from ._runtime import Runtime

__all__ = ["ALL_METHODS", "build_app"]

ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 405:
        return json_response({"error": "Method not allowed."}, 405)
    if status == 404:
        return json_response({"error": "Not found."}, 404)
    return json_response({"error": "Internal server error."}, status)


async def _server_error(request: Request, exc: Exception) -> Response:
    return json_response({"error": "Internal server error."}, 500)


def build_app(core: Runtime) -> Starlette:
    """The emulator's routes for ``core.era`` (era A: ``/_storage``; era B: edge and ``/m``)."""
    control = make_control_endpoint(core)
    routes = [
        Route("/_emulator", control, methods=ALL_METHODS),
        Route("/_emulator/{rest:path}", control, methods=ALL_METHODS),
    ]
    if core.era == "b":
        edge = make_edge_endpoint(core)
        routes += [
            Route("/v1/uploads/{action:path}", edge, methods=ALL_METHODS),
            Route("/m/{token}/{rest:path}", make_edge_media_endpoint(core), methods=ALL_METHODS),
        ]
    else:
        routes.append(
            Route(
                "/_storage/{bucket}/{path:path}",
                make_storage_endpoint(core),
                methods=ALL_METHODS,
            )
        )
    routes.append(Route("/v1/{endpoint:path}", make_api_endpoint(core), methods=ALL_METHODS))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with core.scheduler.running():
            yield

    return Starlette(
        routes=routes,
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
        lifespan=lifespan,
    )
