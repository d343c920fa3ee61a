"""What the wire-model test modules share: the create_project answers of both eras and the
list of public model classes."""

from __future__ import annotations

from datetime import timezone
from typing import Any

import attrs

from diffio_async import types as m

UTC = timezone.utc

ERA_A_CREATE = {
    "apiProjectId": "proj-123",
    "uploadUrl": "https://storage.googleapis.com/diffio_api/users/user-123/projects/proj-123/original/song.wav?X-Goog-Signature=...",
    "uploadMethod": "PUT",
    "objectPath": "users/user-123/projects/proj-123/original/song.wav",
    "bucket": "diffio_api",
    "expiresAt": "2026-01-24T00:00:00Z",
}

ERA_B_CREATE = {
    "apiProjectId": "4f0c-uuid",
    "upload": {
        "uploadSessionId": "api-4f0c",
        "edgeBaseUrl": "https://edge.example",
        "uploadToken": "v1.upload-abc.sig",
        "objectKey": "api/users/u/projects/4f0c-uuid/original/song.wav",
        "partSizeBytes": 33554432,
        "maxBytes": 2147483648,
        "expiresAt": "2026-10-08T12:00:00Z",
    },
    "objectPath": "api/users/u/projects/4f0c-uuid/original/song.wav",
    "expiresAt": "2026-10-08T12:00:00Z",
}


def public_model_classes() -> list[type[Any]]:
    """Every attrs class :mod:`diffio_async.types` exports."""
    return [
        obj for name in m.__all__ if isinstance(obj := getattr(m, name), type) and attrs.has(obj)
    ]
