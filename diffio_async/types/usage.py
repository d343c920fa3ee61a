"""Models of the usage summary (and the :class:`BillingPolicy` the account settings share)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from ._model import _Model
from ._parsing import _extra_field

__all__ = [
    "BillingPolicy",
    "BillingSummary",
    "Usage",
    "UsagePeriod",
    "UsageSummary",
    "UsageSummaryRequest",
]


@attrs.frozen(kw_only=True)
class UsageSummaryRequest(_Model):
    """Body of ``POST /v1/usage/summary``."""

    api_key_id: str | None = None


@attrs.frozen(kw_only=True)
class UsagePeriod(_Model):
    """One billing period of a usage summary (amounts in cents)."""

    period_id: str | None = None
    period_start: datetime | None = None
    period_end: datetime | None = None
    reserved_cents: int = 0
    finalized_cents: int = 0
    total_cents: int = 0
    model_seconds: Mapping[str, float] = attrs.field(factory=dict)
    model_cents: Mapping[str, int] = attrs.field(factory=dict)
    extra: Mapping[str, Any] = _extra_field()


@attrs.frozen(kw_only=True)
class Usage(_Model):
    """The ``usage`` part of a usage summary (periods newest first)."""

    api_key_id: str | None = None
    periods: tuple[UsagePeriod, ...] = ()
    extra: Mapping[str, Any] = _extra_field()


@attrs.frozen(kw_only=True)
class BillingPolicy(_Model):
    """An account's billing policy (``customerStripe`` or ``internalDiffio``)."""

    type: str
    reason: str | None = None
    extra: Mapping[str, Any] = _extra_field()


@attrs.frozen(kw_only=True)
class BillingSummary(_Model):
    """The ``billing`` part of a usage summary."""

    billing_policy: BillingPolicy | None = None
    lifetime_list_price_cents: int | None = None
    lifetime_billable_cents: int | None = None
    extra: Mapping[str, Any] = _extra_field()


@attrs.frozen(kw_only=True)
class UsageSummary(_Model):
    """Answer of ``usage/summary``."""

    usage: Usage = attrs.field(factory=Usage)
    billing: BillingSummary | None = None
    extra: Mapping[str, Any] = _extra_field()

    @property
    def api_key_id(self) -> str | None:
        """The key the usage belongs to."""
        return self.usage.api_key_id

    @property
    def periods(self) -> tuple[UsagePeriod, ...]:
        """The usage periods, newest first."""
        return self.usage.periods
