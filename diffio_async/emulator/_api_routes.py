"""The ``/v1/<endpoint>`` dispatcher: routing, CORS preflight, 405, auth, JSON, webhooks."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Literal

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response

from . import _api_account, _api_generations, _api_projects, _api_webhooks
from ._api_auth import Access, authenticate, authorize
from ._api_call import Call, Endpoint, read_json
from ._errors import ApiError, json_response
from ._runtime import ERA_A_MODELS, Runtime, model_endpoints
from ._webhook_delivery import OutgoingMessage

__all__ = ["CORS_HEADERS", "make_api_endpoint", "resolve"]

CORS_HEADERS = {
    "access-control-allow-origin": "*",
    "access-control-allow-methods": "POST, OPTIONS",
    "access-control-allow-headers": (
        "Authorization, Content-Type, X-Api-Key, Xi-Api-Key, X-Diffio-SDK-Language, "
        "X-Diffio-SDK-Name, X-Diffio-SDK-Version"
    ),
    "access-control-max-age": "3600",
}

_READ: Literal["read"] = "read"
_WRITE: Literal["write"] = "write"

_COMMON: dict[str, Endpoint] = {
    "create_project": Endpoint(_api_projects.create_project, Access("projects:write", _WRITE)),
    "list_projects": Endpoint(_api_projects.list_projects, Access("projects:read", _READ)),
    "list_project_generations": Endpoint(
        _api_generations.list_project_generations, Access("generations:read", _READ)
    ),
    "get_generation_progress": Endpoint(
        _api_generations.get_generation_progress, Access("generations:read", _READ)
    ),
    "get_generation_download": Endpoint(
        _api_generations.get_generation_download, Access("artifacts:read", _READ)
    ),
    "webhooks/send_test_event": Endpoint(
        _api_webhooks.send_test_event, Access("webhooks:write", _READ)
    ),
    "webhooks/configure": Endpoint(
        _api_webhooks.configure, Access("webhooks:write", _WRITE, admin=True)
    ),
    "webhooks/app_portal_access": Endpoint(
        _api_webhooks.app_portal_access, Access("webhooks:write", _READ)
    ),
    "api_keys/create": Endpoint(_api_account.api_keys_create, Access("keys:write", _WRITE, True)),
    "api_keys/list": Endpoint(_api_account.api_keys_list, Access("keys:read", _READ, True)),
    "api_keys/rotate": Endpoint(_api_account.api_keys_rotate, Access("keys:write", _WRITE, True)),
    "api_keys/revoke": Endpoint(_api_account.api_keys_revoke, Access("keys:write", _WRITE, True)),
    "usage/summary": Endpoint(_api_account.usage_summary, Access("usage:read", _READ)),
    "account/settings/get": Endpoint(
        _api_account.account_settings_get, Access("account:read", _READ)
    ),
    "account/settings/update": Endpoint(
        _api_account.account_settings_update, Access("account:write", _WRITE, admin=True)
    ),
}
_ERA_B_ONLY: dict[str, Endpoint] = {
    "complete_project_upload": Endpoint(
        _api_projects.complete_project_upload, Access("projects:write", _WRITE)
    ),
}
_GENERATION_ACCESS = Access("generations:write", _WRITE)
_RETIRED_ACCESS = Access(None, None)


def resolve(era: str, name: str) -> Endpoint | None:
    """The endpoint served at ``/v1/<name>`` in ``era``, or ``None`` (404)."""
    endpoint = _COMMON.get(name) or (_ERA_B_ONLY.get(name) if era == "b" else None)
    if endpoint is not None:
        return endpoint
    if not name.endswith("-generation"):
        return None
    stem = name.removesuffix("-generation")
    model_key = model_endpoints(era).get(stem)
    if model_key is not None:
        handler = functools.partial(_api_generations.create_generation, model_key=model_key)
        return Endpoint(handler, _GENERATION_ACCESS)
    if era == "b" and stem in ERA_A_MODELS:
        handler = functools.partial(_api_generations.retired_model, model_key=ERA_A_MODELS[stem])
        return Endpoint(handler, _RETIRED_ACCESS)
    return None


def make_api_endpoint(core: Runtime) -> Callable[[Request], Awaitable[Response]]:
    """The Starlette endpoint serving ``/v1/{endpoint:path}``."""

    async def api(request: Request) -> Response:
        name = request.path_params["endpoint"]
        endpoint = resolve(core.era, name)
        if endpoint is None:
            return json_response({"error": "Not found."}, 404)
        if request.method == "OPTIONS":
            return Response(status_code=204, headers=CORS_HEADERS)
        if request.method != "POST":
            return json_response({"error": "Method not allowed."}, 405, {"allow": "POST, OPTIONS"})
        messages: list[OutgoingMessage] = []
        response: Response
        try:
            key = authenticate(core, request.headers)
            authorize(key, endpoint.access)
            body = await read_json(request)
            call = Call(
                core=core,
                request=request,
                key=key,
                body=body,
                now=core.now(),
                messages=messages,
            )
            result = await endpoint.handler(call)
        except ApiError as error:
            response = error.response()
        else:
            response = result if isinstance(result, Response) else json_response(result)
        if messages:
            response.background = BackgroundTask(core.dispatcher.deliver, list(messages))
        return response

    return api
