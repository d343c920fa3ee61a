"""The exceptions raised by diffio_async.

Every exception the SDK raises on purpose derives from :class:`DiffioError`::

    DiffioError
    ├── ClientClosedError                 the client was used after aclose()
    ├── ConfigurationError                no API key, bad base URL, bad option
    │   └── EventLoopMismatchError        an AsyncDiffio used on a second event loop
    ├── InvalidRequestError               a call's arguments were rejected before sending
    │   └── OutputCollisionError          two sources of a batch would write one output file
    ├── APIError                          something went wrong talking to Diffio
    │   ├── APIConnectionError            no usable HTTP response (connect, reset, drop)
    │   │   └── APITimeoutError           a connect/read/write/pool timeout or the call deadline
    │   ├── APIResponseValidationError    a 2xx answer that is not the documented shape
    │   └── APIStatusError                a non-2xx answer (.status_code, .code, .body)
    │       ├── RedirectError                      3xx: the SDK never follows an API redirect
    │       ├── BadRequestError                    400
    │       ├── AuthenticationError                401
    │       ├── PaymentRequiredError               402
    │       │   ├── PaymentFailedError             402 code=paymentFailed (billing hold)
    │       │   └── SpendLimitExceededError        402 code=spendLimitExceeded
    │       ├── PermissionDeniedError              403
    │       ├── NotFoundError                      404
    │       │   └── TranscriptUnavailableError     404 code=TRANSCRIPT_UNAVAILABLE
    │       ├── ConflictError                      409
    │       │   ├── TranscriptPendingError         409 code=TRANSCRIPT_PENDING
    │       │   ├── UploadMissingError             409 code=UPLOAD_MISSING
    │       │   └── IdempotencyConflictError       409 code=idempotencyConflict
    │       ├── ModelRetiredError                  410 code=model_retired
    │       ├── PayloadTooLargeError               413
    │       ├── RateLimitError                     429 (.retry_after)
    │       └── InternalServerError                5xx
    ├── UploadError                       a media upload failed (.project_id)
    ├── DownloadError                     a media download failed or came back short
    ├── GenerationFailedError             the generation ended in failed/error (.last_progress)
    ├── RestoreError                      client.restore() failed (.stage, ids, __cause__)
    ├── BatchAbortedError                 restore_many() stopped: every later file would fail
    ├── WaitTimeoutError                  wait() ran out of time (.generation_id, .last_progress)
    ├── WebhookVerificationError          a webhook delivery failed verification (also ValueError)
    └── LedgerError                       a bulk ledger could not be used
        ├── LedgerFormatError             not a ledger, damaged, or a newer schema
        ├── LedgerLockedError             another process holds the ledger, or it is read-only
        └── InvalidTransitionError        a ledger step that would break its state machine

Status errors keep the migration-friendly attributes of the official SDK (``message``,
``status_code``, ``body``) and add ``code``, ``request_id`` and ``retry_after``. Messages never
contain the API key, an upload token or a signed URL's query, and are capped at about 1 KiB
(:data:`MAX_MESSAGE_CHARS`); the whole error body stays on ``.body``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from .types import GenerationProgress

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BatchAbortedError",
    "ClientClosedError",
    "ConfigurationError",
    "ConflictError",
    "DiffioError",
    "DownloadError",
    "EventLoopMismatchError",
    "GenerationFailedError",
    "IdempotencyConflictError",
    "InvalidRequestError",
    "InvalidTransitionError",
    "InternalServerError",
    "LedgerError",
    "LedgerFormatError",
    "LedgerLockedError",
    "MAX_MESSAGE_CHARS",
    "ModelRetiredError",
    "NotFoundError",
    "OutputCollisionError",
    "PayloadTooLargeError",
    "PaymentFailedError",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "RateLimitError",
    "RedirectError",
    "RestoreError",
    "SpendLimitExceededError",
    "TranscriptPendingError",
    "TranscriptUnavailableError",
    "UploadError",
    "UploadMissingError",
    "WaitTimeoutError",
    "WebhookVerificationError",
    "status_error_from_response",
]


class DiffioError(Exception):
    """Base class of every exception diffio_async raises on purpose.

    ``message`` is the text. The keyword arguments of an error are its *details*: each class
    declares them as annotated class attributes (with a default when optional), and this one
    constructor sets them, so no error writes its own ``__init__``.
    """

    message: str

    def __init__(self, message: str = "", **details: Any) -> None:
        super().__init__(message)
        self.message = message
        declared = _details_of(type(self))
        for name, value in details.items():
            if name not in declared:
                raise TypeError(f"{type(self).__name__} has no detail {name!r}")
            setattr(self, name, value)
        missing = [name for name in declared if not hasattr(self, name)]
        if missing:
            raise TypeError(f"{type(self).__name__} needs {', '.join(missing)}")


def _details_of(cls: type[DiffioError]) -> tuple[str, ...]:
    """The details an error class declares (its annotated attributes, bases included)."""
    names: list[str] = []
    for klass in reversed(cls.__mro__):
        for name in vars(klass).get("__annotations__", {}):
            if name != "message" and not name.startswith("_") and name not in names:
                names.append(name)
    return tuple(names)


class ClientClosedError(DiffioError, RuntimeError):
    """The client (or the HTTP client it uses) was used after it was closed."""


class ConfigurationError(DiffioError, ValueError):
    """The client or a call was configured wrongly (no API key, bad URL, bad option)."""


class EventLoopMismatchError(ConfigurationError):
    """An :class:`~diffio_async.AsyncDiffio` was used on an event loop other than the one it
    first sent a request on (its pooled connections belong to that loop).

    Create one client per event loop (inside the function given to ``anyio.run`` or
    ``asyncio.run``), or use the blocking :class:`~diffio_async.Diffio` from synchronous code.
    """


class InvalidRequestError(DiffioError, ValueError):
    """A call's arguments were rejected on the client, before any request was sent.

    Wrong types and wrong values alike raise it (or :class:`ConfigurationError` for a
    constructor); the message names the parameter and never echoes a secret.
    """


class OutputCollisionError(InvalidRequestError):
    """Two or more sources of a batch would be written to one output file.

    ``clashes`` maps each contested output path to the sources that want it. Raised before
    anything is created; pass ``on_collision="rename"`` (see ``restore_many``) to give each
    source of a contested output a name of its own instead.
    """

    clashes: Mapping[str, tuple[str, ...]]


class APIError(DiffioError):
    """Something went wrong while talking to the Diffio API or its media hosts.

    ``endpoint`` names the call (``"create_project"``, ``"edge:parts"``, ``"media"``, ...),
    ``attempts`` counts the HTTP attempts that were made, retries included, and ``api_call``
    says whether the request was an API call made with the API key (``False`` for a signed
    upload URL, the edge upload host or a media URL, whose 403 says nothing about the key).
    """

    endpoint: str | None = None
    attempts: int = 1
    api_call: bool = True


class APIConnectionError(APIError):
    """No usable HTTP response: the connection failed, was reset, or dropped mid-answer."""


class APITimeoutError(APIConnectionError, TimeoutError):
    """A connect/read/write/pool timeout, or the call's overall deadline, ran out."""


class APIResponseValidationError(APIError):
    """A 2xx answer whose body is not JSON or not the documented shape."""

    body: object = None


class APIStatusError(APIError):
    """A non-2xx answer from the API, the edge upload host or a media URL.

    Attributes: ``status_code``, ``code`` (the machine-readable code from either error body
    shape, or ``None``), ``body`` (parsed JSON, or the text when the body is not JSON),
    ``request_id`` (from ``x-request-id`` when present) and ``retry_after`` (seconds, from
    ``Retry-After``/``retry-after-ms`` when present).
    """

    status_code: int
    code: str | None = None
    body: object = None
    request_id: str | None = None
    retry_after: float | None = None

    def __str__(self) -> str:
        parts = [f"{self.message} (status {self.status_code}"]
        if self.code:
            parts.append(f", code {cap_message(self.code, 100)}")
        if self.endpoint:
            parts.append(f", {self.endpoint}")
        if self.request_id:
            parts.append(f", request id {self.request_id}")
        parts.append(")")
        return "".join(parts)


class RedirectError(APIStatusError):
    """3xx: the API answered a call with a redirect, which the SDK never follows.

    Following it could carry the API key to another host (httpx2 strips only ``Authorization``
    on a cross-origin redirect, not ``x-api-key``), so every request is sent with redirects off,
    whatever ``http_client`` is used. The message names the redirect's origin (scheme and host),
    never its path or query.
    """


class BadRequestError(APIStatusError):
    """400: the request body was rejected (missing or mistyped field, bad enum value)."""


class AuthenticationError(APIStatusError):
    """401: the API key (or edge upload token) is missing or unknown."""


class PaymentRequiredError(APIStatusError):
    """402: the account cannot be billed; every later paid call will fail too."""


class PaymentFailedError(PaymentRequiredError):
    """402 ``paymentFailed``: a billing hold blocks API use until billing is fixed."""


class SpendLimitExceededError(PaymentRequiredError):
    """402 ``spendLimitExceeded``: the key's spend limit would be exceeded."""


class PermissionDeniedError(APIStatusError):
    """403: the key is inactive, lacks a permission or scope, or is not an admin key."""


class NotFoundError(APIStatusError):
    """404: the project, generation, key or output does not exist (or is not yours)."""


class TranscriptUnavailableError(NotFoundError):
    """404 ``TRANSCRIPT_UNAVAILABLE``: this generation will never have a transcript."""


class ConflictError(APIStatusError):
    """409: the request conflicts with the current state."""


class TranscriptPendingError(ConflictError):
    """409 ``TRANSCRIPT_PENDING``: the transcript is not ready yet; ask again later."""


class UploadMissingError(ConflictError):
    """409 ``UPLOAD_MISSING``: the project's media has not been uploaded (era B)."""


class IdempotencyConflictError(ConflictError):
    """409 ``idempotencyConflict``: the idempotency key was used for a different request."""


class ModelRetiredError(APIStatusError):
    """410 ``model_retired``: the model's endpoint was retired.

    ``retired_model`` names it and ``supported_models`` lists what the server offers instead.
    """

    @property
    def retired_model(self) -> str | None:
        """The retired model key the server named, if any."""
        value = _field(self.body, "retiredModel")
        return value if isinstance(value, str) else None

    @property
    def supported_models(self) -> tuple[str, ...]:
        """The model keys the server says to use instead."""
        value = _field(self.body, "supportedModels")
        if isinstance(value, list):
            return tuple(v for v in value if isinstance(v, str))
        return ()


class PayloadTooLargeError(APIStatusError):
    """413: the declared or sent size is above the server's limit."""


class RateLimitError(APIStatusError):
    """429: too many requests.

    Raised after the retries are spent, or at once when the server's ``Retry-After`` hint is
    longer than the client's cap (``retry_after`` then says when to come back).
    """


class InternalServerError(APIStatusError):
    """5xx: the server (or a proxy in front of it) failed."""


class UploadError(DiffioError):
    """Uploading a project's media failed; the project (``project_id``) may already exist."""

    project_id: str | None = None


class DownloadError(DiffioError):
    """Downloading a result failed or came back with the wrong size.

    ``existing`` is set when the download refused to replace a file that was already at the
    name the served result takes (a name the caller did not give): that file's path.
    """

    generation_id: str | None = None
    existing: str | None = None


class GenerationFailedError(DiffioError):
    """The generation ended in ``failed`` (or ``error``); ``last_progress`` holds its last
    state (its stages, ``error`` and ``error_details`` say why)."""

    generation_id: str
    project_id: str | None = None
    last_progress: GenerationProgress | None = None


class WaitTimeoutError(DiffioError, TimeoutError):
    """Waiting for a generation ran out of time; the generation itself goes on on the server.

    ``generation_id`` and ``project_id`` let the caller wait again later; ``last_progress`` is
    the last progress snapshot seen (or ``None``).
    """

    generation_id: str
    project_id: str | None = None
    last_progress: GenerationProgress | None = None


class WebhookVerificationError(DiffioError, ValueError):
    """A webhook delivery failed verification, or its signing secret is unusable.

    Reasons: missing headers, a malformed or stale timestamp, no matching signature, a body that
    is not a JSON object, or a secret that is not ``whsec_`` + base64.

    ``message`` gives the reason; it never contains the signing secret.
    """


class RestoreError(DiffioError):
    """``client.restore()`` failed at ``stage`` (``upload``, ``generation``, ``wait`` or
    ``download``); ``project_id`` and ``generation_id`` say what was already created (and may
    be billed), and ``__cause__`` is the original error.
    """

    stage: str
    project_id: str | None = None
    generation_id: str | None = None


class BatchAbortedError(DiffioError):
    """``restore_many()`` stopped early because an error would have failed every later item
    too. ``cause`` is that error (401, 402 or an API 403); the items not yet finished are left
    as they were (resumable with a ledger).
    """

    cause: BaseException


class LedgerError(DiffioError):
    """A ledger operation failed: closed ledger, unknown source, unusable file."""


class LedgerFormatError(LedgerError):
    """The file is not a diffio_async ledger, is damaged, or has a newer schema."""


class LedgerLockedError(LedgerError):
    """The ledger cannot be written: another process holds it, or the file is read-only.

    A ledger belongs to one running batch at a time; raised when the batch starts, before any
    file is uploaded.
    """


class InvalidTransitionError(LedgerError, ValueError):
    """A ledger step would move an entry backwards or break an invariant."""


MAX_MESSAGE_CHARS = 1024
"""The longest message an error keeps from a server's text (the body stays on ``.body``)."""


def cap_message(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` shortened to about ``limit`` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def _field(body: object, name: str) -> object:
    return body.get(name) if isinstance(body, Mapping) else None


_BY_CODE: dict[str, type[APIStatusError]] = {
    "paymentFailed": PaymentFailedError,
    "spendLimitExceeded": SpendLimitExceededError,
    "TRANSCRIPT_PENDING": TranscriptPendingError,
    "TRANSCRIPT_UNAVAILABLE": TranscriptUnavailableError,
    "UPLOAD_MISSING": UploadMissingError,
    "idempotencyConflict": IdempotencyConflictError,
    "model_retired": ModelRetiredError,
}

_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: PaymentRequiredError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    410: ModelRetiredError,
    413: PayloadTooLargeError,
    429: RateLimitError,
}


def parse_error_body(content: bytes) -> tuple[object, str | None, str | None]:
    """Parse an error body of either shape; return ``(body, message, code)``.

    API errors look like ``{"error": "<message>", "code": "<code>"}``; edge errors look like
    ``{"error": {"code": "...", "message": "..."}}``. Anything else (an HTML page from a proxy,
    an empty body) is kept as text and gives no message or code.
    """
    text = content.decode("utf-8", errors="replace")
    try:
        body: object = json.loads(text) if text.strip() else None
    except ValueError:
        return text, None, None
    if not isinstance(body, Mapping):
        return body, None, None
    error = body.get("error")
    code = body.get("code")
    message: str | None = None
    if isinstance(error, str):
        message = error
    elif isinstance(error, Mapping):
        inner_message = error.get("message")
        inner_code = error.get("code")
        message = inner_message if isinstance(inner_message, str) else None
        if code is None and isinstance(inner_code, str):
            code = inner_code
        if message is None and isinstance(inner_code, str):
            message = inner_code
    return body, message, code if isinstance(code, str) else None


def status_error_from_response(
    *,
    status_code: int,
    content: bytes,
    request_id: str | None = None,
    retry_after: float | None = None,
    endpoint: str | None = None,
    attempts: int = 1,
    api_call: bool = True,
) -> APIStatusError:
    """Build the most specific :class:`APIStatusError` for a non-2xx answer."""
    body, message, code = parse_error_body(content)
    if message is not None:
        message = cap_message(message)
    else:
        snippet = body.strip()[:120] if isinstance(body, str) else ""
        message = f"Request failed with status {status_code}"
        if snippet:
            message += f": {' '.join(snippet.split())}"
    cls = _BY_CODE.get(code or "")
    if cls is None and 300 <= status_code < 400:
        cls = RedirectError
    if cls is None:
        cls = InternalServerError if status_code >= 500 else _BY_STATUS.get(status_code)
    if cls is None:
        cls = APIStatusError
    return cls(
        message,
        status_code=status_code,
        code=code,
        body=body,
        request_id=request_id,
        retry_after=retry_after,
        endpoint=endpoint,
        attempts=attempts,
        api_call=api_call,
    )
