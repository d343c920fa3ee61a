"""Objects as upload sources and download sinks (``_media.object_source``,
``_media.object_sink``) and their content hash (``ledger._hashing.hash_object``), on the
local S3: reads at any offset re-open the object, a sink's object appears only when it is
committed, and a failed or cancelled one leaves no object and no multipart upload behind."""

from __future__ import annotations

import hashlib

import anyio
import pytest
from s3_server import Buckets
from shared import MIB

from diffio_async import DownloadError
from diffio_async._media.object_sink import PART_SIZE, object_sink
from diffio_async._media.object_source import object_media_source
from diffio_async._media.object_store import locate
from diffio_async.workflows.ledger._hashing import hash_object

pytestmark = pytest.mark.anyio

DATA = bytes(range(256)) * (3 * MIB // 256 + 7)


async def _read(stream: object) -> bytes:
    return b"".join([chunk async for chunk in stream])  # type: ignore[attr-defined]


async def test_a_media_source_reads_any_range_again(s3: Buckets) -> None:
    url = s3.put("in/take.wav", DATA)
    media = object_media_source(locate(url), size=len(DATA))
    assert (media.file_name, media.size) == ("take.wav", len(DATA))
    assert media.content_type == "audio/x-wav"
    assert not media.in_order  # era-B parts may read it concurrently
    assert await _read(media.open()) == DATA
    assert await _read(media.open(MIB + 5, 2 * MIB)) == DATA[MIB + 5 : 3 * MIB + 5]
    assert await _read(media.open()) == DATA  # a retry reads it afresh


async def test_a_media_source_whose_object_shrank_fails_the_upload(s3: Buckets) -> None:
    from diffio_async import UploadError

    url = s3.put("in/take.wav", DATA)
    media = object_media_source(locate(url), size=len(DATA) + 10)
    with pytest.raises(UploadError, match="shrank"):
        await _read(media.open())


async def test_hash_object_is_the_sha256_of_the_bytes(s3: Buckets) -> None:
    url = s3.put("in/take.wav", DATA)
    assert await hash_object(locate(url)) == (len(DATA), hashlib.sha256(DATA).hexdigest())
    with pytest.raises(FileNotFoundError, match="no such object"):
        await hash_object(locate(f"s3://{s3.source}/missing.wav"))


async def test_a_committed_sink_is_one_whole_object(s3: Buckets) -> None:
    target = locate(f"s3://{s3.output}/out/x.mp3")
    data = DATA * 3  # over two parts
    async with object_sink(target) as sink:
        for start in range(0, len(data), MIB):
            await sink.write(data[start : start + MIB])
        assert s3.keys(s3.output) == []  # nothing visible before the commit
    assert s3.get(target.url) == data
    assert s3.unfinished_uploads(s3.output) == []


async def test_a_restarted_sink_keeps_only_what_follows(s3: Buckets) -> None:
    target = locate(f"s3://{s3.output}/out/x.mp3")
    async with object_sink(target) as sink:
        await sink.write(b"x" * (PART_SIZE + 1))
        await sink.write(b"x" * PART_SIZE)  # a part is uploaded
        await sink.restart()
        await sink.write(b"fresh")
    assert s3.get(target.url) == b"fresh"
    assert s3.unfinished_uploads(s3.output) == []


async def test_a_failed_sink_leaves_no_object_and_no_upload(s3: Buckets) -> None:
    target = locate(f"s3://{s3.output}/out/x.mp3")
    s3.put("out/x.mp3", b"an earlier output", bucket=s3.output)
    with pytest.raises(RuntimeError, match="boom"):
        async with object_sink(target) as sink:
            await sink.write(b"y" * (2 * PART_SIZE + 1))  # parts in the bucket already
            raise RuntimeError("boom")
    assert s3.get(target.url) == b"an earlier output"  # never replaced by a partial one
    assert s3.unfinished_uploads(s3.output) == []


async def test_a_cancelled_sink_leaves_no_object_and_no_upload(s3: Buckets) -> None:
    target = locate(f"s3://{s3.output}/out/x.mp3")
    with anyio.CancelScope() as scope:
        async with object_sink(target) as sink:
            await sink.write(b"z" * (2 * PART_SIZE + 1))
            scope.cancel()
            await anyio.sleep(1)
    assert scope.cancelled_caught
    assert s3.keys(s3.output) == []
    assert s3.unfinished_uploads(s3.output) == []


async def test_a_sink_that_cannot_be_written_is_a_download_error(s3: Buckets) -> None:
    target = locate("s3://diffio-no-such-bucket-w2/out/x.mp3")
    with pytest.raises(DownloadError, match="diffio-no-such-bucket-w2"):
        async with object_sink(target) as sink:
            await sink.write(b"a" * (PART_SIZE + 1))


async def test_any_other_filesystem_is_read_through_fsspecs_buffered_file() -> None:
    import fsspec

    fsspec.filesystem("memory").pipe_file("/diffio-test/take.wav", DATA)
    target = locate("memory://diffio-test/take.wav")
    media = object_media_source(target, size=len(DATA))
    assert await _read(media.open(MIB - 3, MIB + 9)) == DATA[MIB - 3 : 2 * MIB + 6]
    assert await hash_object(target) == (len(DATA), hashlib.sha256(DATA).hexdigest())
