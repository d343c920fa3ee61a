"""What the converter reads from the models: field metadata and the shape error.

Parsing (by the one converter, :mod:`diffio_async._convert`) is lenient, like the official
SDKs' parsers:

* unknown fields are kept, not dropped: every answer model has an ``extra`` mapping (see
  :func:`_extra_field`) holding the wire keys it does not know, with their JSON values as sent;
  a ``null`` for a field that has a non-``None`` default counts as
  missing (stage ``status`` -> ``"pending"``, ``progress`` -> ``0``, ...);
* status fields (marked :data:`_STATUS`) are plain ``str``, stripped and lower-cased by the
  converter (``" FAILED"`` is ``"failed"``); values this SDK does not know are kept (normalised
  the same way). The ``*Status`` / ``*Type`` classes of ``_vocabularies`` only name the known
  values;
* ``error`` and ``error_details`` (of a progress answer, its stages and webhook events; marked
  :data:`_TEXT`) are text: a JSON value that is not a string (an object, a list, a number)
  becomes its compact JSON text, e.g. ``{"code":"GPU_OOM","message":"out of memory"}``, so
  nothing the server said is lost;
* numbers may arrive as numeric strings (``"2"``), timestamps as ISO-8601 strings (``Z`` or an
  offset; naive means UTC) and are parsed to timezone-aware UTC :class:`~datetime.datetime`
  objects. An unparseable optional timestamp becomes ``None``; a required one is an error;
* sequences are tuples, free-form JSON objects (``params``, ``sampling``, ``resourceBounds``,
  ``samplePayload``) are plain ``dict``\\ s.

Required fields follow the official Python SDK (``diffio-api.md`` §14); a missing required field
raises :class:`~diffio_async.errors.APIResponseValidationError` from the converter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import attrs

from ._reprs import _keys_repr

__all__: list[str] = []


_STATUS: Final = {"normalize": "status"}
"""Field metadata: the converter strips and lower-cases it (``" FAILED"`` -> ``"failed"``)."""
_TEXT: Final = {"normalize": "text"}
"""Field metadata: the converter turns any JSON value into text (non-strings as compact JSON)."""


_EXTRA: Final = {"extra": True}
"""Field metadata: the field collects the wire keys the model does not know (never a wire key
itself); see :func:`_extra_field`."""


def _extra_field() -> Mapping[str, Any]:
    """The ``extra`` field of an answer model: the unknown wire keys, as sent (camelCase).

    The converter fills it when parsing and writes its keys back on the wire (``to_wire()``),
    so a round trip keeps them. It counts for ``==`` (two answers that differ in a field the
    SDK does not know are different answers) but not for ``hash``, and its repr shows the keys
    only.
    """
    return attrs.field(factory=dict, hash=False, repr=_keys_repr, metadata=_EXTRA)


class _ShapeError(ValueError):
    """A wire value has the wrong shape; the message is safe to show (it never holds values)."""
