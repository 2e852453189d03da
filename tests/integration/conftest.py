"""Make the WAT modules importable as ``modules`` in these tests."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
