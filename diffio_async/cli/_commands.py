"""``main`` and the commands: parse, refuse bad input in one line, then restore, inspect
(projects, generations, progress, download), run the demo or serve the emulator."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shlex
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import anyio
import httpx2

from .._http.transport import api_url
from .._logging import print_on_stderr
from ..client import AsyncDiffio
from ..errors import (
    APIConnectionError,
    APITimeoutError,
    ConfigurationError,
    DiffioError,
    InvalidRequestError,
)
from ..webhook_listener import listen_for_webhooks
from ..webhooks import WebhookRouter
from ..workflows._options import BatchOptions, RestoreOptions
from ..workflows.ledger._location import redact_url
from ._batch import run_batch
from ._batch_group import batch_command, run_worker
from ._display import model_json
from ._errors import UsageError, fail, keys_in, lone, one_line, os_message, scrub
from ._extras import require_extra
from ._parser import build_parser
from ._paths import check_download_target, check_paths, count_files

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found, unused-ignore]

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``diffio-async`` command; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:  # argparse may echo a stray key ("unrecognized arguments: ...")
        return fail(scrub(str(exc), keys_in(argv)))
    if args.command == "emulator":
        try:
            require_extra("emulator", "diffio-async emulator")
        except UsageError as exc:
            return fail(str(exc))
        from ..emulator import run_cli

        return run_cli(list(args.rest), prog="diffio-async emulator")
    if getattr(args, "verbose", 0):
        print_on_stderr(logging.DEBUG if args.verbose > 1 else logging.INFO)
    try:
        try:
            return anyio.run(_run, args)
        except BaseExceptionGroup as group:
            inner = lone(group)
            if inner is None:
                raise
            raise inner from None
    except UsageError as exc:
        return fail(scrub(str(exc), keys_in(argv)))
    except OSError as exc:  # one of the user's paths (an unwritable output, a vanished folder)
        return fail(scrub(os_message(exc), keys_in(argv)))
    except KeyboardInterrupt:
        print(f"diffio-async: {_interrupted(args)}", file=sys.stderr)
        return 130


def _interrupted(args: argparse.Namespace) -> str:
    """What Ctrl-C left: for a batch, how to resume it (or that it cannot be)."""
    if args.command != "restore":
        return "interrupted"
    if args.ledger is None:
        return (
            "interrupted; without --ledger a rerun starts the batch over "
            "(pass --ledger FILE to make a batch resumable)"
        )
    return (
        "interrupted; run the same command again with --ledger "
        f"{shlex.quote(redact_url(args.ledger))} to resume: finished files are skipped, uploaded "
        "projects and created generations are reused"
    )


async def _run(args: argparse.Namespace) -> int:
    if args.command == "demo":
        require_extra("emulator", "diffio-async demo")
        from ._demo import demo

        return await demo(args)
    if args.command == "batch" and args.action != "run":
        return await batch_command(args)
    if getattr(args, "emulator", False):
        require_extra("emulator", f"diffio-async {args.command} --emulator")
    else:
        args.resolved_key = _api_key(args)  # before any work
    if args.command == "restore":
        return await _restore(args)
    if args.command == "batch":
        async with _client(args) as client:
            return await run_worker(client, args, secret=getattr(args, "resolved_key", None))
    if args.command == "download":
        await anyio.to_thread.run_sync(check_download_target, args.output)
    async with _client(args) as client:
        try:
            return await _inspect(client, args)
        except (ConfigurationError, InvalidRequestError) as exc:
            raise UsageError(str(exc)) from None
        except DiffioError as exc:
            message = one_line(scrub(str(exc), [args.resolved_key]))
            if isinstance(exc, APIConnectionError) and exc.api_call:
                reach = (
                    "no answer from" if isinstance(exc, APITimeoutError) else "cannot connect to"
                )
                message = f"{reach} {api_url(client.base_url, '').rstrip('/')}: {message}"
            print(f"diffio-async: {args.command} failed: {message}", file=sys.stderr)
            return 1


def _api_key(args: argparse.Namespace) -> str:
    """The key from ``--api-key`` or ``$DIFFIO_API_KEY``, refused (never shown) when unusable."""
    key: str | None
    if args.api_key is not None:
        key, origin = args.api_key, "--api-key"
    else:
        key, origin = os.environ.get("DIFFIO_API_KEY"), "DIFFIO_API_KEY"
    if key is None:
        raise UsageError(
            "no API key: pass --api-key or set DIFFIO_API_KEY "
            "(or try it offline with --emulator, or 'diffio-async demo')"
        )
    key = key.strip()
    if not key:
        raise UsageError(f"the API key from {origin} is empty")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in key):
        problem = "a control character (a stray newline or carriage return?)"
    elif not key.isascii():
        problem = "a non-ASCII character"
    else:
        return key
    raise UsageError(f"the API key from {origin} contains {problem}; it is not shown")


@asynccontextmanager
async def _client(args: argparse.Namespace) -> AsyncIterator[AsyncDiffio]:
    if getattr(args, "emulator", False):
        from ._embedded import embedded_emulator  # the emulator extra, checked by _run

        async with embedded_emulator(era=args.era) as embedded:
            yield embedded.client
        return
    try:
        client = AsyncDiffio(args.resolved_key, args.base_url)
    except DiffioError as exc:
        raise UsageError(str(exc)) from None
    except httpx2.InvalidURL as exc:
        raise UsageError(f"bad base URL: {exc}") from None
    async with client:
        yield client


async def _restore(args: argparse.Namespace) -> int:
    try:
        options = RestoreOptions(
            model=args.model, download_type=args.download_type, timeout=args.timeout
        )
        batch = BatchOptions(
            concurrency=args.concurrency, ledger=args.ledger, on_collision=args.on_collision
        )
        router = _webhook_router(args)
    except DiffioError as exc:
        raise UsageError(str(exc)) from None
    await anyio.to_thread.run_sync(check_paths, args.paths, args.output_dir, args.ledger)
    total = await count_files(args.paths, args.output_dir, args.on_collision)
    async with _client(args) as client, contextlib.AsyncExitStack() as stack:
        if router is not None:
            host, port = args.webhook_listen
            try:
                url = await stack.enter_async_context(
                    listen_for_webhooks(router, host=host, port=port)
                )
            except OSError as exc:
                raise UsageError(f"cannot listen on {host}:{port}: {os_message(exc)}") from None
            if not args.quiet:
                print(f"diffio-async: listening for webhooks on {url}", file=sys.stderr)
        return await run_batch(
            client,
            args.paths,
            output_dir=args.output_dir,
            total=total,
            options=options,
            batch=batch,
            json_lines=args.json,
            quiet=args.quiet,
            secret=getattr(args, "resolved_key", None),
            router=router,
        )


def _webhook_router(args: argparse.Namespace) -> WebhookRouter | None:
    """The router for ``--webhook-listen`` (``None`` without it); the secret is never shown."""
    secret = args.webhook_secret or os.environ.get("DIFFIO_WEBHOOK_SECRET")
    if args.webhook_listen is None:
        if args.webhook_secret:
            raise UsageError("--webhook-secret needs --webhook-listen HOST:PORT")
        return None
    if not secret:
        raise UsageError("--webhook-listen needs --webhook-secret or $DIFFIO_WEBHOOK_SECRET")
    return WebhookRouter(secret)


def _print_json(value: object) -> None:
    print(json.dumps(value), flush=True)


async def _inspect(client: AsyncDiffio, args: argparse.Namespace) -> int:
    if args.command == "projects":
        for project in await client.projects.list():
            if args.json:
                _print_json(model_json(project))
                continue
            print(
                f"{project.api_project_id}  {project.status:10} "
                f"{project.generation_count:3} gen  {project.original_file_name or ''}"
            )
    elif args.command == "generations":
        for generation in await client.projects.list_generations(args.project_id):
            if args.json:
                _print_json(model_json(generation))
                continue
            percent = "" if generation.progress is None else f"{generation.progress}%"
            print(
                f"{generation.generation_id}  {generation.status:10} "
                f"{generation.model_key or '':16} {percent}"
            )
    elif args.command == "progress":
        progress = await client.generations.get_progress(
            args.generation_id, project_id=args.project
        )
        if args.json:
            _print_json({**model_json(progress), "percent": progress.percent})
            return 0
        print(f"{progress.generation_id}  {progress.status}  {progress.percent:.0f}%")
        for name, stage in progress.stages:
            print(f"  {name:14} {stage.status:9} {stage.progress:3}%  {stage.status_message or ''}")
        if progress.error:
            print(f"  error: {progress.error} {progress.error_details or ''}")
    elif args.command == "download":
        handle = client.generations.get(args.generation_id, project_id=args.project)
        path = await handle.download(
            args.output,
            download_type=args.download_type,
            served_suffix=args.download_type is None,  # as restore names its outputs
        )
        if args.json:
            _print_json({"path": str(path)})
        else:
            print(path)
    return 0
