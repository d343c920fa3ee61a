"""Every code snippet of README.md runs, so the README cannot drift from the code.

How it works:

* README.md is split into fenced blocks; each block remembers its line, its nearest heading and
  an ``<!-- not run: reason -->`` marker on the last non-blank line before its fence (such a
  block is a skipped case with that reason).
* A ```python block is one case, run on asyncio and on trio when it is async (``await``,
  ``async with``, ``async def`` ...), once otherwise. The snippet runs in a fresh namespace
  holding the names of :func:`reader_world` (``PREPARED``: what the reader of a fragment
  already has: a client wired to an emulator on loopback, a project, a signed webhook
  delivery, ...), with a temporary working directory holding the files the snippets name
  (``READER_FILES``). A name the snippet uses but neither defines nor finds in ``PREPARED``
  fails the case before anything runs, naming it.

  - Top-level ``await`` / ``async with`` / ``async for``: compiled with
    ``ast.PyCF_ALLOW_TOP_LEVEL_AWAIT`` and awaited on the test's event loop.
  - Anything else runs in a worker thread, where ``anyio.run(main)`` is replaced by a hop
    back to the test's event loop (its backend, its prepared client).
  - ``main`` and ``test_*`` functions the snippet defines but never mentions again are then
    called by the harness, their parameters taken by name from ``PREPARED`` (a ``test_*``
    function's fixtures, e.g. ``diffio_env`` and ``tmp_path``).
  - Handlers registered on the prepared ``app`` (``@app.post(...)``) are then each called
    with a freshly signed webhook delivery and must answer below 400.

  A snippet passes when it raises nothing: the harness does not know which methods it
  calls, so a snippet may change API freely as long as it still runs.
* A ```sh block is split into commands (``&&`` and ``;`` separate them, an indented line or a
  trailing backslash continues one, ``#`` starts a comment). ``diffio-async ...`` and
  ``python3 -m diffio_async[.emulator] ...`` run as ``sys.executable -m ...`` in a temporary
  directory holding ``READER_FILES``, with ``DIFFIO_API_KEY`` / ``DIFFIO_API_BASE_URL`` set to
  an emulator on loopback, and must exit 0. Synopses are expanded (:func:`expand_synopsis`):
  ``a | b`` runs each alternative, ``[optional]`` groups run once left out and once all put
  in, ``x|y`` takes ``x``, and ``PLACEHOLDERS`` (``PROJECT_ID``, ``P``, ...) are real ids of
  that emulator. A command that serves until interrupted (``emulator``) listens on a free
  port instead of the one written, must answer one API call, then exit 0 on SIGINT. Commands
  matching ``SKIP_RULES`` (installs, the test suite, nox, benchmarks) and repeats of an
  earlier command are skipped cases with their reason; any other command fails until a rule
  covers it.

No sleep happens here: the emulators finish generations at once, so every wait ends on its
first poll (the command's own in-process emulator, ``--emulator`` and ``demo``, takes its real
seconds).
"""

from __future__ import annotations

import ast
import builtins
import functools
import inspect
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import uuid
import wave
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

import anyio
import anyio.from_thread
import pytest
from starlette.requests import Request
from starlette.responses import Response

import diffio_async
import diffio_async.testing
from diffio_async import DEFAULT_MODEL, AsyncDiffio
from diffio_async.emulator import Emulator, serve_in_thread
from diffio_async.testing import TEST_API_KEY, emulated_diffio
from diffio_async.webhooks import sign

README = Path(__file__).resolve().parent.parent / "README.md"
BACKENDS = ("asyncio", "trio")
"""Async snippets run on both, as every async test here does (tests/conftest.py)."""

PYTHON_LANGS = frozenset({"python", "py"})
SHELL_LANGS = frozenset({"sh", "bash", "shell"})

READER_FILES = {
    "talk.wav": 0.5,  # the recording of the quick start, restore and projects.create snippets
    "a.wav": 0.25,  # restore_many's first source
    "interviews/one.wav": 0.25,  # restore_many's and the restore command's folder ...
    "interviews/two.wav": 0.3,  # ... of two recordings
}
"""Files (seconds of 8 kHz mono audio) in the working directory of every snippet and command."""


# --- README.md, its blocks and its commands ---------------------------------------------------

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<lang>[^\s`]*)")
_HEADING = re.compile(r"^#{1,6}\s+(?P<title>.+?)\s*#*\s*$")
_NOT_RUN = re.compile(r"^<!--\s*not run:\s*(?P<reason>.+?)\s*-->$")


@dataclass(frozen=True)
class Block:
    """One fenced block of the README."""

    line: int
    """Line number (1-based) of the opening fence."""
    lang: str
    text: str
    heading: str
    not_run: str | None
    """The reason of a ``<!-- not run: reason -->`` marker just before the fence."""

    @property
    def ident(self) -> str:
        """``L<line>-<heading>``, the test id."""
        slug = re.sub(r"[^a-z0-9.]+", "-", self.heading.lower()).strip("-")
        return f"L{self.line}-{slug or 'top'}"


def parse_blocks(markdown: str) -> list[Block]:
    """The fenced blocks of a Markdown text; an unclosed fence raises ``ValueError``."""
    blocks: list[Block] = []
    lines = markdown.splitlines()
    heading = ""
    previous = ""  # the last non-blank line outside a block
    index = 0
    while index < len(lines):
        line = lines[index]
        fence = _FENCE.match(line)
        if fence is None:
            title = _HEADING.match(line)
            if title:
                heading = title["title"].replace("`", "")
            if line.strip():
                previous = line.strip()
            index += 1
            continue
        indent, marker = len(fence["indent"]), fence["fence"]
        body: list[str] = []
        closing = re.compile(rf"^ {{0,3}}{re.escape(marker[0])}{{{len(marker)},}}\s*$")
        end = index + 1
        while end < len(lines) and not closing.match(lines[end]):
            body.append(lines[end][indent:] if lines[end][:indent].isspace() else lines[end])
            end += 1
        if end == len(lines):
            raise ValueError(f"the fence on line {index + 1} is never closed")
        not_run = _NOT_RUN.match(previous)
        blocks.append(
            Block(
                line=index + 1,
                lang=fence["lang"].lower(),
                text="\n".join(body) + "\n",
                heading=heading,
                not_run=not_run["reason"] if not_run else None,
            )
        )
        previous = ""
        index = end + 1
    return blocks


SKIP_RULES = [
    (re.compile(r"\bpip3? install\b"), "installs packages: this test runs where they are"),
    (re.compile(r"^(python3? -m )?pytest\b"), "runs the test suite, which this test is part of"),
    (re.compile(r"^nox\b"), "runs nox sessions: new virtualenvs and package downloads"),
    (re.compile(r"^python3? benchmarks/"), "a benchmark: minutes of work on a GiB of media"),
]
"""Shell commands that are not run, each with the reason a skipped case shows."""

_PROGRAM = {"diffio-async": "diffio_async"}
_MODULES = frozenset({"diffio_async", "diffio_async.emulator"})


@dataclass(frozen=True)
class Command:
    """One command of a shell block, as a test case."""

    line: int
    heading: str
    text: str
    argv: tuple[str, ...] = ()
    """``(module, *arguments)`` to run as ``sys.executable -m``; placeholders still in."""
    skip: str | None = None
    problem: str | None = None
    """Why this command fails without running (no rule covers it, a bad synopsis)."""

    @property
    def ident(self) -> str:
        slug = re.sub(r"[^a-z0-9.]+", "-", self.heading.lower()).strip("-")
        return f"L{self.line}-{slug or 'top'}: {self.text}"


def _physical_commands(block: Block) -> Iterator[tuple[int, list[str]]]:
    """``(line, tokens)`` per command: continuation lines joined, comments dropped."""
    pending: tuple[int, list[str]] | None = None
    continued = False
    for offset, raw in enumerate(block.text.splitlines(), start=1):
        stripped = raw.rstrip()
        backslash = stripped.endswith("\\")
        tokens = shlex.split(stripped[:-1] if backslash else stripped, comments=True)
        if tokens and pending is not None and (continued or raw[:1].isspace()):
            pending[1].extend(tokens)
        elif tokens:
            if pending is not None:
                yield pending
            pending = (block.line + offset, tokens)
        continued = backslash
    if pending is not None:
        yield pending


def _split_commands(tokens: list[str]) -> Iterator[list[str]]:
    command: list[str] = []
    for token in tokens:
        if token in ("&&", ";"):
            if command:
                yield command
            command = []
        else:
            command.append(token)
    if command:
        yield command


def expand_synopsis(args: list[str]) -> list[list[str]]:
    """The argument lists a synopsis stands for.

    ``a | b c`` is two commands (``a``, ``b c``); ``[...]`` groups are left out in one
    variant and all put in (brackets dropped) in another; a ``x|y`` choice takes ``x``.
    Raises ``ValueError`` for nested or unbalanced brackets.
    """
    alternatives: list[list[str]] = [[]]
    for token in args:
        if token == "|":
            alternatives.append([])
        else:
            alternatives[-1].append(token)
    variants: list[list[str]] = []
    for alternative in alternatives:
        bare: list[str] = []
        full: list[str] = []
        depth = 0
        for token in alternative:
            if token.startswith("["):
                depth += 1
                token = token[1:]
            closes = token.endswith("]")
            token = token[:-1] if closes else token
            if depth > 1 or "[" in token or "]" in token:
                raise ValueError(f"nested brackets in {' '.join(alternative)!r}")
            if token:
                choice = token.split("|")[0] if "|" in token else token
                full.append(choice)
                if depth == 0:
                    bare.append(choice)
            if closes:
                depth -= 1
                if depth < 0:
                    raise ValueError(f"a ']' without '[' in {' '.join(alternative)!r}")
        if depth:
            raise ValueError(f"a '[' without ']' in {' '.join(alternative)!r}")
        variants.extend([bare] if bare == full else [bare, full])
    return variants


def _program(tokens: list[str]) -> tuple[str, list[str]] | None:
    """``(module, arguments)`` of a diffio-async invocation, else ``None``."""
    if tokens[0] in _PROGRAM:
        return _PROGRAM[tokens[0]], tokens[1:]
    if tokens[0] in ("python", "python3") and tokens[1:2] == ["-m"] and tokens[2:3]:
        return (tokens[2], tokens[3:]) if tokens[2] in _MODULES else None
    return None


def shell_commands(blocks: list[Block]) -> list[Command]:
    """Every command of the shell blocks, as run, skipped or failing cases."""
    commands: list[Command] = []
    seen: dict[tuple[str, ...], int] = {}
    for block in blocks:
        if block.lang not in SHELL_LANGS:
            continue
        if block.not_run is not None:
            text = block.text.strip().splitlines()[0] if block.text.strip() else "(empty)"
            skip = f"README.md line {block.line}: not run: {block.not_run}"
            commands.append(Command(block.line, block.heading, text, skip=skip))
            continue
        for line, tokens in _physical_commands(block):
            for command in _split_commands(tokens):
                text = shlex.join(command)
                reason = next((why for rule, why in SKIP_RULES if rule.search(text)), None)
                program = _program(command)
                if reason is not None:
                    skip = f"README.md line {line}, `{text}`: {reason}"
                    commands.append(Command(line, block.heading, text, skip=skip))
                    continue
                if program is None:
                    problem = (
                        f"README.md line {line}: no rule for `{text}`: run it as a "
                        "diffio-async command, add a SKIP_RULES entry or mark the block "
                        "<!-- not run: reason -->"
                    )
                    commands.append(Command(line, block.heading, text, problem=problem))
                    continue
                module, args = program
                try:
                    variants = expand_synopsis(args)
                except ValueError as exc:
                    problem = f"README.md line {line}: a synopsis this test cannot read: {exc}"
                    commands.append(Command(line, block.heading, text, problem=problem))
                    continue
                for variant in variants:
                    argv = (module, *variant)
                    shown = shlex.join(["diffio-async", *variant])
                    if module != "diffio_async":
                        shown = shlex.join(["python3", "-m", *argv])
                    if argv in seen:
                        skip = f"README.md line {line}, `{shown}`: run for line {seen[argv]}"
                        commands.append(Command(line, block.heading, shown, argv, skip=skip))
                    else:
                        seen[argv] = line
                        commands.append(Command(line, block.heading, shown, argv))
    return commands


def _is_async(source: str) -> bool:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False  # the case fails with the SyntaxError, once
    kinds = (ast.Await, ast.AsyncFor, ast.AsyncWith, ast.AsyncFunctionDef)
    return any(isinstance(node, kinds) for node in ast.walk(tree))


def _python_cases(blocks: list[Block]) -> Iterator[Any]:
    for block in blocks:
        if block.lang in PYTHON_LANGS:
            if block.not_run is not None:
                reason = f"README.md line {block.line}: not run: {block.not_run}"
                yield pytest.param(
                    block, BACKENDS[0], id=block.ident, marks=pytest.mark.skip(reason)
                )
            elif _is_async(block.text):
                for backend in BACKENDS:
                    yield pytest.param(block, backend, id=f"{block.ident}-{backend}")
            else:
                yield pytest.param(block, BACKENDS[0], id=block.ident)
        elif block.lang not in SHELL_LANGS:
            lang = block.lang or "(no language)"
            reason = f"README.md line {block.line}: a ```{lang} block is not code this test runs"
            yield pytest.param(block, BACKENDS[0], id=block.ident, marks=pytest.mark.skip(reason))


def _shell_cases(commands: list[Command]) -> Iterator[Any]:
    for command in commands:
        marks = [pytest.mark.skip(command.skip)] if command.skip is not None else []
        yield pytest.param(command, id=command.ident, marks=marks)


BLOCKS = parse_blocks(README.read_text(encoding="utf-8"))
PYTHON_CASES = list(_python_cases(BLOCKS))
SHELL_CASES = list(_shell_cases(shell_commands(BLOCKS)))


# --- what the reader of a fragment already has ------------------------------------------------


def write_reader_files(folder: Path) -> None:
    """Write ``READER_FILES`` into ``folder``: small WAVs, each with its own samples."""
    for name, seconds in READER_FILES.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        seed = zlib.crc32(name.encode())
        frames = bytes((seed + 7 * i) % 251 for i in range(int(8000 * seconds) * 2))
        with wave.open(str(path), "wb") as sound:
            sound.setnchannels(1)
            sound.setsampwidth(2)
            sound.setframerate(8000)
            sound.writeframes(frames)


class ReaderApp:
    """The reader's web app, FastAPI style: records what ``@app.post(path)`` registers."""

    def __init__(self) -> None:
        self.handlers: dict[str, Callable[..., Any]] = {}

    def post(self, path: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def register(handler: Callable[..., Any]) -> Callable[..., Any]:
            self.handlers[path] = handler
            return handler

        return register


def signed_delivery(secret: str, event: dict[str, Any]) -> tuple[bytes, Request]:
    """A webhook delivery of ``event`` as a web framework hands it over: body and Request."""
    body = json.dumps(event, separators=(",", ":")).encode()
    message_id = f"msg_{uuid.uuid4().hex[:24]}"
    stamp = int(time.time())
    headers = {
        "content-type": "application/json",
        "svix-id": message_id,
        "svix-timestamp": str(stamp),
        "svix-signature": sign(secret, msg_id=message_id, timestamp=stamp, payload=body),
    }
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:  # pragma: no cover - Request.body() reads once
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/diffio-webhook",
        "query_string": b"",
        "headers": [(name.encode(), value.encode()) for name, value in headers.items()],
    }
    return body, Request(scope, receive)


@dataclass
class Reader:
    """The prepared names, and the app whose registered handlers the harness calls."""

    names: dict[str, Any]
    app: ReaderApp
    new_delivery: Callable[[], Request]
    ran: list[Any] = field(default_factory=list)
    """What the snippet handed to ``anyio.run``."""


def _reader_folders(work: Path) -> bytes:
    """``work`` with ``READER_FILES``, an empty ``tmp_path`` beside it; talk.wav's bytes."""
    work.mkdir(parents=True, exist_ok=True)
    write_reader_files(work)
    (work.parent / "tmp_path").mkdir(exist_ok=True)
    return (work / "talk.wav").read_bytes()


@asynccontextmanager
async def reader_world(work: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Reader]:
    """An emulator on loopback, the environment pointing at it, and ``PREPARED``."""
    data = await anyio.to_thread.run_sync(_reader_folders, work)
    monkeypatch.chdir(work)
    async with AsyncExitStack() as stack:
        # generation_seconds=0: every generation is complete on its first poll, no waiting.
        env = await stack.enter_async_context(emulated_diffio(generation_seconds=0))
        monkeypatch.setenv("DIFFIO_API_KEY", TEST_API_KEY)
        monkeypatch.setenv("DIFFIO_API_BASE_URL", env.base_url)
        client = AsyncDiffio()
        stack.push_async_callback(client.aclose)
        project = await client.projects.create("talk.wav")
        generation = await client.generations.create(project, model=DEFAULT_MODEL)
        event = {
            "eventType": "generation.completed",
            "eventId": f"evt_{uuid.uuid4().hex[:20]}",
            "createdAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "apiKeyId": env.emulator.admin_key_id,
            "apiProjectId": generation.project_id,
            "generationId": generation.id,
            "status": "complete",
            "hasVideo": False,
            "modelKey": generation.model_key,
        }
        secret = env.emulator.webhook_secret
        raw_body, request = signed_delivery(secret, event)

        async def talk_stream() -> AsyncIterator[bytes]:
            for start in range(0, len(data), 1000):
                yield data[start : start + 1000]

        app = ReaderApp()
        # The one table of what snippets may use without defining it: a README change that
        # needs more extends it, with a comment.
        PREPARED: dict[str, Any] = {
            # every public name of the package: fragments leave out `from diffio_async import`
            **{name: getattr(diffio_async, name) for name in diffio_async.__all__},
            # AsyncDiffio() from DIFFIO_API_KEY / DIFFIO_API_BASE_URL: the emulator above
            "client": client,
            # the reader's project, uploaded from talk.wav
            "project": project,
            # a generation of it (already complete: its wait ends on the first poll)
            "generation": generation,
            # the ids the reader saved, for client.generations.get(...)
            "generation_id": generation.id,
            "project_id": generation.project_id,
            # MediaSource.from_stream(factory, size=n, ...): talk.wav in 1000-byte chunks
            "factory": talk_stream,
            "n": len(data),
            # the emulator's webhook signing secret (whsec_...)
            "secret": secret,
            # a signed delivery about `generation`: its exact body and its web request
            "raw_body": raw_body,
            "request": request,
            # the reader's web framework (FastAPI / Starlette) and app
            "Request": Request,
            "Response": Response,
            "app": app,
            # pytest fixtures of a test_* function: diffio_env (an emulator of its own, as
            # diffio_async.testing's fixture but finishing generations at once) and tmp_path
            "diffio_env": await stack.enter_async_context(emulated_diffio(generation_seconds=0)),
            "tmp_path": work.parent / "tmp_path",
        }
        yield Reader(
            names=PREPARED,
            app=app,
            new_delivery=lambda: signed_delivery(secret, event)[1],
        )


@pytest.fixture
async def reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Reader]:
    async with reader_world(tmp_path / "work", monkeypatch) as world:
        yield world


# --- running a Python snippet -----------------------------------------------------------------


class SnippetNeedsMore(Exception):
    """A snippet uses a name that neither it nor ``PREPARED`` defines."""


_BUILTINS = frozenset(dir(builtins))
_ENTRY = re.compile(r"main|test_\w*")


def free_names(tree: ast.AST) -> set[str]:
    """Names a snippet reads but never binds (scopes are flattened: a bound name is bound)."""
    loaded: set[str] = set()
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and node.name:
            bound.add(node.name)
    return loaded - bound - _BUILTINS


def uncalled_entry_points(tree: ast.Module) -> list[str]:
    """``main`` / ``test_*`` functions defined at top level and never mentioned again."""
    loaded = {
        node.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
    }
    return [
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and _ENTRY.fullmatch(node.name)
        and node.name not in loaded
    ]


def _needs_more(where: str, names: list[str], what: str) -> SnippetNeedsMore:
    return SnippetNeedsMore(
        f"{where} {what} {', '.join(names)}, which PREPARED in tests/test_readme.py does not "
        "provide: define it in the snippet (an import), add it to PREPARED with a comment, "
        "or mark the block <!-- not run: reason -->"
    )


@contextmanager
def _anyio_run_on_the_test_loop(reader: Reader) -> Iterator[None]:
    """While a snippet runs in a worker thread, ``anyio.run(func)`` runs ``func`` on the
    test's own event loop (its backend, where the prepared client lives) and returns its
    result, as the real one would."""

    def run(func: Callable[..., Any], *args: Any, **_backend: Any) -> Any:
        reader.ran.append(func)
        return anyio.from_thread.run(func, *args)

    with mock.patch.object(anyio, "run", run):
        yield


@contextmanager
def _instant_generations() -> Iterator[None]:
    """``diffio_async.testing.emulated_diffio()`` started by a snippet finishes generations
    at once unless the snippet says otherwise: its waits end on their first poll."""

    def instant(**options: Any) -> Any:
        options.setdefault("generation_seconds", 0)
        return emulated_diffio(**options)

    with mock.patch.object(diffio_async.testing, "emulated_diffio", instant):
        yield


async def run_snippet(source: str, reader: Reader, *, where: str) -> dict[str, Any]:
    """Run one README snippet as described in the module docstring; raise what it raises.

    Returns the namespace it ran in."""
    tree = ast.parse(source, filename=where)
    missing = sorted(free_names(tree) - reader.names.keys())
    if missing:
        raise _needs_more(where, missing, "uses")
    with _instant_generations():
        return await _run(tree, reader, where=where)


async def _run(tree: ast.Module, reader: Reader, *, where: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "__readme__", **reader.names}
    code = compile(
        tree, where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
    )  # dont_inherit: not this module's `from __future__ import annotations`
    if code.co_flags & inspect.CO_COROUTINE:
        await eval(code, namespace)
    else:
        with _anyio_run_on_the_test_loop(reader):
            await anyio.to_thread.run_sync(exec, code, namespace)
    for name in uncalled_entry_points(tree):
        function = namespace[name]
        wanted = list(inspect.signature(function).parameters)
        lacking = [param for param in wanted if param not in reader.names]
        if lacking:
            raise _needs_more(where, lacking, f"defines {name}() taking")
        arguments = {param: reader.names[param] for param in wanted}
        if inspect.iscoroutinefunction(function):
            await function(**arguments)
        else:
            with _anyio_run_on_the_test_loop(reader):
                await anyio.to_thread.run_sync(functools.partial(function, **arguments))
    for path, handler in reader.app.handlers.items():
        answer = handler(reader.new_delivery())
        if inspect.isawaitable(answer):
            answer = await answer
        status = getattr(answer, "status_code", 200)
        assert status < 400, f"{where}: the handler of {path} answered a valid delivery {status}"
    return namespace


@pytest.mark.anyio
@pytest.mark.parametrize(("block", "anyio_backend"), PYTHON_CASES)
async def test_python_block(block: Block, reader: Reader) -> None:
    await run_snippet(block.text, reader, where=f"README.md line {block.line} ({block.heading})")


# --- running a shell command ------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"[A-Z][A-Z0-9_]*")
_SERVES = re.compile(r"listening on (?P<url>\S+)")


@dataclass(frozen=True)
class ShellWorld:
    folder: Path
    env: dict[str, str]
    placeholders: dict[str, str]


async def _seed(url: str) -> tuple[str, str]:
    """A project and a complete generation on the emulator at ``url``: their ids."""
    async with AsyncDiffio(TEST_API_KEY, url) as client:
        project = await client.projects.create("talk.wav")
        generation = await client.generations.create(project, model=DEFAULT_MODEL)
        await generation.wait()
        return generation.project_id, generation.id


@pytest.fixture
def shell_world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ShellWorld]:
    write_reader_files(tmp_path)
    monkeypatch.chdir(tmp_path)
    with (
        Emulator(api_key=TEST_API_KEY, generation_seconds=0) as emulator,
        serve_in_thread(emulator) as url,
    ):
        project_id, generation_id = anyio.run(_seed, url)
        # What an upper-case word of a synopsis stands for; a new one in README.md extends it.
        PLACEHOLDERS = {
            "PROJECT_ID": project_id,  # a project on the emulator, uploaded from talk.wav
            "P": project_id,  # the same, as in `--project P`
            "GENERATION_ID": generation_id,  # a complete generation of it
            "KEY": TEST_API_KEY,  # the emulator's admin key
        }
        env = {**os.environ, "DIFFIO_API_KEY": TEST_API_KEY, "DIFFIO_API_BASE_URL": url}
        yield ShellWorld(tmp_path, env, PLACEHOLDERS)


def _fill(argv: tuple[str, ...], placeholders: dict[str, str]) -> list[str]:
    unknown = [t for t in argv if _PLACEHOLDER.fullmatch(t) and t not in placeholders]
    assert not unknown, (
        f"placeholders {unknown} are not in PLACEHOLDERS in tests/test_readme.py: add them"
    )
    return [
        placeholders.get(token, token) if _PLACEHOLDER.fullmatch(token) else token for token in argv
    ]


def _serves(argv: list[str]) -> bool:
    module, args = argv[0], argv[1:]
    if "--help" in args or "-h" in args:
        return False
    return module == "diffio_async.emulator" or (
        module == "diffio_async" and args[:1] == ["emulator"]
    )


def _free_port(args: list[str]) -> list[str]:
    """The README's fixed port may be taken on a shared machine: 0 picks a free one."""
    out = list(args)
    for index, token in enumerate(out):
        if token == "--port" and index + 1 < len(out):
            out[index + 1] = "0"
        elif token.startswith("--port="):
            out[index] = "--port=0"
    return out


def _report(done: subprocess.CompletedProcess[str] | None, argv: list[str], why: str) -> str:
    shown = shlex.join(["python", "-m", *argv])
    if done is None:
        return f"`{shown}` {why}"
    return f"`{shown}` {why}\n--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}"


def run_command(command: Command, world: ShellWorld) -> None:
    """Run one command; fail unless it exits 0 (a server: answers, then exits 0 on SIGINT)."""
    argv = _fill(command.argv, world.placeholders)
    if _serves(argv):
        _run_server(_free_port(argv), world)
        return
    done = subprocess.run(
        [sys.executable, "-m", *argv],
        cwd=world.folder,
        env=world.env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, _report(done, argv, f"exited {done.returncode}")


async def _list_projects(url: str, key: str) -> None:
    async with AsyncDiffio(key, url) as client:
        await client.projects.list()


def _run_server(argv: list[str], world: ShellWorld) -> None:
    server = subprocess.Popen(
        [sys.executable, "-m", *argv],
        cwd=world.folder,
        env=world.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout = server.stdout
        assert stdout is not None
        first: list[str] = []
        reader = threading.Thread(target=lambda: first.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(120)  # a bound on a hang, not a timing: the line comes as it listens
        found = _SERVES.search(first[0]) if first else None
        if found is None:
            server.kill()
            out, err = server.communicate(timeout=60)
            done = subprocess.CompletedProcess(
                argv, server.returncode, (first or [""])[0] + out, err
            )
            raise AssertionError(_report(done, argv, "did not say where it listens"))
        args = argv[1:]
        key = args[args.index("--api-key") + 1] if "--api-key" in args else TEST_API_KEY
        anyio.run(_list_projects, found["url"], key)
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=60)
        done = subprocess.CompletedProcess(argv, server.returncode, out, err)
        assert server.returncode == 0, _report(done, argv, f"exited {server.returncode} on SIGINT")
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()


@pytest.mark.parametrize("command", SHELL_CASES)
def test_shell_command(command: Command, shell_world: ShellWorld) -> None:
    if command.problem is not None:
        pytest.fail(command.problem)
    run_command(command, shell_world)


# --- the harness itself -----------------------------------------------------------------------


def test_the_readme_has_snippets_of_both_kinds() -> None:
    assert any(block.lang in PYTHON_LANGS for block in BLOCKS)
    assert any(isinstance(case.values[0], Command) and not case.marks for case in SHELL_CASES)


SAMPLE = """\
# Title
```sh
pip install x && diffio-async restore a.wav -o out/ [--json] \\
    [--era a|b]   # a comment
diffio-async projects | generations PROJECT_ID
frobnicate --all
diffio-async projects
```

## Signatures

<!-- not run: a signature listing -->
```python
f(x, ...)
```
"""


def test_blocks_markers_and_shell_rules_are_read_as_documented() -> None:
    blocks = parse_blocks(SAMPLE)
    assert [(b.line, b.lang, b.heading, b.not_run) for b in blocks] == [
        (2, "sh", "Title", None),
        (13, "python", "Signatures", "a signature listing"),
    ]
    commands = [
        (c.line, c.argv, c.skip is not None, c.problem is not None) for c in shell_commands(blocks)
    ]
    restore = ("diffio_async", "restore", "a.wav", "-o", "out/")
    assert commands == [
        (3, (), True, False),  # pip install: SKIP_RULES
        (3, restore, False, False),  # no optional group
        (3, (*restore, "--json", "--era", "a"), False, False),  # every group, first choice
        (5, ("diffio_async", "projects"), False, False),
        (5, ("diffio_async", "generations", "PROJECT_ID"), False, False),
        (6, (), False, True),  # no rule: fails
        (7, ("diffio_async", "projects"), True, False),  # the same as line 5
    ]
    with pytest.raises(ValueError, match="never closed"):
        parse_blocks("```python\nx = 1\n")


BROKEN = [
    pytest.param(
        'result = await client.restroe("talk.wav", output="out/")\n',
        AttributeError,
        "restroe",
        id="misspelt-method",
    ),
    pytest.param(
        "import anyio\n\nasync def main():\n    await client.projects.lst()\n\nanyio.run(main)\n",
        AttributeError,
        "lst",
        id="misspelt-method-under-anyio.run",
    ),
    pytest.param(
        "async def main():\n    await client.restore('tlak.wav', output='out/')\n",
        diffio_async.InvalidRequestError,
        "tlak.wav",
        id="uncalled-main-is-run",
    ),
    pytest.param(
        "result = await clinet.restore('talk.wav')\n",
        SnippetNeedsMore,
        "clinet",
        id="missing-name",
    ),
    pytest.param(
        "async def test_it(diffio_env, capsys):\n    pass\n",
        SnippetNeedsMore,
        "capsys",
        id="missing-fixture",
    ),
    pytest.param(
        "@app.post('/hook')\nasync def hook(request: Request) -> Response:\n"
        "    return Response(status_code=400)\n",
        AssertionError,
        "answered a valid delivery 400",
        id="handler-refuses-a-delivery",
    ),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("source", "error", "match"), BROKEN)
async def test_a_broken_snippet_fails(
    source: str, error: type[Exception], match: str, reader: Reader
) -> None:
    with pytest.raises(error, match=match):
        await run_snippet(source, reader, where="a broken snippet")


@pytest.mark.anyio
async def test_anyio_run_in_a_snippet_runs_on_the_test_loop(
    anyio_backend: str, reader: Reader
) -> None:
    source = (
        "import anyio, sniffio\n\nasync def main(x):\n"
        "    return sniffio.current_async_library(), x\n\nran = anyio.run(main, 1)\n"
    )
    namespace = await run_snippet(source, reader, where="a snippet")
    assert namespace["ran"] == (anyio_backend, 1)
    assert reader.ran == [namespace["main"]]


def test_a_broken_command_fails(shell_world: ShellWorld) -> None:
    bad = Command(1, "x", "", ("diffio_async", "restore", "talk.wav", "-o", "out/", "--no-such"))
    with pytest.raises(AssertionError, match="exited 2"):
        run_command(bad, shell_world)
