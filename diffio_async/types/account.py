"""Models of the account settings (``account/settings/get`` and ``/update``)."""

from __future__ import annotations

from datetime import datetime

import attrs

from .usage import BillingPolicy

__all__ = ["Account", "AccountSettings", "UpdateAccountSettingsRequest"]


@attrs.frozen(kw_only=True)
class Account:
    """An account's billing settings."""

    user_id: str | None = None
    billing_mode: str = "free"
    billing_status: str = "active"
    billing_policy: BillingPolicy | None = None
    currency: str | None = None
    updated_at: datetime | None = None


@attrs.frozen(kw_only=True)
class AccountSettings:
    """Answer of ``account/settings/get`` and ``account/settings/update``."""

    account: Account
    api_key_id: str | None = None


@attrs.frozen(kw_only=True)
class UpdateAccountSettingsRequest:
    """Body of ``POST /v1/account/settings/update``."""

    billing_policy: BillingPolicy
