"""``/v1`` admin-ish endpoints: api_keys/*, usage/summary, account/settings/*."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

from ._api_call import Call, optional_object, optional_string
from ._errors import ApiError
from ._state import ALL_SCOPES, ApiKey, new_key_secret
from ._wire_json import account_json, key_json

__all__ = [
    "account_settings_get",
    "account_settings_update",
    "api_keys_create",
    "api_keys_list",
    "api_keys_revoke",
    "api_keys_rotate",
    "target_key",
    "usage_summary",
]

BILLING_POLICIES = ("customerStripe", "internalDiffio")


def target_key(call: Call, key_id: str | None, what: str) -> ApiKey:
    """The key an ``apiKeyId`` field names: non-admin callers may only name themselves."""
    if key_id is None or key_id == call.key.key_id:
        return call.key
    if not call.key.is_admin:
        raise ApiError(403, f"API key can only {what} for itself.")
    with call.core.state.lock:
        key = call.core.state.keys.get(key_id)
    if key is None:
        raise ApiError(404, "API key not found.")
    return key


async def api_keys_create(call: Call) -> dict[str, Any]:
    """``POST /v1/api_keys/create``: a scoped child key (plaintext returned only here)."""
    body = call.body
    label = body.get("label")
    if not isinstance(label, str) or not label.strip():
        raise ApiError(400, "label is required")
    if len(label) > 80:
        raise ApiError(400, "label must be at most 80 characters")
    scopes = body.get("scopes")
    if not isinstance(scopes, list) or not scopes or not all(isinstance(s, str) for s in scopes):
        raise ApiError(400, "scopes must be a non-empty array of strings")
    for scope in scopes:
        if scope not in ALL_SCOPES:
            raise ApiError(400, f"Unsupported scope: {scope}")
    bounds = optional_object(body, "resourceBounds") or {}
    project_ids = bounds.get("projectIds")
    if project_ids is not None and (
        not isinstance(project_ids, list) or not all(isinstance(p, str) for p in project_ids)
    ):
        raise ApiError(400, "resourceBounds.projectIds must be an array of strings")
    key = call.core.state.add_key(
        created_at=call.now,
        label=label,
        scopes=list(dict.fromkeys(scopes)),
        parent_key_id=call.key.key_id,
        resource_bounds=bounds,
    )
    return key_json(call.core, key, with_secret=True)


async def api_keys_list(call: Call) -> dict[str, Any]:
    """``POST /v1/api_keys/list``: every key of the account, oldest first, no secrets."""
    with call.core.state.lock:
        keys = sorted(call.core.state.keys.values(), key=lambda item: item.created_at)
        return {"keys": [key_json(call.core, key) for key in keys]}


def _scoped_target(call: Call, verb: str) -> ApiKey:
    key_id = call.body.get("keyId")
    if not isinstance(key_id, str) or not key_id.strip():
        raise ApiError(400, "keyId is required")
    with call.core.state.lock:
        key = call.core.state.keys.get(key_id)
    if key is None:
        raise ApiError(404, "API key not found.")
    if key.role != "scoped":
        raise ApiError(403, f"Only scoped API keys can be {verb}.")
    return key


async def api_keys_rotate(call: Call) -> dict[str, Any]:
    """``POST /v1/api_keys/rotate``: a new secret; the old one stops working (401)."""
    key = _scoped_target(call, "rotated")
    state = call.core.state
    with state.lock:
        if key.status != "active":
            raise ApiError(403, "API key is not active")
        if key.secret is not None:
            state.retired_secrets.add(key.secret)
        key.secret = new_key_secret()
        key.rotated_at = call.now
    return key_json(call.core, key, with_secret=True)


async def api_keys_revoke(call: Call) -> dict[str, Any]:
    """``POST /v1/api_keys/revoke``: the key answers 403 ``API key is not active`` from now on."""
    key = _scoped_target(call, "revoked")
    with call.core.state.lock:
        if key.status != "revoked":
            key.status = "revoked"
            key.revoked_at = call.now
    return key_json(call.core, key)


def _period_bounds(epoch: float) -> tuple[str, datetime, datetime]:
    moment = datetime.fromtimestamp(epoch, tz=timezone.utc)
    start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )
    return start.strftime("%Y-%m"), start, end


async def usage_summary(call: Call) -> dict[str, Any]:
    """``POST /v1/usage/summary``: per-month charges of ``max(60, seconds)`` per generation.

    Charges are ``cents_per_second`` (default 1 cent) per billed second; in-flight
    generations are ``reservedCents``, complete ones ``finalizedCents``, failed ones are free.
    """
    core = call.core
    key = target_key(call, optional_string(call.body, "apiKeyId"), "read usage")
    periods: dict[str, dict[str, Any]] = {}
    lifetime = 0
    with core.state.lock:
        generations = [g for g in core.state.generations.values() if g.key_id == key.key_id]
        for generation in generations:
            status = core.status(generation, call.now)
            if status == "failed":
                continue
            period_id, start, end = _period_bounds(generation.created_at)
            period = periods.setdefault(
                period_id,
                {
                    "periodId": period_id,
                    "periodStart": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "periodEnd": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "reservedCents": 0,
                    "finalizedCents": 0,
                    "totalCents": 0,
                    "modelSeconds": {},
                    "modelCents": {},
                },
            )
            seconds = generation.billed_seconds
            cents = core.charge_cents(seconds)
            bucket = "finalizedCents" if status == "complete" else "reservedCents"
            period[bucket] += cents
            period["totalCents"] += cents
            model = generation.model_key
            period["modelSeconds"][model] = period["modelSeconds"].get(model, 0) + seconds
            period["modelCents"][model] = period["modelCents"].get(model, 0) + cents
            lifetime += cents
        policy = dict(core.state.account.billing_policy)
    ordered = sorted(periods.values(), key=lambda item: item["periodStart"], reverse=True)
    billable = 0 if policy.get("type") == "internalDiffio" else lifetime
    return {
        "usage": {"apiKeyId": key.key_id, "periods": ordered},
        "billing": {
            "billingPolicy": policy,
            "lifetimeListPriceCents": lifetime,
            "lifetimeBillableCents": billable,
            "centsPerSecond": core.config.cents_per_second,
            "spendLimitCents": key.spend_limit_cents,
            "spentCents": math.ceil(core.spent_cents(key.key_id, call.now)),
        },
    }


async def account_settings_get(call: Call) -> dict[str, Any]:
    """``POST /v1/account/settings/get``."""
    with call.core.state.lock:
        return {"apiKeyId": call.key.key_id, "account": account_json(call.core)}


async def account_settings_update(call: Call) -> dict[str, Any]:
    """``POST /v1/account/settings/update``: set the billing policy."""
    policy = call.body.get("billingPolicy")
    if not isinstance(policy, dict):
        raise ApiError(400, "billingPolicy must be an object")
    policy_type = policy.get("type")
    if policy_type not in BILLING_POLICIES:
        raise ApiError(400, "billingPolicy.type must be customerStripe or internalDiffio")
    reason = policy.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise ApiError(400, "billingPolicy.reason must be a string")
    stored: dict[str, Any] = {"type": policy_type}
    if reason is not None:
        stored["reason"] = reason
    with call.core.state.lock:
        account = call.core.state.account
        account.billing_policy = stored
        account.updated_at = call.now
        return {"apiKeyId": call.key.key_id, "account": account_json(call.core)}
