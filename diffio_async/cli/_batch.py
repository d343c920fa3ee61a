"""Run one ``restore_many`` batch under the live display: per-item JSON lines, the summary,
the exit status, and one line for a batch that cannot start."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from ..client import AsyncDiffio
from ..errors import BatchAbortedError, DiffioError, LedgerError, OutputCollisionError
from ..webhooks import WebhookRouter
from ..workflows._options import BatchOptions, RestoreOptions
from ..workflows.bulk import ItemResult
from ..workflows.ledger._location import redact_url
from ._display import Display, item_json
from ._errors import UsageError, hide, one_line

__all__ = ["MAX_CLASHES_SHOWN", "run_batch"]

MAX_CLASHES_SHOWN = 5
"""How many contested outputs an output-collision error names."""


async def run_batch(
    client: AsyncDiffio,
    paths: Sequence[str],
    *,
    output_dir: str,
    total: int,
    options: RestoreOptions,
    batch: BatchOptions,
    json_lines: bool,
    quiet: bool = False,
    secret: str | None = None,
    router: WebhookRouter | None = None,
) -> int:
    """Restore ``paths`` with ``client``; return 0 when every file is done, else 1. A batch
    that cannot start raises :class:`UsageError`. ``quiet``: no live display and no table;
    the count line only when a file failed or never finished."""
    display = Display(total, enabled=not json_lines and not quiet, secret=secret)
    table = not json_lines and not quiet
    results: list[ItemResult] = []
    started = False
    try:
        # The batch starts (output folder, ledger, collision check) before the display does:
        # a batch that cannot start is one line, not a progress bar and a line.
        async with client.restore_many(
            paths,
            output_dir=output_dir,
            options=options,
            batch=batch,
            on_stage=display.stage,
            router=router,
        ) as items:
            started = True
            with display:
                async for item in items:
                    results.append(item)
                    display.done(item)
                    if json_lines:
                        print(json.dumps(item_json(item, secret)), flush=True)
    except BatchAbortedError as exc:
        display.summary(results, with_table=table)
        cause = one_line(hide(str(exc.cause), secret))
        print(f"diffio-async: batch stopped: {cause}", file=sys.stderr)
        return 1
    except DiffioError as exc:
        if not started:
            raise UsageError(_start_error(exc, output_dir, batch.ledger)) from None
        display.summary(results, with_table=table)
        print(f"diffio-async: batch failed: {one_line(hide(str(exc), secret))}", file=sys.stderr)
        return 1
    ok = all(item.ok for item in results)
    if table or (quiet and not ok):
        display.summary(results, with_table=table)
    return 0 if ok else 1


def _start_error(exc: DiffioError, output_dir: str, ledger: str | None) -> str:
    """One line for a batch that could not start."""
    if isinstance(exc, OutputCollisionError) and exc.clashes:
        shown = [
            f"{_under(output, output_dir)} <- {', '.join(sources)}"
            for output, sources in sorted(exc.clashes.items())[:MAX_CLASHES_SHOWN]
        ]
        more = len(exc.clashes) - len(shown)
        return (
            f"{len(exc.clashes)} output file(s) would each be written by several sources: "
            + "; ".join(shown)
            + (f"; and {more} more" if more > 0 else "")
            + " (pass --on-collision rename, or restore them into separate -o folders)"
        )
    if isinstance(exc, LedgerError) and ledger is not None:
        return f"cannot use --ledger {redact_url(ledger)}: {exc}"
    return str(exc)


def _under(output: str, output_dir: str) -> str:
    """``output`` relative to ``output_dir`` when it lies inside it."""
    try:
        return str(Path(output).relative_to(output_dir))
    except ValueError:
        try:
            return str(Path(output).resolve().relative_to(Path(output_dir).resolve()))
        except ValueError:
            return output
