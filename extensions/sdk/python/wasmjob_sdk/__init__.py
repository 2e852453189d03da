"""wasmjob's Python SDK: write a job as a plain function, run it sandboxed in WASM on the fleet.

    from dataclasses import dataclass
    from wasmjob_sdk import Context, job

    @dataclass
    class Count:
        target: int = 0
        current: int = 0
        sum: int = 0

    @job
    def count(ctx: Context, state: Count) -> Count:
        while state.current < state.target:
            ctx.check()                  # paused or cancelled: the SDK checkpoints `state` and stops
            state.current += 1
            state.sum += state.current
        return state                     # the result (the SDK checkpoints it)

Inside a component the context talks to the host through ``wasmjob:job/host``
(``extensions/sdk/wit``); under pytest, :mod:`wasmjob_sdk.testing` gives a double.
"""

from __future__ import annotations

from .context import CheckpointFailed, Context, HostCallFailed, Interrupted, JobError
from .jobs import JobDef, job, registered

__all__ = [
    # writing a job
    "job",
    "Context",
    # what a job may raise or catch
    "JobError",
    "Interrupted",
    "CheckpointFailed",
    "HostCallFailed",
    # the registry (used by the component entry point and the test double)
    "JobDef",
    "registered",
]

__version__ = "1.0.0"
