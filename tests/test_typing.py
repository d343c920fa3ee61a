"""What the type checker says about calls users write: closed vocabularies are ``Literal``
types, and no public parameter takes ``Any`` (so a wrong argument fails ``mypy``, not the call).
"""

from __future__ import annotations

import inspect
import textwrap
import typing
from pathlib import Path
from typing import Any

import pytest

import diffio_async
from diffio_async import AsyncDiffio, BatchOptions, Diffio, Generation, RestoreOptions
from diffio_async._sync.generation import SyncGeneration

mypy_api = pytest.importorskip("mypy.api")

GOOD = """
from diffio_async import AsyncDiffio, RestoreOptions, DownloadTypeName

async def good(client: AsyncDiffio, kind: DownloadTypeName) -> None:
    created = await client.projects.create(b"RIFF", file_name="a.wav")
    await client.generations.create(created, model="diffio-3.5")
    await client.generations.create("proj_1", model="diffio-9-not-yet-known")
    await client.generations.get_download("g", project_id="p", download_type="mp3")
    await client.generations.get_download("g", project_id="p", download_type=kind)
    await client.webhooks.configure(url="https://x.test/h", event_types=["generation.failed"])
    await client.account.update_settings(billing_policy="internalDiffio")
    RestoreOptions(download_type="transcript", model="diffio-2")
"""

BAD = {
    "project-as-int": 'await client.generations.create(12345, model="diffio-3.5")',
    "download-type": (
        'await client.generations.get_download("g", project_id="p", download_type="mp4")'
    ),
    "options-download-type": 'RestoreOptions(download_type="wav")',
    "webhook-mode": 'await client.webhooks.configure(url="https://x.test/h", mode="prod")',
    "webhook-event": 'await client.webhooks.send_test_event("generation.done")',
    "billing-policy": 'await client.account.update_settings(billing_policy="free")',
    "model-as-int": 'await client.generations.create("p", model=35)',
}


def _mypy(tmp_path: Path, body: str) -> tuple[str, int]:
    source = tmp_path / "user_code.py"
    source.write_text(textwrap.dedent(body))
    out, err, status = mypy_api.run(
        ["--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"), str(source)]
    )
    return out + err, status


def test_calls_with_the_right_types_pass_mypy(tmp_path: Path) -> None:
    report, status = _mypy(tmp_path, GOOD)
    assert status == 0, report


def test_each_wrong_argument_fails_mypy_on_its_own_line(tmp_path: Path) -> None:
    lines = ["from diffio_async import AsyncDiffio, RestoreOptions", ""]
    lines.append("async def bad(client: AsyncDiffio) -> None:")
    where = {}
    for name, call in BAD.items():
        where[len(lines) + 1] = name
        lines.append(f"    {call}")
    report, status = _mypy(tmp_path, "\n".join(lines) + "\n")
    assert status == 1, report
    flagged = {int(line.split(":")[1]) for line in report.splitlines() if ": error:" in line}
    assert {where[n] for n in flagged if n in where} == set(BAD), report


def _public_callables() -> list[tuple[str, Any]]:
    """Every public method users call: the clients, their resource groups, the handles, the
    options classes."""
    found: list[tuple[str, Any]] = []
    roots: list[type] = [AsyncDiffio, Diffio, Generation, SyncGeneration, RestoreOptions]
    roots.append(BatchOptions)
    for module in ("resources", "_sync.resources"):
        package = __import__(f"diffio_async.{module}", fromlist=["*"])
        roots += [
            obj
            for obj in vars(package).values()
            if inspect.isclass(obj) and obj.__module__.startswith(package.__name__)
        ]
    for cls in roots:
        for name, member in inspect.getmembers(cls):
            if name.startswith("_") and name != "__init__":
                continue
            if callable(member) and getattr(member, "__module__", "").startswith("diffio_async"):
                found.append((f"{cls.__name__}.{name}", member))
    return found


def _contains_bare_any(hint: object) -> bool:
    """``Any`` as the parameter's type or a member of its union (``Mapping[str, Any]`` for a
    JSON object is fine: its keys are checked)."""
    if hint is Any:
        return True
    if typing.get_origin(hint) in (typing.Union, __import__("types").UnionType):
        return any(_contains_bare_any(arg) for arg in typing.get_args(hint))
    return False


def test_no_public_parameter_is_typed_any() -> None:
    offenders = []
    checked = 0
    for label, member in _public_callables():
        try:
            hints = typing.get_type_hints(member)
        except (NameError, TypeError):  # pragma: no cover - a hint that cannot be resolved
            offenders.append(f"{label}: unresolvable hints")
            continue
        for parameter, hint in hints.items():
            if parameter == "return":
                continue
            checked += 1
            if _contains_bare_any(hint):
                offenders.append(f"{label}({parameter})")
    assert checked > 100  # the walk found the methods
    assert offenders == []


def test_the_literal_vocabularies_match_their_constants() -> None:
    types = diffio_async.types
    assert typing.get_args(diffio_async.DownloadTypeName) == ("audio", "mp3", "video", "transcript")
    assert set(typing.get_args(diffio_async.DownloadTypeName)) - {"mp3"} == set(
        types.DownloadType.ALL
    )
    assert typing.get_args(diffio_async.WebhookEventTypeName) == types.WebhookEventType.ALL
    assert typing.get_args(diffio_async.WebhookModeName) == types.WebhookMode.ALL
    assert typing.get_args(diffio_async.BillingPolicyTypeName) == types.BillingPolicyType.ALL
    assert typing.get_args(diffio_async.ModelKey) == diffio_async.KNOWN_MODELS
