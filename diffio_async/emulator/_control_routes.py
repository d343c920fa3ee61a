"""Emulator-only HTTP control routes under ``/_emulator/`` (no auth: local development only).

=======  ============================  ===============================================
Method   Path                          Meaning
=======  ============================  ===============================================
GET      /_emulator                    era, admin key id, clock, route list
GET      /_emulator/requests           request log (``{"requests": [...]}``)
DELETE   /_emulator/requests           clear the request log
GET      /_emulator/faults             active faults
POST     /_emulator/faults             add a fault (camelCase :class:`Fault` fields)
DELETE   /_emulator/faults             remove every fault
GET      /_emulator/clock              ``{"now", "epochSeconds"}``
POST     /_emulator/advance            ``{"seconds": n}`` moves the clock forward
POST     /_emulator/keys               mint a key (label, scopes, permissions, admin,
                                       spendLimitCents, billingHold, resourceBounds)
POST     /_emulator/billing            ``{"hold": bool, "keyId"?, "spendLimitCents"?}``
POST     /_emulator/script             queue generation outcomes (duration, failAt,
                                       error, errorDetails, transcript, transcriptDelay,
                                       count)
GET      /_emulator/webhooks/secret    ``{"secret": "whsec_…"}``
POST     /_emulator/webhooks/deliver   deliver due webhook events now (``{"delivered":
                                       n}``); a served emulator sends them on its own
                                       when due, and this waits for those pending
GET      /_emulator/webhooks/deliveries  every delivery attempt
=======  ============================  ===============================================
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from ._errors import json_response
from ._faults import Fault
from ._lifecycle import GenerationScript
from ._runtime import Runtime
from ._wire_json import key_json

__all__ = ["ROUTES", "make_control_endpoint"]

Endpoint = Callable[[Request], Awaitable[Response]]
ControlHandler = Callable[[Runtime, Request], Awaitable[Response]]


class _BadRequest(Exception):
    pass


async def _body(request: Request) -> dict[str, Any]:
    try:
        raw = await request.body()
    except ClientDisconnect:  # nobody will read the answer; do not raise into the server
        raise _BadRequest("The request body was cut short.") from None
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        raise _BadRequest("Invalid JSON body.") from None
    if not isinstance(data, dict):
        raise _BadRequest("Invalid JSON body.")
    return data


def _cleared() -> Response:
    return json_response({"cleared": True})


def _clock_json(core: Runtime) -> Response:
    return json_response({"now": core.clock.isoformat(), "epochSeconds": core.now()})


async def _info(core: Runtime, request: Request) -> Response:
    return json_response(
        {
            "era": core.era,
            "adminKeyId": core.admin_key_id,
            "now": core.clock.isoformat(),
            "routes": [f"{m} /_emulator/{p}".rstrip("/") for m, p in ROUTES],
        }
    )


async def _list_requests(core: Runtime, request: Request) -> Response:
    return json_response({"requests": [entry.to_json() for entry in core.log]})


async def _clear_requests(core: Runtime, request: Request) -> Response:
    core.log.clear()
    return _cleared()


async def _list_faults(core: Runtime, request: Request) -> Response:
    return json_response({"faults": [fault.to_json() for fault in core.faults.active()]})


async def _add_fault(core: Runtime, request: Request) -> Response:
    try:
        fault = Fault.from_json(await _body(request))
    except re.error as error:
        raise _BadRequest(f"Invalid regex: {error}") from None
    core.faults.add(fault)
    return json_response({"fault": fault.to_json()})


async def _clear_faults(core: Runtime, request: Request) -> Response:
    core.faults.clear()
    return _cleared()


async def _clock(core: Runtime, request: Request) -> Response:
    return _clock_json(core)


async def _advance(core: Runtime, request: Request) -> Response:
    seconds = (await _body(request)).get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
        raise _BadRequest("seconds must be a non-negative number")
    core.clock.advance(float(seconds))
    return _clock_json(core)


async def _mint_key(core: Runtime, request: Request) -> Response:
    data = await _body(request)
    key = core.state.add_key(
        created_at=core.now(),
        label=str(data.get("label", "Emulator key")),
        admin=bool(data.get("admin", False)),
        scopes=data.get("scopes"),
        permissions=data.get("permissions"),
        parent_key_id=core.admin_key_id,
        resource_bounds=data.get("resourceBounds"),
        spend_limit_cents=data.get("spendLimitCents"),
        billing_hold=bool(data.get("billingHold", False)),
    )
    body = key_json(core, key, with_secret=True)
    body.update(spendLimitCents=key.spend_limit_cents, billingHold=key.billing_hold)
    return json_response(body)


async def _set_billing(core: Runtime, request: Request) -> Response:
    data = await _body(request)
    key_id = data.get("keyId")
    state = core.state
    with state.lock:
        if key_id is not None and key_id not in state.keys:
            raise _BadRequest("Unknown keyId.")
        if "hold" in data:
            if key_id is None:
                state.account.billing_hold = bool(data["hold"])
            else:
                state.keys[key_id].billing_hold = bool(data["hold"])
        if "spendLimitCents" in data:
            if key_id is None:
                raise _BadRequest("spendLimitCents needs a keyId.")
            state.keys[key_id].spend_limit_cents = data["spendLimitCents"]
    return json_response({"accountHold": state.account.billing_hold})


async def _queue_script(core: Runtime, request: Request) -> Response:
    data = await _body(request)
    script = GenerationScript(
        duration=data.get("duration"),
        fail_at=data.get("failAt"),
        error=data.get("error"),
        error_details=data.get("errorDetails"),
        transcript=data.get("transcript", "available"),
        transcript_delay=float(data.get("transcriptDelay", 0.0)),
    )
    count = int(data.get("count", 1))
    with core.state.lock:
        core.state.scripts.extend([script] * count)
        queued = len(core.state.scripts)
    return json_response({"queued": queued})


async def _webhook_secret(core: Runtime, request: Request) -> Response:
    return json_response({"secret": core.dispatcher.secret})


async def _deliver_webhooks(core: Runtime, request: Request) -> Response:
    return json_response({"delivered": await core.deliver_due()})


async def _webhook_deliveries(core: Runtime, request: Request) -> Response:
    return json_response(
        {
            "deliveries": [
                {
                    "messageId": item.message_id,
                    "eventType": item.event_type,
                    "url": item.url,
                    "attempt": item.attempt,
                    "statusCode": item.status_code,
                    "error": item.error,
                    "event": item.event,
                }
                for item in core.dispatcher.deliveries
            ]
        }
    )


ROUTES: dict[tuple[str, str], ControlHandler] = {
    ("GET", ""): _info,
    ("GET", "requests"): _list_requests,
    ("DELETE", "requests"): _clear_requests,
    ("GET", "faults"): _list_faults,
    ("POST", "faults"): _add_fault,
    ("DELETE", "faults"): _clear_faults,
    ("GET", "clock"): _clock,
    ("POST", "advance"): _advance,
    ("POST", "keys"): _mint_key,
    ("POST", "billing"): _set_billing,
    ("POST", "script"): _queue_script,
    ("GET", "webhooks/secret"): _webhook_secret,
    ("POST", "webhooks/deliver"): _deliver_webhooks,
    ("GET", "webhooks/deliveries"): _webhook_deliveries,
}
"""(method, path under ``/_emulator/``) -> handler; the module docstring's table, in order."""

_PATHS = frozenset(path for _, path in ROUTES)


def make_control_endpoint(core: Runtime) -> Endpoint:
    """The Starlette endpoint for ``/_emulator`` and ``/_emulator/{rest:path}``."""

    async def control(request: Request) -> Response:
        rest = request.path_params.get("rest", "").strip("/")
        if rest not in _PATHS:
            return json_response({"error": "Not found."}, 404)
        handler = ROUTES.get((request.method, rest))
        if handler is None:
            return json_response({"error": "Method not allowed."}, 405)
        try:
            return await handler(core, request)
        except (_BadRequest, ValueError, TypeError) as error:
            return json_response({"error": str(error)}, 400)

    return control
