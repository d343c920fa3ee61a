"""``diffio-async batch``: a named batch on a PostgreSQL ledger that many workers share:
``add`` registers sources, ``status`` shows how far it got (and why it stopped), ``run`` is
one worker (``restore_many`` with a named batch: ``workflows._shared_batch``), ``resume``
clears a stop (see ``workflows.ledger._claims``)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio

from ..client import AsyncDiffio
from ..errors import DiffioError, LedgerError
from ..workflows._options import BatchOptions, RestoreOptions
from ..workflows._sources import placements
from ..workflows.ledger._claims import BatchStatus, BatchStop
from ..workflows.ledger._location import is_postgres_url, redact_url
from ..workflows.ledger._postgres import PostgresStore
from ._display import item_json
from ._errors import UsageError, hide, one_line
from ._extras import require_extra

__all__ = ["batch_command", "run_worker", "shared_store", "status_json"]


async def batch_command(args: argparse.Namespace) -> int:
    """Run ``batch add``, ``status`` or ``resume``; return the exit status."""
    if args.action == "add":
        return await _add(args)
    if args.action == "resume":
        return await _resume(args)
    return await _status(args)


def _checked_store(args: argparse.Namespace) -> PostgresStore:
    """The shared store of the batch ``args.name`` on ``args.ledger`` (not open yet)."""
    if not is_postgres_url(args.ledger):
        raise UsageError(
            f"a batch lives on a PostgreSQL ledger: --ledger postgresql://..., not "
            f"{redact_url(args.ledger)!r} (for a SQLite ledger use 'diffio-async restore')"
        )
    require_extra("postgres", "a postgresql:// ledger")
    try:
        return PostgresStore(args.ledger, batch=args.name, shared=True)
    except LedgerError as exc:
        raise UsageError(f"cannot use --ledger {redact_url(args.ledger)}: {exc}") from None


@asynccontextmanager
async def shared_store(args: argparse.Namespace) -> AsyncIterator[PostgresStore]:
    """The batch ``args.name`` of ``args.ledger``, opened shared; one line when unusable."""
    store = _checked_store(args)
    try:
        await store.open()
    except LedgerError as exc:
        raise UsageError(f"cannot use --ledger {redact_url(args.ledger)}: {exc}") from None
    try:
        yield store
    finally:
        await store.aclose()


async def _add(args: argparse.Namespace) -> int:
    from .._media.object_store import is_url  # imported here: this edit stays inside _add
    from ._paths import check_url

    for raw in args.paths:
        if is_url(raw):  # an object or prefix on storage: its URL is the key
            check_url(raw, "source")
        elif not await anyio.Path(raw).exists():
            raise UsageError(f"no such file or folder: {raw}")
    # The files restore_many would restore (hidden files and links seen twice left out), by
    # their real paths or URLs (the ledger's keys), each with where its output goes under the
    # workers' output folder. Nothing is written: the folder only names outputs.
    try:
        sources = await placements(args.paths)
    except DiffioError as exc:
        raise UsageError(str(exc)) from None
    async with shared_store(args) as store:
        added = await store.add_sources(sources)
        total = (await store.status()).total
    if args.json:
        print(json.dumps({"batch": args.name, "added": added, "total": total}), flush=True)
    else:
        print(
            f"batch {args.name!r}: {added} added, {len(sources) - added} already there, "
            f"{total} in all"
        )
    return 0


def _stop_json(stop: BatchStop | None) -> dict[str, Any] | None:
    if stop is None:
        return None
    return {"reason": stop.reason, "worker": stop.worker, "at": stop.at.isoformat()}


def _stop_line(stop: BatchStop) -> str:
    return one_line(
        f"stopped by worker {stop.worker} at {stop.at:%Y-%m-%d %H:%M:%S} UTC: {stop.reason}"
    )


def status_json(status: BatchStatus) -> dict[str, Any]:
    """``batch status --json``: snake_case keys (``stop``: ``null`` while the batch runs)."""
    return {
        "batch": status.name,
        "total": status.total,
        "unfinished": status.unfinished,
        "counts": dict(status.counts),
        "workers": [
            {"owner": w.owner, "leased": w.leased, "downloaded": w.downloaded}
            for w in status.workers
        ],
        "throughput_per_minute": status.throughput,
        "eta_seconds": status.eta_seconds,
        "stop": _stop_json(status.stop),
    }


async def _status(args: argparse.Namespace) -> int:
    async with shared_store(args) as store:
        status = await store.status()
    if args.json:
        print(json.dumps(status_json(status)), flush=True)
        return 0
    require_extra("cli", "the batch status table")
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    states = Table()
    states.add_column("state")
    states.add_column("files", justify="right")
    for state, number in status.counts.items():
        states.add_row(state, str(number))
    workers = Table()
    for column in ("worker", "leased now", "downloaded"):
        workers.add_column(column, justify="left" if column == "worker" else "right")
    for worker in status.workers:
        workers.add_row(escape(worker.owner), str(worker.leased), str(worker.downloaded))
    console = Console()
    print(f"batch {status.name!r}: {status.total} files, {status.unfinished} unfinished")
    console.print(states)
    if status.workers:
        console.print(workers)
    eta = "-" if status.eta_seconds is None else f"{status.eta_seconds:.0f} s"
    print(f"throughput {status.throughput:.1f} files/min, ETA {eta}", flush=True)
    if status.stop is not None:
        print(f"{_stop_line(status.stop)} (clear it with 'diffio-async batch resume')", flush=True)
    return 0


async def _resume(args: argparse.Namespace) -> int:
    async with shared_store(args) as store:
        cleared = await store.resume()
    if cleared is None:
        print(f"batch {args.name!r} was not stopped; its failed files will be tried again")
    else:
        print(
            f"batch {args.name!r} resumed (it was {_stop_line(cleared)}); its failed files "
            "will be tried again"
        )
    return 0


async def run_worker(client: AsyncDiffio, args: argparse.Namespace, *, secret: str | None) -> int:
    """``batch run``: work the batch until every file is finished; 0 when every file this
    worker took is done, else 1."""
    _checked_store(args)  # a clear line for a wrong ledger, before any request
    try:
        options = RestoreOptions(
            model=args.model, download_type=args.download_type, timeout=args.timeout
        )
        batch = BatchOptions(
            concurrency=args.concurrency,
            ledger=args.ledger,
            name=args.name,
            lease_seconds=args.lease,
        )
    except DiffioError as exc:
        raise UsageError(str(exc)) from None
    ok = failed = 0
    started = False
    try:
        async with client.restore_many(
            (), output_dir=args.output_dir, options=options, batch=batch
        ) as items:
            started = True
            async for item in items:
                ok += item.ok
                failed += not item.ok
                if args.json:
                    print(json.dumps(item_json(item, secret)), flush=True)
                elif not args.quiet or not item.ok:
                    error = "" if item.error is None else f": {hide(str(item.error), secret)}"
                    shown = "done" if item.ok else f"failed at {item.stage}"
                    print(one_line(f"{item.source} {shown}{error}"), flush=True)
    except DiffioError as exc:
        if not started:
            raise UsageError(f"cannot work batch {args.name!r}: {exc}") from None
        print(f"diffio-async: worker stopped: {one_line(hide(str(exc), secret))}", file=sys.stderr)
        return 1
    if not args.json and not args.quiet:
        print(f"batch {args.name!r}: this worker finished {ok} file(s), {failed} failed")
    return 0 if not failed else 1
