"""The checkpoint store interface every backend implements (SQLite locally, Redis in the fleet).

Writes that belong to a run carry the lease's fencing token: a store refuses
them with :class:`~wasmjob.errors.LeaseLost` once a newer token was issued, so
a stale worker can never overwrite a newer checkpoint or finish a job twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


class Fence(int):
    """A lease's fencing token (an int) that also names the run holding it (``owner``, unique per run).

    Stores that can lose a token (a Redis failover may issue the same number again to another
    run) fence by both: a write carrying this token number but another owner is refused.
    Hand ``int(fence)`` to a raw Redis command (hiredis packs exact ints only).
    """

    owner: str

    def __new__(cls, token: int, owner: str) -> Fence:
        made = super().__new__(cls, token)
        made.owner = owner
        return made

    def __getnewargs__(self) -> tuple[int, str]:  # type: ignore[override]
        return int(self), self.owner


def owner_of(token: int) -> str:
    """The run a token was issued to ('' for a bare int: no lease value ever matches it)."""
    return getattr(token, "owner", "")


@dataclass
class LogLine:
    """One line a job logged: unix time, level (0 debug .. 3 error) and text."""

    ts: float
    level: int
    message: str


@dataclass
class ProgressUpdate:
    """What a run reported since the last flush; counters are deltas, the rest replace."""

    progress: float | None = None
    message: str | None = None
    items: int = 0
    bytes: int = 0
    logs: list[LogLine] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def empty(self) -> bool:
        return (
            self.progress is None
            and self.message is None
            and not self.items
            and not self.bytes
            and not self.logs
            and not self.warnings
        )


@runtime_checkable
class CheckpointStore(Protocol):
    """Durable job state with leases and fencing tokens."""

    def acquire(self, job_id: str, owner: str, ttl: float) -> int:
        """Take the job's lease for ``ttl`` seconds; return a token larger than any before.

        Raises LeaseHeld when another owner holds an unexpired lease.
        """

    def renew(self, job_id: str, token: int, ttl: float) -> bool:
        """Extend the lease if ``token`` still holds it; False when it was lost."""

    def release(self, job_id: str, token: int) -> None:
        """Give the lease up if ``token`` still holds it."""

    def load_checkpoint(self, job_id: str) -> bytes | None:
        """The bytes of the job's last successful checkpoint, or None."""

    def save_checkpoint(
        self, job_id: str, token: int, state: bytes, update: ProgressUpdate | None = None
    ) -> None:
        """Persist ``state`` (and pending progress) in one atomic write fenced by ``token``.

        Raises LeaseLost if the token is stale, StoreUnavailable if unreachable.
        """

    def record_progress(self, job_id: str, token: int, update: ProgressUpdate) -> None:
        """Persist progress, counters, logs and warnings, fenced by ``token``."""

    def kv_get(self, namespace: str, key: str) -> str | None:
        """Read an extension's key-value pair; ``namespace`` scopes it to (tenant, extension)."""

    def kv_set(self, namespace: str, key: str, value: str) -> None:
        """Write an extension's key-value pair."""
