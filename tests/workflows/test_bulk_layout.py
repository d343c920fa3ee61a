"""restore_many over odd layouts: one item per file, one output per item, walks that end.

Every test runs against the loopback emulator and checks what it saw: the generations it
created and the requests it got, next to the files written.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from bulk_helpers import collect

from diffio_async import InvalidRequestError, OutputCollisionError
from diffio_async.testing import EmulatedDiffio, emulated_diffio

pytestmark = pytest.mark.anyio


@pytest.fixture
async def env() -> AsyncIterator[EmulatedDiffio]:
    async with emulated_diffio(generation_seconds=0.05) as env:
        yield env


def _write(path: Path, content: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def _outputs(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not path.name.startswith(".")
    }


def _api_requests(env: EmulatedDiffio) -> list[str]:
    return [entry.path for entry in env.emulator.requests if entry.path.startswith("/v1/")]


async def test_an_odd_layout_restores_every_regular_file_exactly_once_to_its_own_output(
    env: EmulatedDiffio, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    src = tmp_path / "src"
    files = {
        "a/x.wav": _write(src / "a" / "x.wav", b"RIFF-a-x"),  # same basename,
        "b/x.wav": _write(src / "b" / "x.wav", b"RIFF-b-x"),  # other folder
        "take.wav": _write(src / "take.wav", b"RIFF-take-wav"),  # same stem,
        "take.flac": _write(src / "take.flac", b"fLaC-take-flac"),  # other extension
        "nested/deep/y.wav": _write(src / "nested" / "deep" / "y.wav", b"RIFF-deep"),
    }
    other = _write(tmp_path / "other" / "x.wav", b"RIFF-other-x")  # given directly
    (src / "loop").symlink_to(src, target_is_directory=True)  # a symlink loop
    (src / "nested" / "deep" / "up").symlink_to(src / "nested", target_is_directory=True)
    os.mkfifo(src / "pipe.wav")  # a FIFO: refused, never read
    out = src / "restored"  # output_dir inside the source folder
    _write(out / "leftover.mp3", b"an output of an earlier run")  # must not be restored

    results = await collect(
        env,
        [
            "src",  # relative folder
            str(files["a/x.wav"]),  # a file of the folder again, absolute
            "src/a/x.wav",  # and relative
            other,
            other,  # listed twice
        ],
        out,
        on_collision="rename",
    )

    failed = [r for r in results if not r.ok]
    assert [(Path(r.source).name, r.stage, type(r.error)) for r in failed] == [
        ("pipe.wav", "source", InvalidRequestError)
    ]
    assert len([r for r in results if r.ok]) == 6
    # One generation per distinct regular file, and nothing else was restored.
    assert len(env.emulator.generation_ids) == 6
    assert _api_requests(env).count("/v1/create_project") == 6
    written = _outputs(out)
    written.pop("leftover.mp3")
    assert sorted(written.values()) == sorted(
        [*(p.read_bytes() for p in files.values()), other.read_bytes()]
    )  # each file's bytes came back exactly once: nothing overwritten
    assert written["a/x.mp3"] == b"RIFF-a-x"
    assert written["b/x.mp3"] == b"RIFF-b-x"
    assert written["nested/deep/y.mp3"] == b"RIFF-deep"
    assert written["x.mp3"] == b"RIFF-other-x"
    takes = sorted(name for name in written if name.startswith("take"))
    assert len(takes) == 2 and all(name.startswith("take-") for name in takes)
    assert {written[name] for name in takes} == {b"RIFF-take-wav", b"fLaC-take-flac"}
    assert (out / "leftover.mp3").read_bytes() == b"an output of an earlier run"


async def test_clashing_outputs_are_refused_before_anything_is_created(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    a = _write(tmp_path / "a" / "x.wav", b"RIFF-1")
    b = _write(tmp_path / "b" / "x.wav", b"RIFF-2")
    take_wav = _write(tmp_path / "take.wav", b"RIFF-3")
    take_flac = _write(tmp_path / "take.flac", b"RIFF-4")
    fine = _write(tmp_path / "fine.wav", b"RIFF-5")
    # The default download type: the server picks each output's suffix, so outputs are
    # compared by their names without suffix (shown as "x.*").
    with pytest.raises(OutputCollisionError) as info:
        await collect(env, [a, b, take_wav, take_flac, fine], tmp_path / "out")
    assert info.value.clashes == {
        str(tmp_path / "out" / "x.*"): (str(a), str(b)),
        str(tmp_path / "out" / "take.*"): (str(take_wav), str(take_flac)),
    }
    assert "x.*" in str(info.value) and "rename" in str(info.value)
    # An explicit download type names the outputs exactly.
    with pytest.raises(OutputCollisionError) as info:
        await collect(
            env, [a, b, take_wav, take_flac, fine], tmp_path / "out", download_type="audio"
        )
    assert info.value.clashes == {
        str(tmp_path / "out" / "x.mp3"): (str(a), str(b)),
        str(tmp_path / "out" / "take.mp3"): (str(take_wav), str(take_flac)),
    }
    assert _api_requests(env) == []


async def test_two_folders_with_the_same_layout_collide(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    for name in ("monday", "tuesday"):
        _write(tmp_path / name / "mic1" / "take.wav", name.encode())
    with pytest.raises(OutputCollisionError, match=r"mic1/take\.\*"):
        await collect(env, [tmp_path / "monday", tmp_path / "tuesday"], tmp_path / "out")
    assert _api_requests(env) == []


async def test_renamed_outputs_do_not_depend_on_the_order_of_the_sources(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    a = _write(tmp_path / "a" / "x.wav", b"RIFF-1")
    b = _write(tmp_path / "b" / "x.wav", b"RIFF-2")
    first = await collect(env, [a, b], tmp_path / "out", on_collision="rename")
    second = await collect(env, [b, a], tmp_path / "out2", on_collision="rename")
    names = {r.source: r.output.name for r in first if r.output}
    assert names == {r.source: r.output.name for r in second if r.output}
    assert len(set(names.values())) == 2 and "x.mp3" not in names.values()


async def test_in_a_lazy_batch_the_later_clashing_source_fails_on_its_own(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    a = _write(tmp_path / "a" / "x.wav", b"RIFF-1")
    b = _write(tmp_path / "b" / "x.wav", b"RIFF-2")

    def lazily() -> Iterator[Path]:
        yield a
        yield b

    results = await collect(env, lazily(), tmp_path / "out", concurrency=1)
    by_source = {r.source: r for r in results}
    assert by_source[str(a)].ok
    refused = by_source[str(b)]
    assert not refused.ok and refused.stage == "source"
    assert isinstance(refused.error, OutputCollisionError)
    assert len(env.emulator.generation_ids) == 1
    assert (tmp_path / "out" / "x.mp3").read_bytes() == b"RIFF-1"


async def test_one_file_given_many_ways_is_one_item(
    env: EmulatedDiffio, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = _write(tmp_path / "in" / "talk.wav", b"RIFF-talk")
    os.link(path, tmp_path / "in" / "hardlink.wav")
    (tmp_path / "in" / "symlink.wav").symlink_to(path)
    sources = [path, "in/talk.wav", f"{tmp_path}/in/../in/talk.wav", tmp_path / "in"]
    results = await collect(env, sources, tmp_path / "out")
    assert [r.ok for r in results] == [True]
    assert len(env.emulator.generation_ids) == 1


async def test_a_folder_that_links_to_itself_is_walked_once(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    _write(src / "one.wav", b"RIFF-one")
    (src / "self").symlink_to(src, target_is_directory=True)
    (src / "again").symlink_to(src, target_is_directory=True)
    results = await collect(env, src, tmp_path / "out")
    assert [(r.ok, Path(r.source).name) for r in results] == [(True, "one.wav")]
    assert len(env.emulator.generation_ids) == 1


async def test_an_output_dir_equal_to_the_source_folder_is_refused(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    _write(tmp_path / "in" / "a.wav", b"RIFF")
    with pytest.raises(InvalidRequestError, match="source folder"):
        await collect(env, tmp_path / "in", tmp_path / "in")
    assert _api_requests(env) == []


async def test_an_output_that_would_overwrite_its_source_is_refused(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    source = _write(tmp_path / "out" / "x.mp3", b"ID3 original")
    results = await collect(env, [source], tmp_path / "out")
    assert [(r.ok, r.stage) for r in results] == [(False, "source")]
    assert "overwrite" in str(results[0].error)
    assert source.read_bytes() == b"ID3 original"
    assert _api_requests(env) == []


async def test_broken_links_empty_and_missing_files_and_non_paths_fail_as_items_without_requests(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "dangling.wav").symlink_to(tmp_path / "nowhere.wav")
    (src / "empty.wav").write_bytes(b"")

    async def lazily() -> AsyncIterator[object]:
        yield src
        yield tmp_path / "missing.wav"
        yield 42
        yield b"bytes/path.wav"

    results = await collect(env, lazily(), tmp_path / "out")
    assert [(r.ok, r.stage, type(r.error)) for r in results] == [
        (False, "source", InvalidRequestError)
    ] * 5
    assert any("empty" in str(r.error) for r in results)
    assert _api_requests(env) == []


async def test_a_file_output_where_another_output_needs_a_folder_collides(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    _write(src / "x.wav", b"RIFF-file")  # -> out/x.mp3
    _write(src / "x.mp3" / "y.wav", b"RIFF-inside")  # -> out/x.mp3/y.mp3
    with pytest.raises(OutputCollisionError, match=r"x\.mp3"):
        await collect(env, src, tmp_path / "out")
    assert _api_requests(env) == []


async def test_with_served_suffixes_a_folder_collides_only_with_what_it_could_be(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    """The default download type: ``x.wav``'s output may be ``x.mp3`` or ``x.mp4``, so a folder
    ``x.mp4`` collides with it, but a folder ``interviews`` never meets ``interviews.mp3``."""
    src = tmp_path / "src"
    _write(src / "x.wav", b"RIFF-file")
    _write(src / "x.mp4" / "y.wav", b"RIFF-inside")
    with pytest.raises(OutputCollisionError, match=r"x\.mp4/y\.\*"):
        await collect(env, src, tmp_path / "out")
    assert _api_requests(env) == []
    fine = tmp_path / "fine"
    _write(fine / "interviews.wav", b"RIFF-all")
    _write(fine / "interviews" / "one.wav", b"RIFF-one")
    results = await collect(env, fine, tmp_path / "out")
    assert sorted(str(r.output.relative_to(tmp_path / "out")) for r in results if r.output) == [
        "interviews.mp3",
        "interviews/one.mp3",
    ]


async def test_names_that_differ_only_in_case_or_normalisation_collide(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    upper = _write(tmp_path / "a" / "Take.wav", b"RIFF-1")
    lower = _write(tmp_path / "b" / "take.wav", b"RIFF-2")
    composed = _write(tmp_path / "c" / "caf\u00e9.wav", b"RIFF-3")
    decomposed = _write(tmp_path / "d" / "cafe\u0301.wav", b"RIFF-4")
    with pytest.raises(OutputCollisionError) as info:
        await collect(env, [upper, lower, composed, decomposed], tmp_path / "out")
    assert len(info.value.clashes) == 2
    assert _api_requests(env) == []


async def test_a_rename_never_lands_on_a_name_another_source_takes(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    a = _write(tmp_path / "a" / "x.wav", b"RIFF-1")
    b = _write(tmp_path / "b" / "x.wav", b"RIFF-2")
    literal = _write(tmp_path / "c" / f"x-{_rename_hash(a)}.wav", b"RIFF-3")  # a's new name
    for number, sources in enumerate(([a, b, literal], [literal, a, b])):
        out = tmp_path / f"out-{number}"
        results = await collect(env, sources, out, on_collision="rename")
        assert all(r.ok for r in results)
        assert sorted(_outputs(out).values()) == [b"RIFF-1", b"RIFF-2", b"RIFF-3"]


def _rename_hash(path: Path) -> str:
    return hashlib.sha256(os.path.realpath(path).encode()).hexdigest()[:8]


async def test_names_that_cannot_be_outputs_fail_as_items_before_any_request(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    _write(src / ("n" * 253), b"RIFF-long")  # + ".mp3" is over 255 bytes
    _write(Path(os.fsdecode(os.fsencode(src) + b"/\xff-latin1.wav")), b"RIFF-latin1")
    results = await collect(env, src, tmp_path / "out", ledger=tmp_path / "batch.sqlite")
    assert sorted((r.ok, r.stage) for r in results) == [(False, "source"), (False, "source")]
    messages = " ".join(str(r.error) for r in results)
    assert "255 bytes" in messages and "UTF-8" in messages
    assert all(r.source.isprintable() for r in results)
    assert _api_requests(env) == []


async def test_a_lazy_batch_whose_output_dir_is_a_source_folder_raises_the_plain_error(
    env: EmulatedDiffio, tmp_path: Path
) -> None:
    _write(tmp_path / "in" / "a.wav", b"RIFF")

    async def lazily() -> AsyncIterator[Path]:
        yield tmp_path / "in"

    with pytest.raises(InvalidRequestError, match="source folder"):
        await collect(env, lazily(), tmp_path / "in")
    assert _api_requests(env) == []
