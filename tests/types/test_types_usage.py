"""The usage summary models against every documented payload (§7)."""

from __future__ import annotations

from diffio_async import types as m
from diffio_async._convert import structure, unstructure


def test_usage_summary() -> None:
    data = {
        "usage": {
            "apiKeyId": "key_123",
            "periods": [
                {
                    "periodId": "2026-05",
                    "reservedCents": 12,
                    "finalizedCents": 340,
                    "totalCents": 352,
                    "modelSeconds": {"diffio-2": 610},
                    "modelCents": {"diffio-2": 352},
                }
            ],
        },
        "billing": {
            "billingPolicy": {"type": "customerStripe"},
            "lifetimeListPriceCents": 1200,
            "lifetimeBillableCents": 1100,
            "someNewCounter": 5,
        },
    }
    s = structure(data, m.UsageSummary, endpoint="usage/summary")
    assert s.api_key_id == "key_123"
    (period,) = s.periods
    assert period.period_id == "2026-05" and period.total_cents == 352
    assert period.reserved_cents == 12 and period.finalized_cents == 340
    assert period.model_seconds == {"diffio-2": 610.0} and period.model_cents == {"diffio-2": 352}
    assert s.billing == m.BillingSummary(
        billing_policy=m.BillingPolicy(type="customerStripe"),
        lifetime_list_price_cents=1200,
        lifetime_billable_cents=1100,
        extra={"someNewCounter": 5},  # a counter this SDK does not know is kept
    )
    assert unstructure(m.UsageSummaryRequest()) == {}
    assert unstructure(m.UsageSummaryRequest(api_key_id="key_123")) == {"apiKeyId": "key_123"}
    assert structure({}, m.UsageSummary, endpoint="usage/summary").periods == ()
