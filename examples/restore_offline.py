"""Restore one file and then a small batch, offline, against the embedded emulator.

    python examples/restore_offline.py

With a real key, drop ``emulated_diffio`` and use ``AsyncDiffio()`` (DIFFIO_API_KEY).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import anyio

from diffio_async import BatchOptions
from diffio_async.testing import emulated_diffio


async def main() -> None:
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        for index in range(3):
            (folder / f"take{index}.wav").write_bytes(b"RIFF" + bytes([index]) * 48_000)

        async with emulated_diffio() as env:
            client = env.client

            # One file: upload, generation, wait, download.
            result = await client.restore(
                folder / "take0.wav",
                output=str(folder / "out") + "/",
                on_progress=lambda p: print(f"  {p.status:10} {p.percent:5.1f}%"),
            )
            print(f"restored {result.output.name} in {sum(result.timings.values()):.1f} s")

            # Many files: results in completion order, resumable with a ledger.
            sources = [folder / f"take{index}.wav" for index in range(3)]
            async with client.restore_many(
                sources,
                output_dir=folder / "batch",
                batch=BatchOptions(ledger=folder / "batch.sqlite"),
            ) as results:
                async for item in results:
                    print(f"{Path(item.source).name}: {'ok' if item.ok else item.error}")


if __name__ == "__main__":
    anyio.run(main)
