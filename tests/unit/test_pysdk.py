"""The Python SDK natively (no build): typed state, interrupts, failures, host calls, the test double.

Also holds the component host to the core one: both bindings end in the same HostState
operations, and the core fast path's inlined copies agree with them.
"""

from __future__ import annotations

import math
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "extensions" / "sdk" / "python"))

from wasmjob_sdk import Context, JobError, job  # noqa: E402
from wasmjob_sdk.testing import FakeHost, run, run_until_done  # noqa: E402

from wasmjob.host import HostState  # noqa: E402
from wasmjob.job import InterruptFlag, InterruptReason, Limits  # noqa: E402

from .conftest import run_job  # noqa: E402
from .wat import JOB_ID, wat_module  # noqa: E402


@dataclass
class Tally:
    n: int = 0
    done: int = 0
    seen: list[str] = field(default_factory=list)
    ratio: float = 0.0


@job(name="sdk_tally")
def tally(ctx: Context, st: Tally) -> Tally:
    while st.done < st.n:
        ctx.check()
        st.done += 1
        st.seen.append(f"s{st.done}")
        ctx.add_items(1)
    st.ratio = st.done / max(st.n, 1)
    return st


@job
def sdk_raw(ctx: Context, state) -> dict:
    ctx.log("raw")
    return {"got": state}


@job
def sdk_swallow(ctx: Context, state: dict) -> dict:
    try:
        ctx.check()
    except Exception:  # an Interrupted must not be swallowed by this
        return {"swallowed": True}
    return {"swallowed": False}


@job
def sdk_kv(ctx: Context, state: dict) -> dict:
    ctx.kv_set("k", "v1")
    out = {"k": ctx.kv_get("k"), "none": ctx.kv_get("missing")}
    ctx.call("action:admin.nope.v1", {})
    return out


@job
def sdk_bug(ctx: Context, state: dict) -> dict:
    return {"x": 1 / 0}


def test_a_dataclass_state_is_built_from_parameters_and_is_the_result() -> None:
    out = run("sdk_tally", {"n": 3})
    assert out.completed
    assert out.result == {"n": 3, "done": 3, "seen": ["s1", "s2", "s3"], "ratio": 1.0}
    assert out.host.items == 3


def test_wrong_or_unknown_parameters_fail_naming_the_field() -> None:
    assert "state.n: expected int, got str" in run("sdk_tally", {"n": "3"}).reason
    assert "unknown field(s) bogus for Tally" in run("sdk_tally", {"bogus": 1}).reason
    assert run("sdk_tally", {"n": 2, "ratio": 1}).completed  # an int is a fine float


def test_an_interrupt_checkpoints_the_state_at_the_check_and_resume_finishes_it() -> None:
    first = run("sdk_tally", {"n": 5}, FakeHost(interrupt_at=3))
    assert first.interrupted and first.result["done"] == 2
    done, runs = run_until_done("sdk_tally", {"n": 5}, interrupt_every=2)
    assert runs == 5 and done.result["seen"] == ["s1", "s2", "s3", "s4", "s5"]


def test_an_interrupt_is_not_swallowed_by_except_exception() -> None:
    out = run("sdk_swallow", {}, FakeHost(interrupt_at=1))
    assert out.interrupted


def test_msgpack_state_round_trips() -> None:
    out = run("sdk_tally", {"n": 2}, encoding="msgpack")
    assert out.completed and out.result["seen"] == ["s1", "s2"]
    assert out.state is not None and out.state[:1] != b"{"


def test_an_untyped_state_passes_through() -> None:
    assert run("sdk_raw", [1, "a"]).result == {"got": [1, "a"]}


def test_kv_calls_and_refused_methods() -> None:
    host = FakeHost()
    out = run("sdk_kv", {}, host)
    assert host.kv == {"k": "v1"}
    assert not out.completed and "action:admin.nope.v1 is not permitted" in out.reason


def test_a_bug_fails_with_type_message_and_the_traceback_in_the_log() -> None:
    out = run("sdk_bug", {})
    assert out.reason == "ZeroDivisionError: division by zero"
    assert any("Traceback" in text and "sdk_bug" in text for _, text in out.host.logs)


def test_an_unknown_job_fails_listing_the_jobs() -> None:
    out = run("nope", {})
    assert not out.completed and "no job named 'nope'" in out.reason and "sdk_tally" in out.reason


def test_a_failure_raised_as_job_error_is_just_its_message() -> None:
    @job(name="sdk_refuse")
    def refuse(ctx: Context, state: dict) -> dict:
        raise JobError("not today")

    assert run("sdk_refuse", {}).reason == "not today"


def _host(**limits: object) -> HostState:
    return HostState(
        job_id="j", library_id="l", extension_id="e", job_name="n", limits=Limits(**limits), store=None, token=0,
        interrupts=InterruptFlag(), operations=None, op_context=None,
    )


@pytest.mark.parametrize("values", [(0.25,), (0.25, 7.0), (0.5, -1.0), (0.75, math.nan)])
def test_the_core_fast_path_and_the_shared_operations_agree(values: tuple[float, ...], fast_runtime, store) -> None:
    calls = "".join(
        f"(call $progress (i32.const {JOB_ID}) (f32.const {'nan' if math.isnan(v) else v}) (i32.const 64) (i32.const 5))"
        for v in values
    )
    core = run_job(fast_runtime, store, wat_module(calls + "(i32.const 2)"))
    shared = _host()
    for v in values:
        shared.report_progress(v, "hello")
    assert (core.progress, core.message) == (shared.progress, shared.message)
    flag = InterruptFlag()
    flag.request(InterruptReason.PAUSE)
    body = f"(if (call $check_interrupt (i32.const {JOB_ID})) (then (return (i32.const 1)))) (i32.const 0)"
    assert run_job(fast_runtime, store, wat_module(body), interrupts=flag).status.value == "interrupted"
    paused = _host()
    paused.interrupts.request(InterruptReason.PAUSE)
    assert paused.check_interrupt() == 1 and _host().check_interrupt() == 0
    sliced = _host()
    sliced.slice_deadline = 0.0
    assert sliced.check_interrupt() == 1 and sliced.interrupts.reason is InterruptReason.SLICE


def test_shared_checkpoint_refuses_over_the_limit_and_keeps_the_reason() -> None:
    host = _host(max_checkpoint_bytes=4)
    assert host.checkpoint(b"1234") == 0 and host.last_state == b"1234"
    assert host.checkpoint(b"12345") == 1 and host.last_state == b"1234"
    assert "exceeds the limit of 4" in (host.store_error or "")


def test_the_example_tests_pass_through_wasmjob_test() -> None:
    proc = subprocess.run([sys.executable, "-m", "wasmjob", "test", str(ROOT / "extensions" / "textstats")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "4 passed" in proc.stdout
