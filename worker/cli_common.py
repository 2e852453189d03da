"""What both halves of the CLI share: exit codes, JSON arguments, paths and times for people.

``cli.py`` (local commands, the parser) and ``cli_fleet.py`` (fleet commands) both
import this module and not each other's internals, so neither imports the other at
module level.
"""

from __future__ import annotations

import datetime
import json
import sys
import time
from pathlib import Path
from typing import Any

from .errors import ConfigError, JobTimeout, NotFound, StoreUnavailable, WasmJobError

# Exit codes, documented in `wasmjob --help`, so scripts can tell the cases apart.
EXIT_FAILED = 1  # the job failed, or another error
EXIT_USAGE = 2  # bad command line or input (argparse uses 2 too)
EXIT_NOT_FOUND = 3  # no such job, extension or file
EXIT_UNREACHABLE = 4  # Redis (the fleet's store) cannot be reached
EXIT_TIMEOUT = 124  # a wait or a run's time limit ran out (as timeout(1))
EXIT_INTERRUPTED = 130  # Ctrl-C (the job checkpointed, or goes on on the fleet)

EXIT_CODES = f"""exit codes:
  0    success
  {EXIT_FAILED}    the job failed (or another error)
  {EXIT_USAGE}    usage: a bad option, argument or input
  {EXIT_NOT_FOUND}    not found: no such job, extension or file
  {EXIT_UNREACHABLE}    unreachable: the fleet's Redis does not answer
  {EXIT_TIMEOUT}  timeout: a --timeout or a run's time limit ran out
  {EXIT_INTERRUPTED}  interrupted by Ctrl-C"""


def exit_code_for(exc: WasmJobError) -> int:
    """The documented exit code of an error."""
    if isinstance(exc, NotFound):
        return EXIT_NOT_FOUND
    if isinstance(exc, StoreUnavailable):
        return EXIT_UNREACHABLE
    if isinstance(exc, JobTimeout):
        return EXIT_TIMEOUT
    if isinstance(exc, ConfigError):
        return EXIT_USAGE
    return EXIT_FAILED


def json_arg(text: str | None, what: str) -> Any:
    """A JSON command-line value: inline, ``@FILE`` (read from a file) or ``-`` (stdin)."""
    if text is None:
        return None
    source = what
    if text == "-":
        text, source = sys.stdin.read(), f"{what} from stdin"
    elif text.startswith("@"):
        path = Path(text[1:])
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise NotFound(f"{what}: cannot read {path}: {exc.strerror}") from None
        source = f"{what} from {path}"
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{source} is not valid JSON: {exc}") from None


def shown_path(path: Path) -> str:
    """A path as the user would type it: relative to the current directory when under it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def when(ts: float | None) -> str:
    """A timestamp as local date and time, or ``-``."""
    if not ts:
        return "-"
    return datetime.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def age(ts: float | None, now: float | None = None) -> str:
    """How long ago, compactly (``42s``, ``5m``, ``3h``, ``2d``), as docker ps shows it."""
    if not ts:
        return "-"
    seconds = max(0.0, (now or time.time()) - ts)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"
