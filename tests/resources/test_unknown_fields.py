"""Fields the SDK does not know are kept, not dropped: a server answer (here the emulator told
to answer a newer shape) reaches the caller's models in ``extra``, and ``to_wire()`` writes them
back so nothing the server said is lost when a model is handed on."""

from __future__ import annotations

import pytest
from shared import AUDIO, MODELS

from diffio_async import UsageSummary
from diffio_async._convert import structure
from diffio_async.testing import EmulatedDiffio

pytestmark = pytest.mark.anyio

NEWER_SUMMARY = {
    "usage": {
        "apiKeyId": "key_123",
        "periods": [{"periodId": "2026-05", "totalCents": 5, "carbonGrams": 1.5}],
        "currency": "usd",
    },
    "billing": {
        "billingPolicy": {"type": "customerStripe", "capCents": 10000},
        "lifetimeListPriceCents": 10,
        "lifetimeBillableCents": 8,
        "creditsRemainingCents": 400,
        "invoices": [{"id": "in_1", "paid": True}],
    },
    "generatedAt": "2026-05-02T00:00:00Z",
}


async def test_new_billing_counters_are_kept(env: EmulatedDiffio) -> None:
    env.emulator.add_fault(path="/v1/usage/summary", status=200, body=NEWER_SUMMARY)
    summary = await env.client.usage.summary()
    assert summary.extra == {"generatedAt": "2026-05-02T00:00:00Z"}
    assert summary.usage.extra == {"currency": "usd"}
    assert summary.periods[0].extra == {"carbonGrams": 1.5}
    assert summary.billing is not None and summary.billing.billing_policy is not None
    assert summary.billing.extra == {
        "creditsRemainingCents": 400,
        "invoices": [{"id": "in_1", "paid": True}],
    }
    assert summary.billing.billing_policy.extra == {"capCents": 10000}
    # handed on: to_dict nests them under "extra", to_wire puts them back where they were
    assert summary.to_dict()["billing"]["extra"]["creditsRemainingCents"] == 400
    wire = summary.to_wire()
    assert wire["billing"]["invoices"] == [{"id": "in_1", "paid": True}]
    assert wire["usage"]["periods"][0]["carbonGrams"] == 1.5
    assert wire["generatedAt"] == "2026-05-02T00:00:00Z"
    assert structure(wire, UsageSummary, endpoint="usage/summary") == summary


async def test_new_progress_fields_are_kept(env: EmulatedDiffio) -> None:
    project = await env.client.projects.create(AUDIO, file_name="talk.wav")
    generation = await env.client.generations.create(project, model=MODELS["a"])
    body = env.emulator.generation_progress(generation.id)
    body["etaSeconds"] = 42
    body["inference"] = {**body["inference"], "gpu": "L4"}
    env.emulator.add_fault(path="/v1/get_generation_progress", status=200, body=body)
    progress = await generation.progress()
    assert progress.extra == {"etaSeconds": 42}
    assert progress.inference.extra == {"gpu": "L4"}
    assert progress.pre_processing.extra == {}
    assert progress.to_wire()["etaSeconds"] == 42
    assert "L4" not in repr(progress)  # reprs show unknown keys, never their values
