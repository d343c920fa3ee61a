"""diffio_async: an asyncio- and trio-native SDK for the Diffio speech-restoration API."""

from __future__ import annotations

from ._version import __version__

__all__ = ["__version__"]
