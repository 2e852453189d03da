"""``python -m wasmjob`` is the ``wasmjob`` command."""

import sys

from .cli import main

sys.exit(main())
