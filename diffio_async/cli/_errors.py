"""Bad input and failures as one line: the usage error, and scrubbing API keys out of text."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found, unused-ignore]

__all__ = ["UsageError", "fail", "hide", "keys_in", "lone", "one_line", "os_message", "scrub"]


class UsageError(Exception):
    """Bad input: printed as one line, exit status 2."""


def fail(message: str) -> int:
    """Print ``diffio-async: error: <message>`` as one line on stderr; return exit status 2."""
    print(f"diffio-async: error: {one_line(message)}", file=sys.stderr)
    return 2


def one_line(text: str) -> str:
    """``text`` with every run of white space (newlines included) made one space."""
    return " ".join(text.split())


def lone(group: BaseExceptionGroup[BaseException]) -> BaseException | None:
    """The one exception inside nested single-member groups (task groups wrap what they raise)."""
    inner: BaseException = group
    while isinstance(inner, BaseExceptionGroup):
        if len(inner.exceptions) != 1:
            return None
        inner = inner.exceptions[0]
    return inner


def os_message(exc: OSError) -> str:
    """An ``OSError`` about one of the user's paths as ``<path>: <reason>``."""
    reason = exc.strerror or type(exc).__name__
    if exc.filename is None:
        return f"{reason}: {exc}" if exc.strerror is None else reason
    where = os.fsdecode(exc.filename)
    if exc.filename2 is not None:
        where += f" -> {os.fsdecode(exc.filename2)}"
    return f"{where}: {reason}"


def keys_in(argv: Sequence[str]) -> list[str]:
    """Every API key the user may have given: ``$DIFFIO_API_KEY`` and the value of
    ``--api-key`` (or an abbreviation argparse accepts, ``--api-k``; ``--api-key=...``)."""
    keys = [os.environ.get("DIFFIO_API_KEY") or ""]
    for index, option in enumerate(argv):
        value = argv[index + 1] if index + 1 < len(argv) else ""
        name, equals, inline = option.partition("=")
        if len(name) >= len("--a") and "--api-key".startswith(name):
            keys.append(inline if equals else value)
    return keys


def scrub(text: str, keys: Sequence[str]) -> str:
    """``text`` without any of ``keys``, in case something echoed one (it should not)."""
    for key in keys:
        for form in {key, key.strip(), repr(key)[1:-1], repr(key.strip())[1:-1]}:
            if len(form) >= 4:
                text = text.replace(form, "<API key>")
    return text


def hide(text: str, secret: str | None) -> str:
    """``text`` with the one key in use replaced (when there is one)."""
    return text.replace(secret, "<API key>") if secret else text
