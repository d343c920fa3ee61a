"""Models of the account settings (``account/settings/get`` and ``/update``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from ._model import _Model
from ._parsing import _extra_field
from .usage import BillingPolicy

__all__ = ["Account", "AccountSettings", "UpdateAccountSettingsRequest"]


@attrs.frozen(kw_only=True)
class Account(_Model):
    """An account's billing settings."""

    user_id: str | None = None
    billing_mode: str = "free"
    billing_status: str = "active"
    billing_policy: BillingPolicy | None = None
    currency: str | None = None
    updated_at: datetime | None = None
    extra: Mapping[str, Any] = _extra_field()


@attrs.frozen(kw_only=True)
class AccountSettings(_Model):
    """Answer of ``account/settings/get`` and ``account/settings/update``."""

    account: Account
    api_key_id: str | None = None
    extra: Mapping[str, Any] = _extra_field()


@attrs.frozen(kw_only=True)
class UpdateAccountSettingsRequest(_Model):
    """Body of ``POST /v1/account/settings/update``."""

    billing_policy: BillingPolicy
