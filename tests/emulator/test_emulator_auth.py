"""Auth headers, scopes, admin-only endpoints, key lifecycle, billing hold, spend limit."""

from __future__ import annotations

import pytest
from emulator_helpers import ADMIN, call, generation, inproc, ok, project_a

from diffio_async.emulator import Emulator

pytestmark = pytest.mark.anyio

PAYMENT_FAILED = {
    "error": "Payment failed. Update your payment method in the billing portal.",
    "code": "paymentFailed",
}


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {ADMIN}"},
        {"authorization": f"bearer {ADMIN}"},
        {"X-Api-Key": ADMIN},
        {"Xi-Api-Key": ADMIN},
    ],
)
async def test_all_three_key_headers(emulator: Emulator, headers: dict[str, str]) -> None:
    async with inproc(emulator) as client:
        response = await client.post("/v1/list_projects", json={}, headers=headers)
    assert response.status_code == 200
    assert response.json() == {"projects": []}


async def test_missing_and_unknown_keys_are_401(emulator: Emulator) -> None:
    async with inproc(emulator) as client:
        missing = await client.post("/v1/list_projects", json={})
        unknown = await call(client, "list_projects", key="diffio_live_nope")
        basic = await client.post(
            "/v1/list_projects", json={}, headers={"Authorization": f"Basic {ADMIN}"}
        )
    assert missing.status_code == 401
    assert unknown.status_code == 401 and unknown.json() == {"error": "Invalid API key."}
    assert basic.status_code == 401


async def test_without_a_configured_key_any_key_is_admin() -> None:
    with Emulator() as emulator:
        async with inproc(emulator) as client:
            first = await ok(client, "account/settings/get", key="anything-goes")
            created = await ok(
                client, "api_keys/create", {"label": "child", "scopes": ["projects:read"]}, key="x"
            )
            child = await ok(client, "list_projects", key=created["key"])
            blank = await client.post(
                "/v1/list_projects", json={}, headers={"Authorization": "Bearer   "}
            )
            rotated = await ok(client, "api_keys/rotate", {"keyId": created["keyId"]}, key="x")
            old = await call(client, "list_projects", key=created["key"])
            new = await call(client, "list_projects", key=rotated["key"])
    assert first["apiKeyId"] == emulator.admin_key_id
    assert child == {"projects": []}
    assert blank.status_code == 401
    assert old.status_code == 401
    assert new.status_code == 200


async def test_scoped_keys_follow_the_scope_mapping(emulator: Emulator) -> None:
    reader = emulator.mint_key(scopes=["projects:read", "generations:read"])
    writer = emulator.mint_key(scopes=["projects:write"])
    async with inproc(emulator) as client:
        assert (await call(client, "list_projects", key=reader.key)).status_code == 200
        denied = await call(client, "create_project", {"fileName": "a.wav"}, key=reader.key)
        assert denied.status_code == 403
        assert denied.json() == {"error": "missing projects:write permission"}
        created = await ok(client, "create_project", {"fileName": "a.wav"}, key=writer.key)
        hidden = await call(client, "list_projects", key=writer.key)
        assert hidden.status_code == 403
        # the reader does not own the writer's project
        other = await call(
            client,
            "list_project_generations",
            {"apiProjectId": created["apiProjectId"]},
            key=reader.key,
        )
        assert other.status_code == 404
        usage = await call(client, "usage/summary", key=reader.key)
        assert usage.status_code == 403
        assert usage.json()["error"] == "missing usage:read permission"


async def test_resource_bounds_grant_access_to_listed_projects(emulator: Emulator) -> None:
    async with inproc(emulator) as client:
        created = await project_a(client)
        pid = created["apiProjectId"]
        bounded = emulator.mint_key(
            scopes=["projects:read", "generations:read", "generations:write"],
            resource_bounds={"projectIds": [pid]},
        )
        stranger = emulator.mint_key(scopes=["projects:read", "generations:write"])
        listed = await ok(client, "list_projects", key=bounded.key)
        assert [p["apiProjectId"] for p in listed["projects"]] == [pid]
        await generation(client, pid, key=bounded.key)
        assert (await ok(client, "list_projects", key=stranger.key)) == {"projects": []}
        refused = await call(
            client, "diffio-2.0-generation", {"apiProjectId": pid}, key=stranger.key
        )
        assert refused.status_code == 404


async def test_legacy_permission_keys(emulator: Emulator) -> None:
    read_only = emulator.mint_key(permissions={"read": True, "write": False})
    async with inproc(emulator) as client:
        assert (await call(client, "list_projects", key=read_only.key)).status_code == 200
        denied = await call(client, "create_project", {"fileName": "a"}, key=read_only.key)
    assert denied.status_code == 403
    assert denied.json() == {"error": "missing write permission"}


@pytest.mark.parametrize(
    ("endpoint", "body"),
    [
        ("api_keys/create", {"label": "x", "scopes": ["projects:read"]}),
        ("api_keys/list", {}),
        ("api_keys/rotate", {"keyId": "key_admin"}),
        ("api_keys/revoke", {"keyId": "key_admin"}),
        ("account/settings/update", {"billingPolicy": {"type": "customerStripe"}}),
        (
            "webhooks/configure",
            {"mode": "live", "url": "https://x.test/h", "eventTypes": ["generation.completed"]},
        ),
    ],
)
async def test_admin_only_endpoints(
    emulator: Emulator, endpoint: str, body: dict[str, object]
) -> None:
    everything = emulator.mint_key(
        scopes=[
            "keys:read",
            "keys:write",
            "account:write",
            "webhooks:write",
        ]
    )
    async with inproc(emulator) as client:
        response = await call(client, endpoint, body, key=everything.key)
    assert response.status_code == 403
    assert response.json() == {"error": "Privileged admin API key required"}


async def test_admin_key_with_narrow_scopes(emulator: Emulator) -> None:
    narrow = emulator.mint_key(admin=True, scopes=["keys:read"])
    async with inproc(emulator) as client:
        assert (await call(client, "api_keys/list", key=narrow.key)).status_code == 200
        denied = await call(
            client, "api_keys/create", {"label": "x", "scopes": ["projects:read"]}, key=narrow.key
        )
    assert denied.status_code == 403
    assert denied.json() == {"error": "missing keys:write permission"}


async def test_api_key_lifecycle(emulator: Emulator) -> None:
    async with inproc(emulator) as client:
        created = await ok(
            client,
            "api_keys/create",
            {
                "label": "Dashboard browser key",
                "scopes": ["projects:read", "projects:write"],
                "resourceBounds": {"projectIds": ["proj_123"]},
            },
        )
        assert created["key"].startswith("diffio_live_")
        assert created["keyPrefix"] == created["key"][:17]
        assert created["role"] == "scoped" and created["status"] == "active"
        assert created["parentKeyId"] == emulator.admin_key_id
        assert created["permissions"] == {"read": True, "write": True}
        assert created["resourceBounds"] == {"projectIds": ["proj_123"]}
        assert created["rotatedAt"] is None and created["revokedAt"] is None
        listed = await ok(client, "api_keys/list")
        ids = [k["keyId"] for k in listed["keys"]]
        assert ids == [emulator.admin_key_id, created["keyId"]]
        assert all("key" not in k for k in listed["keys"])
        rotated = await ok(client, "api_keys/rotate", {"keyId": created["keyId"]})
        assert rotated["key"] != created["key"] and rotated["rotatedAt"] is not None
        assert (await call(client, "list_projects", key=created["key"])).status_code == 401
        assert (await call(client, "list_projects", key=rotated["key"])).status_code == 200
        revoked = await ok(client, "api_keys/revoke", {"keyId": created["keyId"]})
        assert revoked["status"] == "revoked" and "key" not in revoked
        inactive = await call(client, "list_projects", key=rotated["key"])
        assert inactive.status_code == 403
        assert inactive.json() == {"error": "API key is not active"}
        admin_rotate = await call(client, "api_keys/rotate", {"keyId": emulator.admin_key_id})
        assert admin_rotate.status_code == 403
        unknown = await call(client, "api_keys/revoke", {"keyId": "key_nope"})
        assert unknown.status_code == 404
        blank = await call(client, "api_keys/rotate", {})
        assert blank.status_code == 400 and blank.json() == {"error": "keyId is required"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"scopes": ["projects:read"]}, "label is required"),
        ({"label": "x" * 81, "scopes": ["projects:read"]}, "label must be at most 80 characters"),
        ({"label": "x", "scopes": []}, "scopes must be a non-empty array of strings"),
        ({"label": "x", "scopes": ["root"]}, "Unsupported scope: root"),
        (
            {"label": "x", "scopes": ["usage:read"], "resourceBounds": 3},
            "resourceBounds must be an object",
        ),
    ],
)
async def test_api_key_create_validation(
    emulator: Emulator, body: dict[str, object], message: str
) -> None:
    async with inproc(emulator) as client:
        response = await call(client, "api_keys/create", body)
    assert response.status_code == 400
    assert response.json() == {"error": message}


async def test_python_revoke_helper(emulator: Emulator) -> None:
    minted = emulator.mint_key(scopes=["projects:read"])
    emulator.revoke_key(minted.key_id)
    async with inproc(emulator) as client:
        response = await call(client, "list_projects", key=minted.key)
    assert response.status_code == 403


async def test_account_billing_hold_blocks_every_call(emulator: Emulator) -> None:
    emulator.set_billing_hold()
    async with inproc(emulator) as client:
        for endpoint in (
            "list_projects",
            "create_project",
            "account/settings/get",
            "usage/summary",
        ):
            response = await call(client, endpoint, {"fileName": "a"})
            assert response.status_code == 402
            assert response.json() == PAYMENT_FAILED
        emulator.set_billing_hold(False)
        assert (await call(client, "list_projects")).status_code == 200


async def test_key_billing_hold_only_blocks_that_key(emulator: Emulator) -> None:
    held = emulator.mint_key(scopes=["projects:read"], billing_hold=True)
    other = emulator.mint_key(scopes=["projects:read"])
    async with inproc(emulator) as client:
        assert (await call(client, "list_projects", key=held.key)).json() == PAYMENT_FAILED
        assert (await call(client, "list_projects", key=other.key)).status_code == 200


async def test_spend_limit(emulator: Emulator) -> None:
    # 1 cent per billed second, min 60 s: each 3-second generation costs 60 cents.
    limited = emulator.mint_key(
        scopes=["projects:write", "generations:write", "usage:read"], spend_limit_cents=100
    )
    async with inproc(emulator) as client:
        created = await project_a(client, key=limited.key)
        pid = created["apiProjectId"]
        await generation(client, pid, key=limited.key)
        over = await call(client, "diffio-2.0-generation", {"apiProjectId": pid}, key=limited.key)
        assert over.status_code == 402
        assert over.json()["code"] == "spendLimitExceeded"
        emulator.set_spend_limit(120, key_id=limited.key_id)
        await generation(client, pid, key=limited.key)
        emulator.script_next_generation(duration=100)
        dear = await call(client, "diffio-2.0-generation", {"apiProjectId": pid}, key=limited.key)
        assert dear.status_code == 402
        # the refused request did not consume the script
        emulator.set_spend_limit(None, key_id=limited.key_id)
        made = await generation(client, pid, key=limited.key)
        assert emulator.generation_progress(made["generationId"])["status"] == "queued"
        emulator.advance(99)
        assert emulator.generation_progress(made["generationId"])["status"] == "processing"
        emulator.advance(1)
        assert emulator.generation_progress(made["generationId"])["status"] == "complete"
