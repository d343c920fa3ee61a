"""The account settings models against every documented payload (§7)."""

from __future__ import annotations

from datetime import datetime

from types_helpers import UTC

from diffio_async import types as m
from diffio_async._convert import structure, unstructure


def test_account_settings() -> None:
    data = {
        "apiKeyId": "key_123",
        "account": {
            "userId": "user_123",
            "billingMode": "developerProgressive",
            "billingStatus": "active",
            "billingPolicy": {"type": "customerStripe"},
            "currency": "usd",
            "updatedAt": "2026-05-09T12:00:00Z",
        },
    }
    s = structure(data, m.AccountSettings, endpoint="account/settings/get")
    assert s.api_key_id == "key_123"
    assert s.account == m.Account(
        user_id="user_123",
        billing_mode="developerProgressive",
        billing_status="active",
        billing_policy=m.BillingPolicy(type=m.BillingPolicyType.CUSTOMER_STRIPE),
        currency="usd",
        updated_at=datetime(2026, 5, 9, 12, tzinfo=UTC),
    )
    updated = structure(
        {"account": {"userId": "u"}}, m.AccountSettings, endpoint="account/settings/update"
    )
    assert updated.api_key_id is None
    assert updated.account.billing_mode == "free" and updated.account.billing_status == "active"
    body = m.UpdateAccountSettingsRequest(
        billing_policy=m.BillingPolicy(type="internalDiffio", reason="staff")
    )
    assert unstructure(body) == {"billingPolicy": {"type": "internalDiffio", "reason": "staff"}}
