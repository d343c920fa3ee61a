"""A local Diffio API emulator: both API eras, keys, faults, webhooks, a controllable clock.

Run it from the command line::

    python -m diffio_async.emulator --port 8765 --era a

or in tests::

    from diffio_async.emulator import Emulator, serve_in_thread

    with Emulator(api_key="diffio_live_test") as emulator, serve_in_thread(emulator) as url:
        ...  # talk to url over real loopback sockets; emulator.advance(300) moves time

Needs the ``emulator`` extra (starlette, uvicorn).
"""

from __future__ import annotations

try:
    from ._clock import EmulatorClock
    from ._emulator import Emulator, MintedKey
    from ._errors import ConnectionDropped
    from ._faults import Fault
    from ._lifecycle import GenerationScript
    from ._request_log import LoggedRequest, RequestLog
    from ._server import main, run_cli, serve_in_thread
    from ._webhook_delivery import WebhookDelivery
except ModuleNotFoundError as _missing:  # the extra is not installed: say how to add it
    if (_missing.name or "").partition(".")[0] not in ("starlette", "uvicorn"):
        raise
    raise ModuleNotFoundError(
        f"the Diffio emulator needs the 'emulator' extra ({_missing.name} is not installed): "
        "pip install 'diffio-async[emulator]'",
        name=_missing.name,
    ) from None

__all__ = [
    "ConnectionDropped",
    "Emulator",
    "EmulatorClock",
    "Fault",
    "GenerationScript",
    "LoggedRequest",
    "MintedKey",
    "RequestLog",
    "WebhookDelivery",
    "main",
    "run_cli",
    "serve_in_thread",
]
