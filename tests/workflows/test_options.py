"""``RestoreOptions`` and ``BatchOptions``: checked when built, frozen, reusable, and refused
by ``restore``/``restore_many`` when they are anything else (before any request)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import attrs
import pytest
from shared import QUICK_POLL

from diffio_async import (
    MAX_CONCURRENCY,
    BatchOptions,
    InvalidRequestError,
    PollPolicy,
    RequestOptions,
    RestoreOptions,
)
from diffio_async.testing import EmulatedDiffio, emulated_diffio
from diffio_async.workflows._options import without_download_type


def test_the_defaults_are_the_documented_ones() -> None:
    options = RestoreOptions()
    assert (options.model, options.download_type, options.timeout) == (None, None, 1800.0)
    assert (options.sampling, options.params, options.poll) == (None, None, None)
    assert (options.project_params, options.file_format, options.content_type) == (None,) * 3
    batch = BatchOptions()
    assert (batch.concurrency, batch.transfer_concurrency, batch.transfers) == (8, None, 8)
    assert (batch.ledger, batch.retry_for, batch.on_collision) == (None, 900, "error")
    assert batch.polls_per_second == 100


def test_values_are_normalised_when_built() -> None:
    assert RestoreOptions(download_type=" MP3 ").download_type == "audio"
    assert RestoreOptions(timeout=None).timeout is None
    assert RestoreOptions(download_type=None).download_type is None
    assert RestoreOptions(file_format=" wav ").file_format == "wav"
    assert RestoreOptions(content_type="video/mp4").content_type == "video/mp4"
    assert BatchOptions(ledger=Path("/tmp/batch.sqlite")).ledger == "/tmp/batch.sqlite"
    assert BatchOptions(concurrency=2).transfers == 2
    assert BatchOptions(concurrency=2, transfer_concurrency=9).transfers == 9


def test_the_callers_dict_changed_later_does_not_change_the_options() -> None:
    sampling: dict[str, Any] = {"steps": 4, "nested": {"a": [1, 2]}}
    options = RestoreOptions(sampling=sampling)
    sampling["steps"] = 99
    sampling["nested"]["a"].append(3)
    assert options.sampling == {"steps": 4, "nested": {"a": [1, 2]}}


def test_options_are_frozen_comparable_and_hashable_even_with_sampling() -> None:
    options = RestoreOptions(model="diffio-2", sampling={"steps": 4})
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        options.model = "diffio-3.5"  # type: ignore[misc]
    assert options == RestoreOptions(model="diffio-2", sampling={"steps": 4})
    assert hash(options) == hash(RestoreOptions(model="diffio-2", sampling={"steps": 5}))
    assert len({BatchOptions(), BatchOptions(), BatchOptions(concurrency=3)}) == 2


def test_the_ledger_keys_on_what_decides_the_output() -> None:
    options = RestoreOptions(download_type="transcript", params={"p": 1}, timeout=5)
    assert options.generation_settings() == {"sampling": None, "params": {"p": 1}}
    # The wait's bounds do not change the output, so they do not change the ledger's key;
    # nor does the download type: one generation has every output (audio, video, transcript).
    for other in (attrs.evolve(options, timeout=9), attrs.evolve(options, download_type=None)):
        assert options.generation_settings() == other.generation_settings()
    # The project's settings decide the output too; they appear only when set, so the keys
    # of batches that never set them do not change.
    project = RestoreOptions(project_params={"a": 1}, file_format="wav", content_type="video/mp4")
    assert project.generation_settings() == {
        "sampling": None,
        "params": None,
        "projectParams": {"a": 1},
        "fileFormat": "wav",
        "contentType": "video/mp4",
    }


def test_a_recorded_download_type_is_set_aside() -> None:
    legacy = '{"downloadType":"audio","params":{"p":1},"sampling":null}'
    assert without_download_type(legacy) == {"params": {"p": 1}, "sampling": None}
    assert without_download_type('{"params":null}') == {"params": None}
    assert without_download_type("[1]") is None
    assert without_download_type("not json") is None


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: RestoreOptions(model="diffio-99"), "diffio-99"),
        (lambda: RestoreOptions(model=""), "model must be a non-empty string"),
        (lambda: RestoreOptions(model=3), "model must be a non-empty string"),
        (lambda: RestoreOptions(download_type="flac"), "download_type"),
        (lambda: RestoreOptions(download_type=""), "download_type"),
        (lambda: RestoreOptions(project_params=[1]), "project_params must be a mapping"),
        (lambda: RestoreOptions(project_params={"x": math.inf}), "project_params is not valid"),
        (lambda: RestoreOptions(file_format=""), "file_format must be a non-empty string"),
        (lambda: RestoreOptions(file_format=3), "file_format must be a non-empty string"),
        (lambda: RestoreOptions(content_type="video/mp4\n"), "content_type must be"),
        (lambda: RestoreOptions(content_type=b"video/mp4"), "content_type must be"),
        (lambda: RestoreOptions(sampling={"t": math.nan}), "sampling is not valid JSON"),
        (lambda: RestoreOptions(sampling={1: 2}), "keys must be strings"),
        (lambda: RestoreOptions(params="x"), "params must be a mapping"),
        (lambda: RestoreOptions(timeout=0), "timeout"),
        (lambda: RestoreOptions(timeout=math.inf), "timeout"),
        (lambda: RestoreOptions(timeout="5"), "timeout"),
        (lambda: RestoreOptions(poll=5), "poll must be a PollPolicy"),
        (lambda: BatchOptions(concurrency=MAX_CONCURRENCY + 1), "concurrency"),
        (lambda: BatchOptions(concurrency=True), "concurrency must be an int"),
        (lambda: BatchOptions(transfer_concurrency=0), "transfer_concurrency"),
        (lambda: BatchOptions(ledger=b"x.sqlite"), "ledger must be a path"),
        (lambda: BatchOptions(ledger=""), "ledger must be a non-empty path"),
        (lambda: BatchOptions(retry_for=math.nan), "retry_for"),
        (lambda: BatchOptions(retry_for="15m"), "retry_for"),
        (lambda: BatchOptions(on_collision="overwrite"), "on_collision"),
        (lambda: BatchOptions(polls_per_second=0), "polls_per_second"),
        (lambda: BatchOptions(polls_per_second=math.nan), "polls_per_second"),
        (lambda: BatchOptions(polls_per_second=None), "polls_per_second"),
    ],
)
def test_a_bad_value_is_refused_when_the_options_are_built(build: Any, message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        build()


def test_options_take_keywords_only() -> None:
    with pytest.raises(TypeError):
        RestoreOptions("diffio-2")  # type: ignore[misc]


@pytest.mark.anyio
async def test_something_other_than_the_options_objects_is_refused_before_any_request(
    diffio_env: EmulatedDiffio, tmp_path: Path
) -> None:
    source = tmp_path / "a.wav"
    source.write_bytes(b"RIFF" + bytes(64))
    wrong: list[Any] = [{"model": "diffio-2"}, RequestOptions(timeout=5), BatchOptions()]
    for options in wrong:
        with pytest.raises(InvalidRequestError, match="options must be a RestoreOptions"):
            await diffio_env.client.restore(source, output=tmp_path, options=options)
        with pytest.raises(InvalidRequestError, match="options must be a RestoreOptions"):
            async with diffio_env.client.restore_many(
                [source], output_dir=tmp_path, options=options
            ):
                pass
    with pytest.raises(InvalidRequestError, match="batch must be a BatchOptions"):
        async with diffio_env.client.restore_many(
            [source],
            output_dir=tmp_path,
            batch=RestoreOptions(),  # type: ignore[arg-type]
        ):
            pass
    assert list(diffio_env.emulator.requests) == []


@pytest.mark.anyio
async def test_one_options_object_serves_many_restores(tmp_path: Path) -> None:
    options = RestoreOptions(model="diffio-2", poll=QUICK_POLL)
    async with emulated_diffio(generation_seconds=0.05) as env:
        for name in ("a", "b"):
            source = tmp_path / f"{name}.wav"
            source.write_bytes(b"RIFF" + name.encode() * 64)
            result = await env.client.restore(
                source, output=tmp_path / f"{name}.mp3", options=options
            )
            assert result.output.read_bytes() == source.read_bytes()
        assert len(env.emulator.requests.find(path="/v1/diffio-2.0-generation")) == 2
    assert isinstance(options.poll, PollPolicy)
