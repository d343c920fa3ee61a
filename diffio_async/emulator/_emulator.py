"""The public :class:`Emulator`: an ASGI app plus Python handles on its state."""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Any, Literal

import attrs
import httpx2
from starlette.types import Receive, Scope, Send

from ._asgi_app import build_app
from ._clock import EmulatorClock
from ._faults import Fault
from ._lifecycle import GenerationScript, StageName, TranscriptOutcome
from ._media_store import MediaStore
from ._middleware import EmulatorMiddleware
from ._request_log import RequestLog
from ._runtime import GIB, MIB, Config, Runtime
from ._signing import new_webhook_secret
from ._webhook_delivery import WebhookDelivery
from ._wire_json import progress_json

__all__ = ["Emulator", "MintedKey"]


def _check_seconds(name: str, value: object) -> None:
    """Refuse anything but a finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, not {value!r}")


@attrs.frozen
class MintedKey:
    """A key made by :meth:`Emulator.mint_key`: the secret to send and its ``keyId``."""

    key: str
    key_id: str


class Emulator:
    """A local, in-memory Diffio API (an ASGI application).

    Serve it with :func:`serve_in_thread` (real loopback sockets) or call it in-process with
    ``httpx2.AsyncClient(transport=httpx2.ASGITransport(app=emulator))``. Use it as a context
    manager, or call :meth:`close`, to delete the temporary media directory.

    A served emulator (any ASGI server that runs the lifespan, as :func:`serve_in_thread` and
    the command line do) sends each status-change webhook when its clock passes the change,
    whether or not anyone polls. In-process, enter :meth:`background` for the same; without
    it, changes are announced when a request looks at the generation (or on
    :meth:`deliver_due_webhooks`).

    Args:
        era: ``"a"`` (signed PUT upload, default) or ``"b"`` (edge multipart upload).
        api_key: the admin key's secret. ``None`` accepts any non-empty key as the admin key.
        generation_seconds: emulator seconds from creation to the terminal state (the fixed
            part, default 3).
        seconds_per_mib: emulator seconds added per MiB of the project's media (the uploaded
            byte count; era B: the completed upload's size), default 0. A generation takes
            ``generation_seconds + seconds_per_mib * MiB``, unless a script gives its duration.
        clock: the :class:`EmulatorClock` (default: a manual clock at the current second).
        storage_dir: where media goes (default: a private temporary directory).
        part_size_bytes: era B ``partSizeBytes`` (default 32 MiB).
        max_upload_bytes: era B ``maxBytes`` and the ``contentLength`` cap (default 2 GiB).
        upload_url_ttl: seconds an upload URL / upload token stays valid (default 1 h).
        download_url_ttl: seconds a media URL stays valid (default 2 h era A, 6 h era B).
        upload_method: the era A ``uploadMethod`` (``"PUT"``).
        cents_per_second: usage price per billed second (default 1 cent).
        webhook_secret: the ``whsec_…`` signing secret (default: random).
        webhook_retry_delays: sleep before each delivery attempt (default 0, 0.1, 0.5 s).
        webhook_transport: an httpx2 transport for deliveries (default: real network).
        webhook_timestamps: ``svix-timestamp`` from the wall clock (default) or the emulator
            clock (``"emulator"``).
    """

    def __init__(
        self,
        *,
        era: Literal["a", "b"] = "a",
        api_key: str | None = None,
        generation_seconds: float = 3.0,
        seconds_per_mib: float = 0.0,
        clock: EmulatorClock | None = None,
        storage_dir: str | os.PathLike[str] | None = None,
        part_size_bytes: int = 32 * MIB,
        max_upload_bytes: int = 2 * GIB,
        upload_url_ttl: float = 3600.0,
        download_url_ttl: float | None = None,
        upload_method: Literal["PUT", "POST"] = "PUT",
        cents_per_second: float = 1.0,
        webhook_secret: str | None = None,
        webhook_retry_delays: Sequence[float] = (0.0, 0.1, 0.5),
        webhook_transport: httpx2.AsyncBaseTransport | None = None,
        webhook_timestamps: Literal["wall", "emulator"] = "wall",
    ) -> None:
        """Create the emulator (see the class docstring for the arguments)."""
        if era not in ("a", "b"):
            raise ValueError("era must be 'a' or 'b'")
        if part_size_bytes < 1 or max_upload_bytes < 0 or generation_seconds < 0:
            raise ValueError("sizes and durations must be positive")
        _check_seconds("seconds_per_mib", seconds_per_mib)
        api_key = api_key or None
        config = Config(
            era=era,
            generation_seconds=generation_seconds,
            seconds_per_mib=float(seconds_per_mib),
            part_size_bytes=part_size_bytes,
            max_upload_bytes=max_upload_bytes,
            upload_url_ttl=upload_url_ttl,
            download_url_ttl=download_url_ttl,
            upload_method=upload_method,
            cents_per_second=cents_per_second,
            webhook_retry_delays=tuple(webhook_retry_delays),
            webhook_timestamps=webhook_timestamps,
        )
        self.clock = clock if clock is not None else EmulatorClock()
        self._core = Runtime(
            config=config,
            clock=self.clock,
            store=MediaStore(storage_dir),
            webhook_secret=webhook_secret or new_webhook_secret(),
            webhook_transport=webhook_transport,
        )
        core = self._core
        core.open_admin = api_key is None
        core.state.add_key(
            created_at=self.clock.now(),
            secret=api_key,
            label="Emulator admin key",
            admin=True,
            key_id=core.admin_key_id,
        )
        if api_key is None:
            core.state.keys[core.admin_key_id].secret = None
        self.app = build_app(core)
        self._asgi = EmulatorMiddleware(self.app, core.log, core.faults)
        self._closed = False

    # --- ASGI --------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI entry point."""
        await self._asgi(scope, receive, send)

    # --- configuration ------------------------------------------------------------------

    @property
    def era(self) -> str:
        """``"a"`` or ``"b"``."""
        return self._core.era

    @property
    def api_key(self) -> str | None:
        """The admin key's secret (``None``: any non-empty key is the admin key)."""
        return self._core.state.keys[self._core.admin_key_id].secret

    @property
    def admin_key_id(self) -> str:
        """The admin key's ``keyId`` (``key_admin``)."""
        return self._core.admin_key_id

    @property
    def storage_dir(self) -> str:
        """The directory holding media."""
        return str(self._core.store.root)

    # --- request log and faults -------------------------------------------------------

    @property
    def requests(self) -> RequestLog:
        """Every request received (control routes excluded); has ``clear()`` and ``find()``."""
        return self._core.log

    def add_fault(self, fault: Fault | None = None, /, **options: Any) -> Fault:
        """Activate a :class:`Fault` (or build one from keyword arguments) and return it."""
        if fault is None:
            fault = Fault(**options)
        elif options:
            raise TypeError("pass either a Fault or keyword arguments, not both")
        return self._core.faults.add(fault)

    def clear_faults(self) -> None:
        """Remove every fault."""
        self._core.faults.clear()

    @property
    def faults(self) -> list[Fault]:
        """The faults that still have requests to disturb."""
        return self._core.faults.active()

    # --- time and generations ---------------------------------------------------------

    def advance(self, seconds: float) -> float:
        """Advance the emulator clock (shortcut for ``clock.advance``); returns the new time."""
        return self.clock.advance(seconds)

    def script_next_generation(
        self,
        script: GenerationScript | None = None,
        /,
        *,
        duration: float | None = None,
        fail_at: StageName | None = None,
        error: str | None = None,
        error_details: str | None = None,
        transcript: TranscriptOutcome = "available",
        transcript_delay: float = 0.0,
        count: int = 1,
    ) -> GenerationScript:
        """Queue how the next ``count`` created generations behave (FIFO, one per creation).

        Example: ``emulator.script_next_generation(duration=300, fail_at="inference")`` makes
        the next generation fail in ``inference`` at exactly 300 s of emulator time.
        """
        if script is None:
            script = GenerationScript(
                duration=duration,
                fail_at=fail_at,
                error=error,
                error_details=error_details,
                transcript=transcript,
                transcript_delay=transcript_delay,
            )
        with self._core.state.lock:
            self._core.state.scripts.extend([script] * count)
        return script

    def generation_progress(self, generation_id: str) -> dict[str, Any]:
        """The ``get_generation_progress`` body of a generation right now (no auth)."""
        core = self._core
        with core.state.lock:
            generation = core.state.generations[generation_id]
            project = core.state.projects[generation.project_id]
            return progress_json(core, generation, project, core.now())

    @property
    def generation_ids(self) -> list[str]:
        """Every generation id, oldest first."""
        with self._core.state.lock:
            generations = sorted(self._core.state.generations.values(), key=lambda g: g.created_at)
            return [generation.generation_id for generation in generations]

    @property
    def project_ids(self) -> list[str]:
        """Every project id, oldest first."""
        with self._core.state.lock:
            projects = sorted(self._core.state.projects.values(), key=lambda p: p.created_at)
            return [project.project_id for project in projects]

    # --- keys and billing -------------------------------------------------------------

    def mint_key(
        self,
        *,
        scopes: Sequence[str] | None = None,
        permissions: dict[str, bool] | None = None,
        admin: bool = False,
        label: str = "Emulator key",
        spend_limit_cents: int | None = None,
        billing_hold: bool = False,
        resource_bounds: dict[str, Any] | None = None,
    ) -> MintedKey:
        """Create an active key.

        * ``admin=True``: a privileged key (every scope unless ``scopes`` narrows it).
        * ``scopes=[...]``: a scoped key; ``permissions`` default to those the scopes imply.
        * neither: a legacy key checked only by ``permissions`` (default read and write).
        """
        key = self._core.state.add_key(
            created_at=self.clock.now(),
            label=label,
            admin=admin,
            scopes=None if scopes is None else list(scopes),
            permissions=permissions,
            parent_key_id=self._core.admin_key_id,
            resource_bounds=resource_bounds,
            spend_limit_cents=spend_limit_cents,
            billing_hold=billing_hold,
        )
        assert key.secret is not None
        return MintedKey(key=key.secret, key_id=key.key_id)

    def revoke_key(self, key_id: str) -> None:
        """Revoke a key (it then answers 403 ``API key is not active``)."""
        with self._core.state.lock:
            key = self._core.state.keys[key_id]
            key.status = "revoked"
            key.revoked_at = self.clock.now()

    def set_billing_hold(self, active: bool = True, *, key_id: str | None = None) -> None:
        """Hold billing for the whole account (default) or one key: every call answers 402."""
        with self._core.state.lock:
            if key_id is None:
                self._core.state.account.billing_hold = active
            else:
                self._core.state.keys[key_id].billing_hold = active

    def set_spend_limit(self, cents: int | None, *, key_id: str) -> None:
        """Limit a key's spend: generation create answers 402 ``spendLimitExceeded`` beyond it.

        A generation is charged ``max(60, duration)`` seconds at ``cents_per_second``.
        """
        with self._core.state.lock:
            self._core.state.keys[key_id].spend_limit_cents = cents

    # --- webhooks ---------------------------------------------------------------------

    @property
    def webhook_secret(self) -> str:
        """The ``whsec_…`` secret every delivery is signed with."""
        return self._core.dispatcher.secret

    @property
    def webhook_deliveries(self) -> list[WebhookDelivery]:
        """Every delivery attempt so far."""
        return self._core.dispatcher.deliveries

    async def deliver_due_webhooks(self) -> int:
        """Announce status changes nobody has observed yet; returns the messages delivered.

        While the background task runs (a served emulator, or :meth:`background`), it has
        most likely announced them already (this then returns 0); this returns once
        everything it has pending is delivered too.
        """
        return await self._core.deliver_due()

    @contextlib.asynccontextmanager
    async def background(self) -> AsyncIterator[None]:
        """Send each status-change webhook when the clock passes the change, until the block
        exits (runs a task on the current event loop).

        Servers start this through the ASGI lifespan; enter it yourself when you call the
        emulator in-process (``httpx2.ASGITransport`` runs no lifespan)::

            async with emulator.background():
                ...  # emulator.advance(7) delivers what became due, no poll needed

        With a clock that follows a time source (``anyio.current_time``, ``time.monotonic``)
        the task sleeps until the next change is due; with a manual clock it waits for
        :meth:`advance`. One task serves an emulator: entering this while another runs (for
        instance under :func:`serve_in_thread`) does nothing. Messages not yet sent when the
        block exits are dropped.
        """
        async with self._core.scheduler.running():
            yield

    # --- lifecycle --------------------------------------------------------------------

    def close(self) -> None:
        """Delete the temporary media directory (idempotent)."""
        if not self._closed:
            self._closed = True
            self._core.store.close()

    def __enter__(self) -> Emulator:
        """Return self."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Call :meth:`close`."""
        self.close()

    def __repr__(self) -> str:
        """Era and clock."""
        return f"Emulator(era={self.era!r}, clock={self.clock!r})"
