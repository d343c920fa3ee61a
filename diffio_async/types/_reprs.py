"""Secrets never appear in a model's ``repr``; the ``repr=`` helpers of their fields.

:attr:`~diffio_async.types.ApiKey.key` and :attr:`~diffio_async.types.UploadSession.upload_token`
are shown as ``'***'``, and URLs (signed upload and download URLs, portal and webhook URLs) are
shown without their query, fragment or user info and with an era-B media token masked:
``'https://edge.example/m/***/generations/g/out.mp3?…'``. ``to_dict()`` hides the same fields
the same way (:data:`_SAFE_FORMS`) unless asked to include secrets. The ``extra`` fields (what
the server sent that the SDK does not know) show only their keys in a repr; ``to_dict()`` shows
their values, but masks those under a key naming a credential and strips URLs the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Final

__all__: list[str] = []

_MASK: Final = "***"


def _mask(value: object) -> str:
    return "None" if value is None else repr(_MASK)


def _masked(value: object) -> str:
    return _MASK


_AUTHORITY = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<authority>[^/?#]*)")
_MEDIA_TOKEN = re.compile(r"(/m/)[^/?#\s\"'<>]+")


def _media_tokens_masked(text: str) -> str:
    """``text`` with every era-B ``/m/<media token>`` path segment shown as ``/m/***`` (in a
    URL or free text: a log line)."""
    return _MEDIA_TOKEN.sub(rf"\1{_MASK}", text)


def _url_shown(value: object) -> object:
    """A URL without what makes it a credential (query, fragment, user info, the era-B
    ``/m/<media token>/`` segment): ``https://host/path?…``; a non-string is returned as is."""
    if not isinstance(value, str):
        return value
    cuts = [i for i in (value.find("?"), value.find("#")) if i >= 0]
    cut = min(cuts, default=len(value))
    head, tail = value[:cut], value[cut:]
    prefix = ""
    match = _AUTHORITY.match(head)
    if match is not None:
        authority = match["authority"]
        if "@" in authority:
            authority = "***@" + authority.rpartition("@")[2]
        prefix, head = match["scheme"] + authority, head[match.end() :]
    shown = prefix + _media_tokens_masked(head)
    if tail:
        shown += tail[0] + "\u2026"
    return shown


def _url_repr(value: object) -> str:
    """A URL's repr without its credentials (see :func:`_url_shown`): ``'https://host/p?…'``."""
    return repr(_url_shown(value))


def _keys_repr(value: object) -> str:
    """A mapping's repr with its keys only: ``{'newField': …}`` (unknown values may be secret)."""
    if not isinstance(value, Mapping):
        return repr(value)
    return "{" + ", ".join(f"{key!r}: \u2026" for key in value) + "}"


_SECRET_NAME = re.compile(r"(?i)secret|token|passw|signature|credential|auth(?!or)|private|key")
"""A wire key naming what may be a credential (an unknown field's value is hidden then)."""


def _extra_shown(value: object) -> object:
    """``extra`` values as ``to_dict()`` shows them by default: under a key that names a
    credential (:data:`_SECRET_NAME`: ``token``, ``secret``, ``key``, ...) as ``'***'``, a URL
    as :func:`_url_shown` shows it, everything else as the server sent it."""
    if isinstance(value, Mapping):
        return {
            key: _MASK
            if item is not None and isinstance(key, str) and _SECRET_NAME.search(key)
            else _extra_shown(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_extra_shown(item) for item in value]
    if isinstance(value, str) and "://" in value:
        return _url_shown(value)
    return value


#: What ``to_dict()`` shows instead of a field whose ``repr=`` is a key: the same hiding (the
#: repr of ``extra`` shows its keys only; ``to_dict()`` shows its values but for credentials).
_SAFE_FORMS: Final[Mapping[Callable[[object], str], Callable[[object], object]]] = {
    _mask: _masked,
    _url_repr: _url_shown,
    _keys_repr: _extra_shown,
}
