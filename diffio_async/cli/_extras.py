"""The optional extras the command uses: one line naming the ``pip install`` that adds a
missing one, instead of a ``ModuleNotFoundError`` traceback."""

from __future__ import annotations

import importlib
from typing import Literal

from ._errors import UsageError

__all__ = ["EXTRA_MODULES", "Extra", "install_hint", "require_extra"]

Extra = Literal["emulator", "cli", "postgres", "cloud"]

EXTRA_MODULES: dict[Extra, tuple[str, ...]] = {
    "emulator": ("starlette", "uvicorn"),
    "cli": ("rich",),
    "postgres": ("psycopg",),
    "cloud": ("fsspec", "s3fs"),
}
"""The modules each extra installs."""


def install_hint(extra: Extra) -> str:
    """``pip install 'diffio-async[<extra>]'``."""
    return f"pip install 'diffio-async[{extra}]'"


def require_extra(extra: Extra, what: str) -> None:
    """Raise :class:`UsageError` (one line, naming the install) when ``extra`` is missing;
    ``what`` is what needs it (``diffio-async demo``)."""
    for module in EXTRA_MODULES[extra]:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name is None or exc.name.partition(".")[0] != module:
                raise  # the extra is there but broken: not ours to explain
            raise UsageError(
                f"{what} needs the '{extra}' extra ({module} is not installed): "
                f"{install_hint(extra)}"
            ) from None
