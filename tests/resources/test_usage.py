"""``client.usage`` against the emulator on loopback: summary, of the calling key or of another.
The endpoint is the same in both eras.

The emulator charges ``max(60, seconds)`` at 1 cent a second per generation: reserved while it
runs, finalized once complete.
"""

from __future__ import annotations

import pytest
from shared import AUDIO, JOB_SECONDS, SDK_HEADERS, sent

from diffio_async import (
    InvalidRequestError,
    NotFoundError,
    PaymentFailedError,
    PermissionDeniedError,
    UsageSummary,
)
from diffio_async.resources.api_keys import SCOPES
from diffio_async.testing import EmulatedDiffio
from diffio_async.types import BillingPolicy

pytestmark = pytest.mark.anyio

SUMMARY = "/v1/usage/summary"


async def _generate(env: EmulatedDiffio) -> None:
    project = await env.client.projects.create(AUDIO, file_name="talk.wav")
    await env.client.generations.create(project, model="diffio-3.5")


async def test_the_summary_of_a_key_without_generations_is_empty(env: EmulatedDiffio) -> None:
    summary = await env.client.usage.summary()
    assert isinstance(summary, UsageSummary)
    assert (summary.api_key_id, summary.periods) == (env.emulator.admin_key_id, ())
    assert summary.billing is not None
    assert summary.billing.billing_policy == BillingPolicy(type="customerStripe")
    assert summary.billing.lifetime_list_price_cents == 0
    assert sent(env, SUMMARY) == [{}]


async def test_a_running_generation_is_reserved_then_finalized_once_complete(
    env: EmulatedDiffio,
) -> None:
    await _generate(env)
    (running,) = (await env.client.usage.summary()).periods
    assert (running.reserved_cents, running.finalized_cents, running.total_cents) == (600, 0, 600)
    env.emulator.advance(JOB_SECONDS)
    summary = await env.client.usage.summary()
    (period,) = summary.periods
    assert (period.reserved_cents, period.finalized_cents, period.total_cents) == (0, 600, 600)
    assert (period.model_seconds, period.model_cents) == ({"diffio-3.5": 600}, {"diffio-3.5": 600})
    assert period.period_start is not None and period.period_end is not None
    assert period.period_id == period.period_start.strftime("%Y-%m")
    assert period.period_start < period.period_end
    assert summary.billing is not None
    assert summary.billing.lifetime_list_price_cents == 600
    assert summary.billing.lifetime_billable_cents == 600


async def test_the_summary_of_another_key_names_it(env: EmulatedDiffio) -> None:
    key = env.emulator.mint_key(scopes=["usage:read"])
    await _generate(env)  # the admin key's, not the other key's
    summary = await env.client.usage.summary(api_key_id=key.key_id)
    assert (summary.api_key_id, summary.periods) == (key.key_id, ())
    assert sent(env, SUMMARY) == [{"apiKeyId": key.key_id}]


async def test_a_key_that_is_not_admin_reads_only_its_own_usage(env: EmulatedDiffio) -> None:
    key = env.emulator.mint_key(scopes=["usage:read"])
    scoped = env.client.with_options(api_key=key.key)
    assert (await scoped.usage.summary()).api_key_id == key.key_id
    with pytest.raises(PermissionDeniedError, match="itself"):
        await scoped.usage.summary(api_key_id=env.emulator.admin_key_id)


async def test_the_usage_of_an_unknown_key_is_not_found(env: EmulatedDiffio) -> None:
    with pytest.raises(NotFoundError) as info:
        await env.client.usage.summary(api_key_id="key_missing")
    assert info.value.status_code == 404


async def test_the_summary_is_an_authenticated_json_post_with_the_sdk_headers(
    env: EmulatedDiffio,
) -> None:
    await env.client.usage.summary()
    (entry,) = env.emulator.requests
    assert (entry.method, entry.path) == ("POST", SUMMARY)
    assert {name: entry.header(name) for name in SDK_HEADERS} == SDK_HEADERS


async def test_a_key_without_usage_read_is_refused_once(env: EmulatedDiffio) -> None:
    key = env.emulator.mint_key(scopes=[s for s in SCOPES if s != "usage:read"])
    with pytest.raises(PermissionDeniedError, match="usage:read") as info:
        await env.client.with_options(api_key=key.key).usage.summary()
    assert info.value.status_code == 403
    assert len(env.emulator.requests) == 1


async def test_a_billing_hold_refuses_the_summary_with_payment_failed(
    env: EmulatedDiffio,
) -> None:
    env.emulator.set_billing_hold(True)
    with pytest.raises(PaymentFailedError) as info:
        await env.client.usage.summary()
    assert (info.value.status_code, info.value.code) == (402, "paymentFailed")
    assert len(env.emulator.requests) == 1


@pytest.mark.parametrize("api_key_id", [5, "", b"key_1"])
async def test_a_bad_key_id_is_refused_before_any_request(
    env: EmulatedDiffio, api_key_id: object
) -> None:
    with pytest.raises(InvalidRequestError, match="api_key_id"):
        await env.client.usage.summary(api_key_id=api_key_id)  # type: ignore[arg-type]
    assert len(env.emulator.requests) == 0
