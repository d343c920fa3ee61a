"""``python -m diffio_async.emulator``: run the local Diffio API emulator."""

from __future__ import annotations

from ._server import main

if __name__ == "__main__":
    raise SystemExit(main())
