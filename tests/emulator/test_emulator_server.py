"""serve_in_thread, storage lifecycle and configuration knobs."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import httpx2
import pytest
from emulator_helpers import ADMIN, inproc, ok

from diffio_async.emulator import Emulator, serve_in_thread

pytestmark = pytest.mark.anyio


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_port_zero_reports_the_real_port_and_servers_coexist() -> None:
    port = _free_port()
    with (
        Emulator(api_key=ADMIN) as first,
        Emulator(era="b", api_key=ADMIN) as second,
        serve_in_thread(first) as url_a,
        serve_in_thread(second, port=port) as url_b,
    ):
        assert url_b == f"http://127.0.0.1:{port}"
        assert url_a.startswith("http://127.0.0.1:") and not url_a.endswith(":0")
        async with httpx2.AsyncClient() as client:
            assert (await client.get(f"{url_a}/_emulator")).json()["era"] == "a"
            assert (await client.get(f"{url_b}/_emulator")).json()["era"] == "b"
    async with httpx2.AsyncClient() as client:
        with pytest.raises(httpx2.ConnectError):
            await client.get(f"{url_b}/_emulator")


def test_temporary_storage_is_removed_on_close(tmp_path: Path) -> None:
    emulator = Emulator()
    storage = Path(emulator.storage_dir)
    assert storage.is_dir()
    emulator.close()
    emulator.close()
    assert not storage.exists()
    with Emulator(storage_dir=tmp_path / "media") as kept:
        assert kept.storage_dir == str(tmp_path / "media")
    assert (tmp_path / "media").is_dir()


async def test_media_lives_on_disk(emulator: Emulator) -> None:
    async with inproc(emulator) as client:
        created = await ok(
            client, "create_project", {"fileName": "a.wav", "contentType": "audio/wav"}
        )
        await client.put(
            created["uploadUrl"], content=b"on-disk", headers={"Content-Type": "audio/wav"}
        )
    original = Path(emulator.storage_dir) / "originals" / created["apiProjectId"]
    assert original.read_bytes() == b"on-disk"
    assert os.listdir(Path(emulator.storage_dir) / "incoming") == []


async def test_upload_method_post_and_short_ttls() -> None:
    with Emulator(
        api_key=ADMIN, upload_method="POST", upload_url_ttl=10, download_url_ttl=20
    ) as emulator:
        async with inproc(emulator) as client:
            created = await ok(
                client, "create_project", {"fileName": "a.wav", "contentType": "audio/wav"}
            )
            assert created["uploadMethod"] == "POST"
            wrong = await client.put(
                created["uploadUrl"], content=b"x", headers={"Content-Type": "audio/wav"}
            )
            assert wrong.status_code == 405
            posted = await client.post(
                created["uploadUrl"], content=b"x", headers={"Content-Type": "audio/wav"}
            )
            assert posted.status_code == 200
            made = await ok(
                client, "diffio-2.0-generation", {"apiProjectId": created["apiProjectId"]}
            )
            emulator.advance(3)
            info = await ok(
                client,
                "get_generation_download",
                {"generationId": made["generationId"], "apiProjectId": created["apiProjectId"]},
            )
            emulator.advance(20)
            assert (await client.get(info["downloadUrl"])).status_code == 200
            emulator.advance(1)
            assert (await client.get(info["downloadUrl"])).status_code == 403


def test_constructor_validation() -> None:
    with pytest.raises(ValueError):
        Emulator(era="c")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        Emulator(generation_seconds=-1)


def test_repr_and_properties(emulator: Emulator) -> None:
    assert emulator.era == "a"
    assert emulator.api_key == ADMIN
    assert emulator.admin_key_id == "key_admin"
    assert emulator.webhook_secret.startswith("whsec_")
    assert "era='a'" in repr(emulator)
    assert emulator.project_ids == [] and emulator.generation_ids == []
