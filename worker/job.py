"""The values that cross the runtime's edge: what to run, within what limits, and how it ended."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any, Literal

DEFAULT_LIBRARY_ID = "00000000-0000-0000-0000-000000000000"
MiB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Caps on one run of a job; ``None`` fuel means unmetered (fuel is still counted).

    ``timeout_seconds`` is the hard wall-clock limit of one run (an epoch deadline);
    ``slice_seconds`` is the soft one: when it passes, ``job_check_interrupt`` asks
    the job to checkpoint and stop so it can continue later. ``snapshot_seconds`` is
    how often (in seconds of run time) a job in snapshot mode is snapshotted while it
    runs, which bounds the work a crash can lose (None = only when it is stopped).
    """

    max_memory_mb: int = 64
    fuel: int | None = None
    timeout_seconds: float = 300.0
    slice_seconds: float | None = None
    max_checkpoint_bytes: int = 1 * MiB
    max_log_bytes: int = 64 * 1024
    max_warnings: int = 100
    snapshot_seconds: float | None = None

    def merged(self, **overrides: Any) -> Limits:
        """A copy with every non-None override applied."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def needs_fuel(limits: Limits, *, billing: bool = False) -> bool:
    """Whether a run must be metered: it has a fuel budget, or the operator bills by fuel."""
    return billing or limits.fuel is not None


@dataclass(frozen=True)
class JobSpec:
    """One job to run: which export of which extension, for whom, with what parameters.

    ``params`` are encoded with the extension's state encoding on a first run;
    a stored checkpoint always wins over them.
    """

    job_name: str
    params: Any = None
    job_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    library_id: str = DEFAULT_LIBRARY_ID


class InterruptReason(str, Enum):
    """Why a job was asked to stop early."""

    PAUSE = "pause"
    CANCEL = "cancel"
    SLICE = "slice"
    SHUTDOWN = "shutdown"


class InterruptFlag:
    """An in-memory flag the guest polls through ``job_check_interrupt``.

    Writers (a Ctrl-C handler, a Redis watcher thread, a slice timer) call
    :meth:`request`; the host function only reads an attribute, no I/O.
    """

    def __init__(self) -> None:
        self.reason: InterruptReason | None = None
        self._event = threading.Event()

    def request(self, reason: InterruptReason) -> None:
        """Ask the job to stop; the first reason wins except that cancel overrides."""
        if self.reason is None or reason is InterruptReason.CANCEL:
            self.reason = reason
        self._event.set()

    def wait(self, timeout: float) -> bool:
        """Block until a stop is requested or ``timeout`` passes; True if requested."""
        return self._event.wait(timeout)


class Status(str, Enum):
    """How one run ended."""

    COMPLETED = "completed"
    INTERRUPTED = "interrupted"
    FAILED = "failed"


@dataclass
class Usage:
    """What one run consumed: the unit an operator bills an extension by.

    ``fuel`` is 0 on the engine without fuel metering; ``cpu_seconds`` (the running
    thread's CPU time) is measured for every run.
    """

    fuel: int = 0
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_memory_bytes: int = 0
    host_calls: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "fuel": self.fuel,
            "wall_seconds": round(self.wall_seconds, 6),
            "cpu_seconds": round(self.cpu_seconds, 6),
            "peak_memory_bytes": self.peak_memory_bytes,
            "host_calls": self.host_calls,
        }


@dataclass
class Outcome:
    """The end of one run: completed with a result, interrupted, or failed with a reason.

    ``failure`` names the kind of failure (``trap``, ``fuel``, ``timeout``, ``memory``,
    ``guest``, ``bad_return``, ``bad_pointer``, ``module``, ``store``, ``lease``);
    ``infrastructure`` marks failures that are not the guest's fault and deserve a retry.
    """

    job_id: str
    status: Status
    result: Any = None
    state: bytes | None = None
    reason: str | None = None
    interrupt: InterruptReason | None = None
    checkpoints: int = 0
    progress: float = 0.0
    message: str = ""
    items: int = 0
    bytes: int = 0
    usage: Usage = field(default_factory=Usage)
    failure: str | None = None
    infrastructure: bool = False
    logs: list[Any] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    snapshots: Any = None  # SnapshotStats of a run in snapshot mode

    @property
    def ok(self) -> bool:
        return self.status is Status.COMPLETED

    @property
    def next_step(self) -> NextStep:
        """What follows this run, the same for ``wasmjob run`` and the fleet: ``completed``;
        ``interrupted`` (resume from the checkpoint on request); ``retry`` (a run past its
        hard deadline, or a store fault: the next run resumes from the last checkpoint);
        ``failed`` (final: the guest failed)."""
        if self.status is Status.COMPLETED:
            return "completed"
        if self.status is Status.INTERRUPTED:
            return "interrupted"
        if self.failure == "timeout" or self.infrastructure:
            return "retry"
        return "failed"


NextStep = Literal["completed", "interrupted", "retry", "failed"]
