"""The generation model table: model key -> ``/v1/<endpoint>``, era and status.

The table is data, not code: adding a model is one :class:`ModelSpec` line. A model this SDK
does not know yet can still be called without a release, by passing its endpoint explicitly::

    resolve_endpoint("diffio-3.5")                                   # "diffio-3.5-generation"
    resolve_endpoint("diffio-5.0", endpoint="diffio-5.0-generation")  # escape hatch
    resolve_endpoint(ModelSpec(key="diffio-5.0", endpoint="diffio-5.0-generation", era="b"))

Eras (``diffio-api.md`` §0): era A is the documented API (signed upload URL), era B the edge
upload API that the live server speaks since October 2026. A server of one era answers the other
era's model endpoints with 404/410, which the SDK surfaces as
:class:`~diffio_async.errors.ModelRetiredError` with the server's suggested models; the catalog
itself never refuses a known model because of its era or status.

Statuses: ``current`` (served in its era), ``retired`` (only the earliest SDKs used it),
``alias`` (another model runs it: ``diffio-3.4`` is a server-side alias of ``diffio-3.5`` on its
own path; ``diffio-4.5-*`` are mapped client-side to the ``diffio-4.6-*`` endpoints, as the
official SDK 0.3.x does, because the live server retired the 4.5 paths).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal

import attrs

from .errors import InvalidRequestError

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_MODEL_BY_ERA",
    "KNOWN_MODELS",
    "MODELS",
    "Era",
    "ModelKey",
    "ModelSpec",
    "ModelStatus",
    "default_model",
    "get_model",
    "models_for_era",
    "resolve_endpoint",
]

Era = Literal["a", "b"]
ModelKey = Literal[
    "diffio-2-flash",
    "diffio-2",
    "diffio-3",
    "diffio-3.4",
    "diffio-3.5",
    "diffio-4.0-flash",
    "diffio-4.0-pro",
    "diffio-4.5-flash",
    "diffio-4.5-pro",
    "diffio-4.6-flash",
    "diffio-4.6-pro",
]
"""The model keys this SDK knows (the table below, in order). Model parameters are typed
``ModelKey | str``: editors offer these, and a model newer than this SDK still type-checks
(the server, not a release of ours, decides which models exist)."""
ModelStatus = Literal["current", "retired", "alias"]

_SEGMENT = re.compile(r"^[a-z0-9][a-z0-9.\-]*$")


def _check_key(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequestError(f"model {attribute.name} must be a non-empty string")


def _check_endpoint(_: object, __: attrs.Attribute[Any], value: object) -> None:
    _validate_endpoint(value)


def _validate_endpoint(value: object) -> str:
    if not isinstance(value, str) or not _SEGMENT.fullmatch(value):
        raise InvalidRequestError(
            f"model endpoint {value!r} is not a safe path segment: use lowercase letters, "
            "digits, '.' and '-' without the '/v1/' prefix, e.g. 'diffio-3.5-generation'"
        )
    return value


def _check_choice(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    allowed = {"era": ("a", "b"), "status": ("current", "retired", "alias")}[attribute.name]
    if value not in allowed:
        raise InvalidRequestError(f"model {attribute.name} must be one of {allowed}, not {value!r}")


@attrs.frozen(kw_only=True)
class ModelSpec:
    """A generation model: its key, the endpoint the SDK calls, its era and status."""

    #: Model key as the API names it in ``modelKey`` (``"diffio-3.5"``).
    key: str = attrs.field(validator=_check_key)
    #: Endpoint path segment after ``/v1/`` (``"diffio-3.5-generation"``).
    endpoint: str = attrs.field(validator=_check_endpoint)
    #: ``"a"`` (signed-URL era) or ``"b"`` (edge-upload era).
    era: Era = attrs.field(validator=_check_choice)
    #: ``"current"``, ``"retired"`` or ``"alias"`` (see :attr:`alias_of`).
    status: ModelStatus = attrs.field(default="current", validator=_check_choice)
    #: For aliases, the model that actually runs.
    alias_of: str | None = None
    #: Whether a transcript (``downloadType="transcript"``) is produced; ``None`` = unknown.
    has_transcript: bool | None = None
    #: Free-text remarks (plan, provenance).
    notes: str = ""

    @property
    def path(self) -> str:
        """The request path, ``/v1/<endpoint>``."""
        return f"/v1/{self.endpoint}"


_TABLE: tuple[ModelSpec, ...] = (
    # --- era A (documented API, signed upload URL) ---------------------------------------
    ModelSpec(
        key="diffio-2-flash",
        endpoint="diffio-2.0-flash-generation",
        era="a",
        notes="Fastest; available on the Free tier.",
    ),
    ModelSpec(
        key="diffio-2",
        endpoint="diffio-2.0-generation",
        era="a",
        has_transcript=True,
        notes="Balanced; paid plan. The transcript may become available after completion.",
    ),
    ModelSpec(
        key="diffio-3",
        endpoint="diffio-3.0-generation",
        era="a",
        status="retired",
        notes="Earliest SDKs only (official SDK <= 0.1.5).",
    ),
    ModelSpec(
        key="diffio-3.4",
        endpoint="diffio-3.4-generation",
        era="a",
        status="alias",
        alias_of="diffio-3.5",
        has_transcript=True,
        notes="Paid plan; later docs list its path as an accepted alias of diffio-3.5.",
    ),
    ModelSpec(
        key="diffio-3.5",
        endpoint="diffio-3.5-generation",
        era="a",
        has_transcript=True,
        notes="Successor of 3.4; the transcript is made before restoration completes.",
    ),
    ModelSpec(
        key="diffio-4.0-flash",
        endpoint="diffio-4.0-flash-generation",
        era="a",
        notes="Late era A (official SDK 0.1.1xx default); no stored doc page.",
    ),
    ModelSpec(
        key="diffio-4.0-pro",
        endpoint="diffio-4.0-pro-generation",
        era="a",
        notes="Late era A; no stored doc page.",
    ),
    # --- era B (edge upload API, live since October 2026) -------------------------------
    ModelSpec(
        key="diffio-4.5-flash",
        endpoint="diffio-4.6-flash-generation",
        era="b",
        status="alias",
        alias_of="diffio-4.6-flash",
        has_transcript=True,
        notes="Official SDK 0.2.x model (own path diffio-4.5-flash-generation); "
        "0.3.x maps it to diffio-4.6-flash.",
    ),
    ModelSpec(
        key="diffio-4.5-pro",
        endpoint="diffio-4.6-pro-generation",
        era="b",
        status="alias",
        alias_of="diffio-4.6-pro",
        has_transcript=True,
        notes="Official SDK 0.2.x model (own path diffio-4.5-pro-generation); "
        "0.3.x maps it to diffio-4.6-pro.",
    ),
    ModelSpec(
        key="diffio-4.6-flash",
        endpoint="diffio-4.6-flash-generation",
        era="b",
        has_transcript=True,
        notes="Every plan; the official SDK's default.",
    ),
    ModelSpec(
        key="diffio-4.6-pro",
        endpoint="diffio-4.6-pro-generation",
        era="b",
        has_transcript=True,
        notes="Paid plans.",
    ),
)

#: Every known model by key (read-only).
MODELS: Mapping[str, ModelSpec] = MappingProxyType({spec.key: spec for spec in _TABLE})
#: The known model keys, in table order (era A, then era B).
KNOWN_MODELS: tuple[str, ...] = tuple(MODELS)

#: The model used when the caller names none. ``diffio-3.5`` is an era-A model: it matches the
#: documented API and the emulator's default era. Against an era-B server (the live API since
#: October 2026) use :data:`DEFAULT_MODEL_BY_ERA` / :func:`default_model` with the project's era.
DEFAULT_MODEL = "diffio-3.5"
#: The default model per API era.
DEFAULT_MODEL_BY_ERA: Mapping[str, str] = MappingProxyType(
    {"a": "diffio-3.5", "b": "diffio-4.6-flash"}
)


def default_model(era: str | None = None) -> str:
    """The default model key for ``era`` (``"a"``/``"b"``), or :data:`DEFAULT_MODEL`."""
    if era is None:
        return DEFAULT_MODEL
    try:
        return DEFAULT_MODEL_BY_ERA[era]
    except KeyError:
        raise InvalidRequestError(f"unknown API era {era!r}; expected 'a' or 'b'") from None


def models_for_era(era: str, *, include_retired: bool = False) -> tuple[ModelSpec, ...]:
    """The models of one era, in table order (retired ones only when asked)."""
    return tuple(
        spec for spec in _TABLE if spec.era == era and (include_retired or spec.status != "retired")
    )


def _known_list() -> str:
    return ", ".join(KNOWN_MODELS)


def get_model(model: str) -> ModelSpec:
    """The :class:`ModelSpec` of a known model key.

    :raises InvalidRequestError: the key is empty or unknown; the message lists the known keys
        and explains the ``endpoint=`` escape hatch.
    """
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequestError(
            f"model must be a non-empty string. Known models: {_known_list()}"
        )
    spec = MODELS.get(model.strip())
    if spec is None:
        raise InvalidRequestError(
            f"Unknown model {model!r}. Known models: {_known_list()}. To call a model this SDK "
            f"does not know yet, also pass its endpoint, e.g. endpoint='{_guess(model)}'."
        )
    return spec


def _guess(model: str) -> str:
    guess = f"{model.strip().lower()}-generation"
    return guess if _SEGMENT.fullmatch(guess) else "diffio-x.y-generation"


def resolve_endpoint(model: str | ModelSpec, *, endpoint: str | None = None) -> str:
    """The endpoint path segment (after ``/v1/``) that creates a generation with ``model``.

    :param model: a known model key (``"diffio-3.5"``) or a :class:`ModelSpec` (used as is).
    :param endpoint: escape hatch: call this endpoint for ``model`` (which then need not be
        known), e.g. ``resolve_endpoint("diffio-5.0", endpoint="diffio-5.0-generation")``.
    :raises InvalidRequestError: empty or unknown model key without ``endpoint``, or an
        ``endpoint`` that is not a safe path segment (``^[a-z0-9][a-z0-9.-]*$``).
    """
    if isinstance(model, ModelSpec):
        if endpoint is not None and endpoint != model.endpoint:
            raise InvalidRequestError("pass either a ModelSpec or endpoint=, not both")
        return model.endpoint
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequestError(
            f"model must be a non-empty string. Known models: {_known_list()}"
        )
    if endpoint is not None:
        return _validate_endpoint(endpoint)
    return get_model(model).endpoint
