"""``_media.object_store``: which filesystem a URL names (no request), what is at a path, and
a folder listed one level at a time; on fsspec's ``memory://`` and on the local S3."""

from __future__ import annotations

import fsspec
import pytest
from s3_server import SECRET, Buckets

from diffio_async import ConfigurationError, InvalidRequestError
from diffio_async._media.object_store import (
    is_url,
    list_folder,
    locate,
    object_exists,
    shown_url,
    stat_object,
)


@pytest.fixture
def memory() -> fsspec.AbstractFileSystem:
    fs = fsspec.filesystem("memory")
    fs.store.clear()
    fs.pseudo_dirs.clear()
    fs.pseudo_dirs.append("")
    return fs


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("s3://bucket/key.wav", True),
        ("gs://b/k", True),
        ("memory://x", True),
        ("file:///tmp/x.wav", True),
        ("/tmp/x.wav", False),
        ("relative/x:y.wav", False),
        ("C:\\audio\\x.wav", False),
        (b"s3://bucket/key", False),
        (None, False),
    ],
)
def test_is_url(value: object, expected: bool) -> None:
    assert is_url(value) is expected


def test_shown_url_drops_credentials_query_and_fragment() -> None:
    assert shown_url(f"s3://user:{SECRET}@bucket/k.wav?versionId=3#x") == "s3://bucket/k.wav"
    assert shown_url("s3://bucket/a@b.wav") == "s3://bucket/a@b.wav"


def test_locate_normalises_without_a_request() -> None:
    target = locate("S3://bucket-z/in/take.wav/")
    assert (target.protocol, target.path, target.url) == ("s3", "bucket-z/in/take.wav", target.url)
    assert target.url == "s3://bucket-z/in/take.wav"
    assert "fs" not in repr(target)
    assert target.at("bucket-z/other").url == "s3://bucket-z/other"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3://", "names no bucket"),
        ("s3:///", "names no bucket"),
        ("nosuchproto://bucket/x", "unknown protocol 'nosuchproto'"),
    ],
)
def test_locate_refuses_a_bad_url(url: str, message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        locate(url)


def test_a_protocol_whose_package_is_missing_is_a_configuration_error() -> None:
    # fsspec knows "gs" but gcsfs is not installed here: the error says what is missing.
    pytest.importorskip("fsspec")
    try:
        import gcsfs  # noqa: F401
    except ModuleNotFoundError:
        with pytest.raises(ConfigurationError, match="gcsfs"):
            locate("gs://bucket/x.wav")
    else:  # pragma: no cover - gcsfs installed
        pytest.skip("gcsfs is installed")


def test_stat_and_list_one_folder_at_a_time(memory: fsspec.AbstractFileSystem) -> None:
    memory.pipe_file("/in/b.wav", b"bb")
    memory.pipe_file("/in/a.wav", b"a")
    memory.pipe_file("/in/.hidden.wav", b"h")
    memory.pipe_file("/in/sub/c.wav", b"ccc")
    root = locate("memory://in")
    assert stat_object(root) == ("dir", 0, None)
    assert stat_object(root.at("/in/b.wav")) == ("file", 2, None)
    assert stat_object(root.at("/in/nope.wav"))[0] == "missing"
    listing = list_folder(root)
    assert not isinstance(listing, str)
    assert [(e.path, e.kind, e.size) for e in listing] == [
        ("/in/a.wav", "file", 1),
        ("/in/b.wav", "file", 2),
        ("/in/sub", "dir", 0),
    ]
    assert object_exists(root.at("/in/a.wav")) and not object_exists(root.at("/in/sub"))


def test_listing_a_prefix_on_s3_skips_folder_markers(s3: Buckets) -> None:
    s3.put("in/a.wav", b"a")
    s3.put("in/deep/b.wav", b"bb")
    s3.put("in/deep/", b"")  # a "folder" made by a console
    root = locate(f"s3://{s3.source}/in")
    listing = list_folder(root)
    assert not isinstance(listing, str)
    assert [(e.path, e.kind) for e in listing] == [
        (f"{s3.source}/in/a.wav", "file"),
        (f"{s3.source}/in/deep", "dir"),
    ]
    deep = list_folder(root.at(f"{s3.source}/in/deep"))
    assert not isinstance(deep, str)
    assert [(e.path, e.kind, e.size) for e in deep] == [(f"{s3.source}/in/deep/b.wav", "file", 2)]
    assert stat_object(root.at(f"{s3.source}/in/a.wav")) == ("file", 1, None)
    assert stat_object(locate("s3://diffio-no-such-bucket-q1/x"))[0] in ("missing", "unreadable")
