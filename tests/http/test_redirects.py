"""Redirects are never followed, so no credential can reach another host.

httpx2 drops ``Authorization`` on a cross-origin redirect but keeps ``x-api-key``, and a
caller's ``httpx2.AsyncClient(follow_redirects=True)`` would follow every 3xx. The transport
sends every request with ``follow_redirects=False`` and turns a 3xx into a final
``RedirectError`` that names only the target's origin. Over loopback: the emulator answers
with the redirect (a fault), and a tiny threaded TCP server plays the other host and records
the head of every request it receives.
"""

from __future__ import annotations

import socketserver
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager

import httpx2
import pytest
from shared import FAST

from diffio_async import RedirectError
from diffio_async.testing import TEST_API_KEY, EmulatedDiffio, emulated_diffio

pytestmark = pytest.mark.anyio

UPLOAD_TOKEN = "edge_upload_token_0123456789abcdef"
SECRET_QUERY = "X-Goog-Signature=feedface0123456789"
ANSWER = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n"
ANSWER += b"connection: close\r\n\r\n{}"


class _Recorder(socketserver.ThreadingTCPServer):
    """A loopback HTTP server (in threads) that records the raw head of every request."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _RecordHead)
        self.received: list[bytes] = []


class _RecordHead(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        assert isinstance(self.server, _Recorder)
        self.request.settimeout(10)
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.request.recv(65536)
            if not chunk:
                break
            head += chunk
        self.server.received.append(head)
        if head:
            self.request.sendall(ANSWER)


@contextmanager
def other_host() -> Iterator[tuple[str, list[bytes]]]:
    """Run a :class:`_Recorder`; yield its origin and the list of request heads it got."""
    server = _Recorder()
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.received
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@asynccontextmanager
async def environment(
    *, auth_header: str, user_client: bool
) -> AsyncIterator[tuple[EmulatedDiffio, str, list[bytes]]]:
    """The emulator, a client (ours, or the caller's that follows redirects) and the other
    host."""
    async with AsyncExitStack() as stack:
        target, received = stack.enter_context(other_host())
        http = None
        if user_client:
            http = await stack.enter_async_context(httpx2.AsyncClient(follow_redirects=True))
        options = {"auth_header": auth_header, "http_client": http, "max_retries": FAST}
        env = await stack.enter_async_context(emulated_diffio(client_options=options))
        yield env, target, received


CLIENTS = pytest.mark.parametrize(
    "user_client", [False, True], ids=["sdk-client", "user-client-following-redirects"]
)


def _assert_names_only_the_origin(error: RedirectError, origin: str) -> None:
    assert f"redirected to {origin};" in str(error)
    for text in (str(error), repr(error), error.message):
        assert "steal" not in text and SECRET_QUERY not in text
        assert TEST_API_KEY not in text and UPLOAD_TOKEN not in text


@CLIENTS
@pytest.mark.parametrize("auth_header", ["authorization", "x-api-key", "xi-api-key"])
async def test_an_api_redirect_to_another_host_is_not_followed_and_the_key_never_gets_there(
    auth_header: str, user_client: bool
) -> None:
    async with environment(auth_header=auth_header, user_client=user_client) as (
        env,
        target,
        received,
    ):
        path = "/v1/list_projects"
        for status in (307, 308, 302):
            env.emulator.add_fault(
                path=path, status=status, headers={"location": f"{target}/steal?{SECRET_QUERY}"}
            )
            with pytest.raises(RedirectError) as info:
                await env.client.projects.list()
            assert info.value.status_code == status
            assert info.value.attempts == 1
            _assert_names_only_the_origin(info.value, target)
        # Final: one attempt per call although list_projects is idempotent and retried.
        assert [e.status for e in env.emulator.requests.find(path=path)] == [307, 308, 302]
    assert not [head for head in received if TEST_API_KEY.encode() in head]
    assert received == [], "nothing at all may be sent to the redirect target"


@CLIENTS
async def test_a_media_redirect_is_not_followed_and_the_upload_token_never_gets_there(
    user_client: bool,
) -> None:
    async with environment(auth_header="x-api-key", user_client=user_client) as (
        env,
        target,
        received,
    ):
        env.emulator.add_fault(
            path="/v1/uploads/parts/1",
            status=302,
            headers={"location": f"{target}/steal?{SECRET_QUERY}"},
        )
        with pytest.raises(RedirectError) as info:
            async with env.client._transport.send_media(
                "PUT",
                f"{env.base_url}/v1/uploads/parts/1?uploadId=u1",
                endpoint="edge:part 1",
                headers={"Authorization": f"Bearer {UPLOAD_TOKEN}"},
                content=lambda: b"part",
            ):
                pass
        _assert_names_only_the_origin(info.value, target)
        (sent,) = env.emulator.requests.find(path="/v1/uploads/parts/1")
        assert sent.header("x-api-key") is None, "media requests never carry the API key"
    assert not [h for h in received if UPLOAD_TOKEN.encode() in h or TEST_API_KEY.encode() in h]
    assert received == []


async def test_a_redirect_without_a_location_still_raises_a_redirect_error() -> None:
    async with environment(auth_header="authorization", user_client=True) as (env, _, received):
        env.emulator.add_fault(path="/v1/list_projects", status=301)
        with pytest.raises(RedirectError, match="did not name"):
            await env.client.projects.list()
    assert received == []


async def test_a_redirect_location_with_a_signed_query_never_reaches_a_log_record(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG")  # httpcore2 traces the response headers, the location included
    async with environment(auth_header="authorization", user_client=False) as (env, target, _):
        env.emulator.add_fault(
            path="/v1/list_projects",
            status=307,
            headers={"location": f"{target}/steal?{SECRET_QUERY}"},
        )
        with pytest.raises(RedirectError):
            await env.client.projects.list()
    messages = [record.getMessage() for record in caplog.records]
    assert any("location" in message for message in messages), "httpcore2 traced the headers"
    assert not [message for message in messages if SECRET_QUERY.split("=")[1] in message]
