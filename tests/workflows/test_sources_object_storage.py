"""``_sources.Walker`` with URLs, on fsspec's ``memory://`` (no network): objects and prefixes
as jobs keyed by URL, layouts mirrored onto an output on object storage, refusals, and the
collision rules applied to object outputs."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import fsspec
import pytest

from diffio_async import InvalidRequestError
from diffio_async._media.object_store import locate
from diffio_async.workflows._sources import Job, Walker

pytestmark = pytest.mark.anyio


@pytest.fixture
def memory() -> Iterator[fsspec.AbstractFileSystem]:
    fs = fsspec.filesystem("memory")
    fs.store.clear()
    fs.pseudo_dirs[:] = [""]
    yield fs
    fs.store.clear()
    fs.pseudo_dirs[:] = [""]


def _to_objects(suffix: str | None = ".mp3", on_collision: str = "error") -> Walker:
    out = locate("memory://out", what="output_dir")
    return Walker(
        PurePosixPath(out.path),
        suffix,
        on_collision,  # type: ignore[arg-type]
        output_store=out,
    )


async def _jobs(walker: Walker, sources: object) -> list[Job]:
    async with contextlib.aclosing(walker.jobs(sources)) as jobs:  # type: ignore[arg-type]
        return [job async for job in jobs]


async def test_a_prefix_is_mirrored_under_an_object_output(
    memory: fsspec.AbstractFileSystem,
) -> None:
    for name in ("in/x.wav", "in/a/y.wav", "in/a/b/z.flac", "in/.hidden.wav"):
        memory.pipe_file(f"/{name}", b"RIFF")
    memory.pipe_file("/in/empty.wav", b"")
    walker = _to_objects()
    jobs = await _jobs(walker, "memory://in")
    good = {job.key: walker.full_name(job.output) for job in jobs if job.refused is None}
    assert good == {
        "memory:///in/x.wav": "memory:///out/x.mp3",
        "memory:///in/a/y.wav": "memory:///out/a/y.mp3",
        "memory:///in/a/b/z.flac": "memory:///out/a/b/z.mp3",
    }
    assert all(job.stored is not None and job.size == 4 for job in jobs if job.refused is None)
    [refused] = [job for job in jobs if job.refused is not None]
    assert "empty.wav is empty" in str(refused.refused)


async def test_an_object_given_twice_is_one_job_and_a_missing_one_is_refused(
    memory: fsspec.AbstractFileSystem, tmp_path: Path
) -> None:
    memory.pipe_file("/in/x.wav", b"RIFF")
    walker = Walker(tmp_path / "out", None, "error")  # a local output folder
    jobs = await _jobs(walker, ["memory://in/x.wav", "memory://in/x.wav/", "memory://in/no.wav"])
    assert [job.key for job in jobs] == ["memory:///in/x.wav", "memory:///in/no.wav"]
    assert jobs[0].output == tmp_path / "out" / "x.wav"  # the served suffix comes later
    assert "no such object" in str(jobs[1].refused)


async def test_two_objects_wanting_one_output_collide_or_are_renamed(
    memory: fsspec.AbstractFileSystem,
) -> None:
    memory.pipe_file("/a/take.wav", b"RIFF")
    memory.pipe_file("/b/take.wav", b"RIFF")
    sources = ["memory://a/take.wav", "memory://b/take.wav"]
    walker = _to_objects()
    jobs = await _jobs(walker, sources)
    assert jobs[0].refused is None and jobs[1].refused is not None
    assert list(walker.clashes) == ["/out/take.mp3"]
    renamed = await _jobs(_to_objects(on_collision="rename"), sources)
    outputs = [job.output.name for job in renamed]
    assert outputs[0] == "take.mp3" and outputs[1].startswith("take-") and outputs[1] != "take.mp3"


async def test_the_output_prefix_inside_a_source_prefix_is_skipped_and_equal_refused(
    memory: fsspec.AbstractFileSystem,
) -> None:
    memory.pipe_file("/out/x.wav", b"RIFF")
    memory.pipe_file("/out/restored/x.mp3", b"RIFF")
    inner = locate("memory://out/restored", what="output_dir")
    walker = Walker(PurePosixPath(inner.path), ".mp3", "error", output_store=inner)
    assert [job.key for job in await _jobs(walker, "memory://out")] == ["memory:///out/x.wav"]
    with pytest.raises(InvalidRequestError, match="output_dir is the source folder"):
        await _jobs(_to_objects(), "memory://out")


async def test_an_object_restored_in_place_over_itself_is_refused(
    memory: fsspec.AbstractFileSystem,
) -> None:
    memory.pipe_file("/out/talk.mp3", b"ID3")
    memory.pipe_file("/out/talk.wav", b"RIFF")
    jobs = await _jobs(_to_objects(suffix=None), ["memory://out/talk.mp3"])
    assert "would overwrite the source" in str(jobs[0].refused)
    [safe] = await _jobs(_to_objects(suffix=None), ["memory://out/talk.wav"])
    assert safe.refused is None  # an audio upload comes back as MP3: talk.mp3, not itself
