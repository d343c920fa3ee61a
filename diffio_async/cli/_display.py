"""The restore's live display: an overall bar with counts per stage, rate and ETA (rich when
installed, plain lines without it), the closing summary, and the ``--json`` line of an item."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any, TextIO

import anyio
import attrs

from ..workflows.bulk import ItemResult
from ._errors import hide
from ._extras import install_hint

__all__ = ["STAGES", "Display", "item_json", "model_json"]

STAGES = ("hash", "upload", "generation", "wait", "download")
"""The stages the display counts, in the order a file goes through them."""


def item_json(item: ItemResult, secret: str | None = None) -> dict[str, Any]:
    """One ``--json`` line: an item's outcome, with the key in use hidden from its error."""
    error = None if item.error is None else f"{type(item.error).__name__}: {item.error}"
    return {
        "source": item.source,
        "ok": item.ok,
        "skipped": item.skipped,
        "stage": item.stage,
        "error": None if error is None else hide(error, secret),
        "project_id": item.project_id,
        "generation_id": item.generation_id,
        "output": None if item.output is None else str(item.output),
        "attempts": item.attempts,
        "timings": dict(item.timings),
    }


def model_json(model: Any) -> dict[str, Any]:
    """An SDK model (attrs) as a ``--json`` object: its fields by their snake_case names,
    nested models as objects, datetimes in ISO 8601."""
    return attrs.asdict(model, value_serializer=_json_value)


def _json_value(instance: object, field: object, value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else value


class Display:
    """Live progress (rich when installed): overall bar, counts per stage, rate and ETA."""

    def __init__(
        self,
        total: int,
        *,
        enabled: bool,
        stream: TextIO | None = None,
        secret: str | None = None,
    ) -> None:
        self.total = total
        self.enabled = enabled
        self.stream = sys.stderr if stream is None else stream  # the current one, not import's
        self.secret = secret
        self.stages: dict[str, str] = {}
        self.finished = Counter[str]()
        self._progress: Any = None
        self._task: Any = None
        try:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
        except ImportError:  # the cli extra is not installed: plain lines
            self.console = None
            if enabled:
                print(
                    f"diffio-async: plain progress lines ({install_hint('cli')} for the live "
                    "display)",
                    file=self.stream,
                )
            return
        self.console = Console(file=self.stream)
        if enabled:
            self._progress = Progress(
                TextColumn("[bold]restoring"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[stages]}"),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self._task = self._progress.add_task("restore", total=total, stages="", rate="")
        self._started = 0.0

    def __enter__(self) -> Display:
        self._started = anyio.current_time()
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._refresh()
            self._progress.stop()

    def stage(self, source: str, stage: str) -> None:
        """``restore_many``'s ``on_stage``: ``source`` entered ``stage``."""
        if stage == "done":
            self.stages.pop(source, None)
        else:
            self.stages[source] = stage
        self._refresh()

    def done(self, item: ItemResult) -> None:
        """An item finished (restored, skipped or failed)."""
        self.stages.pop(item.source, None)
        self.finished["skipped" if item.skipped else "ok" if item.ok else "failed"] += 1
        if self._progress is None and self.enabled:
            mark = "skip" if item.skipped else "ok" if item.ok else f"FAILED at {item.stage}"
            print(
                f"[{sum(self.finished.values())}/{self.total}] {mark}  {item.source}",
                file=self.stream,
            )
        self._refresh()

    def _refresh(self) -> None:
        if self._progress is None:
            return
        counts = Counter(self.stages.values())
        stages = "  ".join(f"{name} {counts[name]}" for name in STAGES if counts[name])
        failed = self.finished["failed"]
        if failed:
            stages += f"  [red]failed {failed}[/red]"
        elapsed = max(1e-6, anyio.current_time() - self._started)
        done = sum(self.finished.values())
        self._progress.update(
            self._task, completed=done, stages=stages, rate=f"{done / elapsed:.1f} files/s"
        )

    def summary(self, results: Sequence[ItemResult], *, with_table: bool = True) -> None:
        """The closing table (with rich, when ``with_table``) and the one-line count of outcomes,
        which counts the files a stopped batch never finished."""
        ok = sum(1 for r in results if r.ok and not r.skipped)
        skipped = sum(1 for r in results if r.skipped)
        failed = [r for r in results if not r.ok]
        if with_table and self.console is not None:
            from rich.table import Table

            table = Table(title="diffio-async restore")
            for column in ("file", "result", "output / error", "attempts", "seconds"):
                table.add_column(column)
            shown = failed + [r for r in results if r.ok]
            for item in shown[:20]:
                detail = (
                    PurePosixPath(str(item.output)).name
                    if item.output
                    else hide(f"{item.stage}: {item.error}", self.secret)
                )
                table.add_row(
                    Path(item.source).name,
                    "[yellow]skipped"
                    if item.skipped
                    else "[green]ok"
                    if item.ok
                    else "[red]failed",
                    detail,
                    str(item.attempts),
                    f"{sum(item.timings.values()):.1f}",
                )
            if len(shown) > 20:
                table.add_row(f"... {len(shown) - 20} more", "", "", "", "")
            self.console.print(table)
        unfinished = max(0, self.total - len(results))
        print(
            f"{len(results) + unfinished} files: {ok} restored, {skipped} already done, "
            f"{len(failed)} failed"
            + (f", {unfinished} never finished (the batch stopped first)" if unfinished else ""),
            file=self.stream,
        )
