"""The resource groups of the blocking client: each method runs its async twin on the loop.

A method that only sends a request and returns its answer is declared once, as
``list = blocking(Projects.list)``: :func:`blocking` keeps the async method's parameters (for
type checkers, through ``ParamSpec``), its docstring and its signature (``__wrapped__``), and
returns the awaited result. Methods that take callbacks or return a generation handle are
written out, since the blocking form of those differs.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import IO, Any, Concatenate, Generic, ParamSpec, TypeAlias, TypeVar

from .._catalog import ModelKey
from .._http.transport import RequestOptions
from .._media.file_objects import is_file_object
from .._media.upload import MediaSource, ProgressCallback
from ..errors import InvalidRequestError
from ..resources import Account, ApiKeys, Generations, Projects, Usage, Webhooks
from ..types import CreateProjectResponse, ProjectRef
from ._loop import LoopThread, in_worker_thread
from .generation import SyncGeneration

__all__ = [
    "SyncAccount",
    "SyncApiKeys",
    "SyncGenerations",
    "SyncProjects",
    "SyncUsage",
    "SyncUploadSource",
    "SyncWebhooks",
    "blocking",
    "checked_sync_source",
]

P = ParamSpec("P")
T = TypeVar("T")
Group = TypeVar("Group")


class _SyncGroup(Generic[Group]):
    """A blocking resource group over the async group of the same name."""

    def __init__(self, loop: LoopThread, group: Group) -> None:
        """Internal: :class:`~diffio_async.Diffio` makes one of each."""
        self._loop = loop
        self._group = group

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        for name, member in vars(cls).items():
            if callable(member) and hasattr(member, "__wrapped__"):
                member.__qualname__ = f"{cls.__qualname__}.{name}"  # not the async class's


SyncUploadSource: TypeAlias = str | os.PathLike[str] | bytes | MediaSource | IO[bytes]
"""What the blocking client uploads: a path, bytes, a :class:`MediaSource` or a readable
binary file object with a sync ``read(n)``."""


def checked_sync_source(source: object) -> None:
    """Refuse a file object whose reads are async (``await read(n)``, aiohttp's
    ``read_chunk``): it belongs to the caller's event loop, which the blocking client cannot
    await. A Starlette/FastAPI ``UploadFile`` passes: it is read through its sync ``.file``.
    Raises :class:`~diffio_async.InvalidRequestError`."""
    if not is_file_object(source):
        return
    read_chunk = getattr(source, "read_chunk", None)
    read = getattr(source, "read", None)
    wrapped_read = getattr(getattr(source, "file", None), "read", None)
    if (callable(read_chunk) and inspect.iscoroutinefunction(read_chunk)) or (
        inspect.iscoroutinefunction(read)
        and not (callable(wrapped_read) and not inspect.iscoroutinefunction(wrapped_read))
    ):
        raise InvalidRequestError(
            f"the blocking client cannot read a {type(source).__name__}: its reads are async "
            "(they belong to your event loop); pass a sync binary file object, bytes or a "
            "path, or use AsyncDiffio"
        )


def blocking(
    method: Callable[Concatenate[Group, P], Awaitable[T]],
) -> Callable[Concatenate[_SyncGroup[Group], P], T]:
    """The blocking form of an async resource method (same parameters and docstring)."""

    @functools.wraps(method)
    def call(self: _SyncGroup[Group], /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._loop.call(functools.partial(method, self._group, *args, **kwargs))

    return call


class SyncProjects(_SyncGroup[Projects]):
    """Projects: one uploaded recording each, with any number of generations."""

    def create(
        self,
        source: SyncUploadSource,
        *,
        file_name: str | None = None,
        content_type: str | None = None,
        file_format: str | None = None,
        params: Mapping[str, Any] | None = None,
        on_progress: ProgressCallback | None = None,
        part_concurrency: int = 4,
        options: RequestOptions | None = None,
    ) -> CreateProjectResponse:
        """Create a project and upload ``source`` (a path, bytes, a :class:`MediaSource` or a
        readable binary file object with a sync ``read``, see ``MediaSource.from_file``).

        As ``AsyncDiffio.projects.create`` (the source is checked before any request, the
        upload streams by whichever protocol the server answers with), except that
        ``on_progress(sent, total)`` is a plain function, run in a worker thread, a file
        object with async reads is refused (:class:`~diffio_async.InvalidRequestError`), and
        there is no ``transfer_limiter`` (an anyio limiter belongs to one event loop).
        """
        checked_sync_source(source)
        callback = in_worker_thread("on_progress", on_progress)
        return self._loop.call(
            lambda: self._group.create(
                source,
                file_name=file_name,
                content_type=content_type,
                file_format=file_format,
                params=params,
                on_progress=callback,
                part_concurrency=part_concurrency,
                options=options,
            )
        )

    register = blocking(Projects.register)
    complete_upload = blocking(Projects.complete_upload)
    list = blocking(Projects.list)
    list_generations = blocking(Projects.list_generations)


class SyncGenerations(_SyncGroup[Generations]):
    """Generations: a model run over a project's media."""

    def create(
        self,
        project: str | ProjectRef,
        *,
        model: ModelKey | str,
        endpoint: str | None = None,
        sampling: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        options: RequestOptions | None = None,
    ) -> SyncGeneration:
        """Queue a generation of ``project`` (an id, or anything with ``api_project_id``);
        return its blocking handle.

        As ``AsyncDiffio.generations.create``: an idempotency key is always sent (yours, or
        one minted here and reused on every retry), so a retry never bills twice.
        """
        handle = self._loop.call(
            lambda: self._group.create(
                project,
                model=model,
                endpoint=endpoint,
                sampling=sampling,
                params=params,
                idempotency_key=idempotency_key,
                options=options,
            )
        )
        return SyncGeneration(self._loop, handle)

    def get(
        self, generation_id: str, *, project_id: str, model_key: str | None = None
    ) -> SyncGeneration:
        """Rebuild a handle for an existing generation from its ids (no request is sent)."""
        handle = self._group.get(generation_id, project_id=project_id, model_key=model_key)
        return SyncGeneration(self._loop, handle)

    get_progress = blocking(Generations.get_progress)
    get_download = blocking(Generations.get_download)


class SyncWebhooks(_SyncGroup[Webhooks]):
    """Webhook endpoints and test deliveries."""

    send_test_event = blocking(Webhooks.send_test_event)
    configure = blocking(Webhooks.configure)


class SyncApiKeys(_SyncGroup[ApiKeys]):
    """Scoped API keys. The plaintext ``key`` is returned only by create and rotate."""

    create = blocking(ApiKeys.create)
    list = blocking(ApiKeys.list)
    rotate = blocking(ApiKeys.rotate)
    revoke = blocking(ApiKeys.revoke)


class SyncUsage(_SyncGroup[Usage]):
    """Usage periods and billing counters of a key."""

    summary = blocking(Usage.summary)


class SyncAccount(_SyncGroup[Account]):
    """Account settings."""

    get_settings = blocking(Account.get_settings)
    update_settings = blocking(Account.update_settings)
