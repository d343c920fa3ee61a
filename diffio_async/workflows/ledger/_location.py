"""Where a ledger lives, from what the caller wrote: a path or ``sqlite:///path`` (SQLite), or a
``postgresql://`` URL (PostgreSQL), and how to show a URL without its password."""

from __future__ import annotations

import os
import re
from typing import Final
from urllib.parse import unquote

from ...errors import LedgerError

__all__ = [
    "POSTGRES_SCHEMES",
    "is_postgres_url",
    "redact_url",
    "scrub",
    "secrets_of",
    "sqlite_path",
]

POSTGRES_SCHEMES: Final = ("postgresql://", "postgres://")
"""The URL prefixes that select the PostgreSQL store (libpq's two spellings)."""

_SQLITE_SCHEME: Final = "sqlite://"
_HIDDEN: Final = "***"


def is_postgres_url(where: str | os.PathLike[str]) -> bool:
    """Whether ``where`` names a PostgreSQL ledger (a ``postgresql://`` URL)."""
    return isinstance(where, str) and where.lower().startswith(POSTGRES_SCHEMES)


def sqlite_path(where: str | os.PathLike[str]) -> str | os.PathLike[str]:
    """The SQLite file of ``where``: a path as it is, or the path of ``sqlite:///path``
    (``sqlite:////abs/path`` or ``sqlite:///relative/path``, as SQLAlchemy writes them)."""
    if not isinstance(where, str) or not where.lower().startswith(_SQLITE_SCHEME):
        return where
    rest = where[len(_SQLITE_SCHEME) :]
    if not rest.startswith("/") or rest == "/":
        raise LedgerError(
            f"cannot use the ledger {where!r}: write sqlite:///relative/file.sqlite or "
            "sqlite:////absolute/file.sqlite (three slashes, then the path)"
        )
    return unquote(rest[1:])


# The password of the user info: libpq ends the user info at the first "@" or "/", but a
# password written with an unencoded "@" or "/" is hidden whole: up to the last "@" before
# the query. A password may also be a query parameter (sslpassword: the client key's).
_USERINFO_PASSWORD: Final = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^:@/?]*:)([^?]*)(?=@)")
_QUERY_PASSWORD: Final = re.compile(r"([?&](?:ssl)?password=)([^&]*)")


def secrets_of(url: str) -> list[str]:
    """The passwords written in ``url`` (user info and ``password=`` query), as written and
    decoded, and the pieces between an unencoded "@" or "/" of the user info's (libpq reads
    them as a password, host or port: its messages quote them), longest first, so that a
    message can be scrubbed of every spelling."""
    found = {match.group(2) for match in _USERINFO_PASSWORD.finditer(url)}
    found |= {piece for secret in found for piece in re.split(r"[@/]", secret)}
    found |= {match.group(2) for match in _QUERY_PASSWORD.finditer(url)}
    found |= {unquote(secret) for secret in found}
    return sorted((secret for secret in found if secret), key=len, reverse=True)


def redact_url(url: str) -> str:
    """``url`` with its passwords (if any) shown as ``***``."""
    shown = _USERINFO_PASSWORD.sub(lambda m: m.group(1) + _HIDDEN, url)
    return _QUERY_PASSWORD.sub(lambda m: m.group(1) + _HIDDEN, shown)


def scrub(text: str, url: str) -> str:
    """``text`` (a driver's message about ``url``) with every spelling of the password hidden."""
    for secret in secrets_of(url):
        text = text.replace(secret, _HIDDEN)
    return text
