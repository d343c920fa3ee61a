"""``client.restore()``: upload, create a generation, wait for it, download the result."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import anyio
import attrs

from .._catalog import DEFAULT_MODEL_BY_ERA
from .._checks import callback
from .._checks import idempotency_key as check_idempotency_key
from .._http.transport import counting_attempts
from .._media.download import check_dest
from .._media.upload import ProgressCallback, UploadSource, as_media_source
from ..errors import DiffioError, RestoreError
from ..resources.generation_handle import Generation
from ..types import CreateProjectResponse, GenerationProgress
from ..types._model import _HandedOn
from ._options import RestoreOptions, checked_options
from ._services import Services

__all__ = ["RestoreResult", "restore"]


@attrs.frozen(kw_only=True)
class RestoreResult(_HandedOn):
    """What ``client.restore()`` did: the ids, the final progress and where the output went.

    ``timings`` maps each stage (``upload``, ``generation``, ``wait``, ``download``) to the
    seconds it took and ``attempts`` to the HTTP requests it made (retries and polls
    included); ``generation.idempotency_key`` is the key the generation was created with.
    """

    project: CreateProjectResponse
    generation: Generation = attrs.field(eq=False)
    progress: GenerationProgress
    output: Path
    download_type: str
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
    output: str | os.PathLike[str],
    options: RestoreOptions | None,
    idempotency_key: str | None,
    on_progress: Callable[[GenerationProgress], Any] | None,
    on_upload_progress: ProgressCallback | None,
) -> RestoreResult:
    """Run the four stages; see ``AsyncDiffio.restore``."""
    # Every argument is checked before the upload: a bad one must not cost a project.
    options = checked_options(RestoreOptions, "options", options)
    await anyio.to_thread.run_sync(lambda: check_dest(output, name="output"))
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
            project = await client.projects.create(media, on_progress=on_upload_progress)
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
            path = await generation.download(output, download_type=options.download_type)
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
        download_type=options.download_type,
        timings=timings,
        attempts=attempts,
    )
