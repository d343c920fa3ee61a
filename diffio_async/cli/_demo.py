"""``diffio-async demo``: make sample recordings, restore them through an embedded emulator
under the live display, and check that the outputs match the inputs byte for byte."""

from __future__ import annotations

import argparse
import filecmp
import math
import struct
import sys
import tempfile
import wave
from pathlib import Path

import anyio

from ..workflows._options import BatchOptions, RestoreOptions
from ._batch import run_batch
from ._embedded import embedded_emulator
from ._paths import check_output_dir

__all__ = ["demo", "make_samples", "outputs_match"]


def _write_sample(path: Path, *, seconds: float, frequency: float) -> None:
    """A short mono 16-bit WAV: a tone with a little 'noise' to restore."""
    rate = 16_000
    frames = bytearray()
    for n in range(int(rate * seconds)):
        value = 0.3 * math.sin(2 * math.pi * frequency * n / rate) + 0.05 * math.sin(n * 7.1)
        frames += struct.pack("<h", int(value * 32767))
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(bytes(frames))


def make_samples(folder: Path, count: int) -> None:
    """Create ``folder`` with ``count`` half-second WAV files of different tones."""
    folder.mkdir()
    for index in range(count):
        _write_sample(folder / f"take-{index + 1:02}.wav", seconds=0.5, frequency=220 + 55 * index)


def outputs_match(inputs: Path, output: Path) -> bool:
    """Every input has an ``.mp3`` output with the same bytes (the emulator passes audio
    through)."""
    return all(
        filecmp.cmp(output / f.with_suffix(".mp3").name, f, shallow=False)
        for f in sorted(inputs.iterdir())
    )


async def demo(args: argparse.Namespace) -> int:
    """Run the demo; return 0 when every file was restored and matches, else 1."""
    keep = args.output_dir
    if keep:
        await anyio.to_thread.run_sync(check_output_dir, keep)
    with tempfile.TemporaryDirectory(prefix="diffio-demo-") as work:
        inputs = Path(work, "recordings")
        await anyio.to_thread.run_sync(make_samples, inputs, args.files)
        output = Path(keep) if keep else Path(work, "restored")
        if not args.quiet:
            print(
                f"diffio-async demo: restoring {args.files} sample recordings through an "
                f"in-process emulator (API era {args.era}, no key needed)",
                file=sys.stderr,
            )
        async with embedded_emulator(era=args.era) as embedded:
            status = await run_batch(
                embedded.client,
                [str(inputs)],
                output_dir=str(output),
                total=args.files,
                options=RestoreOptions(timeout=120),
                batch=BatchOptions(concurrency=4),
                json_lines=args.json,
                quiet=args.quiet,
            )
            same = await anyio.to_thread.run_sync(outputs_match, inputs, output)
            requests = len(embedded.emulator.requests)
        if args.quiet and same:
            return status
        print(
            f"{requests} HTTP requests; outputs {'match' if same else 'DO NOT match'} the "
            f"inputs byte for byte (the emulator's 'restoration' passes audio through)"
            + (f"; kept in {output}" if keep else ""),
            file=sys.stderr,
        )
        return status if same else 1
