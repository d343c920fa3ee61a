"""Transport details that need no server: URLs, headers, error mapping, lifecycle.

Retries, drops and streaming are tested against the emulator on loopback (test_client.py,
test_retries.py); here an ``httpx.MockTransport`` records what would have been sent.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import httpx
import pytest

from diffio_async import errors
from diffio_async._transport import RequestOptions, Timeout, Transport, api_url

KEY = "diffio_live_secret_key_123456"


def _recorder(
    respond: Callable[[httpx.Request], httpx.Response] | None = None,
) -> tuple[list[httpx.Request], httpx.AsyncClient]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if respond is not None:
            return respond(request)
        return httpx.Response(200, json={"ok": True})

    return seen, httpx.AsyncClient(transport=httpx.MockTransport(handler))


@pytest.mark.parametrize(
    ("base", "url"),
    [
        ("https://api.diffio.ai", "https://api.diffio.ai/v1/list_projects"),
        ("https://api.diffio.ai/", "https://api.diffio.ai/v1/list_projects"),
        ("https://api.diffio.ai/v1", "https://api.diffio.ai/v1/list_projects"),
        ("https://api.diffio.ai/v1/", "https://api.diffio.ai/v1/list_projects"),
        (
            "http://127.0.0.1:5001/diffioai/us-central1",
            "http://127.0.0.1:5001/diffioai/us-central1/v1/list_projects",
        ),
    ],
)
def test_api_url(base: str, url: str) -> None:
    assert api_url(base, "list_projects") == url


@pytest.mark.parametrize(
    ("auth_header", "name", "value"),
    [
        ("authorization", "authorization", f"Bearer {KEY}"),
        ("x-api-key", "x-api-key", KEY),
        ("xi-api-key", "xi-api-key", KEY),
    ],
)
@pytest.mark.anyio
async def test_auth_and_identity_headers(auth_header: str, name: str, value: str) -> None:
    seen, http = _recorder()
    transport = Transport(
        api_key=KEY,
        base_url="http://api.test",
        auth_header=auth_header,  # type: ignore[arg-type]
        http_client=http,
        headers={"X-Custom": "1", "Authorization": "Bearer hijack"},
    )
    result = await transport.call("list_projects", {}, idempotent=True)
    assert result.data == {"ok": True}
    (request,) = seen
    assert request.headers[name] == value
    other = {"authorization", "x-api-key", "xi-api-key"} - {name}
    assert not other & set(request.headers.keys())
    assert request.headers["user-agent"].startswith("diffio-async/")
    assert request.headers["x-diffio-sdk-name"] == "diffio-async"
    assert request.headers["x-diffio-sdk-language"] == "Python"
    assert request.headers["x-custom"] == "1"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {}
    await http.aclose()


@pytest.mark.anyio
async def test_per_call_api_key_override() -> None:
    seen, http = _recorder()
    transport = Transport(api_key=KEY, base_url="http://api.test", http_client=http)
    await transport.call("x", {}, idempotent=True, options=RequestOptions(api_key="other"))
    await transport.call("x", {}, idempotent=True)
    assert [r.headers["authorization"] for r in seen] == ["Bearer other", f"Bearer {KEY}"]
    await http.aclose()


@pytest.mark.parametrize(
    ("status", "body", "cls", "code"),
    [
        (400, {"error": "Invalid JSON body."}, errors.BadRequestError, None),
        (401, {"error": "Invalid API key."}, errors.AuthenticationError, None),
        (
            402,
            {"error": "Payment failed.", "code": "paymentFailed"},
            errors.PaymentFailedError,
            "paymentFailed",
        ),
        (
            402,
            {"error": "Spend limit.", "code": "spendLimitExceeded"},
            errors.SpendLimitExceededError,
            "spendLimitExceeded",
        ),
        (402, {"error": "Other billing."}, errors.PaymentRequiredError, None),
        (403, {"error": "API key is not active"}, errors.PermissionDeniedError, None),
        (404, {"error": "Generation not found."}, errors.NotFoundError, None),
        (
            404,
            {"error": "Transcript is unavailable.", "code": "TRANSCRIPT_UNAVAILABLE"},
            errors.TranscriptUnavailableError,
            "TRANSCRIPT_UNAVAILABLE",
        ),
        (
            409,
            {"error": "Transcript is not ready yet.", "code": "TRANSCRIPT_PENDING"},
            errors.TranscriptPendingError,
            "TRANSCRIPT_PENDING",
        ),
        (
            409,
            {"error": "Upload first.", "code": "UPLOAD_MISSING"},
            errors.UploadMissingError,
            "UPLOAD_MISSING",
        ),
        (
            409,
            {"error": "Key reused.", "code": "idempotencyConflict"},
            errors.IdempotencyConflictError,
            "idempotencyConflict",
        ),
        (
            410,
            {
                "error": "retired",
                "code": "model_retired",
                "retiredModel": "diffio-2",
                "supportedModels": ["diffio-4.6-flash"],
            },
            errors.ModelRetiredError,
            "model_retired",
        ),
        (
            413,
            {"error": {"code": "upload_too_large", "message": "Too big."}},
            errors.PayloadTooLargeError,
            "upload_too_large",
        ),
        (418, {"error": "teapot"}, errors.APIStatusError, None),
    ],
)
@pytest.mark.anyio
async def test_status_errors_are_typed(
    status: int, body: dict[str, object], cls: type[errors.APIStatusError], code: str | None
) -> None:
    _, http = _recorder(lambda r: httpx.Response(status, json=body, headers={"x-request-id": "r1"}))
    transport = Transport(api_key=KEY, base_url="http://api.test", http_client=http)
    with pytest.raises(cls) as info:
        await transport.call("create_project", {}, idempotent=True)
    error = info.value
    assert type(error) is cls
    assert error.status_code == status
    assert error.code == code
    assert error.body == body
    assert error.request_id == "r1"
    assert error.attempts == 1
    assert KEY not in str(error) and KEY not in repr(error)
    if cls is errors.ModelRetiredError:
        assert isinstance(error, errors.ModelRetiredError)
        assert error.retired_model == "diffio-2"
        assert error.supported_models == ("diffio-4.6-flash",)
    await http.aclose()


@pytest.mark.anyio
async def test_html_error_page_becomes_readable_error() -> None:
    page = "<html><body><h1>502 Bad Gateway</h1></body></html>"
    _, http = _recorder(
        lambda r: httpx.Response(502, text=page, headers={"content-type": "text/html"})
    )
    transport = Transport(api_key=KEY, base_url="http://api.test", http_client=http, max_retries=0)
    with pytest.raises(errors.InternalServerError) as info:
        await transport.call("list_projects", {}, idempotent=True)
    assert "502 Bad Gateway" in str(info.value)
    assert info.value.body == page
    await http.aclose()


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, text="not json", headers={"content-type": "application/json"}),
        httpx.Response(200, text="<html>hi</html>", headers={"content-type": "text/html"}),
        httpx.Response(200, json=[1, 2, 3]),
        httpx.Response(200, content=b""),
    ],
)
@pytest.mark.anyio
async def test_malformed_success_body_is_a_validation_error(response: httpx.Response) -> None:
    _, http = _recorder(lambda r: response)
    transport = Transport(api_key=KEY, base_url="http://api.test", http_client=http)
    with pytest.raises(errors.APIResponseValidationError) as info:
        await transport.call("list_projects", {}, idempotent=True)
    assert "list_projects" in str(info.value)
    await http.aclose()


@pytest.mark.anyio
async def test_key_never_in_logs_or_repr(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="diffio_async")
    responses = iter([httpx.Response(503, json={"error": "busy"}), httpx.Response(200, json={})])
    _, http = _recorder(lambda r: next(responses))
    transport = Transport(
        api_key=KEY,
        base_url="http://api.test",
        http_client=http,
        max_retries=1,
        timeout=Timeout(total=None),
    )
    await transport.call("get_generation_progress", {"generationId": "g"}, idempotent=True)
    assert caplog.records, "expected debug records of the attempts"
    for record in caplog.records:
        assert KEY not in record.getMessage()
    assert KEY not in repr(transport)
    assert KEY not in repr(RequestOptions(api_key=KEY))
    await http.aclose()


def test_bad_configuration() -> None:
    with pytest.raises(errors.ConfigurationError):
        Transport(api_key=" ", base_url="http://api.test")
    with pytest.raises(errors.ConfigurationError):
        Transport(api_key=KEY, base_url="ftp://api.test")
    with pytest.raises(errors.ConfigurationError):
        Transport(api_key=KEY, base_url="http://api.test", auth_header="cookie")  # type: ignore[arg-type]
    with pytest.raises(errors.ConfigurationError):
        Transport(api_key=KEY, base_url="http://api.test", timeout=-1)
    with pytest.raises(errors.ConfigurationError):
        Transport(api_key=KEY, base_url="http://api.test", max_retries=-2)
