"""A test double of the host, so jobs run under plain pytest without building a component.

    from wasmjob_sdk.testing import FakeHost, run, run_until_done

    out = run("count", {"target": 10})                      # one run: code, result, checkpoints, logs
    out = run("count", {"target": 10}, FakeHost(interrupt_at=3))   # stop at the 3rd check()
    done = run_until_done("count", {"target": 10}, interrupt_every=4)  # pause and resume until complete

Each run goes through the same code as in the sandbox (:func:`wasmjob_sdk.jobs.run_job`).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from .jobs import COMPLETED, INTERRUPTED
from .jobs import run_job as _run_job
from .state import decode_state, encode_state

MAX_CHECKPOINT_BYTES = 1024 * 1024


@dataclass
class FakeHost:
    """Records what a job does; interrupts at the ``interrupt_at``-th check; serves a KV dict.

    ``methods`` are the permitted method prefixes (as in a manifest); a call outside them
    is refused like on the fleet. ``max_checkpoint_bytes`` refuses larger checkpoints.
    """

    interrupt_at: int | None = None
    kv: dict[str, str] = field(default_factory=dict)
    methods: tuple[str, ...] = ("query:", "action:kv.")
    max_checkpoint_bytes: int = MAX_CHECKPOINT_BYTES
    checks: int = 0
    checkpoints: list[bytes] = field(default_factory=list)
    logs: list[tuple[int, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    progress: float = 0.0
    message: str = ""
    items: int = 0
    bytes: int = 0

    def log(self, level: int, message: str) -> None:
        self.logs.append((level, message))

    def report_progress(self, progress: float, message: str) -> None:
        self.progress, self.message = min(max(progress, 0.0), 1.0), message

    def checkpoint(self, state: bytes) -> int:
        if len(state) > self.max_checkpoint_bytes:
            return 1
        self.checkpoints.append(bytes(state))
        return 0

    def check_interrupt(self) -> int:
        self.checks += 1
        return 1 if self.interrupt_at is not None and self.checks >= self.interrupt_at else 0

    def add_warning(self, message: str) -> None:
        self.warnings.append(message)

    def increment_items(self, n: int) -> None:
        self.items += max(n, 0)

    def increment_bytes(self, n: int) -> None:
        self.bytes += max(n, 0)

    def call(self, method: str, library_id: str, payload: str) -> str:
        from .context import HostCallFailed

        if not any(method.startswith(prefix) for prefix in self.methods):
            raise HostCallFailed(f"{method}: method {method} is not permitted by the manifest")
        body = json.loads(payload)
        if method == "query:kv.get.v1":
            return json.dumps({"value": self.kv.get(body["key"])})
        if method == "action:kv.set.v1":
            if not isinstance(body.get("value"), str):
                raise HostCallFailed(f"{method}: value must be a string")
            self.kv[body["key"]] = body["value"]
            return json.dumps({"ok": True})
        raise HostCallFailed(f"{method}: no host operation named {method}")

    @property
    def errors(self) -> list[str]:
        return [text for level, text in self.logs if level == 3]


@dataclass
class RunResult:
    """One run: its return code, the decoded last checkpoint and the host that recorded it."""

    code: int
    state: bytes | None
    host: FakeHost
    encoding: str = "json"

    @property
    def result(self) -> Any:
        return decode_state(self.state, self.encoding) if self.state else None

    @property
    def completed(self) -> bool:
        return self.code == COMPLETED

    @property
    def interrupted(self) -> bool:
        return self.code == INTERRUPTED

    @property
    def reason(self) -> str | None:
        errors = self.host.errors
        return errors[-1] if errors else None


def run(
    job: str, params: Any = None, host: FakeHost | None = None, *, state: bytes | None = None, encoding: str = "json",
) -> RunResult:
    """Run ``job`` once: from ``state`` (a checkpoint) if given, else from ``params``."""
    host = host or FakeHost()
    data = state if state is not None else (encode_state(params, encoding) if params is not None else b"")
    ctx = json.dumps({"job_id": str(uuid.uuid4()), "library_id": str(uuid.UUID(int=0)), "state_encoding": encoding})
    code = _run_job(job, host, ctx, data)
    last = host.checkpoints[-1] if host.checkpoints else (state if state else None)
    return RunResult(code, last, host, encoding)


def run_until_done(
    job: str, params: Any = None, *, interrupt_every: int, encoding: str = "json", max_runs: int = 10_000,
    kv: dict[str, str] | None = None,
) -> tuple[RunResult, int]:
    """Run, interrupt at every ``interrupt_every``-th check, resume from the checkpoint; repeat until
    the job stops being interrupted. Returns the last run and how many runs it took."""
    kv = {} if kv is None else kv
    state: bytes | None = None
    for runs in range(1, max_runs + 1):
        out = run(job, params, FakeHost(interrupt_at=interrupt_every, kv=kv), state=state, encoding=encoding)
        if not out.interrupted:
            return out, runs
        state = out.state
    raise AssertionError(f"job {job} still interrupted after {max_runs} runs")
