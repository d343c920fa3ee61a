"""The ``diffio-async`` command: restore files, run the emulator, try the demo, inspect.

::

    diffio-async demo                                  # the whole flow, offline, one command
    diffio-async restore talk.wav interviews/ -o out/ --ledger batch.sqlite
    diffio-async restore talk.wav -o out/ --emulator   # against an in-process emulator
    diffio-async emulator --port 8765 --era b          # a local Diffio for your own code
    diffio-async projects | generations PROJECT_ID | progress GENERATION_ID --project P
    diffio-async download GENERATION_ID --project P -o out/

The key comes from ``--api-key`` or ``DIFFIO_API_KEY``, the server from ``--base-url`` or
``DIFFIO_API_BASE_URL``. Bad input (an argument, a path, the key) gets one line on stderr
(``diffio-async: error: ...``) and exit status 2, before any work; the key is never printed.
``restore`` exits 1 when any file failed. The live display needs the ``cli`` extra (rich);
without it, plain lines are printed; ``demo``, ``restore --emulator`` and ``emulator`` need
the ``emulator`` extra and say so in one line without it.

Every command but ``emulator`` takes ``--json`` (snake_case keys), ``-q`` (only results and
errors) and ``-v`` / ``-vv`` (the SDK's log records on stderr); ``--version`` prints the
version.
"""

from ._commands import main

__all__ = ["main"]
