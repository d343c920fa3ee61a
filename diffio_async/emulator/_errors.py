"""Error answers in the two wire shapes: API (``{"error": msg, "code"?}``) and edge."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx2
from starlette.responses import JSONResponse

__all__ = ["ApiError", "ConnectionDropped", "EdgeError", "json_response"]


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """A compact JSON answer with ``Content-Type: application/json``."""
    return JSONResponse(data, status_code=status, headers=dict(headers or {}))


class ApiError(Exception):
    """An error answer of the ``/v1`` API: ``{"error": message, "code"?: code, **extra}``."""

    def __init__(
        self,
        status_code: int,
        message: str,
        code: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        """Describe the answer; ``extra`` fields are merged into the JSON body."""
        super().__init__(message)
        self.status = status_code
        self.message = message
        self.code = code
        self.headers = dict(headers or {})
        self.extra = extra

    def body(self) -> dict[str, Any]:
        """The JSON body."""
        body: dict[str, Any] = {"error": self.message}
        if self.code is not None:
            body["code"] = self.code
        body.update(self.extra)
        return body

    def response(self) -> JSONResponse:
        """The Starlette response."""
        return json_response(self.body(), self.status, self.headers)


class EdgeError(Exception):
    """An error answer of the era B edge host: ``{"error": {"code": ..., "message": ...}}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        """Describe the answer."""
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def response(self) -> JSONResponse:
        """The Starlette response."""
        return json_response({"error": {"code": self.code, "message": self.message}}, self.status)


class ConnectionDropped(httpx2.RemoteProtocolError):
    """Raised by the emulator app when a fault drops or truncates a response in-process.

    Over a real socket (uvicorn) the emulator closes the TCP connection instead and the client
    sees whatever its HTTP stack reports for that (httpx2: ``RemoteProtocolError`` or
    ``ReadError``). With no socket to close (``httpx2.ASGITransport``) this exception is raised
    out of the app; it subclasses ``httpx2.RemoteProtocolError`` so client code that handles
    dropped connections handles it the same way.
    """
