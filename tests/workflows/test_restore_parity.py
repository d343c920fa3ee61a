"""Issue 9: the download type the API meant, and ``restore()`` at parity with the official
``restore_audio``: no download type by default (a video project gets its video, an audio
project its MP3, and output names follow what was served, in ``restore`` and in
``restore_many``), the project's ``params``/``fileFormat`` and the upload's content type, the
result in memory with ``output=None``, and ledgers written before the change resuming without
paying twice.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from bulk_helpers import collect
from shared import QUICK_POLL, sent

from diffio_async import (
    DownloadError,
    InvalidRequestError,
    RestoreError,
    RestoreOptions,
)
from diffio_async.testing import EmulatedDiffio, emulated_diffio
from diffio_async.workflows.ledger import Ledger, hash_file

pytestmark = pytest.mark.anyio

DOWNLOAD = "/v1/get_generation_download"
VIDEO = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 40
AUDIO = b"RIFF" + bytes(range(256)) * 30


@pytest.fixture(params=["a", "b"])
async def env(request: pytest.FixtureRequest) -> AsyncIterator[EmulatedDiffio]:
    async with emulated_diffio(era=request.param, generation_seconds=0.05) as env:
        yield env


def _write(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def _media_gets(env: EmulatedDiffio) -> list[str]:
    return [e.path for e in env.emulator.requests if e.method == "GET"]


# --- restore(): the server's default download type -------------------------------------------


async def test_a_video_project_restored_with_defaults_gets_its_video(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    source = _write(tmp_path / "clip.mp4", VIDEO)  # uploaded as video/mp4: the project has video
    options = RestoreOptions(poll=QUICK_POLL)
    result = await env.client.restore(source, output=tmp_path / "clean.mp3", options=options)
    # The name follows what was served: a video, in the source's container.
    assert result.output == tmp_path / "clean.mp4" and result.output.read_bytes() == VIDEO
    assert not (tmp_path / "clean.mp3").exists()
    assert (result.download_type, result.mime_type) == ("video", "video/mp4")
    assert result.file_name == "diffio_ai_clip.mp4"
    [body] = sent(env, DOWNLOAD)
    assert "downloadType" not in body  # the field is left out: the server's default
    [created] = sent(env, "/v1/create_project")
    assert created["contentType"] == "video/mp4"
    assert any("restored_video" in path for path in _media_gets(env))
    # Into a folder, the server's own name.
    again = await env.client.restore(source, output=f"{tmp_path}/out/", options=options)
    assert again.output == tmp_path / "out" / "diffio_ai_clip.mp4"


async def test_an_audio_project_restored_with_defaults_gets_the_mp3(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    source = _write(tmp_path / "talk.wav", AUDIO)
    result = await env.client.restore(
        source, output=tmp_path / "talk-clean", options=RestoreOptions(poll=QUICK_POLL)
    )
    assert result.output == tmp_path / "talk-clean.mp3" and result.output.read_bytes() == AUDIO
    assert (result.download_type, result.mime_type) == ("audio", "audio/mpeg")


async def test_an_explicit_download_type_is_asked_for_and_the_path_kept(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    source = _write(tmp_path / "clip.mp4", VIDEO)
    for download_type, sent_type in (("mp3", "audio"), ("video", "video")):
        options = RestoreOptions(poll=QUICK_POLL, download_type=download_type)
        output = tmp_path / f"{download_type}.bin"
        result = await env.client.restore(source, output=output, options=options)
        assert result.output == output and result.download_type == sent_type
    assert [body["downloadType"] for body in sent(env, DOWNLOAD)] == ["audio", "video"]


# --- restore(): project params, file format, content type ------------------------------------


async def test_project_params_file_format_and_content_type_go_to_create_project(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    source = _write(tmp_path / "capture.bin", VIDEO)  # no media type from the name
    options = RestoreOptions(
        poll=QUICK_POLL,
        project_params={"room": "hall"},
        file_format="mp4",
        content_type="video/mp4",
        params={"prompt": "voice"},
    )
    result = await env.client.restore(source, output=tmp_path / "clean", options=options)
    [created] = sent(env, "/v1/create_project")
    assert created["contentType"] == "video/mp4"
    assert created["fileFormat"] == "mp4"
    assert created["params"] == {"room": "hall"}
    generation_bodies = [
        e.json for e in env.emulator.requests if e.path.endswith("-generation") and e.json
    ]
    assert generation_bodies[0]["params"] == {"prompt": "voice"}
    # The content type made it a video project: the default download is its video.
    assert result.download_type == "video"
    uploads = [e for e in env.emulator.requests if e.method == "PUT"]
    if env.emulator.era == "a":  # the signed PUT declares the content type it was signed for
        assert uploads[0].header("content-type") == "video/mp4"


# --- restore(output=None): the bytes in memory --------------------------------------------------


async def test_output_none_returns_the_bytes_and_leaves_no_file(
    env: EmulatedDiffio, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    source = _write(tmp_path / "talk.wav", AUDIO)
    result = await env.client.restore(source, output=None, options=RestoreOptions(poll=QUICK_POLL))
    assert result.output is None and result.content == AUDIO
    assert (result.download_type, result.file_name) == ("audio", "diffio_ai_talk.mp3")
    assert f"<{len(AUDIO)} bytes>" in repr(result) and repr(AUDIO[:8]) not in repr(result)
    assert list(scratch.iterdir()) == []  # the private temp folder is gone


async def test_a_result_over_max_bytes_is_refused_and_nothing_is_kept(
    env: EmulatedDiffio, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    source = _write(tmp_path / "talk.wav", AUDIO)
    with pytest.raises(RestoreError) as info:
        await env.client.restore(
            source, output=None, max_bytes=1000, options=RestoreOptions(poll=QUICK_POLL)
        )
    assert info.value.stage == "download" and info.value.generation_id is not None
    assert isinstance(info.value.__cause__, DownloadError)
    assert "max_bytes" in str(info.value) and "output=" in str(info.value)
    assert list(scratch.iterdir()) == []
    # At the limit exactly, it fits.
    fits = await env.client.restore(
        source, output=None, max_bytes=len(AUDIO), options=RestoreOptions(poll=QUICK_POLL)
    )
    assert fits.content == AUDIO


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"output": "OUT", "max_bytes": 10}, "max_bytes bounds a result kept in memory"),
        ({"output": None, "max_bytes": 0}, "max_bytes must be at least 1"),
        ({"output": None, "max_bytes": 1.5}, "max_bytes must be an int"),
    ],
)
async def test_bad_output_arguments_are_refused_before_any_request(
    env: EmulatedDiffio, tmp_path: Path, arguments: dict[str, object], message: str
) -> None:
    source = _write(tmp_path / "talk.wav", AUDIO)
    if arguments["output"] == "OUT":
        arguments = {**arguments, "output": tmp_path / "x.mp3"}
    with pytest.raises(InvalidRequestError, match=message):
        await env.client.restore(source, **arguments)  # type: ignore[arg-type]
    assert list(env.emulator.requests) == []


# --- restore_many: names follow what was served ------------------------------------------------


async def test_restore_many_with_defaults_names_each_output_after_what_was_served(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    _write(tmp_path / "in" / "clip.mp4", VIDEO)
    _write(tmp_path / "in" / "sub" / "talk.wav", AUDIO)
    ledger = tmp_path / "batch.sqlite"
    results = await collect(env, tmp_path / "in", tmp_path / "out", ledger=ledger)
    assert all(r.ok for r in results)
    outputs = {Path(r.source).name: r.output for r in results}
    assert outputs == {
        "clip.mp4": tmp_path / "out" / "clip.mp4",
        "talk.wav": tmp_path / "out" / "sub" / "talk.mp3",
    }
    assert (tmp_path / "out" / "clip.mp4").read_bytes() == VIDEO
    assert (tmp_path / "out" / "sub" / "talk.mp3").read_bytes() == AUDIO
    assert all("downloadType" not in body for body in sent(env, DOWNLOAD))
    # The ledger records the names written; a rerun finds them and skips both.
    async with await Ledger.open(ledger) as opened:
        recorded = {Path(e.source).name: e.output_path for e in await opened.entries()}
    assert recorded == {name: str(path) for name, path in outputs.items()}
    again = await collect(env, tmp_path / "in", tmp_path / "out", ledger=ledger)
    assert all(r.skipped for r in again)
    assert {Path(r.source).name: r.output for r in again} == outputs
    assert len(env.emulator.generation_ids) == 2


async def test_restore_many_refuses_a_source_its_served_output_could_overwrite(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    """With the server choosing the suffix, ``out/clip.mp4`` may be the video's output."""
    source = _write(tmp_path / "out" / "clip.mp4", VIDEO)
    [result] = await collect(env, [source], tmp_path / "out")
    assert not result.ok and "overwrite the source" in str(result.error)
    assert source.read_bytes() == VIDEO and len(env.emulator.generation_ids) == 0


async def test_switching_the_download_type_reuses_the_generation(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    """The download type no longer keys the ledger: one generation has every output."""
    source = _write(tmp_path / "in" / "talk.wav", AUDIO)
    ledger = tmp_path / "batch.sqlite"
    [first] = await collect(env, [source], tmp_path / "out", ledger=ledger)
    [second] = await collect(
        env, [source], tmp_path / "out", ledger=ledger, download_type="transcript"
    )
    assert first.ok and second.ok and second.output == tmp_path / "out" / "talk.json"
    assert len(env.emulator.generation_ids) == 1
    assert len(env.emulator.requests.find(path="/v1/create_project")) == 1


# --- a ledger written before the change (its settings hold "downloadType": "audio") ----------


LEGACY = {"downloadType": "audio", "sampling": None, "params": None}
"""What ``generation_settings()`` gave before the download type defaulted to ``None``."""


async def test_a_batch_started_before_the_change_resumes_without_paying_twice(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    """Three files as an older version left them: one downloaded, one whose generation was
    created (the run was killed while it waited), one uploaded. The resumed batch uploads
    nothing, creates only the missing generation and never a second one of a created one."""
    names = ("done.wav", "waiting.wav", "uploaded.wav")
    sources = {name: _write(tmp_path / "in" / name, AUDIO + name.encode()) for name in names}
    out = tmp_path / "out"
    out.mkdir()
    ledger_path = tmp_path / "batch.sqlite"
    model = "diffio-3.5" if env.emulator.era == "a" else "diffio-4.6-flash"
    async with await Ledger.open(ledger_path) as ledger:
        for name, path in sources.items():
            key = str(path.resolve())
            size, digest = await hash_file(key)
            entry = await ledger.register(
                key, size=size, content_hash=digest, model="auto", options=LEGACY
            )
            project = await env.client.projects.create(path)
            entry = await ledger.record(key, state="uploaded", project_id=project.api_project_id)
            if name == "uploaded.wav":
                continue
            assert entry.idempotency_key is not None
            generation = await env.client.generations.create(
                project, model=model, idempotency_key=entry.idempotency_key
            )
            await ledger.record(key, state="generation_created", generation_id=generation.id)
            if name == "done.wav":
                await generation.wait(poll=QUICK_POLL)
                written = await generation.download(out / "done.mp3", download_type="audio")
                await ledger.record(key, state="complete")
                await ledger.record(key, state="downloaded", output_path=str(written))
    before_generations = list(env.emulator.generation_ids)
    env.emulator.requests.clear()

    results = await collect(env, list(sources.values()), out, ledger=ledger_path)
    by_name = {Path(r.source).name: r for r in results}
    assert all(r.ok for r in results)
    assert by_name["done.wav"].skipped and by_name["done.wav"].output == out / "done.mp3"
    assert not by_name["waiting.wav"].skipped
    assert by_name["waiting.wav"].generation_id == before_generations[1]
    assert env.emulator.requests.find(path="/v1/create_project") == []
    # One generation created: the uploaded file's. The waiting file's was not asked for again
    # (its entry, key and generation were kept). (Era B: a resumed item whose era is unknown
    # may first try the era A model and get a 410, which creates nothing.)
    creates = [e for e in env.emulator.requests if e.path.endswith("-generation")]
    assert [e.status for e in creates if e.status != 410] == [200]
    assert len({e.json["apiProjectId"] for e in creates if e.json}) == 1
    assert len(env.emulator.generation_ids) == len(before_generations) + 1
    for name in names:
        assert (out / name.replace(".wav", ".mp3")).read_bytes() == AUDIO + name.encode()


# --- review of issue 9: a served suffix never replaces a file nobody named --------------------


async def test_restore_never_replaces_its_source_under_a_served_suffix(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    """Fixed (review of issue 9): ``restore("clip.mp4", output="clip.mp3")`` with the default
    download type gets the video, renames the output to ``clip.mp4`` and replaces the source
    recording with the restored one (restore_many refuses this layout; restore does not)."""
    source = _write(tmp_path / "clip.mp4", VIDEO)
    before = source.stat().st_ino
    options = RestoreOptions(poll=QUICK_POLL)
    try:
        result = await env.client.restore(source, output=tmp_path / "clip.mp3", options=options)
    except (InvalidRequestError, RestoreError):
        pass  # refused (best before any request): fine
    else:
        assert result.output != source
    assert source.stat().st_ino == before, "the source file was replaced"
    assert source.read_bytes() == VIDEO


async def test_restore_never_replaces_another_file_under_a_served_suffix(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    """Fixed (review of issue 9): the caller named ``take.mp3``; the served suffix turns it
    into ``take.mp4`` and an existing ``take.mp4`` (another recording) is silently replaced."""
    source = _write(tmp_path / "in" / "clip.mp4", VIDEO)
    other = _write(tmp_path / "take.mp4", b"another recording, not to be lost")
    options = RestoreOptions(poll=QUICK_POLL)
    with contextlib.suppress(InvalidRequestError, RestoreError):  # refused: fine
        await env.client.restore(source, output=tmp_path / "take.mp3", options=options)
    assert other.read_bytes() == b"another recording, not to be lost"


async def test_restore_many_in_place_with_a_video_content_type_never_replaces_the_source(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    """Fixed (review of issue 9): ``_may_be_served_as`` guesses from the name alone that
    ``capture.wav`` comes back as MP3, but ``content_type="video/mp4"`` makes it a video
    project; its video is served under the source's name and replaces the source."""
    source = _write(tmp_path / "in" / "capture.wav", VIDEO)
    before = source.stat().st_ino
    [result] = await collect(env, [source], tmp_path / "in", content_type="video/mp4")
    assert source.stat().st_ino == before, "the source file was replaced"
    assert not result.ok or result.output != source


async def test_a_transcript_the_ledger_recorded_is_not_taken_for_the_default_output(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    """Fixed (review of issue 9): after a run with ``download_type="transcript"`` (out/talk.json
    recorded), a run with the default type matches the recorded name without its suffix and
    reports the item skipped with ``talk.json`` as its output: the MP3 is never downloaded."""
    source = _write(tmp_path / "in" / "talk.wav", AUDIO)
    ledger = tmp_path / "batch.sqlite"
    out = tmp_path / "out"
    [first] = await collect(env, [source], out, ledger=ledger, download_type="transcript")
    assert first.ok and first.output == out / "talk.json"
    [second] = await collect(env, [source], out, ledger=ledger)
    assert second.ok and second.output == out / "talk.mp3"
    assert (out / "talk.mp3").read_bytes() == AUDIO
    assert len(env.emulator.generation_ids) == 1  # and never paid twice


async def test_an_mp3_the_ledger_recorded_for_a_video_is_not_taken_for_its_video(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    """Fixed (review of issue 9): a video project restored once as audio (explicitly, or by a
    version whose default was audio: every older ledger) is skipped by a default run, which
    reports ``clip.mp3``: the issue's point (a video project gets its video) never happens on
    an existing ledger."""
    source = _write(tmp_path / "in" / "clip.mp4", VIDEO)
    ledger = tmp_path / "batch.sqlite"
    out = tmp_path / "out"
    [first] = await collect(env, [source], out, ledger=ledger, download_type="audio")
    assert first.ok and first.output == out / "clip.mp3"
    [second] = await collect(env, [source], out, ledger=ledger)
    assert second.ok and second.output == out / "clip.mp4"
    assert (out / "clip.mp4").read_bytes() == VIDEO
    assert len(env.emulator.generation_ids) == 1


async def test_a_served_suffix_replaces_only_a_media_suffix(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    """Fixed (review of issue 9): ``Path.with_suffix`` takes whatever follows the last dot for
    a suffix: outputs ``take.1`` and ``take.2`` both become ``take.mp3`` (the second restore
    silently replaces the first, both paid for), ``interview.2024-05-01`` becomes
    ``interview.mp3``."""
    options = RestoreOptions(poll=QUICK_POLL)
    outputs = []
    for number in (1, 2):
        source = _write(tmp_path / "in" / f"take{number}.wav", AUDIO + bytes([number]))
        output = tmp_path / f"take.{number}"
        result = await env.client.restore(source, output=output, options=options)
        assert result.output is not None
        outputs.append(result.output)
    assert outputs[0] != outputs[1]
    assert [path.read_bytes() for path in outputs] == [AUDIO + b"\x01", AUDIO + b"\x02"]


async def test_a_folder_where_a_served_output_should_go_is_never_written_into(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    """Fixed (review of issue 9): with ``out/talk.mp3/`` a folder, talk.wav's served output
    (planned as ``out/talk.wav``, checked as such by ``_prepare_output``) becomes
    ``out/talk.mp3``, which the download treats as a folder: the item reports success with
    ``out/talk.mp3/diffio_ai_talk.mp3``. A video source in the same situation is refused
    (IsADirectoryError): the audio one should be too."""
    _write(tmp_path / "in" / "talk.wav", AUDIO)
    (tmp_path / "out" / "talk.mp3").mkdir(parents=True)
    [result] = await collect(env, tmp_path / "in", tmp_path / "out")
    assert list((tmp_path / "out" / "talk.mp3").iterdir()) == []
    assert not result.ok


async def test_an_output_that_could_be_the_source_is_refused_before_any_request(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    """The source under any served suffix (``clip.mp3`` -> ``clip.mp4``), through a link, or
    (with an explicit type) the source itself: refused up front, nothing created."""
    source = _write(tmp_path / "clip.mp4", VIDEO)
    (tmp_path / "link").symlink_to(tmp_path)
    refused = [
        (tmp_path / "clip.mp3", None),
        (tmp_path / "clip", None),
        (tmp_path / "link" / "clip.wav", None),
        (tmp_path / "clip.mp4", "video"),
    ]
    for output, download_type in refused:
        options = RestoreOptions(poll=QUICK_POLL, download_type=download_type)
        with pytest.raises(InvalidRequestError, match="over the source"):
            await env.client.restore(source, output=output, options=options)
    mp3 = _write(tmp_path / "talk.mp3", AUDIO)  # audio comes back as MP3: talk.wav is its
    with pytest.raises(InvalidRequestError, match="over the source"):
        await env.client.restore(mp3, output=tmp_path / "talk.wav", options=RestoreOptions())
    assert env.emulator.requests.find(path="/v1/create_project") == []
    assert source.read_bytes() == VIDEO
    kept = RestoreOptions(poll=QUICK_POLL, download_type="audio")
    result = await env.client.restore(source, output=tmp_path / "clip.mp3", options=kept)
    assert result.output == tmp_path / "clip.mp3" and source.read_bytes() == VIDEO


async def test_an_output_folder_named_like_the_source_is_not_taken_for_the_source(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    """Second review of issue 9: ``restore("clip.mp4", output="clip/")`` (a folder, created by
    the download, that takes the server's file name) is refused as "could be written over the
    source": ``_may_replace_source`` reads the new folder ``clip/`` as the file name ``clip``
    and ``clip.mp4`` as its served name. A folder output is never the source."""
    source = _write(tmp_path / "clip.mp4", VIDEO)
    options = RestoreOptions(poll=QUICK_POLL)
    result = await env.client.restore(source, output=f"{tmp_path}/clip/", options=options)
    assert result.output is not None and result.output.parent == tmp_path / "clip"
    assert result.output.read_bytes() == VIDEO
    assert source.read_bytes() == VIDEO
