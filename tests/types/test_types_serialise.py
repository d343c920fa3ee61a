"""Models people can hand on: ``to_dict()``, ``to_json()``, ``to_wire()`` and ``extra``."""

from __future__ import annotations

import json
import types
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, Union, get_args, get_origin

import attrs
import pytest
from types_helpers import ERA_B_CREATE, public_model_classes

from diffio_async import APIResponseValidationError, from_wire
from diffio_async import types as m
from diffio_async._convert import structure

UTC = timezone.utc
WHEN = datetime(2026, 5, 1, 12, 30, 5, 250000, tzinfo=UTC)
SIGNED = "https://storage.googleapis.com/b/song.wav?X-Goog-Signature=abc123"


def _sample(tp: Any) -> Any:
    """A value of type ``tp`` (the first non-None member of a union)."""
    if get_origin(tp) is Union or isinstance(tp, types.UnionType):
        return _sample(next(arg for arg in get_args(tp) if arg is not type(None)))
    if get_origin(tp) is tuple:
        return (_sample(get_args(tp)[0]),)
    if get_origin(tp) is Mapping:
        _, value = get_args(tp)
        return {"k": [1, None, {"deep": True}]} if value is Any else {"k": _sample(value)}
    if attrs.has(tp):
        return example(tp)
    return {str: "s", int: 3, float: 1.5, bool: True, datetime: WHEN}[tp]


def example(cls: type[Any]) -> Any:
    """An instance of ``cls`` with every field set (answer models with an unknown key too)."""
    values: dict[str, Any] = {}
    for field in attrs.fields(attrs.resolve_types(cls)):
        if field.name == "extra":
            values["extra"] = {"brandNewField": {"nested": [1, "two"]}}
        elif field.name.endswith("url"):
            values[field.name] = SIGNED
        else:
            values[field.name] = _sample(field.type)
    return cls(**values)


CLASSES = public_model_classes()


def _is_request(cls: type[Any]) -> bool:
    return cls.__name__.endswith("Request")


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_model_round_trips_through_to_wire(cls: type[Any]) -> None:
    model = example(cls)
    wire = model.to_wire()
    assert json.loads(json.dumps(wire)) == wire  # plain JSON
    assert from_wire(cls, wire) == model
    if not _is_request(cls):
        assert wire["brandNewField"] == {"nested": [1, "two"]}  # unknown keys written back


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_model_has_a_json_safe_snake_case_dict(cls: type[Any]) -> None:
    model = example(cls)
    data = model.to_dict(include_secrets=True)
    assert list(data) == [f.name for f in attrs.fields(cls)]  # every field, in order
    assert json.loads(model.to_json(include_secrets=True)) == data
    assert ": " not in model.to_json() and ", " not in model.to_json()  # compact
    for field in attrs.fields(cls):
        if datetime in (field.type, *get_args(field.type)):
            assert data[field.name] == "2026-05-01T12:30:05.250000Z"
    if not _is_request(cls):
        assert data["extra"] == {"brandNewField": {"nested": [1, "two"]}}


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_answer_models_have_extra_and_request_models_do_not(cls: type[Any]) -> None:
    names = attrs.fields_dict(cls)
    assert ("extra" in names) is not _is_request(cls)


def test_from_wire_refuses_a_wrong_shape_with_wire_paths() -> None:
    with pytest.raises(
        APIResponseValidationError, match=r"required field missing @ \$\.apiProjectId"
    ):
        from_wire(m.Project, {"status": "uploaded"})
    with pytest.raises(APIResponseValidationError, match="Unexpected Project response"):
        from_wire(m.Project, ["not", "an", "object"])


def test_to_dict_of_a_parsed_progress() -> None:
    wire = {
        "generationId": "g",
        "apiProjectId": "p",
        "status": "PROCESSING",
        "preProcessing": {"status": "complete", "progress": 100},
        "inference": {"status": "running", "progress": "40", "gpuName": "L4"},
        "stageProgress": {"overallPercent": 55.5},
        "etaSeconds": 12,
    }
    progress = structure(wire, m.GenerationProgress, endpoint="get_generation_progress")
    data = progress.to_dict()
    assert data["status"] == "processing"
    assert data["inference"] == {
        "job_id": None,
        "job_state": None,
        "status": "running",
        "progress": 40,
        "status_message": None,
        "error": None,
        "error_details": None,
        "extra": {"gpuName": "L4"},  # unknown keys: nested, as the server named them
    }
    assert data["stage_progress"]["overall_percent"] == 55.5
    assert data["restored_video"] is None and data["extra"] == {"etaSeconds": 12}
    assert progress.to_wire()["etaSeconds"] == 12
    assert progress.to_wire()["inference"]["gpuName"] == "L4"


def test_to_dict_copies_mappings() -> None:
    bounds = {"projectIds": ["p1"]}
    key = m.ApiKey(key_id="k", resource_bounds=bounds, extra={"x": {"y": 1}})
    data = key.to_dict()
    data["resource_bounds"]["projectIds"].append("p2")
    data["extra"]["x"]["y"] = 2
    assert bounds == {"projectIds": ["p1"]} and key.extra == {"x": {"y": 1}}


def test_to_dict_hides_secrets_like_repr_unless_asked() -> None:
    key = m.ApiKey(key_id="k", key="diffio_live_supersecret", created_at=WHEN)
    assert key.to_dict()["key"] == "***"
    assert "supersecret" not in key.to_json()
    assert m.ApiKey(key_id="k").to_dict()["key"] is None
    assert key.to_dict(include_secrets=True)["key"] == "diffio_live_supersecret"
    assert key.to_wire()["key"] == "diffio_live_supersecret"  # the wire shape is complete

    created = structure(ERA_B_CREATE, m.CreateProjectResponse, endpoint="create_project")
    assert created.to_dict()["upload"]["upload_token"] == "***"
    assert "v1.upload-abc.sig" not in created.to_json()
    assert created.to_dict(include_secrets=True)["upload"]["upload_token"] == "v1.upload-abc.sig"

    info = m.DownloadInfo(
        generation_id="g", api_project_id="p", download_type="audio", download_url=SIGNED
    )
    assert info.to_dict()["download_url"] == "https://storage.googleapis.com/b/song.wav?\u2026"
    assert info.to_dict(include_secrets=True)["download_url"] == SIGNED
    assert info.to_wire()["downloadUrl"] == SIGNED


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_every_field_hidden_in_repr_is_hidden_in_to_dict(cls: type[Any]) -> None:
    model = example(cls)
    shown = model.to_dict()
    full = model.to_dict(include_secrets=True)
    for field in attrs.fields(cls):
        value = getattr(model, field.name)
        if attrs.has(type(value)) or isinstance(value, tuple):
            continue  # nested models: checked in their own case
        hides = callable(field.repr) and field.name != "extra"
        assert (shown[field.name] != full[field.name]) is hides, field.name


def test_to_json_is_stable_and_compact() -> None:
    project = m.Project(api_project_id="p", created_at=WHEN, extra={"b": 1, "a": 2})
    assert project.to_json() == (
        '{"api_project_id":"p","status":"uploading","original_file_name":null,'
        '"content_type":null,"has_video":false,"generation_count":0,'
        '"created_at":"2026-05-01T12:30:05.250000Z","updated_at":null,"extra":{"b":1,"a":2}}'
    )


# --- review of issue 9 ---------------------------------------------------------------------------


def _strict_json(text: str) -> Any:
    """``json.loads`` that refuses the ``NaN``/``Infinity`` tokens Python writes (not JSON)."""

    def refuse(token: str) -> Any:
        raise ValueError(f"{token} is not JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.parametrize(
    "value",
    ["NaN", "Infinity", 1e999, float("nan")],
    ids=["nan-string", "infinity-string", "overflowing-number", "nan"],
)
def test_a_number_that_is_not_finite_never_makes_invalid_json(value: object) -> None:
    """FAILS (review of issue 9): ``_structure_float`` accepts ``"NaN"``/``"Infinity"``
    strings and numbers too big for a float (``1e999`` is valid JSON, parsed as ``inf``), and
    ``to_json()`` writes them as ``NaN``/``Infinity``, which is not JSON (a browser's
    ``JSON.parse`` fails; Starlette's JSONResponse refuses ``to_dict()`` with a 500). Either
    parsing refuses the value or ``to_json()`` gives strict JSON (or refuses clearly)."""
    try:
        model = from_wire(m.StageProgress, {"overallPercent": value})
    except APIResponseValidationError:
        return  # refused at the parse: fine
    try:
        text = model.to_json()
    except ValueError:
        return  # refused with a clear error: fine
    _strict_json(text)


def test_to_json_of_a_model_built_with_nan_is_strict_json_or_refused() -> None:
    """FAILS (review of issue 9): ``to_json()`` calls ``json.dumps`` with ``allow_nan=True``."""
    model = m.StageProgress(overall_percent=float("nan"))
    try:
        text = model.to_json()
    except ValueError:
        return
    _strict_json(text)


def test_to_dict_writes_a_number_that_is_not_finite_as_none() -> None:
    """So ``to_dict()`` handed to a strict JSON encoder (Starlette's JSONResponse) works too."""
    model = from_wire(m.StageProgress, {"overallPercent": "NaN", "stagePercent": 12.5})
    data = model.to_dict()
    assert (data["overall_percent"], data["stage_percent"]) == (None, 12.5)
    project = m.Project(api_project_id="p", extra={"score": float("inf")})
    assert project.to_dict()["extra"] == {"score": None}
    assert json.loads(project.to_json(include_secrets=True))["extra"] == {"score": None}


def test_to_dict_hides_extra_values_that_may_be_credentials_unless_asked() -> None:
    """The repr shows ``extra``'s keys only; ``to_dict()`` shows its values, except those under
    a key naming a credential and the credentials of a URL (as for known fields)."""
    extra = {
        "creditsRemainingCents": 400,
        "previewToken": "tok_supersecret",
        "mirrors": [{"url": SIGNED, "apiKey": "diffio_live_supersecret"}],
        "author": "me",
    }
    project = m.Project(api_project_id="p", extra=extra)
    assert project.to_dict()["extra"] == {
        "creditsRemainingCents": 400,
        "previewToken": "***",
        "mirrors": [{"url": "https://storage.googleapis.com/b/song.wav?\u2026", "apiKey": "***"}],
        "author": "me",
    }
    assert "supersecret" not in project.to_json() and "abc123" not in project.to_json()
    assert project.to_dict(include_secrets=True)["extra"] == extra
