"""Idempotency keys, clock-driven lifecycles, scripted failures, usage and account settings."""

from __future__ import annotations

import pytest
from emulator_helpers import call, generation, inproc, ok, progress, project_a

from diffio_async.emulator import Emulator

pytestmark = pytest.mark.anyio


async def test_idempotent_replay_returns_the_same_generation(emulator: Emulator) -> None:
    async with inproc(emulator) as client:
        created = await project_a(client)
        pid = created["apiProjectId"]
        first = await generation(client, pid, idempotencyKey=" caller-key ")
        assert "idempotentReplay" not in first
        emulator.advance(1)
        replay = await generation(client, pid, idempotencyKey="caller-key")
        assert replay == {**first, "status": "processing", "idempotentReplay": True}
        listed = await ok(client, "list_project_generations", {"apiProjectId": pid})
    assert len(listed["generations"]) == 1


async def test_idempotency_is_scoped_per_key(emulator: Emulator) -> None:
    async with inproc(emulator) as client:
        created = await project_a(client)
        pid = created["apiProjectId"]
        other = emulator.mint_key(
            scopes=["generations:write"], resource_bounds={"projectIds": [pid]}
        )
        mine = await generation(client, pid, idempotencyKey="k")
        theirs = await generation(client, pid, key=other.key, idempotencyKey="k")
    assert mine["generationId"] != theirs["generationId"]


async def test_idempotency_conflict(emulator: Emulator) -> None:
    async with inproc(emulator) as client:
        a = (await project_a(client))["apiProjectId"]
        b = (await project_a(client))["apiProjectId"]
        await generation(client, a, "diffio-2.0", idempotencyKey="k")
        conflict_expected = {
            "error": "idempotencyKey was already used for a different request.",
            "code": "idempotencyConflict",
        }
        other_project = await call(
            client, "diffio-2.0-generation", {"apiProjectId": b, "idempotencyKey": "k"}
        )
        assert other_project.status_code == 409
        assert other_project.json() == conflict_expected
        other_model = await call(
            client, "diffio-3.5-generation", {"apiProjectId": a, "idempotencyKey": "k"}
        )
        assert other_model.status_code == 409
        assert other_model.json() == conflict_expected


@pytest.mark.parametrize("key", ["", "   ", "x" * 256, 42])
async def test_idempotency_key_validation(emulator: Emulator, key: object) -> None:
    async with inproc(emulator) as client:
        pid = (await project_a(client))["apiProjectId"]
        response = await call(
            client, "diffio-2.0-generation", {"apiProjectId": pid, "idempotencyKey": key}
        )
    assert response.status_code == 400


async def test_idempotency_key_of_255_characters_is_fine(emulator: Emulator) -> None:
    async with inproc(emulator) as client:
        pid = (await project_a(client))["apiProjectId"]
        made = await generation(client, pid, idempotencyKey=" " + "x" * 255 + " ")
    assert made["status"] == "queued"


async def test_lifecycle_completes_at_exactly_the_scripted_time(emulator: Emulator) -> None:
    async with inproc(emulator) as client:
        pid = (await project_a(client))["apiProjectId"]
        emulator.script_next_generation(duration=300)
        made = await generation(client, pid)
        gid = made["generationId"]
        seen = []
        previous_inference = -1
        for _ in range(30):
            state = await progress(client, gid)
            assert {"preProcessing", "inference"} <= set(state)
            assert state["status"] != "pending"
            assert state["inference"]["progress"] >= previous_inference
            previous_inference = state["inference"]["progress"]
            seen.append(state["status"])
            emulator.advance(299 / 29)
        assert seen[0] == "queued" and seen[-1] == "processing"
        assert "complete" not in seen
        emulator.advance(1)
        final = await progress(client, gid)
    assert final["status"] == "complete"
    assert final["preProcessing"]["jobState"] == "SUCCEEDED"
    assert final["inference"] == {
        "jobId": "job-cloud-run-gpu",
        "jobState": "SUCCEEDED",
        "status": "complete",
        "progress": 100,
        "statusMessage": "Done",
        "error": None,
        "errorDetails": None,
    }
    assert final["error"] is None and final["errorDetails"] is None


async def test_scripted_failure(emulator: Emulator) -> None:
    async with inproc(emulator) as client:
        pid = (await project_a(client))["apiProjectId"]
        emulator.script_next_generation(
            fail_at="inference", duration=300, error="GPU worker crashed", error_details="exit 137"
        )
        failing = await generation(client, pid)
        healthy = await generation(client, pid)
        emulator.advance(300)
        failed = await progress(client, failing["generationId"])
        fine = await progress(client, healthy["generationId"])
        download = await call(
            client,
            "get_generation_download",
            {"generationId": failing["generationId"], "apiProjectId": pid},
        )
    assert failed["status"] == "failed"
    assert failed["error"] == "GPU worker crashed"
    assert failed["errorDetails"] == "exit 137"
    assert failed["inference"]["status"] == "failed"
    assert failed["inference"]["jobState"] == "FAILED"
    assert failed["preProcessing"]["status"] == "complete"
    assert fine["status"] == "complete"
    assert download.status_code == 409


async def test_video_failure_and_queue_of_scripts(emulator: Emulator) -> None:
    emulator.script_next_generation(fail_at="restoredVideo", count=2)
    async with inproc(emulator) as client:
        pid = (await project_a(client, file_name="a.mp4", content_type="video/mp4"))["apiProjectId"]
        first = await generation(client, pid)
        second = await generation(client, pid)
        third = await generation(client, pid)
        emulator.advance(2.5)
        running = await progress(client, first["generationId"])
        assert running["inference"]["status"] == "complete"
        assert running["restoredVideo"]["status"] == "running"
        emulator.advance(0.5)
        states = [await progress(client, g["generationId"]) for g in (first, second, third)]
    assert [s["status"] for s in states] == ["failed", "failed", "complete"]
    assert states[0]["restoredVideo"]["status"] == "failed"
    assert states[0]["error"] == "Video restoration failed."


async def test_generation_seconds_default() -> None:
    with Emulator(api_key="k", generation_seconds=10) as emulator:
        async with inproc(emulator) as client:
            pid = (await project_a(client, key="k"))["apiProjectId"]
            made = await generation(client, pid, key="k")
            emulator.advance(9.99)
            assert (await progress(client, made["generationId"], key="k"))["status"] != "complete"
            emulator.advance(0.01)
            assert (await progress(client, made["generationId"], key="k"))["status"] == "complete"


async def test_usage_summary_charges_at_least_60_seconds(emulator: Emulator) -> None:
    async with inproc(emulator) as client:
        pid = (await project_a(client))["apiProjectId"]
        await generation(client, pid)
        emulator.script_next_generation(duration=90)
        await generation(client, pid, "diffio-3.5")
        emulator.script_next_generation(fail_at="inference")
        await generation(client, pid)
        emulator.advance(3)
        summary = await ok(client, "usage/summary")
        other = await call(client, "usage/summary", {"apiKeyId": "key_nope"})
    usage = summary["usage"]
    assert usage["apiKeyId"] == emulator.admin_key_id
    (period,) = usage["periods"]
    assert period["modelSeconds"] == {"diffio-2": 60, "diffio-3.5": 90}
    assert period["modelCents"] == {"diffio-2": 60, "diffio-3.5": 90}
    assert period["finalizedCents"] == 60 and period["reservedCents"] == 90
    assert period["totalCents"] == 150
    assert period["periodId"] == emulator.clock.isoformat()[:7]
    assert summary["billing"]["billingPolicy"] == {"type": "customerStripe"}
    assert summary["billing"]["lifetimeListPriceCents"] == 150
    assert other.status_code == 404


async def test_usage_summary_for_other_keys(emulator: Emulator) -> None:
    child = emulator.mint_key(scopes=["usage:read"])
    async with inproc(emulator) as client:
        own = await ok(client, "usage/summary", {"apiKeyId": child.key_id}, key=child.key)
        admin_view = await ok(client, "usage/summary", {"apiKeyId": child.key_id})
        denied = await call(
            client, "usage/summary", {"apiKeyId": emulator.admin_key_id}, key=child.key
        )
    assert own["usage"] == {"apiKeyId": child.key_id, "periods": []}
    assert admin_view["usage"]["apiKeyId"] == child.key_id
    assert denied.status_code == 403


async def test_account_settings(emulator: Emulator) -> None:
    async with inproc(emulator) as client:
        got = await ok(client, "account/settings/get")
        assert got["apiKeyId"] == emulator.admin_key_id
        assert got["account"]["billingStatus"] == "active"
        assert got["account"]["billingPolicy"] == {"type": "customerStripe"}
        assert got["account"]["currency"] == "usd"
        updated = await ok(
            client,
            "account/settings/update",
            {"billingPolicy": {"type": "internalDiffio", "reason": "staff"}},
        )
        assert updated["account"]["billingPolicy"] == {"type": "internalDiffio", "reason": "staff"}
        assert updated["account"]["updatedAt"] == emulator.clock.isoformat()
        bad = await call(client, "account/settings/update", {"billingPolicy": {"type": "free"}})
        assert bad.status_code == 400
        missing = await call(client, "account/settings/update", {})
        assert missing.status_code == 400
