"""Spacedrive's interrupt convention (fail with "Interrupted" once asked to stop) means
"interrupted" for any module, whatever SDK built it; local runs and the fleet share the
decision (``Outcome.next_step``)."""

from __future__ import annotations

import pytest

from wasmjob.job import InterruptFlag, InterruptReason, Outcome, Status
from wasmjob.runtime import Runtime
from wasmjob.store import LocalStore

from .conftest import run_job
from .wat import JOB_ID, wat_module

# Checkpoints "ab", then logs an error line (the text at 256) and returns 2 (failed).
FAIL_WITH = """(drop (call $checkpoint (i32.const {job}) (i32.const 64) (i32.const 2)))
    (call $log (i32.const 3) (i32.const 256) (i32.const {n}))
    (i32.const 2)"""


def failing_with(text: str) -> bytes:
    body = FAIL_WITH.format(job=JOB_ID, n=len(text))
    return wat_module(body, data={256: text, 64: "ab"})


def asked_to_pause() -> InterruptFlag:
    flag = InterruptFlag()
    flag.request(InterruptReason.PAUSE)
    return flag


@pytest.mark.parametrize("line", ["Interrupted", "Operation failed: Interrupted", "interrupted "])
def test_failing_with_interrupted_after_a_stop_request_is_an_interrupt(
    fast_runtime: Runtime, store: LocalStore, line: str
) -> None:
    out = run_job(fast_runtime, store, failing_with(line), interrupts=asked_to_pause())
    assert out.status is Status.INTERRUPTED and out.interrupt is InterruptReason.PAUSE
    assert out.next_step == "interrupted"


def test_failing_with_interrupted_unasked_is_a_failure(fast_runtime: Runtime, store: LocalStore) -> None:
    out = run_job(fast_runtime, store, failing_with("Operation failed: Interrupted"))
    assert out.status is Status.FAILED and out.reason == "Operation failed: Interrupted"
    assert out.next_step == "failed"


def test_another_failure_after_a_stop_request_stays_a_failure(fast_runtime: Runtime, store: LocalStore) -> None:
    out = run_job(fast_runtime, store, failing_with("Interrupted while writing: disk full"), interrupts=asked_to_pause())
    assert out.status is Status.FAILED and out.next_step == "failed"


@pytest.mark.parametrize(
    ("failure", "infrastructure", "step"),
    [("timeout", False, "retry"), ("store", True, "retry"), ("guest", False, "failed"), ("trap", False, "failed")],
)
def test_next_step_of_a_failed_run(failure: str, infrastructure: bool, step: str) -> None:
    out = Outcome("j", Status.FAILED, failure=failure, infrastructure=infrastructure)
    assert out.next_step == step
