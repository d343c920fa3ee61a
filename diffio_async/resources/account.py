"""``client.account``: account billing settings."""

from __future__ import annotations

from .._http.transport import RequestOptions
from ..errors import InvalidRequestError
from ..types import (
    AccountSettings,
    BillingPolicy,
    BillingPolicyType,
    BillingPolicyTypeName,
    UpdateAccountSettingsRequest,
)
from ._base import Resource

__all__ = ["Account"]


class Account(Resource):
    """Account settings."""

    async def get_settings(self, *, options: RequestOptions | None = None) -> AccountSettings:
        """The account's billing settings (``account/settings/get``)."""
        return await self._post_as(
            "account/settings/get", {}, AccountSettings, idempotent=True, options=options
        )

    async def update_settings(
        self,
        *,
        billing_policy: BillingPolicyTypeName,
        reason: str | None = None,
        options: RequestOptions | None = None,
    ) -> AccountSettings:
        """Set the billing policy (``account/settings/update``, admin keys only)."""
        if billing_policy not in BillingPolicyType.ALL:
            raise InvalidRequestError(
                f"billing_policy must be one of {', '.join(BillingPolicyType.ALL)}, "
                f"not {billing_policy!r}"
            )
        if reason is not None and not isinstance(reason, str):
            raise InvalidRequestError(
                f"reason must be a string or None, not {type(reason).__name__}"
            )
        body = UpdateAccountSettingsRequest(
            billing_policy=BillingPolicy(type=billing_policy, reason=reason)
        )
        return await self._post_as(
            "account/settings/update", body, AccountSettings, idempotent=True, options=options
        )
