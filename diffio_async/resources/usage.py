"""``client.usage``: usage and billing counters."""

from __future__ import annotations

from .._http.transport import RequestOptions
from ..types import UsageSummary, UsageSummaryRequest
from ._base import Resource, optional_id

__all__ = ["Usage"]


class Usage(Resource):
    """Usage periods and billing counters of a key."""

    async def summary(
        self, *, api_key_id: str | None = None, options: RequestOptions | None = None
    ) -> UsageSummary:
        """The usage summary of the calling key, or of ``api_key_id`` (``usage/summary``)."""
        body = UsageSummaryRequest(api_key_id=optional_id("api_key_id", api_key_id))
        return await self._post_as(
            "usage/summary", body, UsageSummary, idempotent=True, options=options
        )
