"""The bad-input catalogue: what a hostile or careless caller can pass, and what they get.

Every case asserts the error's type, that its message is readable (printable, one line,
bounded) and free of secrets (the API key, a webhook secret), and, where the input is
knowable as bad, that the emulator saw no request at all: a bad argument never costs a
project or a generation. The README's Errors section links here.

Sections: the client and its policies (constructors), API calls (projects, generations,
handles, restore, restore_many, keys, webhooks, account), webhook verification, and the
command line.
"""

from __future__ import annotations

import base64
import math
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx2
import pytest
from shared import batch_arguments

from diffio_async import (
    AsyncDiffio,
    ConfigurationError,
    DiffioError,
    InvalidRequestError,
    PollPolicy,
    RequestOptions,
    RestoreOptions,
    RetryPolicy,
    Timeout,
    WebhookVerificationError,
)
from diffio_async.cli import main
from diffio_async.testing import EmulatedDiffio, emulated_diffio
from diffio_async.webhooks import WebhookRouter, sign, verify

SECRET = "dfo_SENTINEL_secret_4242"
"""The API key of every case: no message may contain it, or its distinctive part."""
MARK = "SENTINEL"
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"catalogue-signing-key-0123456789").decode()


def _check_message(error: BaseException) -> None:
    """Readable and free of secrets."""
    for text in (str(error), repr(error)):
        assert MARK not in text and SECRET not in text
        assert WEBHOOK_SECRET not in text and WEBHOOK_SECRET[6:] not in text
    message = str(error)
    assert message.strip(), "an empty message explains nothing"
    assert len(message) <= 1200
    assert message.isprintable(), f"not one printable line: {message!r}"


# --- the client and its policies (no request can have been sent: nothing is listening) -------

URL = "http://127.0.0.1:9"  # the discard port: a request would fail, not hang

CONSTRUCTORS: list[tuple[str, Callable[[], object], type[BaseException]]] = [
    ("key-with-crlf", lambda: AsyncDiffio(SECRET + "\r\nX-Evil: 1", URL), ConfigurationError),
    (
        "key-with-inner-lf",
        lambda: AsyncDiffio(SECRET[:6] + "\n" + SECRET[6:], URL),
        ConfigurationError,
    ),
    ("key-with-nul", lambda: AsyncDiffio(SECRET + "\x00", URL), ConfigurationError),
    ("key-non-ascii", lambda: AsyncDiffio(SECRET + "é", URL), ConfigurationError),
    ("key-inner-space", lambda: AsyncDiffio("dfo SENTINEL", URL), ConfigurationError),
    ("key-bytes", lambda: AsyncDiffio(SECRET.encode(), URL), ConfigurationError),  # type: ignore[arg-type]
    ("key-int", lambda: AsyncDiffio(12345, URL), ConfigurationError),  # type: ignore[arg-type]
    ("key-empty", lambda: AsyncDiffio("", URL), ConfigurationError),
    ("key-blank", lambda: AsyncDiffio("   ", URL), ConfigurationError),
    ("base-url-ftp", lambda: AsyncDiffio(SECRET, "ftp://example.com"), ConfigurationError),
    ("base-url-int", lambda: AsyncDiffio(SECRET, 8080), ConfigurationError),  # type: ignore[arg-type]
    ("base-url-query", lambda: AsyncDiffio(SECRET, URL + "?key=1"), ConfigurationError),
    ("base-url-no-host", lambda: AsyncDiffio(SECRET, "http://"), ConfigurationError),
    (
        "auth-header-cookie",
        lambda: AsyncDiffio(SECRET, URL, auth_header="cookie"),
        ConfigurationError,
    ),  # type: ignore[arg-type]
    ("auth-header-int", lambda: AsyncDiffio(SECRET, URL, auth_header=1), ConfigurationError),  # type: ignore[arg-type]
    ("timeout-nan", lambda: AsyncDiffio(SECRET, URL, timeout=math.nan), ConfigurationError),
    ("timeout-negative", lambda: AsyncDiffio(SECRET, URL, timeout=-1), ConfigurationError),
    ("timeout-zero", lambda: AsyncDiffio(SECRET, URL, timeout=0), ConfigurationError),
    ("timeout-inf", lambda: AsyncDiffio(SECRET, URL, timeout=math.inf), ConfigurationError),
    ("timeout-string", lambda: AsyncDiffio(SECRET, URL, timeout="5"), ConfigurationError),  # type: ignore[arg-type]
    ("retries-negative", lambda: AsyncDiffio(SECRET, URL, max_retries=-1), ConfigurationError),
    ("retries-float", lambda: AsyncDiffio(SECRET, URL, max_retries=1.5), ConfigurationError),  # type: ignore[arg-type]
    ("retries-bool", lambda: AsyncDiffio(SECRET, URL, max_retries=True), ConfigurationError),
    ("retries-huge", lambda: AsyncDiffio(SECRET, URL, max_retries=10**6), ConfigurationError),
    (
        "header-crlf",
        lambda: AsyncDiffio(SECRET, URL, headers={"X-A": "v\r\nX-B: 1"}),
        ConfigurationError,
    ),
    (
        "header-bad-name",
        lambda: AsyncDiffio(SECRET, URL, headers={"Bad Name": "v"}),
        ConfigurationError,
    ),
    (
        "header-non-ascii",
        lambda: AsyncDiffio(SECRET, URL, headers={"X-A": "é"}),
        ConfigurationError,
    ),
    ("http-client-str", lambda: AsyncDiffio(SECRET, URL, http_client="client"), ConfigurationError),  # type: ignore[arg-type]
    (
        "http-client-sync",
        lambda: AsyncDiffio(SECRET, URL, http_client=httpx2.Client()),
        ConfigurationError,
    ),  # type: ignore[arg-type]
    ("timeout-total-negative", lambda: Timeout(total=-5), ConfigurationError),
    ("timeout-read-nan", lambda: Timeout(read=math.nan), ConfigurationError),
    ("timeout-connect-string", lambda: Timeout(connect="1"), ConfigurationError),  # type: ignore[arg-type]
    ("retry-initial-nan", lambda: RetryPolicy(initial_delay=math.nan), ConfigurationError),
    ("retry-max-delay-negative", lambda: RetryPolicy(max_delay=-1), ConfigurationError),
    ("retry-count-negative", lambda: RetryPolicy(max_retries=-3), ConfigurationError),
    ("poll-initial-nan", lambda: PollPolicy(initial=math.nan), ConfigurationError),
    ("poll-maximum-negative", lambda: PollPolicy(maximum=-1), ConfigurationError),
    ("poll-maximum-inf", lambda: PollPolicy(maximum=math.inf), ConfigurationError),
    ("poll-factor-below-one", lambda: PollPolicy(factor=0.5), ConfigurationError),
    (
        "options-key-crlf",
        lambda: AsyncDiffio(SECRET, URL).with_options(api_key=SECRET + "\r\nX: 1"),
        ConfigurationError,
    ),
    (
        "options-timeout-nan",
        lambda: AsyncDiffio(SECRET, URL).with_options(timeout=math.nan),
        ConfigurationError,
    ),
    (
        "router-tolerance-negative",
        lambda: WebhookRouter(WEBHOOK_SECRET, tolerance=-5),
        ConfigurationError,
    ),
    (
        "router-tolerance-nan",
        lambda: WebhookRouter(WEBHOOK_SECRET, tolerance=math.nan),
        ConfigurationError,
    ),
    ("router-secret-not-whsec", lambda: WebhookRouter("not-a-secret-SENTINEL"), ConfigurationError),
    ("router-secret-empty-list", lambda: WebhookRouter([]), ConfigurationError),
    ("router-secret-int", lambda: WebhookRouter(42), ConfigurationError),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(
    ("make", "expected"),
    [pytest.param(make, expected, id=name) for name, make, expected in CONSTRUCTORS],
)
def test_a_bad_constructor_argument_is_refused_at_once(
    make: Callable[[], object], expected: type[BaseException]
) -> None:
    with pytest.raises(expected) as info:
        make()
    assert isinstance(info.value, DiffioError)
    _check_message(info.value)


# --- API calls: refused before any request ----------------------------------------------------


@pytest.fixture
async def env() -> AsyncIterator[EmulatedDiffio]:
    # In-process (no sockets): what matters here is that no request is made at all.
    async with emulated_diffio(api_key=SECRET, loopback=False, generation_seconds=0.05) as env:
        yield env


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    good = tmp_path / "good.wav"
    good.write_bytes(b"RIFF" + bytes(64))
    (tmp_path / "good.flac").write_bytes(b"fLaC" + bytes(64))  # same stem: one output
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"")
    return {
        "fifo": fifo,
        "empty": empty,
        "good": good,
        "folder": tmp_path,
        "missing": tmp_path / "missing.wav",
        "blocked": blocker / "out.mp3",  # a file used as a folder
    }


Call = Callable[[AsyncDiffio, dict[str, Path]], Awaitable[object]]
NAN = math.nan


async def _batch(client: AsyncDiffio, sources: object, **options: Any) -> None:
    arguments = batch_arguments(**options)
    async with client.restore_many(sources, **arguments) as items:  # type: ignore[arg-type]
        async for _ in items:
            pass


def _handle(client: AsyncDiffio) -> Any:
    return client.generations.get("gen_1", project_id="proj_1")


CALLS: list[tuple[str, Call, type[BaseException], str]] = [
    # projects.create / register / list_generations
    ("create-none", lambda c, f: c.projects.create(None), InvalidRequestError, "upload"),  # type: ignore[arg-type]
    ("create-int", lambda c, f: c.projects.create(123), InvalidRequestError, "upload"),  # type: ignore[arg-type]
    (
        "create-missing",
        lambda c, f: c.projects.create(f["missing"]),
        InvalidRequestError,
        "no such file",
    ),
    (
        "create-folder",
        lambda c, f: c.projects.create(f["folder"]),
        InvalidRequestError,
        "directory",
    ),
    ("create-fifo", lambda c, f: c.projects.create(f["fifo"]), InvalidRequestError, "regular file"),
    ("create-empty-file", lambda c, f: c.projects.create(f["empty"]), InvalidRequestError, "empty"),
    ("create-empty-bytes", lambda c, f: c.projects.create(b""), InvalidRequestError, "empty"),
    (
        "create-blank-name",
        lambda c, f: c.projects.create(b"RIFF", file_name=" "),
        InvalidRequestError,
        "file_name",
    ),
    (
        "create-type-int",
        lambda c, f: c.projects.create(b"RIFF", content_type=5),
        InvalidRequestError,
        "content_type",
    ),  # type: ignore[arg-type]
    (
        "create-parts-zero",
        lambda c, f: c.projects.create(f["good"], part_concurrency=0),
        InvalidRequestError,
        "part_concurrency",
    ),
    (
        "create-parts-str",
        lambda c, f: c.projects.create(f["good"], part_concurrency="4"),
        InvalidRequestError,
        "part_concurrency",
    ),  # type: ignore[arg-type]
    (
        "create-params-nan",
        lambda c, f: c.projects.create(f["good"], params={"x": NAN}),
        InvalidRequestError,
        "params",
    ),
    (
        "create-params-list",
        lambda c, f: c.projects.create(f["good"], params=[1]),
        InvalidRequestError,
        "params",
    ),  # type: ignore[arg-type]
    (
        "create-params-set",
        lambda c, f: c.projects.create(f["good"], params={"x": {1}}),
        InvalidRequestError,
        "params",
    ),
    (
        "create-progress-str",
        lambda c, f: c.projects.create(f["good"], on_progress="print"),
        InvalidRequestError,
        "on_progress",
    ),  # type: ignore[arg-type]
    (
        "create-format-int",
        lambda c, f: c.projects.create(f["good"], file_format=5),
        InvalidRequestError,
        "file_format",
    ),  # type: ignore[arg-type]
    (
        "register-blank-name",
        lambda c, f: c.projects.register(file_name=""),
        InvalidRequestError,
        "file_name",
    ),
    (
        "register-negative-length",
        lambda c, f: c.projects.register(file_name="a.wav", content_length=-1),
        InvalidRequestError,
        "content_length",
    ),
    (
        "register-bool-length",
        lambda c, f: c.projects.register(file_name="a.wav", content_length=True),
        InvalidRequestError,
        "content_length",
    ),
    (
        "register-str-length",
        lambda c, f: c.projects.register(file_name="a.wav", content_length="5"),
        InvalidRequestError,
        "content_length",
    ),  # type: ignore[arg-type]
    (
        "list-generations-blank",
        lambda c, f: c.projects.list_generations(""),
        InvalidRequestError,
        "project_id",
    ),
    (
        "list-generations-none",
        lambda c, f: c.projects.list_generations(None),
        InvalidRequestError,
        "project_id",
    ),  # type: ignore[arg-type]
    (
        "complete-upload-blank",
        lambda c, f: c.projects.complete_upload(" "),
        InvalidRequestError,
        "project_id",
    ),
    # generations
    (
        "generation-project-blank",
        lambda c, f: c.generations.create("", model="diffio-3.5"),
        InvalidRequestError,
        "project",
    ),
    (
        "generation-project-none",
        lambda c, f: c.generations.create(None, model="diffio-3.5"),
        InvalidRequestError,
        "project",
    ),
    (
        "generation-model-unknown",
        lambda c, f: c.generations.create("p", model="diffio-99"),
        InvalidRequestError,
        "diffio-99",
    ),
    (
        "generation-model-blank",
        lambda c, f: c.generations.create("p", model=""),
        InvalidRequestError,
        "model",
    ),
    (
        "generation-model-int",
        lambda c, f: c.generations.create("p", model=3),
        InvalidRequestError,
        "model",
    ),  # type: ignore[arg-type]
    (
        "generation-endpoint-traversal",
        lambda c, f: c.generations.create("p", model="x", endpoint="../admin"),
        InvalidRequestError,
        "endpoint",
    ),
    (
        "generation-sampling-nan",
        lambda c, f: c.generations.create("p", model="diffio-3.5", sampling={"t": NAN}),
        InvalidRequestError,
        "sampling",
    ),
    (
        "generation-sampling-inf",
        lambda c, f: c.generations.create("p", model="diffio-3.5", sampling={"t": math.inf}),
        InvalidRequestError,
        "sampling",
    ),
    (
        "generation-sampling-str",
        lambda c, f: c.generations.create("p", model="diffio-3.5", sampling="fast"),
        InvalidRequestError,
        "sampling",
    ),  # type: ignore[arg-type]
    (
        "generation-params-bytes",
        lambda c, f: c.generations.create("p", model="diffio-3.5", params={"b": b"x"}),
        InvalidRequestError,
        "params",
    ),
    (
        "generation-key-blank",
        lambda c, f: c.generations.create("p", model="diffio-3.5", idempotency_key=" "),
        InvalidRequestError,
        "idempotency_key",
    ),
    (
        "generation-key-long",
        lambda c, f: c.generations.create("p", model="diffio-3.5", idempotency_key="k" * 300),
        InvalidRequestError,
        "idempotency_key",
    ),
    (
        "generation-key-int",
        lambda c, f: c.generations.create("p", model="diffio-3.5", idempotency_key=5),
        InvalidRequestError,
        "idempotency_key",
    ),  # type: ignore[arg-type]
    (
        "progress-blank",
        lambda c, f: c.generations.get_progress(""),
        InvalidRequestError,
        "generation_id",
    ),
    (
        "progress-project-int",
        lambda c, f: c.generations.get_progress("g", project_id=5),
        InvalidRequestError,
        "project_id",
    ),  # type: ignore[arg-type]
    (
        "download-info-type",
        lambda c, f: c.generations.get_download("g", project_id="p", download_type="flac"),
        InvalidRequestError,
        "download_type",
    ),
    (
        "download-info-project",
        lambda c, f: c.generations.get_download("g", project_id=""),
        InvalidRequestError,
        "project_id",
    ),
    # Generation handles
    ("wait-timeout-nan", lambda c, f: _handle(c).wait(timeout=NAN), InvalidRequestError, "timeout"),
    (
        "wait-timeout-negative",
        lambda c, f: _handle(c).wait(timeout=-1),
        InvalidRequestError,
        "timeout",
    ),
    (
        "wait-timeout-str",
        lambda c, f: _handle(c).wait(timeout="60"),
        InvalidRequestError,
        "timeout",
    ),
    ("handle-download-none", lambda c, f: _handle(c).download(None), InvalidRequestError, "dest"),  # type: ignore[arg-type]
    (
        "handle-download-type",
        lambda c, f: _handle(c).download(f["folder"], download_type="wav"),
        InvalidRequestError,
        "download_type",
    ),
    # restore: nothing is uploaded for a bad argument
    (
        "restore-max-bytes-with-output",
        lambda c, f: c.restore(f["good"], output=f["folder"], max_bytes=10),
        InvalidRequestError,
        "max_bytes",
    ),
    (
        "restore-max-bytes-zero",
        lambda c, f: c.restore(f["good"], output=None, max_bytes=0),
        InvalidRequestError,
        "max_bytes",
    ),
    (
        "restore-output-int",
        lambda c, f: c.restore(f["good"], output=5),
        InvalidRequestError,
        "output",
    ),  # type: ignore[arg-type]
    (
        "restore-output-missing-folder",
        lambda c, f: c.restore(f["good"], output=f["missing"] / "x" / "o.mp3"),
        InvalidRequestError,
        "does not exist",
    ),
    (
        "restore-output-under-a-file",
        lambda c, f: c.restore(f["good"], output=f["blocked"]),
        InvalidRequestError,
        "output",
    ),
    (
        "restore-timeout-nan",
        lambda c, f: c.restore(f["good"], output=f["folder"], options=RestoreOptions(timeout=NAN)),
        InvalidRequestError,
        "timeout",
    ),
    (
        "restore-timeout-negative",
        lambda c, f: c.restore(f["good"], output=f["folder"], options=RestoreOptions(timeout=-1)),
        InvalidRequestError,
        "timeout",
    ),
    (
        "restore-model",
        lambda c, f: c.restore(
            f["good"], output=f["folder"], options=RestoreOptions(model="diffio-99")
        ),
        InvalidRequestError,
        "diffio-99",
    ),
    (
        "restore-sampling",
        lambda c, f: c.restore(
            f["good"], output=f["folder"], options=RestoreOptions(sampling={"t": NAN})
        ),
        InvalidRequestError,
        "sampling",
    ),
    (
        "restore-params",
        lambda c, f: c.restore(f["good"], output=f["folder"], options=RestoreOptions(params="x")),
        InvalidRequestError,
        "params",
    ),  # type: ignore[arg-type]
    (
        "restore-key",
        lambda c, f: c.restore(f["good"], output=f["folder"], idempotency_key=""),
        InvalidRequestError,
        "idempotency_key",
    ),
    (
        "restore-download-type",
        lambda c, f: c.restore(
            f["good"], output=f["folder"], options=RestoreOptions(download_type="flac")
        ),
        InvalidRequestError,
        "download_type",
    ),
    (
        "restore-poll",
        lambda c, f: c.restore(f["good"], output=f["folder"], options=RestoreOptions(poll=5)),
        InvalidRequestError,
        "poll",
    ),  # type: ignore[arg-type]
    (
        "restore-on-progress",
        lambda c, f: c.restore(f["good"], output=f["folder"], on_progress=5),
        InvalidRequestError,
        "on_progress",
    ),  # type: ignore[arg-type]
    (
        "restore-empty-bytes",
        lambda c, f: c.restore(b"", output=f["folder"]),
        InvalidRequestError,
        "empty",
    ),
    (
        "restore-fifo",
        lambda c, f: c.restore(f["fifo"], output=f["folder"]),
        InvalidRequestError,
        "regular file",
    ),
    (
        "restore-missing",
        lambda c, f: c.restore(f["missing"], output=f["folder"]),
        InvalidRequestError,
        "no such file",
    ),
    (
        "restore-options-dict",
        lambda c, f: c.restore(f["good"], output=f["folder"], options={"model": "x"}),  # type: ignore[arg-type]
        InvalidRequestError,
        "RestoreOptions",
    ),
    # restore_many: refused before the first file
    (
        "batch-sources-none",
        lambda c, f: _batch(c, None, output_dir=f["folder"] / "o"),
        InvalidRequestError,
        "sources",
    ),
    (
        "batch-sources-int",
        lambda c, f: _batch(c, 42, output_dir=f["folder"] / "o"),
        InvalidRequestError,
        "sources",
    ),
    (
        "batch-timeout-zero",
        lambda c, f: _batch(c, [f["good"]], output_dir=f["folder"] / "o", timeout=0),
        InvalidRequestError,
        "timeout",
    ),
    (
        "restore-timeout-zero",
        lambda c, f: c.restore(f["good"], output=f["folder"], options=RestoreOptions(timeout=0)),
        InvalidRequestError,
        "timeout",
    ),
    (
        "generation-sampling-int-key",
        lambda c, f: c.generations.create("p", model="diffio-3.5", sampling={1: 2}),
        InvalidRequestError,
        "keys must be strings",
    ),
    (
        "create-limiter-int",
        lambda c, f: c.projects.create(f["good"], transfer_limiter=4),
        InvalidRequestError,
        "transfer_limiter",
    ),  # type: ignore[arg-type]
    (
        "create-type-nul",
        lambda c, f: c.projects.create(f["good"], content_type="audio/\x00wav"),
        InvalidRequestError,
        "content_type",
    ),
    ("options-zero", lambda c, f: c.projects.list(options=0), ConfigurationError, "options"),  # type: ignore[arg-type]
    ("options-empty-dict", lambda c, f: c.projects.list(options={}), ConfigurationError, "options"),  # type: ignore[arg-type]
    (
        "batch-options-swapped",
        lambda c, f: _batch(c, [f["good"]], output_dir=f["folder"] / "o", batch=RestoreOptions()),
        InvalidRequestError,
        "BatchOptions",
    ),
    (
        "batch-sources-bytes",
        lambda c, f: _batch(c, b"x.wav", output_dir=f["folder"] / "o"),
        InvalidRequestError,
        "sources",
    ),
    (
        "batch-concurrency-huge",
        lambda c, f: _batch(c, [f["good"]], output_dir=f["folder"] / "o", concurrency=200_000),
        InvalidRequestError,
        "concurrency",
    ),
    (
        "batch-concurrency-zero",
        lambda c, f: _batch(c, [f["good"]], output_dir=f["folder"] / "o", concurrency=0),
        InvalidRequestError,
        "concurrency",
    ),
    (
        "batch-timeout-nan",
        lambda c, f: _batch(c, [f["good"]], output_dir=f["folder"] / "o", timeout=NAN),
        InvalidRequestError,
        "timeout",
    ),
    (
        "batch-router",
        lambda c, f: _batch(c, [f["good"]], output_dir=f["folder"] / "o", router="whsec_x"),
        InvalidRequestError,
        "router",
    ),
    (
        "batch-polls-per-second",
        lambda c, f: _batch(c, [f["good"]], output_dir=f["folder"] / "o", polls_per_second=0),
        InvalidRequestError,
        "polls_per_second",
    ),
    (
        "wait-expected-negative",
        lambda c, f: _handle(c).wait(expected_seconds=-1),
        InvalidRequestError,
        "expected_seconds",
    ),
    ("wait-budget-int", lambda c, f: _handle(c).wait(budget=5), InvalidRequestError, "budget"),  # type: ignore[arg-type]
    (
        "batch-model",
        lambda c, f: _batch(c, [f["good"]], output_dir=f["folder"] / "o", model="nope"),
        InvalidRequestError,
        "nope",
    ),
    (
        "batch-output-dir-none",
        lambda c, f: _batch(c, [f["good"]], output_dir=None),
        InvalidRequestError,
        "output_dir",
    ),
    (
        "batch-output-dir-under-file",
        lambda c, f: _batch(c, [f["good"]], output_dir=f["blocked"]),
        InvalidRequestError,
        "output_dir",
    ),
    (
        "batch-collision",
        lambda c, f: _batch(
            c, [f["good"], f["folder"] / "good.flac"], output_dir=f["folder"] / "o"
        ),
        InvalidRequestError,
        "good.*",
    ),
    (
        "batch-source-is-output-folder",
        lambda c, f: _batch(c, f["folder"], output_dir=f["folder"]),
        InvalidRequestError,
        "source folder",
    ),
    # keys, webhooks, account
    (
        "key-create-label",
        lambda c, f: c.api_keys.create(label="", scopes=["projects:write"]),
        InvalidRequestError,
        "label",
    ),
    (
        "key-create-scopes-int",
        lambda c, f: c.api_keys.create(label="a", scopes=5),
        InvalidRequestError,
        "scopes",
    ),  # type: ignore[arg-type]
    (
        "key-create-scopes-empty",
        lambda c, f: c.api_keys.create(label="a", scopes=[]),
        InvalidRequestError,
        "scopes",
    ),
    (
        "key-create-bounds",
        lambda c, f: c.api_keys.create(label="a", scopes=["x"], resource_bounds={"n": NAN}),
        InvalidRequestError,
        "resource_bounds",
    ),
    ("key-rotate-blank", lambda c, f: c.api_keys.rotate(""), InvalidRequestError, "key_id"),
    ("key-revoke-none", lambda c, f: c.api_keys.revoke(None), InvalidRequestError, "key_id"),  # type: ignore[arg-type]
    (
        "webhook-test-type",
        lambda c, f: c.webhooks.send_test_event("generation.exploded"),
        InvalidRequestError,
        "event type",
    ),
    (
        "webhook-test-mode",
        lambda c, f: c.webhooks.send_test_event("generation.completed", mode="prod"),
        InvalidRequestError,
        "mode",
    ),
    (
        "webhook-configure-url",
        lambda c, f: c.webhooks.configure(url="ftp://x"),
        InvalidRequestError,
        "url",
    ),
    (
        "webhook-configure-url-crlf",
        lambda c, f: c.webhooks.configure(url="https://x/\r\nHost: y"),
        InvalidRequestError,
        "url",
    ),
    (
        "webhook-configure-types-int",
        lambda c, f: c.webhooks.configure(url="https://x", event_types=5),
        InvalidRequestError,
        "event_types",
    ),  # type: ignore[arg-type]
    (
        "account-policy",
        lambda c, f: c.account.update_settings(billing_policy="free"),
        InvalidRequestError,
        "billing_policy",
    ),
    (
        "account-reason-int",
        lambda c, f: c.account.update_settings(billing_policy="customerStripe", reason=5),
        InvalidRequestError,
        "reason",
    ),  # type: ignore[arg-type]
    (
        "usage-key-blank",
        lambda c, f: c.usage.summary(api_key_id=" "),
        InvalidRequestError,
        "api_key_id",
    ),
    (
        "options-key-nul",
        lambda c, f: c.projects.list(options=RequestOptions(api_key=SECRET + "\x00")),
        ConfigurationError,
        "API key",
    ),
    (
        "options-header-crlf",
        lambda c, f: c.projects.list(options=RequestOptions(headers={"X": "a\r\nb"})),
        ConfigurationError,
        "X",
    ),
]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("call", "expected", "mentions"),
    [pytest.param(call, expected, mentions, id=name) for name, call, expected, mentions in CALLS],
)
async def test_a_bad_call_is_refused_before_any_request(
    env: EmulatedDiffio,
    files: dict[str, Path],
    call: Call,
    expected: type[BaseException],
    mentions: str,
) -> None:
    with pytest.raises(expected) as info:
        await call(env.client, files)
    _check_message(info.value)
    assert mentions.lower() in str(info.value).lower()
    assert list(env.emulator.requests) == [], "a bad argument must not reach the server"


def test_the_catalogue_has_at_least_a_hundred_cases() -> None:
    assert len(CONSTRUCTORS) + len(CALLS) + len(WEBHOOKS) + len(COMMANDS) >= 100


# --- webhook verification -----------------------------------------------------------------

NOW = 1_800_000_000
BODY = b'{"type":"generation.completed","generationId":"g","status":"complete"}'


def _headers(
    body: bytes = BODY, *, timestamp: int = NOW, signature: str | None = None
) -> dict[str, str]:
    return {
        "svix-id": "msg_1",
        "svix-timestamp": str(timestamp),
        "svix-signature": signature
        or sign(WEBHOOK_SECRET, msg_id="msg_1", timestamp=timestamp, payload=body),
    }


WEBHOOKS: list[tuple[str, Callable[[], object], type[BaseException], str]] = [
    (
        "no-headers",
        lambda: verify(BODY, {}, WEBHOOK_SECRET, now=NOW),
        WebhookVerificationError,
        "missing headers",
    ),
    (
        "tampered-body",
        lambda: verify(BODY + b" ", _headers(), WEBHOOK_SECRET, now=NOW),
        WebhookVerificationError,
        "no matching signature",
    ),
    (
        "wrong-secret",
        lambda: verify(
            BODY, _headers(), "whsec_" + base64.b64encode(b"other-key-0123456789").decode(), now=NOW
        ),
        WebhookVerificationError,
        "no matching signature",
    ),
    (
        "stale",
        lambda: verify(BODY, _headers(timestamp=NOW - 3600), WEBHOOK_SECRET, now=NOW),
        WebhookVerificationError,
        "too old",
    ),
    (
        "future",
        lambda: verify(BODY, _headers(timestamp=NOW + 3600), WEBHOOK_SECRET, now=NOW),
        WebhookVerificationError,
        "too new",
    ),
    (
        "timestamp-text",
        lambda: verify(BODY, {**_headers(), "svix-timestamp": "soon"}, WEBHOOK_SECRET, now=NOW),
        WebhookVerificationError,
        "timestamp",
    ),
    (
        "timestamp-nan",
        lambda: verify(BODY, {**_headers(), "svix-timestamp": "nan"}, WEBHOOK_SECRET, now=NOW),
        WebhookVerificationError,
        "timestamp",
    ),
    (
        "v1a-only",
        lambda: verify(
            BODY, _headers(signature="v1a,bm90LXN1cHBvcnRlZA=="), WEBHOOK_SECRET, now=NOW
        ),
        WebhookVerificationError,
        "v1a",
    ),
    (
        "garbage-signature",
        lambda: verify(BODY, _headers(signature="v1,@@@"), WEBHOOK_SECRET, now=NOW),
        WebhookVerificationError,
        "no matching signature",
    ),
    (
        "secret-not-whsec",
        lambda: verify(BODY, _headers(), "SENTINEL-plain", now=NOW),
        WebhookVerificationError,
        "secret",
    ),
    (
        "secret-bad-base64",
        lambda: verify(BODY, _headers(), "whsec_!!!SENTINEL", now=NOW),
        WebhookVerificationError,
        "secret",
    ),
    ("secrets-empty", lambda: verify(BODY, _headers(), [], now=NOW), DiffioError, "secret"),
    (
        "tolerance-negative",
        lambda: verify(BODY, _headers(), WEBHOOK_SECRET, tolerance=-1, now=NOW),
        ConfigurationError,
        "tolerance",
    ),
    (
        "tolerance-nan",
        lambda: verify(BODY, _headers(), WEBHOOK_SECRET, tolerance=NAN, now=NOW),
        ConfigurationError,
        "tolerance",
    ),
    (
        "now-nan",
        lambda: verify(BODY, _headers(), WEBHOOK_SECRET, now=NAN),
        ConfigurationError,
        "now",
    ),
]


@pytest.mark.parametrize(
    ("call", "expected", "mentions"),
    [
        pytest.param(call, expected, mentions, id=name)
        for name, call, expected, mentions in WEBHOOKS
    ],
)
def test_a_bad_webhook_delivery_is_refused(
    call: Callable[[], object], expected: type[BaseException], mentions: str
) -> None:
    with pytest.raises(expected) as info:
        call()
    assert isinstance(info.value, DiffioError)
    _check_message(info.value)
    assert mentions.lower() in str(info.value).lower()


def test_a_good_delivery_passes_the_same_checks() -> None:
    """The control case: the catalogue's deliveries fail for their fault, not by accident."""
    verify(BODY, _headers(), WEBHOOK_SECRET, now=NOW)
    verify(
        BODY, _headers(), [WEBHOOK_SECRET, "whsec_" + base64.b64encode(b"new").decode()], now=NOW
    )
    assert time.time() > 0


# --- the command line -----------------------------------------------------------------------

COMMANDS: list[tuple[str, list[str], dict[str, str]]] = [
    ("timeout-nan", ["restore", "{good}", "-o", "{out}", "--emulator", "--timeout", "nan"], {}),
    ("timeout-negative", ["restore", "{good}", "-o", "{out}", "--emulator", "--timeout", "-1"], {}),
    ("timeout-text", ["restore", "{good}", "-o", "{out}", "--emulator", "--timeout", "soon"], {}),
    (
        "concurrency-zero",
        ["restore", "{good}", "-o", "{out}", "--emulator", "--concurrency", "0"],
        {},
    ),
    (
        "concurrency-huge",
        ["restore", "{good}", "-o", "{out}", "--emulator", "--concurrency", "200000"],
        {},
    ),
    ("missing-file", ["restore", "{missing}", "-o", "{out}", "--emulator"], {}),
    (
        "unknown-model",
        ["restore", "{good}", "-o", "{out}", "--emulator", "--model", "diffio-99"],
        {},
    ),
    ("output-under-a-file", ["restore", "{good}", "-o", "{blocked}", "--emulator"], {}),
    (
        "ledger-is-a-folder",
        ["restore", "{good}", "-o", "{out}", "--emulator", "--ledger", "{folder}"],
        {},
    ),
    ("key-with-crlf", ["projects", "--base-url", URL], {"DIFFIO_API_KEY": SECRET + "\r\nX: 1"}),
    ("key-with-nul-flag", ["projects", "--base-url", URL, "--api-key", SECRET + "\x01"], {}),
    ("key-non-ascii", ["projects", "--base-url", URL], {"DIFFIO_API_KEY": SECRET + "é"}),
    ("base-url-bad", ["projects", "--base-url", "ftp://x"], {"DIFFIO_API_KEY": SECRET}),
    ("demo-no-files", ["demo", "--files", "0"], {}),
    ("emulator-port", ["emulator", "--port", "99999"], {}),
    ("no-arguments", [], {}),
    ("unknown-command", ["restorez"], {}),
]


@pytest.mark.parametrize(
    ("argv", "environment"),
    [pytest.param(argv, environment, id=name) for name, argv, environment in COMMANDS],
)
def test_a_bad_command_line_gets_one_line_and_exit_status_2(
    argv: list[str],
    environment: dict[str, str],
    files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DIFFIO_API_KEY", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    places = {name: str(path) for name, path in files.items()} | {"out": str(tmp_path / "out")}
    try:
        code: object = main([part.format(**places) for part in argv])
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    captured = capsys.readouterr()
    assert code == 2, captured
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert "Traceback" not in captured.err
    assert len(lines) <= 2 and lines, captured.err  # argparse adds its usage line
    assert MARK not in captured.out + captured.err
