"""The context a job gets: interrupt checks, checkpoints, progress, logs, counters and host calls.

It talks to a *host* (the component's imports, or the test double) through the small
:class:`Host` protocol, so the same job code runs sandboxed and under plain pytest.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from .state import encode_state

DEBUG, INFO, WARN, ERROR = 0, 1, 2, 3


class JobError(Exception):
    """Raise it to fail the job with just its message (no traceback)."""


class Interrupted(BaseException):
    """Raised by :meth:`Context.check` when the host asks the job to stop; the SDK catches it.

    A BaseException, so ``except Exception`` in job code does not swallow a pause.
    """


class CheckpointFailed(JobError):
    """The host did not save a checkpoint (too large, lease lost or store unreachable)."""


class HostCallFailed(JobError):
    """A host operation was refused (permissions, rate) or failed; the message says why."""


class Host(Protocol):
    """What a context needs from the host: the ``wasmjob:job/host`` interface."""

    def log(self, level: int, message: str) -> None: ...
    def report_progress(self, progress: float, message: str) -> None: ...
    def checkpoint(self, state: bytes) -> int: ...
    def check_interrupt(self) -> int: ...
    def add_warning(self, message: str) -> None: ...
    def increment_items(self, n: int) -> None: ...
    def increment_bytes(self, n: int) -> None: ...
    def call(self, method: str, library_id: str, payload: str) -> str: ...


class Context:
    """One run of a job; takes the host, the parsed ctx JSON and the state encoding."""

    def __init__(self, host: Host, info: dict[str, Any], encoding: str = "json") -> None:
        self._host = host
        self._interrupt = host.check_interrupt
        self.job_id: str = str(info.get("job_id", ""))
        self.library_id: str = str(info.get("library_id", ""))
        self.encoding = encoding
        self.state: Any = None
        self.checkpoints = 0

    # stopping and saving --------------------------------------------------------

    def interrupted(self) -> bool:
        """True when the job was paused or cancelled or its time slice is over (no I/O)."""
        return self._interrupt() != 0

    def check(self, state: Any = None) -> None:
        """Stop here if the host asks: the SDK checkpoints the state (``state`` if given, else
        the last one this context saw) and the run ends as interrupted, to resume from it."""
        if self._interrupt():
            if state is not None:
                self.state = state
            raise Interrupted()

    def checkpoint(self, state: Any = None) -> None:
        """Save ``state`` (default: the job's current state object); raises CheckpointFailed if not saved."""
        if state is not None:
            self.state = state
        self.save(self.state)

    def save(self, state: Any) -> None:
        """Encode and checkpoint ``state``; raises CheckpointFailed when the host refuses."""
        data = encode_state(state, self.encoding)
        if self._host.checkpoint(data) != 0:
            raise CheckpointFailed(f"checkpoint of {len(data)} bytes was not saved")
        self.checkpoints += 1

    # reporting ------------------------------------------------------------------

    def progress(self, fraction: float, message: str = "") -> None:
        """Progress in [0, 1] and a short message (the host clamps and rate-limits writes)."""
        self._host.report_progress(float(fraction), message)

    def log(self, message: str, level: int = INFO) -> None:
        self._host.log(level, str(message))

    def debug(self, message: str) -> None:
        self._host.log(DEBUG, str(message))

    def warn(self, message: str) -> None:
        """A non-fatal problem kept with the job (and logged at warning level)."""
        self._host.add_warning(str(message))

    def error(self, message: str) -> None:
        self._host.log(ERROR, str(message))

    def add_items(self, n: int = 1) -> None:
        self._host.increment_items(int(n))

    def add_bytes(self, n: int) -> None:
        self._host.increment_bytes(int(n))

    # host operations ------------------------------------------------------------

    def call(self, method: str, payload: Any = None, library_id: str = "") -> Any:
        """Run host operation ``method`` (e.g. ``query:kv.get.v1``) with a JSON payload."""
        text = self._host.call(method, library_id, json.dumps(payload if payload is not None else {}))
        return json.loads(text)

    def kv_get(self, key: str) -> str | None:
        """The value stored under ``key`` for this tenant and extension, or None."""
        value = self.call("query:kv.get.v1", {"key": key}).get("value")
        return None if value is None else str(value)

    def kv_set(self, key: str, value: str) -> None:
        """Store ``value`` (a string, at most 64 KiB) under ``key`` for this tenant and extension."""
        self.call("action:kv.set.v1", {"key": key, "value": value})
