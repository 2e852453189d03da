"""The rows of the table, one module each, found by listing this package.

A row module defines ``ROW`` (its number in the table, a string such as ``"9"``),
``TARGET`` (the target as the table shows it) and ``run(ctx) -> list[Result]``.
Adding a row is adding a file here; nothing else needs an edit. Numbers taken:
1–7 (the first round), 8 scale with the number of jobs (perf), 9 Python extensions
(python), 10 brokers and replicated checkpoints (reliability), 11 snapshots (snapshot).
``--quick`` must keep each row within a few tens of seconds.
"""

from __future__ import annotations

import importlib
import pkgutil
import re

from ..core import Row


def _order(key: str) -> tuple[int, str]:
    m = re.match(r"(\d+)(.*)", key)
    return (int(m.group(1)), m.group(2)) if m else (10**6, key)


def discover() -> tuple[dict[str, Row], dict[str, str]]:
    """Every row module of this package: (number -> entry point, number -> target), in table order."""
    found: dict[str, tuple[Row, str, str]] = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        key = getattr(module, "ROW", None)
        if key is None:
            continue  # a helper module shared by rows
        if key in found:
            raise RuntimeError(f"bench rows {found[key][2]} and {info.name} both claim row {key}")
        found[str(key)] = (module.run, str(module.TARGET), info.name)
    keys = sorted(found, key=_order)
    return {k: found[k][0] for k in keys}, {k: found[k][1] for k in keys}


ROWS, TARGETS = discover()
