"""The SDK's logger, ``diffio_async``: every record it emits is redacted, and
``DIFFIO_LOG=debug`` (or ``info``, ``warning``) prints them on stderr.

:func:`setup_from_environment` runs once, when :mod:`diffio_async` is first imported. It puts
a redacting filter on the logger (whoever handles the records, your handlers included, gets
them without URL queries or era-B ``/m/<token>`` segments: no signature or token of a signed
URL), and, when ``$DIFFIO_LOG`` names a level, a stderr handler at that level (also redacting,
for the emulator's child loggers). Records still propagate to your own handlers; without
``$DIFFIO_LOG`` nothing is added but the filter, and the logger stays at its default level. An
unknown value is ignored.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

from ._http.transport import _redact
from .types._reprs import _media_tokens_masked

__all__ = [
    "ENVIRONMENT_VARIABLE",
    "LEVELS",
    "LOGGER_NAME",
    "print_on_stderr",
    "setup_from_environment",
]

LOGGER_NAME = "diffio_async"
"""The logger every module of the SDK logs to."""

ENVIRONMENT_VARIABLE = "DIFFIO_LOG"
"""Names the level at which the SDK's records are printed on stderr."""

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
"""The values ``$DIFFIO_LOG`` accepts (any case)."""

_NO_CAP = sys.maxsize
"""A log record is redacted, never shortened (unlike an error message)."""

_DONE = "diffio_async_redacted"
"""The attribute that marks a record already redacted."""

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _RedactingFilter(logging.Filter):
    """Formats a record's message and traceback through ``_redacted`` (URL queries and media
    tokens out), once, so no handler formats the raw text."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _DONE, False):  # the logger's filter, then the handler's
            return True
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a broken call: the handler reports it as usual
            return True
        record.msg, record.args = _redacted(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = _redacted(logging.Formatter().formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = _redacted(record.stack_info)
        setattr(record, _DONE, True)
        return True


def _redacted(text: str) -> str:
    """``_redact`` without a cap (text an error message already redacted stays as it is), and
    every era-B ``/m/<media token>`` path segment masked."""
    return _media_tokens_masked(_redact(text, limit=_NO_CAP))


_FILTER = _RedactingFilter()


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler ``$DIFFIO_LOG`` adds (one per process). It writes to the current
    ``sys.stderr``, so a live display that redirects stderr prints the lines above itself."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter(_FORMAT))
        self.addFilter(_FILTER)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        """Ignored: the stream is always the current ``sys.stderr``."""


def setup_from_environment() -> None:
    """Redact the SDK's records, and print them on stderr at the level ``$DIFFIO_LOG`` names.
    Safe to call again: nothing is added twice."""
    logger = logging.getLogger(LOGGER_NAME)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    level = LEVELS.get(os.environ.get(ENVIRONMENT_VARIABLE, "").strip().lower())
    if level is not None:
        print_on_stderr(level)


def print_on_stderr(level: int) -> None:
    """Print the SDK's records from ``level`` up on stderr (the command's ``-v``); a second
    call adds no handler and only ever lowers the level."""
    logger = logging.getLogger(LOGGER_NAME)
    if not any(isinstance(handler, _StderrHandler) for handler in logger.handlers):
        logger.addHandler(_StderrHandler())
    if logger.level == logging.NOTSET or level < logger.level:
        logger.setLevel(level)
