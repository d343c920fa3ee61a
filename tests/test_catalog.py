"""The data-driven model table and endpoint resolution."""

from __future__ import annotations

import re

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from diffio_async._catalog import (
    DEFAULT_MODEL,
    DEFAULT_MODEL_BY_ERA,
    KNOWN_MODELS,
    MODELS,
    ModelSpec,
    default_model,
    get_model,
    models_for_era,
    resolve_endpoint,
)
from diffio_async.errors import InvalidRequestError


@pytest.mark.parametrize(
    ("key", "endpoint"),
    [
        ("diffio-2-flash", "diffio-2.0-flash-generation"),
        ("diffio-2", "diffio-2.0-generation"),
        ("diffio-3", "diffio-3.0-generation"),
        ("diffio-3.4", "diffio-3.4-generation"),
        ("diffio-3.5", "diffio-3.5-generation"),
        ("diffio-4.0-flash", "diffio-4.0-flash-generation"),
        ("diffio-4.0-pro", "diffio-4.0-pro-generation"),
        ("diffio-4.5-flash", "diffio-4.6-flash-generation"),
        ("diffio-4.5-pro", "diffio-4.6-pro-generation"),
        ("diffio-4.6-flash", "diffio-4.6-flash-generation"),
        ("diffio-4.6-pro", "diffio-4.6-pro-generation"),
    ],
)
def test_known_endpoints(key: str, endpoint: str) -> None:
    assert resolve_endpoint(key) == endpoint
    assert get_model(key).path == f"/v1/{endpoint}"


def test_table_shape() -> None:
    assert set(KNOWN_MODELS) == set(MODELS)
    assert len(KNOWN_MODELS) == 11
    assert {spec.era for spec in MODELS.values()} == {"a", "b"}
    assert [s.key for s in models_for_era("b")] == [
        "diffio-4.5-flash",
        "diffio-4.5-pro",
        "diffio-4.6-flash",
        "diffio-4.6-pro",
    ]
    assert "diffio-3" not in [s.key for s in models_for_era("a")]
    assert "diffio-3" in [s.key for s in models_for_era("a", include_retired=True)]
    for spec in MODELS.values():
        if spec.status == "alias":
            assert spec.alias_of is not None and spec.alias_of in MODELS
            assert MODELS[spec.alias_of].status == "current"
        else:
            assert spec.alias_of is None
            assert spec.endpoint.endswith("-generation")
    assert MODELS["diffio-3"].status == "retired"
    assert MODELS["diffio-3.4"].alias_of == "diffio-3.5"
    assert MODELS["diffio-3.5"].has_transcript is True


def test_table_is_read_only() -> None:
    with pytest.raises(TypeError):
        MODELS["x"] = MODELS["diffio-2"]  # type: ignore[index]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        MODELS["diffio-2"].endpoint = "x"  # type: ignore[misc]


def test_defaults() -> None:
    assert DEFAULT_MODEL == "diffio-3.5" and DEFAULT_MODEL in MODELS
    assert default_model() == DEFAULT_MODEL
    assert default_model("a") == "diffio-3.5"
    assert default_model("b") == "diffio-4.6-flash"
    for era, key in DEFAULT_MODEL_BY_ERA.items():
        assert MODELS[key].era == era and MODELS[key].status == "current"
    with pytest.raises(InvalidRequestError):
        default_model("c")


def test_unknown_model_lists_the_known_ones() -> None:
    with pytest.raises(InvalidRequestError) as info:
        resolve_endpoint("diffio-5.0")
    text = str(info.value)
    assert "diffio-5.0" in text
    for key in KNOWN_MODELS:
        assert key in text
    assert "endpoint='diffio-5.0-generation'" in text
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("bad", ["", "   ", None, 35])
def test_empty_or_non_string_model_is_rejected(bad: object) -> None:
    with pytest.raises(InvalidRequestError, match="non-empty"):
        resolve_endpoint(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError):
        get_model(bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError):
        resolve_endpoint(bad, endpoint="diffio-5.0-generation")  # type: ignore[arg-type]


def test_surrounding_whitespace_is_ignored() -> None:
    assert resolve_endpoint(" diffio-2 ") == "diffio-2.0-generation"


def test_escape_hatch_endpoint() -> None:
    assert resolve_endpoint("diffio-5.0", endpoint="diffio-5.0-generation") == (
        "diffio-5.0-generation"
    )
    # an explicit endpoint wins over the table
    assert resolve_endpoint("diffio-3.5", endpoint="diffio-3.5-beta") == "diffio-3.5-beta"


def test_escape_hatch_model_spec() -> None:
    spec = ModelSpec(key="diffio-5.0", endpoint="diffio-5.0-generation", era="b")
    assert spec.status == "current" and spec.has_transcript is None
    assert resolve_endpoint(spec) == "diffio-5.0-generation"
    assert resolve_endpoint(spec, endpoint="diffio-5.0-generation") == "diffio-5.0-generation"
    with pytest.raises(InvalidRequestError):
        resolve_endpoint(spec, endpoint="other-generation")


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "/v1/diffio-5.0-generation",
        "../create_project",
        "diffio-5.0-generation?x=1",
        "Diffio-5.0",
        "-leading-dash",
        ".hidden",
        "a/b",
        "a b",
        "diffio%2F",
        "ключ",
    ],
)
def test_unsafe_endpoints_are_rejected(bad: str) -> None:
    with pytest.raises(InvalidRequestError, match="safe path segment"):
        resolve_endpoint("diffio-5.0", endpoint=bad)
    with pytest.raises(InvalidRequestError):
        ModelSpec(key="x", endpoint=bad, era="a")


@given(st.text(max_size=30))
def test_accepted_endpoints_are_always_safe(candidate: str) -> None:
    try:
        result = resolve_endpoint("diffio-x", endpoint=candidate)
    except InvalidRequestError:
        return
    assert re.fullmatch(r"[a-z0-9][a-z0-9.\-]*", result)
    assert "/" not in result and "?" not in result and "#" not in result


def test_model_spec_validation() -> None:
    with pytest.raises(InvalidRequestError, match="key"):
        ModelSpec(key="", endpoint="e", era="a")
    with pytest.raises(InvalidRequestError, match="era"):
        ModelSpec(key="k", endpoint="e", era="c")  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError, match="status"):
        ModelSpec(key="k", endpoint="e", era="a", status="beta")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        ModelSpec("k", "e", "a")  # type: ignore[call-arg]


def test_an_endpoint_is_served_by_at_most_one_model_that_is_not_an_alias() -> None:
    for endpoint in {spec.endpoint for spec in MODELS.values()}:
        served = [s for s in MODELS.values() if s.endpoint == endpoint and s.status != "alias"]
        assert len(served) <= 1, endpoint
