"""Tests for diffio_async.webhooks: the Svix / Standard Webhooks signature scheme."""

from __future__ import annotations

import base64
import math
import time
from typing import Any

import anyio
import httpx2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diffio_async.errors import ConfigurationError, DiffioError, WebhookVerificationError
from diffio_async.webhooks import WebhookRouter, construct_event, sign, verify, verify_event

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SECRET_B64 = SECRET.removeprefix("whsec_")
OTHER_SECRET = "whsec_" + base64.b64encode(b"another-secret-of-24-byte").decode()

# Svix's published test vector (diffio-api.md §6.3).
SVIX_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SVIX_TS = 1614265330
SVIX_BODY = '{"test": 2432232314}'
SVIX_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

# Diffio-shaped vector (diffio-api.md §6.3).
DIFFIO_ID = "msg_2Abc123"
DIFFIO_TS = 1769603696
DIFFIO_BODY = (
    '{"eventType":"generation.completed","eventId":"evt_123",'
    '"createdAt":"2026-01-28T12:34:56Z","apiKeyId":"key_123","apiProjectId":"proj_123",'
    '"generationId":"gen_123","status":"complete","hasVideo":false,"modelKey":"diffio-2",'
    '"error":null,"errorDetails":null}'
)
DIFFIO_SIG = "v1,o8QjKZYLsp/GdbKFQMQFvsm7Tf10EPWnxk21cgKT4xQ="


def svix_headers(
    msg_id: str = SVIX_ID, timestamp: int = SVIX_TS, signature: str = SVIX_SIG
) -> dict[str, str]:
    return {"svix-id": msg_id, "svix-timestamp": str(timestamp), "svix-signature": signature}


def assert_rejected(
    reason: str, payload: bytes | str, headers: Any, secret: Any = SECRET, **kwargs: Any
) -> WebhookVerificationError:
    with pytest.raises(WebhookVerificationError) as info:
        verify(payload, headers, secret, **kwargs)
    message = str(info.value)
    assert message.startswith(reason), message
    assert_no_secret(info.value, secret)
    return info.value


def assert_no_secret(exc: BaseException, secret: Any) -> None:
    if not isinstance(secret, str):
        for item in secret if isinstance(secret, (list, tuple)) else ():
            if isinstance(item, str):
                assert_no_secret(exc, item)
        return
    text = f"{exc} {exc!r} {exc.args!r}"
    bare = secret.removeprefix("whsec_")
    if not bare:
        return  # nothing secret to leak
    for fragment in {secret, bare, bare[:12], bare[-12:]}:
        if len(fragment) >= 6:
            assert fragment not in text


# --- test vectors -------------------------------------------------------------------------


def test_sign_svix_published_vector() -> None:
    assert sign(SECRET, msg_id=SVIX_ID, timestamp=SVIX_TS, payload=SVIX_BODY) == SVIX_SIG


def test_sign_diffio_vector() -> None:
    assert sign(SECRET, msg_id=DIFFIO_ID, timestamp=DIFFIO_TS, payload=DIFFIO_BODY) == DIFFIO_SIG


def test_verify_svix_published_vector() -> None:
    verify(SVIX_BODY, svix_headers(), SECRET, now=SVIX_TS)


def test_verify_event_diffio_vector() -> None:
    headers = svix_headers(DIFFIO_ID, DIFFIO_TS, DIFFIO_SIG)
    event = verify_event(DIFFIO_BODY.encode(), headers, SECRET, now=DIFFIO_TS + 12.5)
    assert event.event_type == "generation.completed"
    assert event.generation_id == "gen_123"
    assert event.has_video is False
    assert event.error is None
    assert event.created_at.year == 2026 and event.is_terminal


def test_vectors_fail_at_real_time() -> None:
    assert_rejected("timestamp too old", SVIX_BODY, svix_headers())


def test_a_secret_without_the_whsec_prefix_is_refused_up_front() -> None:
    with pytest.raises(WebhookVerificationError, match=r"^invalid secret") as info:
        sign(SECRET_B64, msg_id=SVIX_ID, timestamp=SVIX_TS, payload=SVIX_BODY)
    assert_no_secret(info.value, SECRET_B64)
    assert isinstance(info.value, ConfigurationError)
    exc = assert_rejected("invalid secret", SVIX_BODY, svix_headers(), SECRET_B64, now=SVIX_TS)
    assert_no_secret(exc, SECRET_B64)


def test_verify_uses_current_time_by_default() -> None:
    ts = int(time.time())
    sig = sign(SECRET, msg_id="msg_now", timestamp=ts, payload=b"{}")
    verify(b"{}", svix_headers("msg_now", ts, sig), SECRET)


# --- payload types ------------------------------------------------------------------------


def test_bytes_and_str_payloads_are_equivalent() -> None:
    body = '{"name": "café ☕"}'
    by_str = sign(SECRET, msg_id="m", timestamp=1, payload=body)
    by_bytes = sign(SECRET, msg_id="m", timestamp=1, payload=body.encode("utf-8"))
    assert by_str == by_bytes
    verify(body, svix_headers("m", 1, by_bytes), SECRET, now=1)
    verify(body.encode(), svix_headers("m", 1, by_str), SECRET, now=1)
    buffer = bytearray(body.encode())  # tolerated at run time
    verify(buffer, svix_headers("m", 1, by_str), SECRET, now=1)  # type: ignore[arg-type]


def test_non_utf8_body_verifies_but_is_not_an_event() -> None:
    body = b"\xff\xfe not utf-8"
    sig = sign(SECRET, msg_id="m", timestamp=1, payload=body)
    verify(body, svix_headers("m", 1, sig), SECRET, now=1)
    with pytest.raises(WebhookVerificationError, match="not valid JSON"):
        verify_event(body, svix_headers("m", 1, sig), SECRET, now=1)


def test_parsed_json_payload_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="raw request body"):
        verify({"test": 1}, svix_headers(), SECRET, now=SVIX_TS)  # type: ignore[arg-type]


# --- signature list / rotation ------------------------------------------------------------


@pytest.mark.parametrize(
    "signature",
    [
        SVIX_SIG,
        f"v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= {SVIX_SIG}",
        f"{SVIX_SIG} v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        f"v1a,ZmFrZQ== v2,ZmFrZQ== {SVIX_SIG}",
        f"  {SVIX_SIG}   v1,bm9wZQ==  ",
        f"garbage {SVIX_SIG} v1,",
    ],
)
def test_rotation_lists_accept_any_matching_v1(signature: str) -> None:
    verify(SVIX_BODY, svix_headers(signature=signature), SECRET, now=SVIX_TS)


def test_rotated_secret_both_signatures_present() -> None:
    old = sign(SECRET, msg_id="m", timestamp=5, payload="x")
    new = sign(OTHER_SECRET, msg_id="m", timestamp=5, payload="x")
    headers = svix_headers("m", 5, f"{old} {new}")
    verify("x", headers, SECRET, now=5)
    verify("x", headers, OTHER_SECRET, now=5)


@pytest.mark.parametrize(
    "signature",
    [
        SVIX_SIG.replace("v1,", "v2,"),
        f"v1a,ZmFrZQ== v1,{SVIX_SIG[3:].replace('g', 'h', 1)}",
        SVIX_SIG.removeprefix("v1,"),
        SVIX_SIG.rstrip("="),
        "v1,",
        "v1",
        "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= v1,bm9wZQ==",
        SVIX_SIG + "x",
        "v1,ünïcode",
    ],
)
def test_non_matching_signature_lists(signature: str) -> None:
    assert_rejected(
        "no matching signature", SVIX_BODY, svix_headers(signature=signature), now=SVIX_TS
    )


# --- header shapes ------------------------------------------------------------------------


def test_header_names_are_case_insensitive() -> None:
    headers = {"SVIX-ID": SVIX_ID, "Svix-Timestamp": str(SVIX_TS), "sViX-SiGnAtUrE": SVIX_SIG}
    verify(SVIX_BODY, headers, SECRET, now=SVIX_TS)


def test_webhook_header_family() -> None:
    headers = {
        "Webhook-Id": SVIX_ID,
        "webhook-timestamp": str(SVIX_TS),
        "WEBHOOK-SIGNATURE": SVIX_SIG,
    }
    verify(SVIX_BODY, headers, SECRET, now=SVIX_TS)


def test_complete_svix_family_wins_over_webhook_family() -> None:
    headers = {**svix_headers(), "webhook-id": "msg_other", "webhook-timestamp": "1"}
    headers["webhook-signature"] = "v1,bm9wZQ=="
    verify(SVIX_BODY, headers, SECRET, now=SVIX_TS)


def test_incomplete_svix_family_falls_back_to_webhook_family() -> None:
    headers = {
        "svix-id": "msg_other",
        "webhook-id": SVIX_ID,
        "webhook-timestamp": str(SVIX_TS),
        "webhook-signature": SVIX_SIG,
    }
    verify(SVIX_BODY, headers, SECRET, now=SVIX_TS)


def test_list_valued_headers() -> None:
    headers = {
        "svix-id": [SVIX_ID],
        "svix-timestamp": [str(SVIX_TS)],
        "svix-signature": ["v1,bm9wZQ==", SVIX_SIG],
    }
    verify(SVIX_BODY, headers, SECRET, now=SVIX_TS)


def test_list_valued_id_with_two_values_is_joined_with_comma() -> None:
    # Like the official SDK: ["a", "b"] becomes "a,b", which is not the signed id.
    headers: dict[str, Any] = {**svix_headers(), "svix-id": [SVIX_ID, SVIX_ID]}
    assert_rejected("no matching signature", SVIX_BODY, headers, now=SVIX_TS)
    signed_joined = sign(SECRET, msg_id=f"{SVIX_ID},{SVIX_ID}", timestamp=SVIX_TS, payload="b")
    headers["svix-signature"] = signed_joined
    verify("b", headers, SECRET, now=SVIX_TS)


def test_iterable_of_pairs_with_repeated_signature_header() -> None:
    pairs = [
        ("svix-id", SVIX_ID),
        ("svix-timestamp", str(SVIX_TS)),
        ("svix-signature", "v1,bm9wZQ=="),
        ("Svix-Signature", SVIX_SIG),
    ]
    verify(SVIX_BODY, pairs, SECRET, now=SVIX_TS)


def test_asgi_raw_bytes_headers() -> None:
    raw = [(b"content-type", b"application/json")]
    raw += [(k.encode(), v.encode()) for k, v in svix_headers().items()]
    verify(SVIX_BODY.encode(), raw, SECRET, now=SVIX_TS)


def test_httpx_headers_with_repeated_values() -> None:
    headers = httpx2.Headers(
        [
            ("Svix-Id", SVIX_ID),
            ("Svix-Timestamp", str(SVIX_TS)),
            ("Svix-Signature", "v1,bm9wZQ=="),
            ("Svix-Signature", SVIX_SIG),
        ]
    )
    verify(SVIX_BODY, headers, SECRET, now=SVIX_TS)


def test_comma_joined_signature_values() -> None:
    for joined in (f"v1,bm9wZQ==,{SVIX_SIG}", f"v1,bm9wZQ==, {SVIX_SIG}"):
        verify(SVIX_BODY, svix_headers(signature=joined), SECRET, now=SVIX_TS)


def test_none_header_values_count_as_missing() -> None:
    headers: dict[str, Any] = {**svix_headers(), "svix-signature": None}
    assert_rejected("missing headers: svix-signature", SVIX_BODY, headers, now=SVIX_TS)


# --- missing headers ----------------------------------------------------------------------


@pytest.mark.parametrize("absent", ["svix-id", "svix-timestamp", "svix-signature"])
def test_each_missing_header_is_named(absent: str) -> None:
    headers = svix_headers()
    del headers[absent]
    exc = assert_rejected("missing headers", SVIX_BODY, headers, now=SVIX_TS)
    assert exc.message == f"missing headers: {absent}"


def test_empty_header_value_is_missing() -> None:
    headers = {**svix_headers(), "svix-id": "  "}
    assert_rejected("missing headers: svix-id", SVIX_BODY, headers, now=SVIX_TS)


def test_no_headers_at_all() -> None:
    exc = assert_rejected("missing headers", SVIX_BODY, {}, now=SVIX_TS)
    assert str(exc) == "missing headers: svix-id, svix-timestamp, svix-signature"


def test_partial_webhook_family_names_webhook_headers() -> None:
    headers = {"webhook-id": SVIX_ID, "webhook-signature": SVIX_SIG}
    assert_rejected("missing headers: webhook-timestamp", SVIX_BODY, headers, now=SVIX_TS)


# --- tampering ----------------------------------------------------------------------------


def test_tampered_body() -> None:
    assert_rejected(
        "no matching signature", SVIX_BODY.replace("2432", "2433"), svix_headers(), now=SVIX_TS
    )


def test_reserialised_json_body_fails() -> None:
    assert_rejected("no matching signature", '{"test":2432232314}', svix_headers(), now=SVIX_TS)


def test_tampered_id() -> None:
    headers = svix_headers(msg_id=SVIX_ID + "x")
    assert_rejected("no matching signature", SVIX_BODY, headers, now=SVIX_TS)


def test_tampered_timestamp() -> None:
    headers = svix_headers(timestamp=SVIX_TS + 1)
    assert_rejected("no matching signature", SVIX_BODY, headers, now=SVIX_TS)


def test_wrong_secret() -> None:
    exc = assert_rejected(
        "no matching signature", SVIX_BODY, svix_headers(), OTHER_SECRET, now=SVIX_TS
    )
    assert_no_secret(exc, SECRET)


# --- timestamps ---------------------------------------------------------------------------


def signed_at(ts: int, body: str = "{}") -> dict[str, str]:
    return svix_headers("msg_ts", ts, sign(SECRET, msg_id="msg_ts", timestamp=ts, payload=body))


@pytest.mark.parametrize("offset", [-300, -299, 0, 299, 300])
def test_default_tolerance_boundaries_accept(offset: int) -> None:
    now = 1_700_000_000
    verify("{}", signed_at(now + offset), SECRET, now=now)


def test_default_tolerance_too_old() -> None:
    now = 1_700_000_000
    exc = assert_rejected("timestamp too old", "{}", signed_at(now - 301), now=now)
    assert "301 s before now" in str(exc)


def test_default_tolerance_too_new() -> None:
    now = 1_700_000_000
    exc = assert_rejected("timestamp too new", "{}", signed_at(now + 301), now=now)
    assert "301 s after now" in str(exc)


def test_fractional_now_boundaries() -> None:
    now = 1_700_000_000.5
    verify("{}", signed_at(1_700_000_000 - 299), SECRET, now=now)
    assert_rejected("timestamp too old", "{}", signed_at(1_700_000_000 - 300), now=now)
    verify("{}", signed_at(1_700_000_000 + 300), SECRET, now=now)
    assert_rejected("timestamp too new", "{}", signed_at(1_700_000_000 + 301), now=now)


def test_custom_tolerance() -> None:
    now = 1_000_000
    verify("{}", signed_at(now - 10), SECRET, now=now, tolerance=10)
    assert_rejected("timestamp too old", "{}", signed_at(now - 11), now=now, tolerance=10)
    assert_rejected("timestamp too new", "{}", signed_at(now + 1), now=now, tolerance=0)
    verify("{}", signed_at(now), SECRET, now=now, tolerance=0)


def test_infinite_tolerance_disables_the_check() -> None:
    verify(SVIX_BODY, svix_headers(), SECRET, tolerance=math.inf)


def test_timestamp_checked_before_signature() -> None:
    headers = svix_headers(signature="v1,bm9wZQ==")
    assert_rejected("timestamp too old", SVIX_BODY, headers, now=SVIX_TS + 1000)


@pytest.mark.parametrize("value", ["abc", "-5", "1.5", "1e9", "0x10", "1_614_265_330", "\uff19"])
def test_invalid_timestamp_header(value: str) -> None:
    headers = {**svix_headers(), "svix-timestamp": value}
    assert_rejected("invalid timestamp header", SVIX_BODY, headers, now=SVIX_TS)


@pytest.mark.parametrize("value", [f" {SVIX_TS} ", f"00{SVIX_TS}"])
def test_timestamp_is_read_as_an_integer(value: str) -> None:
    headers = {**svix_headers(), "svix-timestamp": value}
    verify(SVIX_BODY, headers, SECRET, now=SVIX_TS)


BAD_TOLERANCES: list[Any] = [-5, -1.0, -math.inf, math.nan, True, False, "300", None, [300]]


@pytest.mark.parametrize("tolerance", BAD_TOLERANCES)
def test_bad_tolerance_is_a_configuration_error(tolerance: Any) -> None:
    for check in (verify, verify_event):
        with pytest.raises(ConfigurationError, match=r"^tolerance must be") as info:
            check(SVIX_BODY, svix_headers(), SECRET, now=SVIX_TS, tolerance=tolerance)
        assert_no_secret(info.value, SECRET)


@pytest.mark.parametrize("tolerance", BAD_TOLERANCES)
def test_router_refuses_a_bad_tolerance_at_construction(tolerance: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"^tolerance must be") as info:
        WebhookRouter(SECRET, tolerance=tolerance)
    assert_no_secret(info.value, SECRET)


@pytest.mark.parametrize("remember", [-1, True, 1.5, "10", None])
def test_router_refuses_a_bad_remember_count_at_construction(remember: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"^remember must be"):
        WebhookRouter(SECRET, remember=remember)


def test_router_accepts_an_infinite_tolerance_and_integer_tolerances() -> None:
    WebhookRouter(SECRET, tolerance=math.inf)
    WebhookRouter(SECRET, tolerance=0)
    WebhookRouter(SECRET, tolerance=10, remember=0)


@pytest.mark.parametrize("now", [math.nan, math.inf, -math.inf, True, "1614265330", [1]])
def test_bad_now_is_a_configuration_error(now: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"^now must be"):
        verify(SVIX_BODY, svix_headers(), SECRET, now=now)


# --- secrets ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "secret",
    ["whsec_!!!not-base64!!!", "whsec_", "", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS", "whsec_abc"],
)
def test_invalid_secret(secret: str) -> None:
    exc = assert_rejected("invalid secret", SVIX_BODY, svix_headers(), secret, now=SVIX_TS)
    assert_no_secret(exc, secret)
    with pytest.raises(WebhookVerificationError, match=r"^invalid secret") as info:
        sign(secret, msg_id="m", timestamp=1, payload="x")
    assert_no_secret(info.value, secret)


def test_invalid_secret_is_reported_before_missing_headers() -> None:
    assert_rejected("invalid secret", SVIX_BODY, {}, "whsec_%%%", now=SVIX_TS)


def test_secret_never_in_any_failure_message() -> None:
    cases: list[tuple[str | bytes, Any, dict[str, Any]]] = [
        (SVIX_BODY, {}, {"now": SVIX_TS}),
        (SVIX_BODY, svix_headers(), {}),
        (SVIX_BODY, svix_headers(timestamp=SVIX_TS + 10_000), {"now": SVIX_TS}),
        (SVIX_BODY + " ", svix_headers(), {"now": SVIX_TS}),
        (SECRET, svix_headers(), {"now": SVIX_TS}),  # even a body that is the secret
        (SVIX_BODY, {**svix_headers(), "svix-timestamp": SECRET}, {"now": SVIX_TS}),
    ]
    for payload, headers, kwargs in cases:
        with pytest.raises(WebhookVerificationError) as info:
            verify(payload, headers, SECRET, **kwargs)
        assert_no_secret(info.value, SECRET)


# --- secret rotation: a sequence of secrets ----------------------------------------------


def test_a_list_of_secrets_verifies_a_delivery_signed_with_any_of_them() -> None:
    for secrets in ([OTHER_SECRET, SECRET], (SECRET, OTHER_SECRET), [SECRET]):
        verify(SVIX_BODY, svix_headers(), secrets, now=SVIX_TS)
        event = verify_event(
            DIFFIO_BODY, svix_headers(DIFFIO_ID, DIFFIO_TS, DIFFIO_SIG), secrets, now=DIFFIO_TS
        )
        assert event.generation_id == "gen_123"
    exc = assert_rejected(
        "no matching signature", SVIX_BODY, svix_headers(), [OTHER_SECRET], now=SVIX_TS
    )
    assert_no_secret(exc, OTHER_SECRET)


def test_signing_with_a_list_of_secrets_gives_one_entry_per_secret() -> None:
    both = sign([SECRET, OTHER_SECRET], msg_id="m", timestamp=5, payload="x")
    old = sign(SECRET, msg_id="m", timestamp=5, payload="x")
    new = sign(OTHER_SECRET, msg_id="m", timestamp=5, payload="x")
    assert both == f"{old} {new}"
    for secret in (SECRET, OTHER_SECRET, [OTHER_SECRET, SECRET]):
        verify("x", svix_headers("m", 5, both), secret, now=5)


BAD_SECRET_LISTS: list[Any] = [
    [],
    (),
    [SECRET, "whsec_%%%not-base64%%%"],
    [SECRET, SECRET_B64],  # the whsec_ prefix is required in a list too
    [SECRET, ""],
    [SECRET, 12345],
    [SECRET, SECRET.encode()],
    SECRET.encode(),
    12345,
    None,
    {SECRET},
    {"secret": SECRET},
]


@pytest.mark.parametrize(
    "secret",
    BAD_SECRET_LISTS,
    ids=[
        "empty-list",
        "empty-tuple",
        "not-base64-item",
        "unprefixed-item",
        "empty-item",
        "int-item",
        "bytes-item",
        "bytes",
        "int",
        "none",
        "set",
        "dict",
    ],
)
def test_a_bad_secret_or_secret_list_is_refused_up_front_without_echoing_it(secret: Any) -> None:
    def check(exc: BaseException) -> None:
        # Both what this module always raised for bad secrets and a configuration error.
        assert isinstance(exc, WebhookVerificationError) and isinstance(exc, ConfigurationError)
        assert str(exc).startswith("invalid secret"), str(exc)
        assert_no_secret(exc, SECRET)
        assert_no_secret(exc, SECRET_B64)

    with pytest.raises(WebhookVerificationError) as info:
        verify(SVIX_BODY, {}, secret, now=SVIX_TS)  # reported before the missing headers
    check(info.value)
    with pytest.raises(WebhookVerificationError) as info:
        verify_event(SVIX_BODY, svix_headers(), secret, now=SVIX_TS)
    check(info.value)
    with pytest.raises(WebhookVerificationError) as info:
        sign(secret, msg_id="m", timestamp=1, payload="x")
    check(info.value)
    with pytest.raises(ConfigurationError) as config_info:
        WebhookRouter(secret)
    check(config_info.value)


def test_a_bad_secret_in_a_list_is_named_by_its_position() -> None:
    with pytest.raises(WebhookVerificationError, match=r"item 1 of the sequence"):
        WebhookRouter([SECRET, "whsec_%%%"])


@pytest.mark.anyio
async def test_router_verifies_with_any_secret_of_a_rotation() -> None:
    router = WebhookRouter([OTHER_SECRET, SECRET], tolerance=math.inf)
    event = await router.handle(DIFFIO_BODY, svix_headers(DIFFIO_ID, DIFFIO_TS, DIFFIO_SIG))
    assert event.generation_id == "gen_123"
    only_other = WebhookRouter([OTHER_SECRET], tolerance=math.inf)
    with pytest.raises(WebhookVerificationError, match=r"^no matching signature"):
        await only_other.handle(DIFFIO_BODY, svix_headers(DIFFIO_ID, DIFFIO_TS, DIFFIO_SIG))


# --- v1a (asymmetric) signatures ----------------------------------------------------------

V1A = "v1a," + base64.b64encode(bytes(64)).decode()  # an ed25519 signature is 64 bytes


@pytest.mark.parametrize(
    "signature", [V1A, f"{V1A} {V1A}", f"  {V1A},{V1A}  ", f"{V1A} v2,ZmFrZQ=="]
)
def test_a_delivery_with_only_v1a_signatures_says_v1a_is_unsupported(signature: str) -> None:
    exc = assert_rejected(
        "v1a (asymmetric) signatures are not supported",
        SVIX_BODY,
        svix_headers(signature=signature),
        now=SVIX_TS,
    )
    assert "use a whsec_ symmetric secret" in str(exc)


@pytest.mark.anyio
async def test_router_says_v1a_is_unsupported() -> None:
    router = WebhookRouter(SECRET, tolerance=math.inf)
    with pytest.raises(WebhookVerificationError, match=r"^v1a \(asymmetric\) signatures"):
        await router.handle(SVIX_BODY, svix_headers(signature=V1A))


def test_a_v1a_signature_next_to_a_matching_v1_signature_verifies() -> None:
    verify(SVIX_BODY, svix_headers(signature=f"{V1A} {SVIX_SIG}"), SECRET, now=SVIX_TS)


def test_sign_rejects_non_int_timestamp() -> None:
    with pytest.raises(TypeError):
        sign(SECRET, msg_id="m", timestamp=1.5, payload="x")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        sign(SECRET, msg_id="m", timestamp=True, payload="x")


# --- construct_event / verify_event -------------------------------------------------------


def test_construct_event_returns_the_object() -> None:
    assert construct_event(DIFFIO_BODY).event_id == "evt_123"
    assert construct_event(DIFFIO_BODY.encode()).status == "complete"
    with pytest.raises(WebhookVerificationError, match="eventId"):
        construct_event('{"eventType": "generation.completed"}')


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json", "payload is not valid JSON"),
        ("", "payload is not valid JSON"),
        ("[1, 2]", "payload is not a JSON object"),
        ('"text"', "payload is not a JSON object"),
        ("null", "payload is not a JSON object"),
    ],
)
def test_construct_event_rejects_non_objects(body: str, reason: str) -> None:
    with pytest.raises(WebhookVerificationError, match=f"^{reason}"):
        construct_event(body)


ERROR_OBJECT_BODY = (
    '{"eventType":"generation.failed","eventId":"evt_err","createdAt":"2026-01-28T12:34:56Z",'
    '"apiKeyId":"key_123","apiProjectId":"proj_123","generationId":"gen_err","status":"error",'
    '"hasVideo":false,"modelKey":"diffio-2",'
    '"error":{"code":"inference_failed","message":"The model could not restore this file"},'
    '"errorDetails":null}'
)


def test_a_signed_event_whose_error_is_an_object_verifies() -> None:
    sig = sign(SECRET, msg_id="msg_err", timestamp=DIFFIO_TS, payload=ERROR_OBJECT_BODY)
    headers = svix_headers("msg_err", DIFFIO_TS, sig)
    event = verify_event(ERROR_OBJECT_BODY.encode(), headers, SECRET, now=DIFFIO_TS)
    assert event.generation_id == "gen_err" and event.is_failed
    assert isinstance(event.error, str)
    assert "The model could not restore this file" in event.error


def test_verify_event_rejects_signed_non_object() -> None:
    sig = sign(SECRET, msg_id="m", timestamp=1, payload="[1]")
    with pytest.raises(WebhookVerificationError, match="not a JSON object"):
        verify_event("[1]", svix_headers("m", 1, sig), SECRET, now=1)


def test_verify_event_verifies_before_parsing() -> None:
    with pytest.raises(WebhookVerificationError, match="no matching signature"):
        verify_event(DIFFIO_BODY, svix_headers(DIFFIO_ID, DIFFIO_TS), SECRET, now=DIFFIO_TS)


def test_error_class_is_a_value_error_and_a_diffio_error() -> None:
    assert issubclass(WebhookVerificationError, ValueError)
    assert issubclass(WebhookVerificationError, DiffioError)


# --- properties ---------------------------------------------------------------------------

secrets = st.binary(min_size=1, max_size=64).map(
    lambda key: "whsec_" + base64.b64encode(key).decode()
)
msg_ids = st.text(min_size=1, max_size=40).filter(lambda s: s.strip() != "")
timestamps = st.integers(min_value=0, max_value=2**40)
payloads = st.one_of(st.binary(max_size=512), st.text(max_size=512))


@settings(max_examples=200, deadline=None)
@given(
    secret=secrets,
    msg_id=msg_ids,
    timestamp=timestamps,
    payload=payloads,
    skew=st.integers(min_value=-300, max_value=300),
    family=st.sampled_from(["svix", "webhook", "SVIX", "Webhook"]),
)
def test_round_trip(
    secret: str, msg_id: str, timestamp: int, payload: bytes | str, skew: int, family: str
) -> None:
    signature = sign(secret, msg_id=msg_id, timestamp=timestamp, payload=payload)
    assert signature.startswith("v1,")
    assert len(base64.b64decode(signature[3:], validate=True)) == 32
    headers = {
        f"{family}-id": msg_id,
        f"{family}-timestamp": str(timestamp),
        f"{family}-signature": signature,
    }
    verify(payload, headers, secret, now=timestamp + skew)


@settings(max_examples=200, deadline=None)
@given(
    secret=secrets,
    msg_id=msg_ids,
    timestamp=timestamps,
    payload=st.binary(min_size=1, max_size=256),
    data=st.data(),
)
def test_any_flipped_body_byte_is_rejected(
    secret: str, msg_id: str, timestamp: int, payload: bytes, data: st.DataObject
) -> None:
    signature = sign(secret, msg_id=msg_id, timestamp=timestamp, payload=payload)
    index = data.draw(st.integers(min_value=0, max_value=len(payload) - 1))
    bit = data.draw(st.integers(min_value=0, max_value=7))
    tampered = bytearray(payload)
    tampered[index] ^= 1 << bit
    headers = svix_headers(msg_id, timestamp, signature)
    with pytest.raises(WebhookVerificationError, match=r"^no matching signature"):
        verify(bytes(tampered), headers, secret, now=timestamp)


# --- end to end: the emulator delivers, the SDK verifies ---------------------------------


@pytest.mark.anyio
async def test_emulator_deliveries_verify_with_the_sdk() -> None:
    from diffio_async.testing import emulated_diffio

    received: list[httpx2.Request] = []

    def receiver(request: httpx2.Request) -> httpx2.Response:
        received.append(request)
        return httpx2.Response(204)

    async with emulated_diffio(
        loopback=False,
        generation_seconds=0.0,
        webhook_transport=httpx2.MockTransport(receiver),
    ) as env:
        client = env.client
        await client.webhooks.configure(url="https://hooks.example/diffio", mode="test")
        project = await client.projects.create(b"RIFF" * 10, file_name="a.wav")
        generation = await client.generations.create(project, model="diffio-2")
        await generation.wait(timeout=10)
        await client.webhooks.send_test_event("generation.completed", mode="test")
        await env.emulator.deliver_due_webhooks()
        secret = env.emulator.webhook_secret
    events = [verify_event(r.content, r.headers, secret) for r in received]
    kinds = {event.event_type for event in events}
    assert "generation.completed" in kinds
    completed = [e for e in events if e.generation_id == generation.id]
    assert completed and completed[-1].status == "complete"
    tampered = received[0].content.replace(b"generation", b"Generation", 1)
    with pytest.raises(WebhookVerificationError):
        verify_event(tampered, received[0].headers, secret)


@pytest.mark.anyio
async def test_router_verifies_deduplicates_and_wakes() -> None:
    router = WebhookRouter(SECRET, tolerance=math.inf)
    headers = svix_headers(DIFFIO_ID, DIFFIO_TS, DIFFIO_SIG)
    woken: list[str] = []

    async def waiter() -> None:
        await router.wait_for("gen_123")
        woken.append("gen_123")

    async with anyio.create_task_group() as group:
        group.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        event = await router.handle(DIFFIO_BODY, headers)
    assert event.generation_id == "gen_123" and woken == ["gen_123"]

    with anyio.move_on_after(0.05) as scope:  # a retried delivery (same id) wakes nobody
        async with anyio.create_task_group() as group:
            group.start_soon(router.wait_for, "gen_123")
            await anyio.wait_all_tasks_blocked()
            await router.handle(DIFFIO_BODY, headers)
    assert scope.cancelled_caught
    with pytest.raises(WebhookVerificationError):
        await router.handle(DIFFIO_BODY.replace("gen_123", "gen_999"), headers)
    with pytest.raises(WebhookVerificationError):
        WebhookRouter("whsec_not base64!")
    assert SECRET not in repr(router)


@pytest.mark.anyio
async def test_news_that_arrives_while_nobody_waits_is_kept_for_the_next_wait() -> None:
    # A wait that is mid-poll when its webhook arrives must not miss it (and sleep until the
    # safety net's next poll): the next wait_for on that generation returns at once, once.
    router = WebhookRouter(SECRET, tolerance=math.inf)
    await router.handle(DIFFIO_BODY, svix_headers(DIFFIO_ID, DIFFIO_TS, DIFFIO_SIG))
    with anyio.fail_after(1):
        await router.wait_for("gen_123")
    with anyio.move_on_after(0.05) as scope:
        await router.wait_for("gen_123")
    assert scope.cancelled_caught
