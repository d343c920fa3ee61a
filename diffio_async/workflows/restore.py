"""``client.restore()``: upload, create a generation, wait for it, download the result."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import anyio
import attrs

from .._catalog import DEFAULT_MODEL_BY_ERA
from .._checks import callback, positive_int
from .._checks import idempotency_key as check_idempotency_key
from .._http.transport import counting_attempts
from .._media.download import check_dest, is_served_name, served_name
from .._media.upload import ProgressCallback, UploadSource, as_media_source
from ..errors import (
    DiffioError,
    DownloadError,
    EventLoopMismatchError,
    InvalidRequestError,
    RestoreError,
)
from ..resources.generation_handle import Generation
from ..types import CreateProjectResponse, GenerationProgress
from ..types._model import _HandedOn
from ._options import RestoreOptions, checked_options
from ._services import Services
from ._sources import uploads_audio

__all__ = ["DEFAULT_MAX_BYTES", "RestoreResult", "restore"]


DEFAULT_MAX_BYTES = 128 * 1024 * 1024
"""The largest result ``restore(output=None)`` keeps in memory unless ``max_bytes`` says."""


def _content_repr(content: bytes | None) -> str:
    return "None" if content is None else f"<{len(content)} bytes>"


@attrs.frozen(kw_only=True)
class RestoreResult(_HandedOn):
    """What ``client.restore()`` did: the ids, the final progress and the output.

    ``output`` is the file written, or ``None`` when ``restore(output=None)`` kept the result
    in memory: then ``content`` holds its bytes. ``download_type``, ``file_name`` and
    ``mime_type`` say what the server served (with the default download type, the video of
    a project with video, otherwise the audio). ``timings`` maps each stage (``upload``,
    ``generation``, ``wait``, ``download``) to the seconds it took and ``attempts`` to the
    HTTP requests it made (retries and polls included); ``generation.idempotency_key`` is the
    key the generation was created with. ``to_dict()`` writes ``content`` as base64 text.
    """

    project: CreateProjectResponse
    generation: Generation = attrs.field(eq=False)
    progress: GenerationProgress
    output: Path | None
    content: bytes | None = attrs.field(default=None, repr=_content_repr)
    download_type: str
    file_name: str | None = None
    mime_type: str | None = None
    timings: Mapping[str, float]
    attempts: Mapping[str, int]

    @property
    def project_id(self) -> str:
        """The project id."""
        return self.project.api_project_id

    @property
    def generation_id(self) -> str:
        """The generation id."""
        return self.generation.id


async def restore(
    client: Services,
    source: UploadSource,
    *,
    output: str | os.PathLike[str] | None,
    max_bytes: int | None = None,
    options: RestoreOptions | None,
    idempotency_key: str | None,
    on_progress: Callable[[GenerationProgress], object] | None,
    on_upload_progress: ProgressCallback | None,
) -> RestoreResult:
    """Run the four stages; see ``AsyncDiffio.restore``."""
    # Every argument is checked before the upload: a bad one must not cost a project.
    options = checked_options(RestoreOptions, "options", options)
    if output is not None:
        if max_bytes is not None:
            raise InvalidRequestError(
                "max_bytes bounds a result kept in memory: pass it with output=None only"
            )
        await anyio.to_thread.run_sync(lambda: check_dest(output, name="output"))
        if await anyio.to_thread.run_sync(_may_replace_source, source, output, options):
            raise InvalidRequestError(
                f"output {os.fspath(output)} could be written over the source file (the "
                "output takes the suffix of what is served); pick another output name"
            )
    limit = positive_int("max_bytes", DEFAULT_MAX_BYTES if max_bytes is None else max_bytes)
    if idempotency_key is not None:
        check_idempotency_key(idempotency_key)
    callback("on_progress", on_progress)
    callback("on_upload_progress", on_upload_progress)
    media = await anyio.to_thread.run_sync(as_media_source, source)
    timings: dict[str, float] = {}
    attempts: dict[str, int] = {}
    project: CreateProjectResponse | None = None
    generation: Generation | None = None
    stage = "upload"

    @contextlib.contextmanager
    def measure(name: str) -> Iterator[None]:
        nonlocal stage
        stage, started = name, anyio.current_time()
        with counting_attempts() as counter:
            yield
        timings[name] = anyio.current_time() - started
        attempts[name] = counter[0]

    try:
        with measure("upload"):
            project = await client.projects.create(
                media,
                content_type=options.content_type,
                file_format=options.file_format,
                params=options.project_params,
                on_progress=on_upload_progress,
            )
        with measure("generation"):
            generation = await client.generations.create(
                project,
                model=options.model or DEFAULT_MODEL_BY_ERA[project.era],
                sampling=options.sampling,
                params=options.params,
                idempotency_key=idempotency_key,
            )
        with measure("wait"):
            final = await generation.wait(
                timeout=options.timeout, on_progress=on_progress, poll=options.poll
            )
        with measure("download"):
            if output is None:
                path, content = None, await _download_content(generation, options, limit)
            else:
                path, content = await _download_file(generation, options, output), None
            served = generation.last_download
            assert served is not None  # set by every download
    except EventLoopMismatchError:  # a programming error, raised before any request: no stage
        raise
    except (DiffioError, OSError) as exc:  # OSError: the output folder or disk failed us
        project_id = project.api_project_id if project else getattr(exc, "project_id", None)
        generation_id = generation.id if generation else None
        ids = ", ".join(
            f"{name} {value}"
            for name, value in (("project", project_id), ("generation", generation_id))
            if value
        )
        raise RestoreError(
            f"restore failed at {stage}{f' ({ids})' if ids else ''}: {exc}",
            stage=stage,
            project_id=project_id,
            generation_id=generation_id,
        ) from exc
    return RestoreResult(
        project=project,
        generation=generation,
        progress=final,
        output=path,
        content=content,
        download_type=served.download_type,
        file_name=served.file_name,
        mime_type=served.mime_type,
        timings=timings,
        attempts=attempts,
    )


def _may_replace_source(
    source: UploadSource, output: str | os.PathLike[str], options: RestoreOptions
) -> bool:
    """Whether restoring the path ``source`` to ``output`` could write over the source: the
    output is the source, or (when the output takes the served suffix, see
    :func:`served_name`) the source is the output's name with the suffix it may be served
    with: ``.mp3`` for an audio upload (``content_type``, else guessed from the name), any
    for the rest (a video keeps a container the server names). Runs in a worker thread."""
    if not isinstance(source, str | os.PathLike):
        return False
    raw_source, raw_output = os.fspath(source), os.fspath(output)
    if not isinstance(raw_source, str) or os.path.isdir(raw_output):
        return False  # bytes paths are not sources; into a folder: the server's name
    if raw_output.endswith((os.sep, "/")):
        return False  # a folder the download creates: the server's name
    real_source, named = Path(os.path.realpath(raw_source)), Path(os.path.realpath(raw_output))
    with contextlib.suppress(OSError):
        if named == real_source or os.path.samefile(raw_source, raw_output):
            return True
    if options.download_type is not None:
        return False
    if uploads_audio(raw_source, options.content_type):
        return served_name(named, ".mp3") == real_source
    return is_served_name(real_source, named)


async def _download_file(
    generation: Generation, options: RestoreOptions, output: str | os.PathLike[str]
) -> Path:
    """Download to ``output``; with the server's default type a file name takes the suffix of
    what was served (``clean.mp3`` becomes ``clean.mp4`` for a video; see
    :func:`served_name`), and never replaces a file of that other name."""
    return await generation.download(
        output,
        download_type=options.download_type,
        served_suffix=options.download_type is None,
    )


async def _download_content(generation: Generation, options: RestoreOptions, limit: int) -> bytes:
    """The result's bytes, refused with :class:`DownloadError` once they exceed ``limit``.

    The download goes through a private temp folder (removed afterwards), so it keeps its
    resume and URL refresh; the transfer stops as soon as the announced size or the bytes
    received pass ``limit``, so neither memory nor the disk ever holds much more.
    """

    def guard(received: int, total: int) -> None:
        if max(received, total) > limit:
            raise DownloadError(
                f"the result is over max_bytes ({max(received, total)} > {limit} bytes); pass "
                "output= a path to stream it to a file, or a larger max_bytes",
                generation_id=generation.id,
            )

    folder = await anyio.to_thread.run_sync(lambda: tempfile.mkdtemp(prefix="diffio-"))
    try:
        path = await generation.download(
            Path(folder) / "result", download_type=options.download_type, on_progress=guard
        )
        return await anyio.Path(path).read_bytes()
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(lambda: shutil.rmtree(folder, ignore_errors=True))
