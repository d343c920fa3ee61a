"""64 MiB through both upload paths over loopback, streamed: bytes identical, memory bounded."""

from __future__ import annotations

import hashlib
import tracemalloc
from collections.abc import AsyncIterator, Iterator

import httpx2
import pytest
from emulator_helpers import ADMIN, bearer, generation, ok

from diffio_async.emulator import Emulator, serve_in_thread

pytestmark = pytest.mark.anyio

MIB = 1024 * 1024
SIZE = 64 * MIB
BLOCK = bytes(range(256)) * 4096  # 1 MiB pattern


def _block(index: int) -> bytes:
    return index.to_bytes(4, "big") + BLOCK[4:]


async def _stream(start_block: int, count: int) -> AsyncIterator[bytes]:
    for index in range(start_block, start_block + count):
        yield _block(index)


def _expected_digest() -> str:
    digest = hashlib.sha256()
    for index in range(SIZE // MIB):
        digest.update(_block(index))
    return digest.hexdigest()


@pytest.fixture
def traced() -> Iterator[None]:
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


async def _download_digest(client: httpx2.AsyncClient, url: str) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    async with client.stream("GET", url) as response:
        assert response.status_code == 200
        assert response.headers["content-length"] == str(SIZE)
        async for chunk in response.aiter_raw():
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


async def test_era_a_64_mib_round_trip(traced: None) -> None:
    with Emulator(api_key=ADMIN) as emulator, serve_in_thread(emulator) as url:
        async with httpx2.AsyncClient(base_url=url, timeout=60) as client:
            created = await ok(
                client,
                "create_project",
                {"fileName": "big.wav", "contentType": "audio/wav", "contentLength": SIZE},
            )
            put = await client.put(
                created["uploadUrl"],
                content=_stream(0, SIZE // MIB),
                headers={"Content-Type": "audio/wav", "Content-Length": str(SIZE)},
            )
            assert put.status_code == 200
            made = await generation(client, created["apiProjectId"])
            emulator.advance(3)
            info = await ok(
                client,
                "get_generation_download",
                {"generationId": made["generationId"], "apiProjectId": created["apiProjectId"]},
            )
            digest, size = await _download_digest(client, info["downloadUrl"])
        (upload,) = emulator.requests.find(method="PUT")
        assert upload.body_size == SIZE and not upload.chunked
    _, peak = tracemalloc.get_traced_memory()
    assert size == SIZE
    assert digest == _expected_digest()
    assert peak < 16 * MIB, f"peak traced memory {peak / MIB:.1f} MiB"


async def test_era_b_64_mib_round_trip(traced: None) -> None:
    with Emulator(era="b", api_key=ADMIN) as emulator, serve_in_thread(emulator) as url:
        async with httpx2.AsyncClient(base_url=url, timeout=60) as client:
            created = await ok(
                client,
                "create_project",
                {"fileName": "big.wav", "contentType": "audio/wav", "contentLength": SIZE},
            )
            upload = created["upload"]
            token = bearer(upload["uploadToken"])
            edge = upload["edgeBaseUrl"]
            start = (await client.post(f"{edge}/v1/uploads/start", json={}, headers=token)).json()
            part_size = start["partSizeBytes"]
            assert part_size == 32 * MIB
            parts = []
            for number in (1, 2):
                blocks = part_size // MIB
                put = await client.put(
                    f"{edge}/v1/uploads/parts/{number}",
                    params={"uploadId": start["uploadId"]},
                    content=_stream((number - 1) * blocks, blocks),
                    headers={
                        **token,
                        "Content-Type": "application/octet-stream",
                        "Content-Length": str(part_size),
                    },
                )
                assert put.status_code == 200, put.text
                parts.append({"partNumber": number, "etag": put.json()["etag"]})
            done = await client.post(
                f"{edge}/v1/uploads/complete",
                json={"uploadId": start["uploadId"], "parts": parts},
                headers=token,
            )
            assert done.json()["sizeBytes"] == SIZE
            await ok(client, "complete_project_upload", {"apiProjectId": created["apiProjectId"]})
            made = await generation(client, created["apiProjectId"], "diffio-4.6-flash")
            emulator.advance(3)
            info = await ok(
                client,
                "get_generation_download",
                {"generationId": made["generationId"], "apiProjectId": created["apiProjectId"]},
            )
            digest, size = await _download_digest(client, info["downloadUrl"])
    _, peak = tracemalloc.get_traced_memory()
    assert size == SIZE
    assert digest == _expected_digest()
    assert peak < 16 * MIB, f"peak traced memory {peak / MIB:.1f} MiB"
