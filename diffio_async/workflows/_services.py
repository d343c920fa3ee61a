"""What the workflows use of a client, as protocols: they sit below ``AsyncDiffio``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ..resources import Generations, Projects

__all__ = ["FailureEvents", "Services"]


class Services(Protocol):
    """The resource groups a workflow calls (``AsyncDiffio`` has them)."""

    @property
    def projects(self) -> Projects:
        """Create projects and upload their media."""
        ...

    @property
    def generations(self) -> Generations:
        """Create generations and rebuild handles."""
        ...


class FailureEvents(Protocol):
    """Where a batch hears of every failed HTTP attempt (the client's transport)."""

    def add_failure_listener(self, listener: Callable[[BaseException], None]) -> None:
        """Call ``listener(error)`` for every failed attempt."""
        ...

    def remove_failure_listener(self, listener: Callable[[BaseException], None]) -> None:
        """Stop calling ``listener``."""
        ...
