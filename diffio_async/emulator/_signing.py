"""HMAC helpers: signed URL tokens and Standard Webhooks (svix) signatures."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from typing import Any

__all__ = ["Signer", "new_webhook_secret", "svix_signature"]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """Signs and checks the emulator's URL signatures and tokens (never contains an API key)."""

    def __init__(self, secret: bytes | None = None) -> None:
        """Use ``secret`` as the HMAC key (default: 32 random bytes)."""
        self._secret = secret if secret is not None else secrets.token_bytes(32)

    def sign(self, *parts: str) -> str:
        """A hex HMAC-SHA256 over the parts, joined by newlines."""
        message = "\n".join(parts).encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()[:40]

    def verify(self, signature: str, *parts: str) -> bool:
        """Whether ``signature`` is :meth:`sign` of ``parts`` (constant time)."""
        return hmac.compare_digest(signature.encode(), self.sign(*parts).encode())

    def token(self, kind: str, payload: dict[str, Any]) -> str:
        """An opaque ``v1.<payload>.<signature>`` token of a given ``kind``."""
        body = _b64url(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
        return f"v1.{body}.{self.sign(kind, body)}"

    def read_token(self, kind: str, token: str) -> dict[str, Any] | None:
        """The payload of a valid token of ``kind``, else ``None``."""
        try:
            version, body, signature = token.split(".")
        except ValueError:
            return None
        if version != "v1" or not self.verify(signature, kind, body):
            return None
        try:
            payload = json.loads(_unb64url(body))
        except ValueError:
            return None
        return payload if isinstance(payload, dict) else None


def new_webhook_secret() -> str:
    """A fresh ``whsec_<base64>`` signing secret (24 random bytes)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def svix_signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``svix-signature`` value ``v1,<base64 HMAC-SHA256 of "{id}.{ts}.{body}">``."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()
