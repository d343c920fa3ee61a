"""The converter: names, scalars, timestamps, tolerance, errors, unstructuring."""

from __future__ import annotations

import re
import string
from datetime import datetime, timedelta, timezone
from typing import Any

import attrs
import pytest
from cattrs import ClassValidationError
from hypothesis import given
from hypothesis import strategies as st

from diffio_async import types as m
from diffio_async._convert import (
    converter,
    format_datetime,
    make_converter,
    parse_datetime,
    structure,
    to_camel,
    unstructure,
    validation_messages,
    wire_name,
)
from diffio_async.errors import APIResponseValidationError

#: The SDK's hooks, but unknown keys are errors: pins the wire shape of a round trip.
strict_converter = make_converter(forbid_extra_keys=True)
#: The SDK's hooks, but ``None`` fields are written as ``null``: a server that sends them.
nulls_converter = make_converter(omit_none=False)

_UPPER = re.compile(r"(?<!^)(?=[A-Z])")


def to_snake(name: str) -> str:
    """``apiProjectId`` -> ``api_project_id``: the inverse of ``to_camel`` for plain words."""
    return _UPPER.sub("_", name).lower()


UTC = timezone.utc

MINIMAL_PROGRESS: dict[str, Any] = {
    "generationId": "g",
    "apiProjectId": "p",
    "status": "processing",
    "preProcessing": {},
    "inference": {},
}


# ---------------------------------------------------------------------------------------------
# names
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("snake", "camel"),
    [
        ("api_project_id", "apiProjectId"),
        ("pre_processing", "preProcessing"),
        ("svix_message_id", "svixMessageId"),
        ("lifetime_list_price_cents", "lifetimeListPriceCents"),
        ("url", "url"),
        ("type", "type"),
    ],
)
def test_camel_and_snake(snake: str, camel: str) -> None:
    assert to_camel(snake) == camel
    assert to_snake(camel) == snake


_word = st.text(string.ascii_lowercase, min_size=1, max_size=8)


@given(st.lists(_word, min_size=1, max_size=5))
def test_name_round_trip(words: list[str]) -> None:
    snake = "_".join(words)
    assert to_snake(to_camel(snake)) == snake


def test_every_wire_name_is_mechanical_camel_case() -> None:
    for name in m.__all__:
        cls = getattr(m, name)
        if isinstance(cls, type) and attrs.has(cls):
            for field in attrs.fields(cls):
                assert wire_name(field) == to_camel(field.name)
                assert to_snake(wire_name(field)) == field.name


def test_wire_metadata_overrides_name() -> None:
    @attrs.frozen(kw_only=True)
    class Odd:
        """Test class."""

        x_url: str = attrs.field(metadata={"wire": "xURL"})

    assert unstructure(Odd(x_url="u")) == {"xURL": "u"}
    assert structure({"xURL": "u"}, Odd, endpoint="t") == Odd(x_url="u")


# ---------------------------------------------------------------------------------------------
# timestamps
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-01-05T12:34:56Z", datetime(2025, 1, 5, 12, 34, 56, tzinfo=UTC)),
        ("2025-01-05T12:34:56z", datetime(2025, 1, 5, 12, 34, 56, tzinfo=UTC)),
        ("2025-01-05T12:34:56.1Z", datetime(2025, 1, 5, 12, 34, 56, 100000, tzinfo=UTC)),
        ("2025-01-05T12:34:56.123456789Z", datetime(2025, 1, 5, 12, 34, 56, 123456, tzinfo=UTC)),
        ("2025-01-05T12:34:56+02:00", datetime(2025, 1, 5, 10, 34, 56, tzinfo=UTC)),
        ("2025-01-05T12:34:56-0130", datetime(2025, 1, 5, 14, 4, 56, tzinfo=UTC)),
        ("2025-01-05T12:34:56", datetime(2025, 1, 5, 12, 34, 56, tzinfo=UTC)),
        ("2025-01-05 12:34", datetime(2025, 1, 5, 12, 34, tzinfo=UTC)),
        ("2025-01-05", datetime(2025, 1, 5, tzinfo=UTC)),
        (0, datetime(1970, 1, 1, tzinfo=UTC)),
        (1769603696, datetime(2026, 1, 28, 12, 34, 56, tzinfo=UTC)),
    ],
)
def test_parse_datetime(text: object, expected: datetime) -> None:
    parsed = parse_datetime(text)
    assert parsed == expected and parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "bad", ["", "yesterday", "2025-13-01T00:00:00Z", "2025-01-05T25:00Z", [], True]
)
def test_parse_datetime_rejects(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_datetime(bad)


@given(st.datetimes(timezones=st.just(UTC)))
def test_datetime_round_trip(value: datetime) -> None:
    text = format_datetime(value)
    assert text.endswith("Z")
    assert parse_datetime(text) == value


@given(
    st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(2200, 1, 1)),
    st.integers(min_value=-14 * 60, max_value=14 * 60),
)
def test_offsets_normalised_to_utc(naive: datetime, minutes: int) -> None:
    aware = naive.replace(tzinfo=timezone(timedelta(minutes=minutes)))
    parsed = parse_datetime(aware.isoformat())
    assert parsed == aware and parsed.utcoffset() == timedelta(0)


def test_naive_datetime_unstructures_as_utc() -> None:
    assert format_datetime(datetime(2026, 1, 1)) == "2026-01-01T00:00:00Z"


def test_unparseable_optional_timestamp_becomes_none() -> None:
    p = structure(
        {"apiProjectId": "p", "createdAt": "not a date", "updatedAt": 12},
        m.Project,
        endpoint="list_projects",
    )
    assert p.created_at is None
    assert p.updated_at == datetime(1970, 1, 1, 0, 0, 12, tzinfo=UTC)


# ---------------------------------------------------------------------------------------------
# tolerant structuring
# ---------------------------------------------------------------------------------------------


def test_unknown_fields_are_kept_in_extra() -> None:
    data = {
        **MINIMAL_PROGRESS,
        "brandNewField": {"x": 1},
        "extra": "a wire key named extra is just another unknown key",
        "inference": {"novel": True, "progress": 40},
    }
    p = structure(data, m.GenerationProgress, endpoint="get_generation_progress")
    assert p.inference == m.Stage(progress=40, extra={"novel": True})
    assert p.inference != m.Stage(progress=40)  # an unknown field counts for equality
    assert hash(p.inference) == hash(m.Stage(progress=40))  # ... but not for the hash
    assert p.extra == {"brandNewField": {"x": 1}, "extra": data["extra"]}
    assert p.pre_processing.extra == {}
    assert "novel" in repr(p.inference) and "True" not in repr(p.inference)  # keys only
    # written back on the wire, so a round trip keeps them
    assert unstructure(p) == {
        **data,
        "hasVideo": False,
        "preProcessing": {"status": "pending", "progress": 0},
        "inference": {"novel": True, "status": "pending", "progress": 40},
    }
    assert structure(unstructure(p), m.GenerationProgress, endpoint="x") == p


def test_a_request_model_has_no_extra_and_ignores_unknown_keys() -> None:
    wire = {"apiProjectId": "p", "novel": 1}
    request = structure(wire, m.ListProjectGenerationsRequest, endpoint="x")
    assert request == m.ListProjectGenerationsRequest(api_project_id="p")
    assert not hasattr(request, "extra")


def test_strict_converter_rejects_unknown_fields_with_wire_paths() -> None:
    data = {**MINIMAL_PROGRESS, "brandNewField": 1}
    with pytest.raises(ClassValidationError) as top:
        strict_converter.structure(data, m.GenerationProgress)
    assert any("extra fields found (brandNewField)" in s for s in validation_messages(top.value))
    nested = {**MINIMAL_PROGRESS, "inference": {"novel": 1}}
    with pytest.raises(ClassValidationError) as inner:
        strict_converter.structure(nested, m.GenerationProgress)
    assert any(re.search(r"novel.*@ \$\.inference", s) for s in validation_messages(inner.value))
    assert strict_converter.structure(MINIMAL_PROGRESS, m.GenerationProgress).status == "processing"


@given(st.text(min_size=1))
def test_unknown_status_values_are_kept_normalised(status: str) -> None:
    normal = status.strip().lower()
    p = structure({**MINIMAL_PROGRESS, "status": status}, m.GenerationProgress, endpoint="x")
    assert p.status == normal
    assert p.is_terminal == (normal in {"complete", "failed", "error"})
    stage = structure({"status": status}, m.Stage, endpoint="x")
    assert stage.status == normal


WEBHOOK: dict[str, Any] = {
    "eventType": "generation.failed",
    "eventId": "evt",
    "createdAt": "2026-01-28T12:34:56Z",
    "apiKeyId": "k",
    "generationId": "g",
    "status": "error",
}


def test_every_status_is_stripped_and_lower_cased() -> None:
    """An upper-case or padded status compares equal to the constants, in every model."""
    p = structure(
        {
            **MINIMAL_PROGRESS,
            "status": " FAILED ",
            "stage": "Restoring",
            "preProcessing": {"status": "COMPLETE"},
            "inference": {"status": "Failed"},
            "restoredVideo": {"status": "RUNNING\n"},
            "transcription": {"status": "UNAVAILABLE"},
        },
        m.GenerationProgress,
        endpoint="x",
    )
    assert (p.status, p.stage, p.is_terminal, p.is_failed) == ("failed", "restoring", True, True)
    assert [stage.status for _, stage in p.stages] == ["complete", "failed", "running"]
    assert p.transcription_status == m.TranscriptionStatus.UNAVAILABLE
    event = structure({**WEBHOOK, "status": "ERROR"}, m.WebhookEvent, endpoint="x")
    assert event.status == "error" and event.is_terminal and event.is_failed
    assert event.event_type == "generation.failed"
    summary = structure(
        {"generationId": "g", "status": "Complete"}, m.GenerationSummary, endpoint="x"
    )
    assert summary.status == "complete" and summary.is_terminal
    created = structure(
        {"generationId": "g", "apiProjectId": "p", "modelKey": "k", "status": "QUEUED"},
        m.CreatedGeneration,
        endpoint="x",
    )
    assert created.status == "queued"
    assert structure(
        {"apiProjectId": "p", "status": " Uploaded"}, m.Project, endpoint="x"
    ).status == (m.ProjectStatus.UPLOADED)
    assert structure({"keyId": "k", "status": "REVOKED"}, m.ApiKey, endpoint="x").status == (
        m.ApiKeyStatus.REVOKED
    )
    # Not statuses: identifiers and camelCase values are kept as sent.
    billing = structure({"type": "customerStripe"}, m.BillingPolicy, endpoint="x")
    assert billing.type == "customerStripe"
    assert structure({"jobState": "RUNNING"}, m.Stage, endpoint="x").job_state == "RUNNING"


def test_a_required_status_that_is_null_or_an_object_is_still_an_error() -> None:
    for bad in (None, {"code": 1}):
        with pytest.raises(APIResponseValidationError, match=r"@ \$\.status"):
            structure({**MINIMAL_PROGRESS, "status": bad}, m.GenerationProgress, endpoint="x")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("GPU fell over", "GPU fell over"),
        (None, None),
        (
            {"code": "GPU_OOM", "message": "out of memory"},
            '{"code":"GPU_OOM","message":"out of memory"}',
        ),
        (["a", {"b": 1}], '["a",{"b":1}]'),
        (42, "42"),
        (1.5, "1.5"),
        (True, "true"),
        ({"message": "über"}, '{"message":"über"}'),
        ({}, "{}"),
    ],
    ids=["string", "null", "object", "list", "int", "float", "bool", "unicode", "empty"],
)
def test_error_fields_take_any_json_value_as_readable_text(value: object, text: str | None) -> None:
    """``error``/``errorDetails`` of a progress answer, its stages and webhook events: a
    non-string becomes its compact JSON text instead of a validation error."""
    p = structure(
        {**MINIMAL_PROGRESS, "error": value, "errorDetails": value, "inference": {"error": value}},
        m.GenerationProgress,
        endpoint="x",
    )
    assert p.error == p.error_details == p.inference.error == text
    event = structure(
        {**WEBHOOK, "error": value, "errorDetails": value}, m.WebhookEvent, endpoint="x"
    )
    assert event.error == event.error_details == text


def test_null_means_default_for_non_optional_fields() -> None:
    stage = structure({"status": None, "progress": None, "jobId": None}, m.Stage, endpoint="x")
    assert stage == m.Stage()
    gen = structure(
        {
            "generationId": "g",
            "apiProjectId": "p",
            "modelKey": "k",
            "status": "queued",
            "idempotentReplay": None,
        },
        m.CreatedGeneration,
        endpoint="x",
    )
    assert gen.idempotent_replay is False


@pytest.mark.parametrize(
    ("raw", "expected"), [(2, 2), ("2", 2), (" 7 ", 7), (2.0, 2), (45.9, 45), ("3.0", 3)]
)
def test_integers_are_coerced(raw: object, expected: int) -> None:
    p = structure({"apiProjectId": "p", "generationCount": raw}, m.Project, endpoint="x")
    assert p.generation_count == expected


@pytest.mark.parametrize("raw", ["two", True, [], {}, "nan", float("inf")])
def test_bad_integers_are_rejected(raw: object) -> None:
    with pytest.raises(APIResponseValidationError, match=r"@ \$\.generationCount"):
        structure({"apiProjectId": "p", "generationCount": raw}, m.Project, endpoint="x")


@pytest.mark.parametrize(
    ("raw", "expected"), [(True, True), (False, False), ("true", True), ("False", False), (1, True)]
)
def test_booleans(raw: object, expected: bool) -> None:
    assert structure({"apiProjectId": "p", "hasVideo": raw}, m.Project, endpoint="x").has_video is (
        expected
    )


@pytest.mark.parametrize("raw", ["maybe", 2, [], {}])
def test_bad_booleans_are_rejected(raw: object) -> None:
    with pytest.raises(APIResponseValidationError, match=r"expected a boolean.*@ \$\.hasVideo"):
        structure({"apiProjectId": "p", "hasVideo": raw}, m.Project, endpoint="x")


def test_numbers_accepted_for_strings_but_not_objects() -> None:
    assert structure({"apiProjectId": 123}, m.ProjectGenerations, endpoint="x").api_project_id == (
        "123"
    )
    with pytest.raises(APIResponseValidationError, match=r"expected a string, got object"):
        structure({"apiProjectId": {"a": 1}}, m.ProjectGenerations, endpoint="x")


def test_string_is_not_an_array() -> None:
    with pytest.raises(
        APIResponseValidationError, match=r"expected an array, got string @ \$\.scopes"
    ):
        structure({"keyId": "k", "scopes": "projects:read"}, m.ApiKey, endpoint="x")


def test_free_form_objects_must_be_objects() -> None:
    with pytest.raises(APIResponseValidationError, match=r"expected an object.*resourceBounds"):
        structure({"keyId": "k", "resourceBounds": ["x"]}, m.ApiKey, endpoint="x")


# ---------------------------------------------------------------------------------------------
# validation errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [None, [], "text", 3, True, [MINIMAL_PROGRESS]])
def test_non_object_body(body: object) -> None:
    with pytest.raises(APIResponseValidationError) as info:
        structure(body, m.GenerationProgress, endpoint="get_generation_progress")
    err = info.value
    assert "get_generation_progress" in str(err) and "expected an object" in str(err)
    assert err.endpoint == "get_generation_progress" and err.body == body


@pytest.mark.parametrize("missing", ["generationId", "apiProjectId", "status", "preProcessing"])
def test_missing_required_field_names_the_wire_path(missing: str) -> None:
    data = {k: v for k, v in MINIMAL_PROGRESS.items() if k != missing}
    with pytest.raises(APIResponseValidationError) as info:
        structure(data, m.GenerationProgress, endpoint="get_generation_progress")
    assert f"required field missing @ $.{missing}" in str(info.value)
    assert not isinstance(info.value, KeyError)


def test_nested_and_indexed_paths() -> None:
    data = {"apiProjectId": "p", "generations": [{"generationId": "a"}, {"progress": "x"}]}
    with pytest.raises(APIResponseValidationError) as info:
        structure(data, m.ProjectGenerations, endpoint="list_project_generations")
    text = str(info.value)
    assert "required field missing @ $.generations[1].generationId" in text
    assert "@ $.generations[1].progress" in text
    data2 = {**MINIMAL_PROGRESS, "inference": {"progress": "lots"}}
    with pytest.raises(APIResponseValidationError, match=r"@ \$\.inference\.progress"):
        structure(data2, m.GenerationProgress, endpoint="x")
    data3 = {"modelCents": {"diffio-2": "lots"}}
    with pytest.raises(APIResponseValidationError, match=r"@ \$\.modelCents\['diffio-2'\]"):
        structure(data3, m.UsagePeriod, endpoint="x")


def test_error_message_never_echoes_values() -> None:
    data = {"edgeBaseUrl": "https://e", "uploadToken": {"secret": "TOPSECRET"}}
    with pytest.raises(APIResponseValidationError) as info:
        structure(data, m.UploadSession, endpoint="create_project")
    assert "TOPSECRET" not in str(info.value)
    assert "@ $.uploadToken" in str(info.value)


def test_many_problems_are_summarised() -> None:
    data = {"projects": [{"generationCount": "x"} for _ in range(20)]}
    with pytest.raises(APIResponseValidationError, match=r"and \d+ more"):
        structure(data, m.ProjectList, endpoint="list_projects")


@given(
    st.dictionaries(
        st.text(max_size=5),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
            max_leaves=8,
        ),
        max_size=6,
    )
)
def test_arbitrary_json_never_escapes_as_a_raw_error(data: dict[str, Any]) -> None:
    for cls in (m.GenerationProgress, m.Project, m.ApiKey, m.UsageSummary, m.CreateProjectResponse):
        try:
            structure(data, cls, endpoint="fuzz")
        except APIResponseValidationError as exc:
            assert str(exc).startswith("Unexpected fuzz response: ")


# ---------------------------------------------------------------------------------------------
# unstructuring and round trips
# ---------------------------------------------------------------------------------------------


def test_unstructure_drops_none_but_keeps_nulls_inside_free_form_objects() -> None:
    body = m.CreateGenerationRequest(api_project_id="p", params={"x": None, "y": (1, 2)})
    assert unstructure(body) == {"apiProjectId": "p", "params": {"x": None, "y": [1, 2]}}


def test_a_converter_can_keep_nulls() -> None:
    stage = m.Stage(status="running", progress=5)
    assert nulls_converter.unstructure(stage) == {
        "jobId": None,
        "jobState": None,
        "status": "running",
        "progress": 5,
        "statusMessage": None,
        "error": None,
        "errorDetails": None,
    }


def test_unstructure_writes_timestamps_with_z() -> None:
    project = m.Project(api_project_id="p", created_at=datetime(2025, 1, 5, 12, 34, 56, tzinfo=UTC))
    assert unstructure(project)["createdAt"] == "2025-01-05T12:34:56Z"


def test_unstructure_rejects_non_models() -> None:
    with pytest.raises(TypeError):
        unstructure(5)


_ids = st.text(min_size=1, max_size=12)
_opt_text = st.none() | st.text(max_size=12)
_status = st.text(min_size=1, max_size=10).map(lambda s: s.strip().lower())  # as structured
_stages = st.builds(
    m.Stage,
    job_id=_opt_text,
    job_state=_opt_text,
    status=_status,
    progress=st.integers(0, 100),
    status_message=_opt_text,
    error=_opt_text,
    error_details=_opt_text,
)
_progress = st.builds(
    m.GenerationProgress,
    generation_id=_ids,
    api_project_id=_ids,
    status=st.sampled_from(["queued", "processing", "complete", "failed", "weird"]),
    pre_processing=_stages,
    inference=_stages,
    has_video=st.booleans(),
    restored_video=st.none() | _stages,
    error=_opt_text,
    transcription=st.none() | st.builds(m.Transcription, status=_status),
    stage=st.none() | _status,
    stage_progress=st.none()
    | st.builds(
        m.StageProgress,
        overall_percent=st.none() | st.floats(0, 100),
        bytes_done=st.none() | st.integers(0, 2**40),
    ),
    queue=st.none() | st.builds(m.QueueInfo, position=st.none() | st.integers(0, 99)),
)


@given(_progress)
def test_progress_round_trip(progress: m.GenerationProgress) -> None:
    wire = unstructure(progress)
    assert strict_converter.structure(wire, m.GenerationProgress) == progress
    with_nulls = nulls_converter.unstructure(progress)
    assert structure(with_nulls, m.GenerationProgress, endpoint="x") == progress


_keys = st.builds(
    m.ApiKey,
    key_id=_ids,
    key=st.none() | st.text(max_size=20).map(lambda s: "diffio_live_" + s),
    scopes=st.lists(st.text(max_size=10), max_size=4).map(tuple),
    resource_bounds=st.dictionaries(st.text(max_size=5), st.lists(st.text(max_size=5)).map(list)),
    permissions=st.none() | st.builds(m.ApiKeyPermissions, read=st.booleans(), write=st.booleans()),
    created_at=st.none() | st.datetimes(timezones=st.just(UTC)),
)


@given(_keys)
def test_api_key_round_trip(key: m.ApiKey) -> None:
    assert strict_converter.structure(unstructure(key), m.ApiKey) == key
    assert "diffio_live_" not in repr(key)


def test_converter_is_shared_and_typed() -> None:
    assert converter.structure({"status": "running"}, m.Stage) == m.Stage(status="running")
