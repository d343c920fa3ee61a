"""JSON shapes of the emulator's records (what the wire carries)."""

from __future__ import annotations

from typing import Any

from ._lifecycle import STAGES
from ._runtime import Runtime
from ._state import ApiKey, Generation, Project

__all__ = [
    "account_json",
    "generation_item",
    "key_json",
    "progress_json",
    "project_json",
]


def key_json(core: Runtime, key: ApiKey, *, with_secret: bool = False) -> dict[str, Any]:
    """The key object of ``api_keys/*`` (the plaintext ``key`` only when asked)."""
    body: dict[str, Any] = {}
    if with_secret:
        body["key"] = key.secret
    body.update(
        keyId=key.key_id,
        label=key.label,
        status=key.status,
        keyPrefix=key.key_prefix,
        role=key.role,
        scopes=list(key.scopes),
        resourceBounds=dict(key.resource_bounds),
        parentKeyId=key.parent_key_id,
        permissions=dict(key.permissions),
        createdAt=core.iso(key.created_at),
        rotatedAt=core.iso(key.rotated_at),
        revokedAt=core.iso(key.revoked_at),
    )
    return body


def project_json(core: Runtime, project: Project, generation_count: int) -> dict[str, Any]:
    """One entry of ``list_projects``."""
    return {
        "apiProjectId": project.project_id,
        "status": project.status,
        "originalFileName": project.file_name,
        "contentType": project.content_type,
        "hasVideo": project.has_video,
        "generationCount": generation_count,
        "createdAt": core.iso(project.created_at),
        "updatedAt": core.iso(project.updated_at),
    }


def generation_item(core: Runtime, generation: Generation, now: float) -> dict[str, Any]:
    """One entry of ``list_project_generations``."""
    elapsed = now - generation.created_at
    lifecycle = generation.lifecycle
    return {
        "generationId": generation.generation_id,
        "status": lifecycle.status(elapsed),
        "modelKey": generation.model_key,
        "progress": lifecycle.overall_progress(elapsed),
        "createdAt": core.iso(generation.created_at),
        "updatedAt": core.iso(generation.created_at + lifecycle.last_change(elapsed)),
    }


def progress_json(
    core: Runtime, generation: Generation, project: Project, now: float
) -> dict[str, Any]:
    """The ``get_generation_progress`` answer (both stage objects always present)."""
    elapsed = now - generation.created_at
    lifecycle = generation.lifecycle
    status = lifecycle.status(elapsed)
    body: dict[str, Any] = {
        "generationId": generation.generation_id,
        "apiProjectId": project.project_id,
        "status": status,
        "hasVideo": project.has_video,
    }
    for name in STAGES:
        if name == "restoredVideo" and not project.has_video:
            continue
        body[name] = lifecycle.stage(name, elapsed)
    failed = status == "failed"
    body["error"] = lifecycle.error_text if failed else None
    body["errorDetails"] = lifecycle.script.error_details if failed else None
    transcription = lifecycle.transcription(elapsed)
    if transcription is not None:
        body["transcription"] = {"status": transcription}
    if core.era == "b":
        stage, stage_progress = lifecycle.era_b_stage(elapsed)
        body["stage"] = stage
        body["stageProgress"] = stage_progress
        if status == "queued":
            body["queue"] = {
                "position": 1,
                "connectedWorkers": 1,
                "idleWorkers": 0,
                "busyWorkers": 1,
                "waitReason": "next_in_line",
                "message": "Waiting for the next free worker.",
            }
    return body


def account_json(core: Runtime) -> dict[str, Any]:
    """The ``account`` object of ``account/settings/*``."""
    account = core.state.account
    return {
        "userId": "user_emulator",
        "billingMode": account.billing_mode,
        "billingStatus": "paymentFailed" if account.billing_hold else "active",
        "billingPolicy": dict(account.billing_policy),
        "currency": "usd",
        "updatedAt": core.iso(account.updated_at),
    }
