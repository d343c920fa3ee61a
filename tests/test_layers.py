"""The package's layers import only downward, and the emulator imports nothing of the SDK.

Imports are read from the source (``ast``), so ``TYPE_CHECKING`` imports and imports inside
functions count too. A module may import its own layer and the layers below it. When a module
is added or moved, give it a layer here: the test fails for a module it does not know.
"""

from __future__ import annotations

import ast
from pathlib import Path

import diffio_async

PACKAGE = Path(diffio_async.__file__).parent

LAYERS: list[tuple[str, tuple[str, ...]]] = [
    # bottom first: (what the layer is, the modules in it; a trailing "." means a package)
    ("wire models", ("_version", "types.")),
    ("errors and checks", ("errors", "_checks", "_catalog")),
    ("http and the converter", ("_http.", "_convert", "_logging")),
    ("media and webhooks", ("_media.", "webhooks", "webhook_listener")),
    ("resources", ("resources.",)),
    ("workflows", ("workflows.",)),
    ("client", ("client", "sync_client", "_sync.")),
    ("entry points", ("testing", "cli", "cli.", "__init__", "__main__")),
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts)


def _layer_of(module: str) -> int | None:
    for number, (_, members) in enumerate(LAYERS):
        for member in members:
            if module == member or (member.endswith(".") and module.startswith(member)):
                return number
            if member.endswith(".") and module in (member[:-1], member + "__init__"):
                return number
    return None


def _imports(path: Path, name: str | None = None) -> list[tuple[int, str]]:
    """(line, module inside diffio_async) for every import of the package in ``path`` (the
    module ``name``, by default where ``path`` stands in the package)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = (name or _module_name(path)).split(".")[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("diffio_async."):
                    found.append((node.lineno, alias.name.removeprefix("diffio_async.")))
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if node.module and node.module.startswith("diffio_async."):
                    base = node.module.removeprefix("diffio_async.")
                elif node.module == "diffio_async":
                    base = ""
                else:
                    continue
            else:
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            for alias in node.names:
                candidate = f"{base}.{alias.name}" if base else alias.name
                found.append((node.lineno, candidate if _is_module(candidate) else base))
    return [(line, module) for line, module in found if module]


def _is_module(dotted: str) -> bool:
    path = PACKAGE.joinpath(*dotted.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def _sdk_modules() -> list[Path]:
    return [p for p in sorted(PACKAGE.rglob("*.py")) if "emulator" not in p.parts]


def test_every_module_has_a_layer() -> None:
    unknown = [_module_name(p) for p in _sdk_modules() if _layer_of(_module_name(p)) is None]
    assert unknown == [], "give these modules a layer in tests/test_layers.py"


def test_no_module_imports_upward() -> None:
    upward = []
    for path in _sdk_modules():
        name = _module_name(path)
        own = _layer_of(name)
        assert own is not None
        for line, imported in _imports(path):
            if imported.startswith("emulator"):
                continue  # the emulator is a leaf: any layer may start one
            target = _layer_of(imported) if imported else len(LAYERS) - 1
            if target is None:
                target = _layer_of(imported.rsplit(".", 1)[0])
            assert target is not None, f"{name}:{line} imports unknown {imported}"
            if target > own:
                upward.append(
                    f"{name}:{line} ({LAYERS[own][0]}) imports {imported} ({LAYERS[target][0]})"
                )
    assert upward == []


def test_the_emulator_imports_nothing_of_the_sdk() -> None:
    offenders = []
    for path in sorted((PACKAGE / "emulator").rglob("*.py")):
        for line, imported in _imports(path):
            if not imported.startswith("emulator"):
                offenders.append(f"{_module_name(path)}:{line} imports {imported}")
    assert offenders == []


def test_the_import_reader_sees_every_kind_of_import(tmp_path: Path) -> None:
    """The check can fail: relative, absolute, TYPE_CHECKING and function-level imports are
    all read (here, from a file placed as if it were ``resources/x.py``)."""
    probe = tmp_path / "x.py"
    probe.write_text(
        "from typing import TYPE_CHECKING\n"
        "from ..client import AsyncDiffio\n"
        "import diffio_async.workflows.bulk\n"
        "if TYPE_CHECKING:\n"
        "    from .. import cli\n"
        "def late():\n"
        "    from ..workflows import ledger\n"
    )
    found = sorted(module for _, module in _imports(probe, "resources.x"))
    assert found == ["cli", "client", "workflows.bulk", "workflows.ledger"]
    assert all(_layer_of(m) > _layer_of("resources.x") for m in found)  # type: ignore[operator]
