"""In-memory state of one emulated Diffio account: keys, projects, uploads, generations."""

from __future__ import annotations

import math
import secrets
import threading
import uuid
from collections import deque
from pathlib import Path
from typing import Any, Literal

import attrs

from ._lifecycle import GenerationScript, Lifecycle

__all__ = [
    "ALL_SCOPES",
    "USER_ID",
    "Account",
    "ApiKey",
    "EdgeUpload",
    "Generation",
    "Project",
    "State",
    "WebhookEndpoint",
    "new_key_secret",
]

USER_ID = "user_emulator"
ALL_SCOPES: tuple[str, ...] = (
    "projects:read",
    "projects:write",
    "generations:read",
    "generations:write",
    "artifacts:read",
    "keys:read",
    "keys:write",
    "usage:read",
    "account:read",
    "account:write",
    "webhooks:write",
)


def new_key_secret() -> str:
    """A fresh ``diffio_live_…`` API key secret."""
    return "diffio_live_" + secrets.token_urlsafe(24)


def permissions_from_scopes(scopes: list[str]) -> dict[str, bool]:
    """Legacy read/write flags implied by scopes."""
    return {
        "read": any(scope.endswith(":read") for scope in scopes),
        "write": any(scope.endswith(":write") for scope in scopes),
    }


@attrs.define(kw_only=True)
class ApiKey:
    """One API key of the account."""

    key_id: str
    secret: str | None
    label: str
    role: str
    scopes: list[str]
    permissions: dict[str, bool]
    legacy: bool = False
    status: str = "active"
    resource_bounds: dict[str, Any] = attrs.field(factory=dict)
    parent_key_id: str | None = None
    created_at: float = 0.0
    rotated_at: float | None = None
    revoked_at: float | None = None
    spend_limit_cents: int | None = None
    billing_hold: bool = False

    @property
    def is_admin(self) -> bool:
        """Whether this is a privileged admin key."""
        return self.role == "admin"

    @property
    def key_prefix(self) -> str:
        """The displayed prefix: the first 17 characters of the secret."""
        return (self.secret or "diffio_live_admin")[:17]


@attrs.define(kw_only=True)
class Project:
    """One API project (an uploaded original plus its generations)."""

    project_id: str
    owner_key_id: str
    file_name: str
    content_type: str
    content_length: int | None
    params: dict[str, Any]
    has_video: bool
    created_at: float
    updated_at: float
    object_path: str
    status: str = "uploading"
    upload_expires_at: float = 0.0
    size_bytes: int | None = None
    media_path: Path | None = None
    # Era B
    upload_session_id: str | None = None
    edge_result: dict[str, Any] | None = None


@attrs.define(kw_only=True)
class EdgeUpload:
    """One era B multipart upload (``/v1/uploads/start`` … ``complete``)."""

    upload_id: str
    project_id: str
    part_size: int
    max_bytes: int
    path: Path
    state: Literal["open", "completed", "aborted"] = "open"
    parts: dict[int, tuple[int, str]] = attrs.field(factory=dict)
    result: dict[str, Any] | None = None


@attrs.define(kw_only=True)
class Generation:
    """One generation; its progress is computed from :attr:`lifecycle` and the clock."""

    generation_id: str
    project_id: str
    model_key: str
    key_id: str
    created_at: float
    lifecycle: Lifecycle
    output_path: Path
    sampling: dict[str, Any] | None = None
    params: dict[str, Any] | None = None
    idempotency_key: str | None = None
    notified: int = 0
    """How many overall statuses have been turned into webhook events."""

    @property
    def billed_seconds(self) -> int:
        """``max(60, processing seconds)``."""
        return max(60, math.ceil(self.lifecycle.duration))


@attrs.define(kw_only=True)
class WebhookEndpoint:
    """One webhook endpoint (per key and mode)."""

    endpoint_id: str
    api_key_id: str
    mode: str
    url: str
    event_types: list[str]
    updated_by_key_id: str
    updated_at: float


@attrs.define(kw_only=True)
class Account:
    """The single emulated account."""

    billing_policy: dict[str, Any] = attrs.field(factory=lambda: {"type": "customerStripe"})
    billing_mode: str = "developerProgressive"
    billing_hold: bool = False
    updated_at: float | None = None


class State:
    """Everything the emulator remembers. Guard compound updates with ``with state.lock``.

    The lock is re-entrant and is never held across an ``await``.
    """

    def __init__(self) -> None:
        """An empty account (the admin key is added by the emulator)."""
        self.lock = threading.RLock()
        self.account = Account()
        self.keys: dict[str, ApiKey] = {}
        self.retired_secrets: set[str] = set()
        self.projects: dict[str, Project] = {}
        self.uploads: dict[str, EdgeUpload] = {}
        self.generations: dict[str, Generation] = {}
        self.idempotency: dict[tuple[str, str], str] = {}
        self.webhooks: dict[tuple[str, str], WebhookEndpoint] = {}
        self.scripts: deque[GenerationScript] = deque()

    def key_by_secret(self, secret: str) -> ApiKey | None:
        """The key whose current secret is ``secret``."""
        with self.lock:
            for key in self.keys.values():
                if key.secret is not None and secrets.compare_digest(key.secret, secret):
                    return key
        return None

    def add_key(
        self,
        *,
        created_at: float,
        secret: str | None = None,
        label: str = "Emulator key",
        admin: bool = False,
        scopes: list[str] | None = None,
        permissions: dict[str, bool] | None = None,
        parent_key_id: str | None = None,
        resource_bounds: dict[str, Any] | None = None,
        spend_limit_cents: int | None = None,
        billing_hold: bool = False,
        key_id: str | None = None,
    ) -> ApiKey:
        """Create a key. Without scopes and with ``permissions`` it is a legacy read/write key."""
        if admin and scopes is None:
            scopes = list(ALL_SCOPES)
        legacy = scopes is None
        if scopes is None:
            scopes = []
        if permissions is None:
            permissions = (
                {"read": True, "write": True} if legacy else permissions_from_scopes(scopes)
            )
        key = ApiKey(
            key_id=key_id or f"key_{uuid.uuid4().hex[:16]}",
            secret=secret if secret is not None else new_key_secret(),
            label=label,
            role="admin" if admin else "scoped",
            scopes=list(scopes),
            permissions=dict(permissions),
            legacy=legacy,
            resource_bounds=dict(resource_bounds or {}),
            parent_key_id=parent_key_id,
            created_at=created_at,
            spend_limit_cents=spend_limit_cents,
            billing_hold=billing_hold,
        )
        with self.lock:
            self.keys[key.key_id] = key
        return key

    def can_access(self, key: ApiKey, project: Project) -> bool:
        """Admin keys see every project; others their own and those in ``resourceBounds``."""
        if key.is_admin or project.owner_key_id == key.key_id:
            return True
        bounds = key.resource_bounds.get("projectIds")
        return isinstance(bounds, list) and project.project_id in bounds

    def next_script(self) -> GenerationScript | None:
        """Pop the next scripted outcome, if any."""
        with self.lock:
            return self.scripts.popleft() if self.scripts else None
