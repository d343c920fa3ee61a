"""``python -m diffio_async``: the same as the ``diffio-async`` command."""

import sys

from .cli import main

sys.exit(main())
