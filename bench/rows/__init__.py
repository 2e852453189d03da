"""One module per row of the table; ``ROWS`` maps the row number to its entry point."""

from __future__ import annotations

from ..core import Row
from . import checkpoint, cpu, hostcalls, recovery, scaling, startup, throughput

ROWS: dict[str, Row] = {
    "1": throughput.run,
    "2": startup.run,
    "3": hostcalls.run,
    "4": cpu.run,
    "5": checkpoint.run,
    "6": recovery.run,
    "7": scaling.run,
}

TARGETS = {
    "1": "≥ 0.8× plain Celery",
    "2": "warm ≤ 1 ms, ≥ 50× cold (large)",
    "3": "≤ 2 µs/call",
    "4": "≥ 20× Python, ≤ 2× native",
    "5": "≤ 1.5× raw SET",
    "6": "≤ 2× lease TTL",
    "7": "≥ 1.7×",
}
