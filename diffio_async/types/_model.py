"""The bases that let models be handed on: ``to_dict()`` and ``to_json()`` for every model and
result, ``to_wire()`` for the wire models."""

from __future__ import annotations

import json
from typing import Any

from ._serialise import PYTHON, PYTHON_WITH_SECRETS, WIRE

__all__: list[str] = []


class _HandedOn:
    """What every model of :mod:`diffio_async.types` and every workflow result can do."""

    __slots__ = ()

    def to_dict(self, *, include_secrets: bool = False) -> dict[str, Any]:
        """The model as JSON-safe Python data with its attribute (snake_case) names.

        Every field is present (``None`` as ``None``); datetimes are ISO-8601 ``...Z`` strings,
        tuples are lists, nested models are dicts and mappings are copies (paths are strings,
        an exception is its ``type`` and ``message``, a float that is not finite ``None``).
        ``extra`` holds the unknown wire keys as the server sent them. Secrets are hidden as in
        the repr (an API key or upload token as ``"***"``, signed URLs without their query and
        media token; in ``extra``, a value under a key naming a credential, like ``token`` or
        ``secret``, as ``"***"``) unless ``include_secrets=True``.
        """
        converter = PYTHON_WITH_SECRETS if include_secrets else PYTHON
        result: dict[str, Any] = converter.unstructure(self)
        return result

    def to_json(self, *, include_secrets: bool = False) -> str:
        """:meth:`to_dict` as compact, strict JSON text (keys in field order; never ``NaN``)."""
        return json.dumps(
            self.to_dict(include_secrets=include_secrets),
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
        )


class _Model(_HandedOn):
    """The base of every wire model: :meth:`to_dict`, :meth:`to_json` and :meth:`to_wire`."""

    __slots__ = ()

    def to_wire(self) -> dict[str, Any]:
        """The model in the API's own shape: camelCase keys, ``None`` fields left out, the
        unknown keys of ``extra`` back in place; parsing it gives an equal model.

        Nothing is hidden: an API key, an upload token or a signed URL is included.
        """
        result: dict[str, Any] = WIRE.unstructure(self)
        return result
