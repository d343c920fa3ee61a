"""Models -> JSON-ready dicts: the unstructure hooks of the wire shape and of ``to_dict()``.

One definition serves both directions of the SDK: :mod:`diffio_async._convert` registers
:func:`register_unstructure_hooks` on its converter (request bodies), and the models' own
``to_wire()`` / ``to_dict()`` use the converters built here (this module imports no model, so
the models can use it).

* The wire shape (``names="wire"``): camelCase keys (:func:`wire_name`), ``None`` fields
  dropped, datetimes as ``...Z`` strings, tuples as lists, and the ``extra`` keys (what the
  server sent that the SDK does not know) written back at their place, so parsing the result
  gives an equal model.
* The Python shape (``names="python"``): the attribute names, every field (``None`` as
  ``None``), the same JSON-safe values, ``extra`` as a nested mapping under ``"extra"`` with
  its wire keys as sent, a float that is not finite (``NaN``, infinity: no JSON number) as
  ``None``. Fields whose repr hides a secret are hidden the same way unless ``include_secrets``
  (see :data:`._reprs._SAFE_FORMS`; in ``extra``, values under a key naming a credential).
  The workflow results hold more than wire data: a path is its text, bytes their base64 text,
  an exception ``{"type", "message"}`` and any other object with a
  ``to_dict(include_secrets=...)`` method (a ``Generation`` handle) what that returns.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import PurePath
from typing import Any, Literal, get_args, get_origin

import attrs
from cattrs import Converter
from cattrs.gen import make_dict_unstructure_fn, override

from ._reprs import _SAFE_FORMS

__all__: list[str] = []


def to_camel(name: str) -> str:
    """``api_project_id`` -> ``apiProjectId``."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def wire_name(field: attrs.Attribute[Any]) -> str:
    """The JSON key of an attrs field: its ``metadata["wire"]`` or its camelCase name."""
    special = field.metadata.get("wire")
    return special if isinstance(special, str) else to_camel(field.name)


def is_extra(field: attrs.Attribute[Any]) -> bool:
    """Whether ``field`` is a model's ``extra`` mapping (the unknown wire keys)."""
    return bool(field.metadata.get("extra"))


def format_datetime(value: datetime) -> str:
    """Format a datetime for the wire: UTC ISO-8601 ending in ``Z`` (naive means UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def is_homogeneous_tuple(tp: object) -> bool:
    """``tuple[X, ...]``: a JSON array of one item type."""
    args = get_args(tp)
    return get_origin(tp) is tuple and len(args) == 2 and args[1] is Ellipsis


def is_abc_mapping(tp: object) -> bool:
    """``Mapping[K, V]`` (or a bare ``Mapping``): a JSON object."""
    return get_origin(tp) is Mapping or tp is Mapping


def _is_subclass(tp: object, base: type[Any]) -> bool:
    return isinstance(tp, type) and issubclass(tp, base)


def _hands_itself_on(tp: object) -> bool:
    """A class that is no attrs class but has its own ``to_dict`` (a ``Generation``)."""
    return isinstance(tp, type) and not attrs.has(tp) and callable(getattr(tp, "to_dict", None))


def _exception(value: BaseException) -> dict[str, str]:
    return {"type": type(value).__name__, "message": str(value)}


def _hidden(conv: Converter, field: attrs.Attribute[Any]) -> Callable[[Any], Any] | None:
    """How ``to_dict()`` shows a secret field (as its repr does), or ``None`` for others."""
    safe_form = _SAFE_FORMS.get(field.repr) if callable(field.repr) else None
    if safe_form is None:
        return None
    return lambda value: None if value is None else conv.unstructure(safe_form(value))


def _base64_text(value: bytes) -> str:
    """Bytes (a ``RestoreResult``'s ``content``) as standard base64 text: JSON has no bytes."""
    return base64.b64encode(value).decode("ascii")


def _finite_or_none(value: float) -> float | None:
    """A float as JSON can hold it: ``NaN`` and the infinities (no JSON number) as ``None``."""
    return value if math.isfinite(value) else None


def register_unstructure_hooks(
    conv: Converter,
    *,
    names: Literal["wire", "python"] = "wire",
    omit_none: bool = True,
    include_secrets: bool = True,
) -> None:
    """Register on ``conv`` every hook that turns models into JSON-ready values."""
    conv.register_unstructure_hook(datetime, format_datetime)

    def unstructure_sequence(value: tuple[Any, ...]) -> list[Any]:
        return [conv.unstructure(item) for item in value]

    def unstructure_mapping(value: Mapping[Any, Any]) -> dict[Any, Any]:
        return {key: conv.unstructure(item) for key, item in value.items()}

    conv.register_unstructure_hook_func(is_homogeneous_tuple, unstructure_sequence)
    conv.register_unstructure_hook(tuple, unstructure_sequence)
    conv.register_unstructure_hook_func(is_abc_mapping, unstructure_mapping)
    conv.register_unstructure_hook(dict, unstructure_mapping)

    if names == "python":
        conv.register_unstructure_hook(float, _finite_or_none)
        conv.register_unstructure_hook(bytes, _base64_text)
        conv.register_unstructure_hook_func(lambda tp: _is_subclass(tp, PurePath), str)
        conv.register_unstructure_hook_func(lambda tp: _is_subclass(tp, BaseException), _exception)
        conv.register_unstructure_hook_func(
            _hands_itself_on, lambda value: value.to_dict(include_secrets=include_secrets)
        )

    def field_override(field: attrs.Attribute[Any]) -> Any:
        if names == "wire":
            return override(omit=True) if is_extra(field) else override(rename=wire_name(field))
        hidden = None if include_secrets else _hidden(conv, field)
        return override(unstruct_hook=hidden) if hidden is not None else override()

    def unstructure_factory(cls: type[Any]) -> Callable[[Any], dict[str, Any]]:
        fields = attrs.fields(attrs.resolve_types(cls))
        overrides = {f.name: field_override(f) for f in fields}
        generated = make_dict_unstructure_fn(cls, conv, **overrides)
        extra = next((f.name for f in fields if is_extra(f)), None) if names == "wire" else None

        def unstructure_class(value: Any) -> dict[str, Any]:
            out = generated(value)
            if omit_none:
                out = {k: v for k, v in out.items() if v is not None}
            unknown = getattr(value, extra) if extra is not None else None
            if unknown:  # the known fields win over an unknown key of the same name
                out = {**unstructure_mapping(unknown), **out}
            return out

        return unstructure_class

    conv.register_unstructure_hook_factory(attrs.has, unstructure_factory)


def _converter(**settings: Any) -> Converter:
    conv = Converter()
    register_unstructure_hooks(conv, **settings)
    return conv


WIRE = _converter(names="wire")
"""What ``to_wire()`` uses: the request bodies' hooks (the SDK's converter has the same)."""
PYTHON = _converter(names="python", omit_none=False, include_secrets=False)
"""What ``to_dict()`` uses: attribute names, every field, secrets hidden as in reprs."""
PYTHON_WITH_SECRETS = _converter(names="python", omit_none=False, include_secrets=True)
"""What ``to_dict(include_secrets=True)`` uses."""
