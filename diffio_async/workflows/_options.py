"""What a restore does (:class:`RestoreOptions`) and how a batch runs (:class:`BatchOptions`).

Each option is declared here once. ``client.restore``, ``client.restore_many``, both
workflows and the command line take these objects and pass them on unchanged; every value is
checked when the object is built, so a bad one fails before any file is read or any request
is sent, and one object can be reused for any number of calls.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any, TypeVar

import attrs

from .._catalog import ModelKey, resolve_endpoint
from .._checks import json_object, optional_seconds, path_like, positive_int
from ..errors import InvalidRequestError
from ..resources._polling import PollPolicy
from ..resources.generations import normalize_download_type
from ..types import DownloadTypeName
from ._sources import Collision
from .ledger._location import is_postgres_url, redact_url

__all__ = [
    "MAX_CONCURRENCY",
    "BatchOptions",
    "RestoreOptions",
    "checked_options",
    "without_download_type",
]

_Options = TypeVar("_Options", "RestoreOptions", "BatchOptions")

MAX_CONCURRENCY = 1024
"""The most items ``restore_many`` keeps in flight (each costs a task and its buffers)."""


def _model(value: ModelKey | str | None) -> ModelKey | str | None:
    if value is not None:
        resolve_endpoint(value)  # an unknown model fails here, not after the first upload
    return value


def _frozen_json(name: str, value: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    checked = json_object(name, value)
    # A deep copy: changing the caller's dict later must not change these options.
    return None if checked is None else json.loads(json.dumps(checked))


def _sampling(value: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    return _frozen_json("sampling", value)


def _params(value: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    return _frozen_json("params", value)


def _project_params(value: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    return _frozen_json("project_params", value)


def _download_type(value: DownloadTypeName | None) -> DownloadTypeName | None:
    return None if value is None else normalize_download_type(value)


def _label(name: str, value: str | None) -> str | None:
    """An optional short label sent as it is: a non-empty string of printable ASCII."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or not all(" " <= c <= "~" for c in value):
        shown = repr(value) if isinstance(value, str) else type(value).__name__
        raise InvalidRequestError(
            f"{name} must be a non-empty string of printable ASCII or None, not {shown}"
        )
    return value.strip()


def _file_format(value: str | None) -> str | None:
    return _label("file_format", value)


def _content_type(value: str | None) -> str | None:
    return _label("content_type", value)


def _timeout(value: float | None) -> float | None:
    return optional_seconds("timeout", value, allow_zero=False)


def _poll(_: object, __: attrs.Attribute[Any], value: PollPolicy | None) -> None:
    if value is not None and not isinstance(value, PollPolicy):
        raise InvalidRequestError(f"poll must be a PollPolicy, not {type(value).__name__}")


@attrs.frozen(kw_only=True)
class RestoreOptions:
    """What a restore does, for one file (``client.restore``) or each of many (``restore_many``).

    ``model`` defaults to the current model of the API era the server speaks (``diffio-3.5``
    for signed-URL uploads, ``diffio-4.6-flash`` for edge uploads). ``download_type`` is
    ``None`` (the default: the server's choice, the video for a project with video, otherwise
    the MP3 audio; output names take the suffix of what was served), ``"audio"`` (also
    ``"mp3"``), ``"video"`` or ``"transcript"``. ``sampling`` and ``params`` are sent with the
    generation as they are (JSON objects); ``project_params`` (a JSON object) and
    ``file_format`` (a label such as ``"wav"``) with ``create_project``; ``content_type``
    replaces the media type the upload declares (guessed from the file name otherwise; the
    server decides from it, among other things, whether the project has video). ``timeout``
    bounds each wait for a generation in seconds (``None``: no bound) and ``poll`` sets how the
    wait polls. Every value is checked here (:class:`~diffio_async.InvalidRequestError`)::

        options = RestoreOptions(model="diffio-2", download_type="transcript")
        await client.restore("talk.wav", output="out/", options=options)
    """

    model: ModelKey | str | None = attrs.field(default=None, converter=_model)
    download_type: DownloadTypeName | None = attrs.field(default=None, converter=_download_type)
    sampling: Mapping[str, Any] | None = attrs.field(default=None, converter=_sampling, hash=False)
    params: Mapping[str, Any] | None = attrs.field(default=None, converter=_params, hash=False)
    project_params: Mapping[str, Any] | None = attrs.field(
        default=None, converter=_project_params, hash=False
    )
    file_format: str | None = attrs.field(default=None, converter=_file_format)
    content_type: str | None = attrs.field(default=None, converter=_content_type)
    timeout: float | None = attrs.field(default=1800.0, converter=_timeout)
    poll: PollPolicy | None = attrs.field(default=None, validator=_poll)

    def generation_settings(self) -> dict[str, Any]:
        """What, beside the model and the media, decides a generation's output (the ledger
        keys on it).

        Not the download type: one generation has every output (audio, video, transcript),
        so fetching another one never needs (nor pays for) a new generation. The project's
        settings appear only when set, so the keys of batches that never set them stay the
        same (see :func:`without_download_type` for ledgers that recorded a download type).
        """
        settings: dict[str, Any] = {"sampling": self.sampling, "params": self.params}
        project = {
            "projectParams": self.project_params,
            "fileFormat": self.file_format,
            "contentType": self.content_type,
        }
        settings.update((name, value) for name, value in project.items() if value is not None)
        return settings


def without_download_type(recorded: str | None) -> dict[str, Any] | None:
    """The settings a ledger recorded (canonical JSON text) minus their ``downloadType``.

    Before the download type defaulted to the server's choice, ``generation_settings`` held
    it; a batch started then recorded ``{"downloadType": "audio", ...}``. Comparing what a
    resumed batch wants with this lets it keep that entry (its project, its generation and its
    idempotency key) instead of uploading and paying again. ``None`` when the text is not a
    JSON object.
    """
    try:
        value = json.loads(recorded) if recorded is not None else None
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    value.pop("downloadType", None)
    return value


def _concurrency(value: int) -> int:
    return positive_int("concurrency", value, maximum=MAX_CONCURRENCY)


def _transfer_concurrency(value: int | None) -> int | None:
    if value is None:
        return None
    return positive_int("transfer_concurrency", value, maximum=MAX_CONCURRENCY)


def _ledger(value: str | os.PathLike[str] | None) -> str | None:
    return None if value is None else path_like("ledger", value)


def _ledger_repr(value: str | None) -> str:
    """A PostgreSQL URL is shown without its password."""
    return repr(None if value is None else redact_url(value))


def _retry_for(value: float | None) -> float | None:
    return optional_seconds("retry_for", value)


def _polls_per_second(value: float) -> float:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not math.isfinite(value) or value <= 0 or not math.isfinite(1 / value):
        shown = repr(value) if number else type(value).__name__
        raise InvalidRequestError(f"polls_per_second must be a finite number > 0, not {shown}")
    return float(value)


def _name(value: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        shown = repr(value) if isinstance(value, str) else type(value).__name__
        raise InvalidRequestError(f"name must be a non-empty string or None, not {shown}")
    return value


def _lease_seconds(value: float) -> float:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if not number or not 0 < value < 86400:
        shown = repr(value) if number else type(value).__name__
        raise InvalidRequestError(
            f"lease_seconds must be a number of seconds above 0, below a day, not {shown}"
        )
    return float(value)


def _on_collision(_: object, __: attrs.Attribute[Any], value: Collision) -> None:
    if value not in ("error", "rename"):
        raise InvalidRequestError(f'on_collision must be "error" or "rename", not {value!r}')


@attrs.frozen(kw_only=True)
class BatchOptions:
    """How ``restore_many`` runs a batch.

    ``concurrency`` (at most ``MAX_CONCURRENCY``, 1024) bounds items in flight (it shrinks on
    429s and grows back); ``transfer_concurrency`` bounds uploads and downloads (``None``:
    ``min(16, concurrency)``); ``ledger`` is a SQLite file (or a ``postgresql://`` URL) that
    makes the batch resumable and billing-safe (its repr hides a URL's password);
    ``retry_for`` is how long (seconds) one item keeps retrying transient failures
    (connections, 5xx, 429, broken transfers) from its last finished step, with capped,
    jittered backoff (``0``: no retry; ``None``: for as long as the batch runs); a permanent
    error (a 4xx other than 408/409/429) fails the item at once; ``on_collision`` is
    ``"error"`` (two sources that would write one output are refused before anything runs)
    or ``"rename"`` (the later one gets a name with a hash of its source path);
    ``polls_per_second`` caps the progress polls of the whole
    batch (first come, first served), however many files are waiting. Every value is checked
    here::

        batch = BatchOptions(concurrency=32, ledger="batch.sqlite")
        async with client.restore_many(paths, output_dir="out/", batch=batch) as results: ...

    ``name`` makes the call one worker of a named batch that many machines share on a
    ``postgresql://`` ``ledger`` (refused with any other ledger): the sources are registered
    (once, however many workers give them; ``()`` just joins the batch), then the call claims
    files under leases of ``lease_seconds`` (renewed every third of it) until every file of
    the batch is finished, and yields the results of the files this worker finished (see
    :mod:`diffio_async.workflows._shared_batch`).
    """

    concurrency: int = attrs.field(default=8, converter=_concurrency)
    transfer_concurrency: int | None = attrs.field(default=None, converter=_transfer_concurrency)
    ledger: str | None = attrs.field(default=None, converter=_ledger, repr=_ledger_repr)
    retry_for: float | None = attrs.field(default=900.0, converter=_retry_for)
    on_collision: Collision = attrs.field(default="error", validator=_on_collision)
    polls_per_second: float = attrs.field(default=100.0, converter=_polls_per_second)
    name: str | None = attrs.field(default=None, converter=_name)
    lease_seconds: float = attrs.field(default=60.0, converter=_lease_seconds)

    def __attrs_post_init__(self) -> None:
        """A named batch lives on a PostgreSQL ledger."""
        if self.name is not None and (self.ledger is None or not is_postgres_url(self.ledger)):
            where = "no ledger" if self.ledger is None else f"ledger={redact_url(self.ledger)!r}"
            raise InvalidRequestError(
                f"a named batch (name={self.name!r}) is shared on a PostgreSQL ledger: give "
                f"ledger='postgresql://...', not {where}"
            )

    @property
    def transfers(self) -> int:
        """The number of uploads and downloads allowed at once."""
        if self.transfer_concurrency is None:
            return min(16, self.concurrency)
        return self.transfer_concurrency


def checked_options(kind: type[_Options], name: str, value: object) -> _Options:
    """``value`` if it is a ``kind`` (``None``: the defaults), else
    :class:`~diffio_async.InvalidRequestError` (a dict of keywords is not accepted: build the
    object, whose fields are checked one by one)."""
    if value is None:
        return kind()
    if not isinstance(value, kind):
        raise InvalidRequestError(
            f"{name} must be a {kind.__name__} (e.g. {name}={kind.__name__}(...)), "
            f"not {type(value).__name__}"
        )
    return value
