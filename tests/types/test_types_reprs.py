"""No model shows a secret in its repr: masked keys and tokens, URLs without their signature."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from types_helpers import ERA_A_CREATE, ERA_B_CREATE, public_model_classes

from diffio_async import types as m
from diffio_async._convert import structure


def test_secrets_are_not_in_repr() -> None:
    resp = structure(ERA_B_CREATE, m.CreateProjectResponse, endpoint="create_project")
    assert "v1.upload-abc.sig" not in repr(resp)
    assert "v1.upload-abc.sig" not in str(resp.upload)
    assert "upload_token='***'" in repr(resp.upload)
    key = m.ApiKey(key_id="k", key="diffio_live_supersecret")
    assert "supersecret" not in repr(key) and "key='***'" in repr(key)
    assert "key=None" in repr(m.ApiKey(key_id="k"))


SIGNED = (
    "https://storage.googleapis.com/b/users/u/song.wav?X-Goog-Expires=7200&X-Goog-Signature=abc123"
)
EDGE_MEDIA = "https://edge.example/m/v1.mediaTok3n.sig/generations/g/out.mp3?download=out.mp3"


def _signature_free(text: str) -> bool:
    return not any(
        secret in text
        for secret in ("X-Goog", "abc123", "mediaTok3n", "download=", "s3cret", "pw@")
    )


def test_reprs_show_urls_without_their_signature() -> None:
    """Signed URLs (era A query, era B ``/m/<token>/``), portal and webhook URLs are shown
    without what makes them credentials, in every model that holds one."""
    download_a = m.DownloadInfo(
        generation_id="g", api_project_id="p", download_type="audio", download_url=SIGNED
    )
    download_b = m.DownloadInfo(
        generation_id="g", api_project_id="p", download_type="audio", download_url=EDGE_MEDIA
    )
    created = structure(
        {**ERA_A_CREATE, "uploadUrl": SIGNED}, m.CreateProjectResponse, endpoint="x"
    )
    session = m.UploadSession(
        edge_base_url="https://user:pw@edge.example", upload_token="v1.upload-abc.s3cret"
    )
    portal = m.AppPortalAccess(portal_url="https://app.svix.com/login#key=s3cret")
    endpoint = m.WebhookEndpoint(url="https://hooks.example/diffio?token=s3cret")
    configure = m.ConfigureWebhookRequest(
        mode="live", url="https://hooks.example/diffio?token=s3cret", event_types=()
    )
    project = m.Project(api_project_id="proj-123", original_file_name="song.wav")
    models: list[object] = [download_a, download_b, created, session, portal, endpoint]
    for model in [*models, configure, project, m.ProjectList(projects=(project,))]:
        assert _signature_free(repr(model)), repr(model)
    assert "download_url='https://storage.googleapis.com/b/users/u/song.wav?\u2026'" in repr(
        download_a
    )
    assert "download_url='https://edge.example/m/***/generations/g/out.mp3?\u2026'" in repr(
        download_b
    )
    assert "upload_url='https://storage.googleapis.com/b/users/u/song.wav?\u2026'" in repr(created)
    assert "edge_base_url='https://***@edge.example'" in repr(session)
    assert "portal_url='https://app.svix.com/login#\u2026'" in repr(portal)
    # The values themselves are untouched.
    assert download_a.download_url == SIGNED and created.upload_url == SIGNED
    assert (
        m.DownloadInfo(
            generation_id="g", api_project_id="p", download_type="audio", download_url="not a url"
        ).download_url
        == "not a url"
    )


@pytest.mark.parametrize("cls", public_model_classes(), ids=lambda c: c.__name__)
def test_every_url_field_hides_its_credentials_in_repr(cls: type[Any]) -> None:
    for field in attrs.fields(cls):
        if field.name.endswith("url"):
            assert callable(field.repr), f"{cls.__name__}.{field.name} shows its query"
