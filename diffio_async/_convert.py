"""The one cattrs converter: camelCase wire JSON <-> the attrs classes of :mod:`.types`.

* Attribute ``api_project_id`` is wire ``apiProjectId`` (mechanical camelCase). A field can name
  a different wire key with ``attrs.field(metadata={"wire": "..."})``; none needs it today.
* Structuring is lenient (see :mod:`.types._parsing`): unknown keys are kept in the model's
  ``extra`` mapping (an answer model; a request model has none and ignores them), ``null`` for a
  field with a non-``None`` default means "use the default", numbers may be numeric strings,
  timestamps are ISO-8601 (``Z`` or offset) and become aware UTC datetimes.
* A field marked ``metadata={"normalize": "status"}`` (every status of :mod:`.types`) is
  stripped and lower-cased, so ``"FAILED"`` compares equal to ``GenerationStatus.FAILED``.
* A field marked ``metadata={"normalize": "text"}`` (``error``, ``errorDetails``) accepts any
  JSON value: a string as is, ``null`` as ``None``, anything else (an object, a list, a number,
  a boolean) as its compact JSON text, e.g. ``{"code":"GPU_OOM","message":"out of memory"}``.
* Unstructuring (hooks of :mod:`.types._serialise`, shared with the models' ``to_wire()``)
  drops ``None`` fields (request bodies never send ``null``), turns tuples into lists and
  datetimes into ``...Z`` strings, and writes the ``extra`` keys back.

Use :func:`structure` and :func:`unstructure`; they are what the resources call.
"""

from __future__ import annotations

import json
import math
import re
import types
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar, Union, get_args, get_origin

import attrs
from cattrs import ClassValidationError, Converter, IterableValidationError
from cattrs.gen import make_dict_structure_fn, override
from cattrs.v import format_exception

from .errors import APIResponseValidationError
from .types._parsing import _ShapeError
from .types._serialise import (
    format_datetime,
    is_abc_mapping,
    is_extra,
    is_homogeneous_tuple,
    register_unstructure_hooks,
    to_camel,
    wire_name,
)

__all__ = [
    "converter",
    "format_datetime",
    "from_wire",
    "make_converter",
    "parse_datetime",
    "structure",
    "to_camel",
    "unstructure",
    "validation_messages",
    "wire_name",
]

T = TypeVar("T")

_MAX_MESSAGES = 8


# ---------------------------------------------------------------------------------------------
# Timestamps
# ---------------------------------------------------------------------------------------------

_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"
    r"\s*(?:([Zz])|([+-])(\d{2}):?(\d{2})?)?$"
)


def parse_datetime(value: object) -> datetime:
    """Parse a wire timestamp into an aware UTC datetime.

    Accepts ISO-8601 strings (``2025-01-05T12:34:56Z``, any fraction length, ``+hh:mm``
    offsets, naive = UTC, date only) and Unix epoch seconds. Raises ``ValueError``/``TypeError``.
    """
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise _ShapeError("expected a timestamp, got a non-finite number")
        return datetime.fromtimestamp(value, tz=timezone.utc)
    elif isinstance(value, str):
        match = _ISO.match(value.strip())
        if match is None:
            raise _ShapeError("expected an ISO-8601 timestamp")
        year, month, day, hour, minute, second, fraction, _z, sign, off_h, off_m = match.groups()
        micro = int((fraction or "0")[:6].ljust(6, "0"))
        tz = timezone.utc
        if sign:
            offset = timedelta(hours=int(off_h), minutes=int(off_m or 0))
            tz = timezone(-offset if sign == "-" else offset)
        try:
            parsed = datetime(
                int(year),
                int(month),
                int(day),
                int(hour or 0),
                int(minute or 0),
                int(second or 0),
                micro,
                tzinfo=tz,
            )
        except ValueError:
            raise _ShapeError("expected an ISO-8601 timestamp (a field is out of range)") from None
    else:
        raise _ShapeError(f"expected a timestamp, got {_json_type(value)}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


# ---------------------------------------------------------------------------------------------
# Scalar hooks (never echo the value: it may be a secret)
# ---------------------------------------------------------------------------------------------


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, (list, tuple)):
        return "array"
    return type(value).__name__


def _structure_str(value: object, _: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise _ShapeError(f"expected a string, got {_json_type(value)}")


def _structure_int(value: object, _: object) -> int:
    if isinstance(value, bool):
        raise _ShapeError("expected an integer, got boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise _ShapeError("expected an integer, got a non-numeric string") from None
        if math.isfinite(number):
            return int(number)
    raise _ShapeError(f"expected an integer, got {_json_type(value)}")


def _structure_float(value: object, _: object) -> float:
    if isinstance(value, bool):
        raise _ShapeError("expected a number, got boolean")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            raise _ShapeError("expected a number, got a non-numeric string") from None
    raise _ShapeError(f"expected a number, got {_json_type(value)}")


_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no", ""})


def _structure_bool(value: object, _: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _ShapeError(f"expected a boolean, got {_json_type(value)}")


def _normalize_status(value: object, tp: object) -> str | None:
    """A status as text, stripped and lower-cased (``None`` only where the field admits it)."""
    if value is None and _admits_none(tp):
        return None
    return _structure_str(value, tp).strip().lower()


def _structure_text(value: object, _: object) -> str | None:
    """Any JSON value as readable text: strings as they are, others as compact JSON."""
    if value is None or isinstance(value, str):
        return value
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError):  # not JSON (never from a parsed body): its type name only
        raise _ShapeError(f"expected a JSON value, got {_json_type(value)}") from None


_NORMALIZERS: dict[str, Callable[[object, Any], Any]] = {
    "status": _normalize_status,
    "text": _structure_text,
}


def _structure_datetime(value: object, _: object) -> datetime:
    return parse_datetime(value)


def _structure_optional_datetime(value: object, _: object) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_datetime(value)
    except (ValueError, TypeError, OverflowError, OSError):
        return None  # tolerated: an optional timestamp we cannot read is treated as absent


# ---------------------------------------------------------------------------------------------
# Type predicates
# ---------------------------------------------------------------------------------------------


def _is_union(tp: object) -> bool:
    return get_origin(tp) is Union or isinstance(tp, types.UnionType)


def _admits_none(tp: object) -> bool:
    return tp is Any or tp is None or (_is_union(tp) and type(None) in get_args(tp))


def _is_optional_datetime(tp: object) -> bool:
    return _is_union(tp) and set(get_args(tp)) == {datetime, type(None)}


_EXTRA_SLOT = "\x00extra"
"""Where the structure function reads ``extra`` from: a key of the input the parser builds
itself (``extra`` is never read from a wire key)."""


# ---------------------------------------------------------------------------------------------
# Converter construction
# ---------------------------------------------------------------------------------------------


def make_converter(*, forbid_extra_keys: bool = False, omit_none: bool = True) -> Converter:
    """Build a converter with every hook of this module.

    The SDK uses one, :data:`converter` (the defaults). The flags exist so that a test can pin
    the wire shape with the same hooks: ``forbid_extra_keys=True`` makes unknown keys errors,
    ``omit_none=False`` writes ``None`` fields as ``null``.
    """
    conv = Converter(forbid_extra_keys=forbid_extra_keys, detailed_validation=True)

    conv.register_structure_hook(str, _structure_str)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook(float, _structure_float)
    conv.register_structure_hook(bool, _structure_bool)
    conv.register_structure_hook(datetime, _structure_datetime)
    conv.register_structure_hook_func(_is_optional_datetime, _structure_optional_datetime)
    register_unstructure_hooks(conv, omit_none=omit_none)

    def structure_tuple(value: object, tp: Any) -> tuple[Any, ...]:
        if not isinstance(value, (list, tuple)):
            raise _ShapeError(f"expected an array, got {_json_type(value)}")
        item = get_args(tp)[0]
        return tuple(conv.structure(list(value), list[item]))  # type: ignore[valid-type]

    def structure_mapping(value: object, tp: Any) -> dict[Any, Any]:
        if not isinstance(value, Mapping):
            raise _ShapeError(f"expected an object, got {_json_type(value)}")
        args = get_args(tp)
        if not args or args[1] is Any:
            return dict(value)
        return conv.structure(dict(value), dict[args[0], args[1]])  # type: ignore[valid-type]

    conv.register_structure_hook_func(is_homogeneous_tuple, structure_tuple)
    conv.register_structure_hook_func(is_abc_mapping, structure_mapping)

    def field_hook(field: attrs.Attribute[Any]) -> Callable[[Any, Any], Any] | None:
        normalizer = _NORMALIZERS.get(field.metadata.get("normalize", ""))
        if normalizer is None:
            return None
        return lambda value, _: normalizer(value, field.type)

    def structure_factory(cls: type[Any]) -> Callable[[Any, Any], Any]:
        fields = attrs.fields(attrs.resolve_types(cls))
        renames = {
            f.name: override(rename=_EXTRA_SLOT)
            if is_extra(f)
            else override(rename=wire_name(f), struct_hook=field_hook(f))
            for f in fields
        }
        generated = make_dict_structure_fn(cls, conv, **renames)  # type: ignore[arg-type]
        # a null for a field that has a non-None default means "missing"
        null_is_missing = frozenset(
            wire_name(f)
            for f in fields
            if f.default is not attrs.NOTHING and not _admits_none(f.type) and not is_extra(f)
        )
        # the wire keys the model knows; with forbid_extra_keys the others are errors instead
        known = frozenset(wire_name(f) for f in fields if not is_extra(f))
        keeps_extra = not forbid_extra_keys and any(is_extra(f) for f in fields)

        def structure_class(value: object, tp: Any) -> Any:
            if not isinstance(value, Mapping):
                raise _ShapeError(f"expected an object, got {_json_type(value)}")
            if any(k in value and value[k] is None for k in null_is_missing):
                value = {k: v for k, v in value.items() if not (v is None and k in null_is_missing)}
            if keeps_extra and not known.issuperset(value):
                extra = {k: v for k, v in value.items() if k not in known}
                value = {k: v for k, v in value.items() if k in known}
                value[_EXTRA_SLOT] = extra
            return generated(value, tp)

        return structure_class

    conv.register_structure_hook_factory(attrs.has, structure_factory)
    return conv


#: The SDK's converter: lenient structuring, ``None`` dropped on unstructure.
converter = make_converter()


# ---------------------------------------------------------------------------------------------
# Public helpers
# ---------------------------------------------------------------------------------------------


def _describe(exc: BaseException, tp: Any) -> str:
    if isinstance(exc, _ShapeError):
        return str(exc)
    if isinstance(exc, KeyError):
        return "required field missing"
    return format_exception(exc, tp)


def _wire_names(cls: object) -> dict[str, str]:
    if isinstance(cls, type) and attrs.has(cls):
        return {f.name: wire_name(f) for f in attrs.fields(cls)}
    return {}


def _messages(exc: BaseException, path: str) -> list[str]:
    """Like :func:`cattrs.transform_error`, but paths use the wire (camelCase) names."""
    children: list[tuple[BaseException, str, Any]]
    if isinstance(exc, ClassValidationError):
        names = _wire_names(exc.cl)
        with_notes, without = exc.group_exceptions()
        children = [
            (inner, f"{path}.{names.get(note.name, note.name)}", note.type)
            for inner, note in with_notes
        ]
    elif isinstance(exc, IterableValidationError):
        with_inotes, without = exc.group_exceptions()
        children = [(inner, f"{path}[{inote.index!r}]", inote.type) for inner, inote in with_inotes]
    else:
        return [f"{_describe(exc, None)} @ {path}"]
    out: list[str] = []
    for inner, sub, kind in children:
        if isinstance(inner, (ClassValidationError, IterableValidationError)):
            out.extend(_messages(inner, sub))
        else:
            out.append(f"{_describe(inner, kind)} @ {sub}")
    for inner in without:
        out.extend(_messages(inner, path))
    return out


def validation_messages(exc: BaseException) -> list[str]:
    """Readable ``"<problem> @ $.wire.path"`` lines for a structuring failure."""
    return _messages(exc, "$")


def structure(data: object, cls: type[T], *, endpoint: str) -> T:
    """Build ``cls`` from a parsed 2xx JSON body.

    :param data: the parsed JSON (anything; a non-object is an error for attrs classes).
    :param cls: the model class, e.g. :class:`~diffio_async.types.GenerationProgress`.
    :param endpoint: names the call in the error message (``"get_generation_progress"``).
    :raises APIResponseValidationError: the body is not the documented shape; the message
        lists each problem with its path, e.g. ``required field missing @ $.generationId``.
    """
    try:
        return converter.structure(data, cls)
    except (ClassValidationError, IterableValidationError, ValueError, TypeError, KeyError) as exc:
        lines = validation_messages(exc)
        shown = "; ".join(lines[:_MAX_MESSAGES])
        if len(lines) > _MAX_MESSAGES:
            shown += f"; and {len(lines) - _MAX_MESSAGES} more"
        message = f"Unexpected {endpoint} response: {shown}"
        raise APIResponseValidationError(message, body=data, endpoint=endpoint) from exc


def unstructure(obj: object) -> dict[str, Any]:
    """Turn a model into a camelCase JSON-ready ``dict``; ``None`` fields are dropped (request
    bodies never send ``null``)."""
    result = converter.unstructure(obj)
    if not isinstance(result, dict):
        raise TypeError(f"{type(obj).__name__} does not unstructure to a JSON object")
    return result


def from_wire(cls: type[T], data: object) -> T:
    """Build a model from its wire shape: an API answer, or what ``model.to_wire()`` returned
    (``from_wire(Project, project.to_wire()) == project``).

    Parsing is as lenient as for the API's answers (unknown keys go to ``extra``).

    :raises APIResponseValidationError: ``data`` is not that model's shape; the message lists
        each problem with its wire path.
    """
    return structure(data, cls, endpoint=cls.__name__)
