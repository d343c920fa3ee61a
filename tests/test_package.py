"""The public surface and the package-wide rules (anyio only, typed, no __del__)."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import diffio_async

PACKAGE = Path(diffio_async.__file__).parent


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_no_asyncio_import_anywhere_in_the_package() -> None:
    offenders = []
    for path in _modules():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(name == "asyncio" or name.startswith("asyncio.") for name in names):
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert offenders == []


def test_no_backoff_decorators_and_no_del() -> None:
    for path in _modules():
        text = path.read_text()
        assert "backoff.on_exception" not in text and "backoff.on_predicate" not in text, path
        assert "def __del__" not in text, path


def test_all_matches_public_names() -> None:
    public = {name for name in dir(diffio_async) if not name.startswith("_")}
    modules = {m.name for m in pkgutil.iter_modules([str(PACKAGE)])}
    assert set(diffio_async.__all__) - {"__version__"} == public - modules - {"annotations"}
    for name in diffio_async.__all__:
        assert getattr(diffio_async, name) is not None


def test_every_public_module_declares_all_and_docstrings() -> None:
    for info in pkgutil.walk_packages([str(PACKAGE)], prefix="diffio_async."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        assert module.__doc__, info.name
        exported = getattr(module, "__all__", None)
        assert exported is not None, f"{info.name} has no __all__"
        for name in exported:
            obj = getattr(module, name)
            if callable(obj) and getattr(obj, "__module__", "") == info.name:
                assert obj.__doc__, f"{info.name}.{name} has no docstring"


def test_py_typed_is_shipped() -> None:
    assert (PACKAGE / "py.typed").exists()


def _runtime_closure(name: str) -> set[str]:
    """Every distribution that ``pip install name`` (no extras) brings, from installed metadata."""
    from importlib import metadata

    from packaging.requirements import Requirement

    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop().lower().replace("_", "-")
        if current in seen:
            continue
        seen.add(current)
        for text in metadata.requires(current) or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return seen


def test_installing_the_package_brings_httpx2_and_neither_httpx_nor_httpcore() -> None:
    closure = _runtime_closure("diffio-async")
    assert {"httpx2", "httpcore2", "anyio", "attrs", "cattrs", "backoff"} <= closure
    assert not closure & {"httpx", "httpcore"}, closure


def test_importing_every_module_imports_neither_httpx_nor_httpcore() -> None:
    import subprocess
    import sys

    script = (
        "import importlib, pkgutil, sys, diffio_async\n"
        "for info in pkgutil.walk_packages(diffio_async.__path__, 'diffio_async.'):\n"
        "    if not info.name.endswith('__main__'):\n"
        "        importlib.import_module(info.name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('httpx', 'httpcore')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_no_module_installs_the_httpx_alias_hook() -> None:
    for path in _modules():
        assert "alias_httpx" not in path.read_text(), path


def test_the_webhook_helpers_are_exported_and_the_readme_imports_them_from_the_package() -> None:
    from diffio_async import webhooks

    assert diffio_async.WebhookRouter is webhooks.WebhookRouter
    assert diffio_async.verify_event is webhooks.verify_event
    assert {"WebhookRouter", "verify_event"} <= set(diffio_async.__all__)
    readme = (PACKAGE.parent / "README.md").read_text()
    assert "from diffio_async import WebhookRouter" in readme
    assert "from diffio_async import verify_event" in readme
    assert "from diffio_async.webhooks import" not in readme
