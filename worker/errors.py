"""Every error wasmjob raises, in one tree.

Third-party errors (wasmtime, redis, celery) are translated at the edge into
these, raised ``from`` the original, so callers catch one root and users read
one line that says what went wrong and, where known, which job it hit.
"""

from __future__ import annotations


class WasmJobError(Exception):
    """Root of every wasmjob error; carries the job id when one is known."""

    def __init__(self, reason: str, *, job_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.job_id = job_id

    def __str__(self) -> str:
        if self.job_id:
            return f"job {self.job_id}: {self.reason}"
        return self.reason


class ConfigError(WasmJobError):
    """A setting or flag has a value wasmjob cannot use."""


class ManifestError(WasmJobError):
    """manifest.json is missing a field, has a wrong type, or cannot be parsed."""


class ModuleError(WasmJobError):
    """A module cannot be loaded: not WASM, invalid, or breaking the ABI."""


class ModuleRefused(ModuleError):
    """A module breaks operator policy (size, counts, compile time or memory): it never runs."""


class UnknownJob(WasmJobError):
    """The extension does not register a job of that name."""


class HostAbort(WasmJobError):
    """Raised inside a host function to stop the guest with a readable reason."""


class BadPointer(HostAbort):
    """A host function was handed a pointer/length outside guest memory."""


class StoreError(WasmJobError):
    """The checkpoint store refused or could not perform an operation."""


class StoreUnavailable(StoreError):
    """The store cannot be reached (Redis down, database locked)."""


class LeaseLost(StoreError):
    """This worker no longer holds the job's lease; its writes are refused."""


class LeaseHeld(StoreError):
    """Another worker holds the job's lease right now."""


class CheckpointTooLarge(StoreError):
    """A checkpoint is larger than the job's maximum checkpoint size."""


class QuotaExceeded(StoreError):
    """A write would take a tenant's share of Redis past the operator's quota or headroom."""


class CallDenied(WasmJobError):
    """A ``spacedrive_call`` was refused: method or library not permitted."""


class RateLimited(CallDenied):
    """A ``spacedrive_call`` exceeded the extension's requests per minute."""


class UnknownOperation(WasmJobError):
    """A ``spacedrive_call`` named a method no host operation implements."""


class BuildError(WasmJobError):
    """An extension could not be built; the message says what to install."""


class PublishRefused(WasmJobError):
    """A release was refused: bad signature, not an owner of the id, or not a semantic version."""


class PermissionDenied(WasmJobError):
    """These Redis credentials may not do that (a producer writing the registry, say)."""


class NotFound(WasmJobError):
    """A job or extension that was asked for does not exist."""


class InvalidTransition(WasmJobError):
    """A job cannot go to the requested status from the one it is in."""


class JobFailed(WasmJobError):
    """A job ended as failed; ``reason`` is its recorded error."""


class JobTimeout(WasmJobError, TimeoutError):
    """Waiting for a job took longer than the caller allowed; the job itself goes on."""


class SnapshotError(ModuleError):
    """A module cannot be instrumented for snapshots, or a snapshot cannot be taken or restored."""
