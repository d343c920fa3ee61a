"""Processing time that depends on the media: ``seconds_per_mib`` (``--seconds-per-mib``)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from emulator_helpers import ADMIN, generation, inproc, ok, progress, project_a, project_b

from diffio_async.emulator import Emulator
from diffio_async.emulator._server import build_parser

pytestmark = pytest.mark.anyio

MIB = 1024 * 1024
MODEL = {"a": "diffio-2.0", "b": "diffio-4.6-flash"}


def _emulator(era: str, **options: Any) -> Emulator:
    return Emulator(
        era=era,  # type: ignore[arg-type]
        api_key=ADMIN,
        generation_seconds=1,
        seconds_per_mib=2,
        part_size_bytes=MIB,
        **options,
    )


@pytest.mark.parametrize("era", ["a", "b"])
async def test_a_3_mib_upload_at_2_seconds_per_mib_completes_at_7_seconds(era: str) -> None:
    with _emulator(era) as emulator:
        async with inproc(emulator) as client:
            upload = project_b if era == "b" else project_a
            pid = (await upload(client, b"\0" * (3 * MIB)))["apiProjectId"]
            gid = (await generation(client, pid, MODEL[era]))["generationId"]
            emulator.advance(0.69)
            assert (await progress(client, gid))["status"] == "queued"  # 10 % of 7 s
            emulator.advance(0.01)
            assert (await progress(client, gid))["status"] == "processing"
            emulator.advance(2.8)  # 3.5 s: half way
            half = await progress(client, gid)
            listed = await ok(client, "list_project_generations", {"apiProjectId": pid})
            emulator.advance(3.499)
            almost = await progress(client, gid)
            emulator.advance(0.001)
            done = await progress(client, gid)
    assert half["status"] == "processing"
    assert listed["generations"][0]["progress"] == 50
    assert half["preProcessing"]["status"] == "complete"  # 0.7 s to 2.1 s
    assert half["inference"]["status"] == "running"  # 2.1 s to 7 s
    assert half["inference"]["progress"] == int(100 * (3.5 - 2.1) / (7 - 2.1))
    if era == "b":
        assert half["stageProgress"]["overallPercent"] == 50
    assert almost["status"] == "processing" and almost["inference"]["progress"] == 99
    assert done["status"] == "complete" and done["inference"]["progress"] == 100


async def test_the_size_is_the_uploaded_byte_count() -> None:
    with _emulator("a") as emulator:
        async with inproc(emulator) as client:
            small = (await project_a(client, b"\0" * (MIB // 2)))["apiProjectId"]
            empty = (await project_a(client, b""))["apiProjectId"]
            half_mib = (await generation(client, small))["generationId"]
            nothing = (await generation(client, empty))["generationId"]
            emulator.advance(1)
            assert (await progress(client, nothing))["status"] == "complete"  # the fixed part
            assert (await progress(client, half_mib))["status"] == "processing"
            emulator.advance(1)
            assert (await progress(client, half_mib))["status"] == "complete"  # 1 + 2 x 0.5


async def test_a_scripted_duration_wins() -> None:
    with _emulator("a") as emulator:
        async with inproc(emulator) as client:
            pid = (await project_a(client, b"\0" * (3 * MIB)))["apiProjectId"]
            emulator.script_next_generation(duration=2)
            gid = (await generation(client, pid))["generationId"]
            emulator.advance(2)
            assert (await progress(client, gid))["status"] == "complete"


async def test_the_charge_follows_the_media_time() -> None:
    with Emulator(api_key=ADMIN, generation_seconds=10, seconds_per_mib=100) as emulator:
        async with inproc(emulator) as client:
            pid = (await project_a(client, b"\0" * MIB))["apiProjectId"]
            await generation(client, pid)
            usage = await ok(client, "usage/summary")
    (period,) = usage["usage"]["periods"]
    assert period["modelSeconds"] == {"diffio-2": 110}  # max(60, 10 + 100 x 1 MiB)
    assert period["reservedCents"] == 110


@pytest.mark.parametrize("value", [-1, -0.5, math.nan, math.inf, -math.inf])
def test_a_bad_seconds_per_mib_is_refused(value: float) -> None:
    with pytest.raises(ValueError, match=r"^seconds_per_mib must be a finite number >= 0"):
        Emulator(seconds_per_mib=value)


@pytest.mark.parametrize("value", ["2", True, None])
def test_seconds_per_mib_must_be_a_number(value: object) -> None:
    with pytest.raises(TypeError, match=r"^seconds_per_mib must be a number of seconds"):
        Emulator(seconds_per_mib=value)  # type: ignore[arg-type]


def test_the_command_line_option() -> None:
    assert build_parser().parse_args([]).seconds_per_mib == 0.0
    assert build_parser().parse_args(["--seconds-per-mib", "2.5"]).seconds_per_mib == 2.5
