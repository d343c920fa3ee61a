"""Secrets never appear in a model's ``repr``; the ``repr=`` helpers of their fields.

:attr:`~diffio_async.types.ApiKey.key` and :attr:`~diffio_async.types.UploadSession.upload_token`
are shown as ``'***'``, and URLs (signed upload and download URLs, portal and webhook URLs) are
shown without their query, fragment or user info and with an era-B media token masked:
``'https://edge.example/m/***/generations/g/out.mp3?…'``.
"""

from __future__ import annotations

import re

__all__: list[str] = []


def _mask(value: object) -> str:
    return "None" if value is None else "'***'"


_AUTHORITY = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<authority>[^/?#]*)")
_MEDIA_TOKEN = re.compile(r"(/m/)[^/?#]+")


def _url_repr(value: object) -> str:
    """A URL's repr without what makes it a credential (query, fragment, user info, the era-B
    ``/m/<media token>/`` segment): ``'https://host/path?…'``."""
    if not isinstance(value, str):
        return repr(value)
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
    shown = prefix + _MEDIA_TOKEN.sub(r"\1***", head)
    if tail:
        shown += tail[0] + "\u2026"
    return repr(shown)
