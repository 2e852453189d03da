"""Every way a module can misbehave ends the job with a readable reason, never the worker."""

from __future__ import annotations

from pathlib import Path

import pytest
import wasmtime

from wasmjob.errors import ModuleError
from wasmjob.job import Limits, Status
from wasmjob.runtime import Runtime, RuntimeConfig
from wasmjob.store import LocalStore

from .conftest import run_job
from .wat import IMPORTS, JOB_ID, wat_module

SPIN = "(loop $l (br $l)) (i32.const 0)"


def test_infinite_loop_without_interrupt_checks_times_out(fast_runtime: Runtime, store: LocalStore) -> None:
    out = run_job(fast_runtime, store, wat_module(SPIN), limits=Limits(timeout_seconds=0.3))
    assert out.status is Status.FAILED and out.failure == "timeout"
    assert "wall-clock limit of 0.3 s" in out.reason
    assert out.usage.wall_seconds < 3


def test_fuel_budget_stops_a_busy_job(fast_runtime: Runtime, store: LocalStore) -> None:
    out = run_job(fast_runtime, store, wat_module(SPIN), limits=Limits(fuel=1_000_000))
    assert out.failure == "fuel" and "budget of 1000000" in out.reason
    assert out.usage.fuel >= 1_000_000


def test_fuel_is_counted_for_every_run(fast_runtime: Runtime, store: LocalStore) -> None:
    body = "(loop $l (local.set $i (i32.add (local.get $i) (i32.const 1))) (br_if $l (i32.lt_u (local.get $i) (i32.const 10000)))) (i32.const 0)"
    out = run_job(fast_runtime, store, wat_module(body))
    assert out.status is Status.COMPLETED
    assert 10_000 < out.usage.fuel < 200_000
    assert out.usage.peak_memory_bytes >= 65536


def test_memory_bomb_hits_the_memory_limit(fast_runtime: Runtime, store: LocalStore) -> None:
    body = "(loop $l (if (i32.lt_s (memory.grow (i32.const 16)) (i32.const 0)) (then (unreachable))) (br $l)) (i32.const 0)"
    out = run_job(fast_runtime, store, wat_module(body), limits=Limits(max_memory_mb=8))
    assert out.failure == "memory" and "memory limit of 8 MiB" in out.reason
    assert out.usage.peak_memory_bytes <= 8 * 1024 * 1024


def test_module_needing_more_initial_memory_than_allowed_fails(fast_runtime: Runtime, store: LocalStore) -> None:
    wasm = wat_module("(i32.const 0)", memory='(memory (export "memory") 200)')
    out = run_job(fast_runtime, store, wasm, limits=Limits(max_memory_mb=4))
    assert out.status is Status.FAILED and out.failure == "memory"
    assert "needs more memory than the limit of 4 MiB" in out.reason


def test_deep_recursion_is_a_stack_overflow(fast_runtime: Runtime, store: LocalStore) -> None:
    extra = "(func $rec (param i32) (result i32) (i32.add (call $rec (i32.add (local.get 0) (i32.const 1))) (i32.const 1)))"
    out = run_job(fast_runtime, store, wat_module("(drop (call $rec (i32.const 0))) (i32.const 0)", extra=extra))
    assert out.failure == "trap" and "stack overflow" in out.reason


def test_trap_is_reported_in_words(fast_runtime: Runtime, store: LocalStore) -> None:
    out = run_job(fast_runtime, store, wat_module("(drop (i32.div_u (i32.const 1) (local.get $i))) (i32.const 0)"))
    assert out.reason.startswith("trap: integer division by zero")


def test_guest_failure_reports_its_last_error_log(fast_runtime: Runtime, store: LocalStore) -> None:
    out = run_job(fast_runtime, store, wat_module("(call $log (i32.const 3) (i32.const 300) (i32.const 10)) (i32.const 2)", data={300: "disk full!"}))
    assert out.failure == "guest" and out.reason == "disk full!"
    out = run_job(fast_runtime, store, wat_module("(i32.const 2)"))
    assert "without logging a reason" in out.reason


def test_panic_message_logged_before_a_trap_is_the_reason(fast_runtime: Runtime, store: LocalStore) -> None:
    out = run_job(fast_runtime, store, wat_module("(call $log (i32.const 3) (i32.const 300) (i32.const 10)) (unreachable)", data={300: "boom: oops"}))
    assert out.reason == "the guest panicked: boom: oops"


def test_unknown_return_code_fails(fast_runtime: Runtime, store: LocalStore) -> None:
    out = run_job(fast_runtime, store, wat_module("(i32.const 7)"))
    assert out.failure == "bad_return" and "returned 7" in out.reason


def test_interrupted_without_a_request_is_a_bad_return(fast_runtime: Runtime, store: LocalStore) -> None:
    out = run_job(fast_runtime, store, wat_module("(i32.const 1)"))
    assert out.failure == "bad_return"


def test_log_flood_is_capped_not_fatal(fast_runtime: Runtime, store: LocalStore) -> None:
    body = """(loop $l (call $log (i32.const 1) (i32.const 64) (i32.const 5))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 100000)))) (i32.const 0)"""
    out = run_job(fast_runtime, store, wat_module(body), limits=Limits(max_log_bytes=1000))
    assert out.status is Status.COMPLETED
    assert len(out.logs) == 200
    assert any("log limit" in w for w in out.warnings)


def test_unknown_job_name_fails_with_the_known_ones(fast_runtime: Runtime, store: LocalStore) -> None:
    out = run_job(fast_runtime, store, wat_module("(i32.const 0)"), job="nope")
    assert "has no job 'nope' (jobs: main)" in out.reason


@pytest.mark.parametrize(
    ("wasm", "message"),
    [
        (b"hello world", "not a WebAssembly module"),
        (b"\0asm\x01\0\0\0\x01\xff", "invalid WebAssembly module"),
    ],
)
def test_garbage_is_rejected_with_a_reason(fast_runtime: Runtime, wasm: bytes, message: str) -> None:
    with pytest.raises(ModuleError, match=message):
        fast_runtime.load(wasm)


def test_missing_memory_export_is_rejected(fast_runtime: Runtime) -> None:
    with pytest.raises(ModuleError, match="does not export its linear memory"):
        fast_runtime.load(wat_module("(i32.const 0)", memory="(memory 1)"))


def test_import_outside_the_abi_is_rejected_by_name(fast_runtime: Runtime) -> None:
    imports = IMPORTS + '(import "spacedrive" "open_file" (func (param i32)))'
    with pytest.raises(ModuleError, match="unknown import spacedrive.open_file"):
        fast_runtime.load(wat_module("(i32.const 0)", imports=imports))
    imports = IMPORTS + '(import "wasi_snapshot_preview1" "fd_write" (func (param i32 i32 i32 i32) (result i32)))'
    with pytest.raises(ModuleError, match="WASI is not granted"):
        fast_runtime.load(wat_module("(i32.const 0)", imports=imports))


def test_import_with_wrong_signature_is_rejected(fast_runtime: Runtime) -> None:
    imports = IMPORTS.replace('"job_check_interrupt" (func $check_interrupt (param i32) (result i32))', '"job_check_interrupt" (func $check_interrupt (param i64) (result i32))')
    with pytest.raises(ModuleError, match=r"job_check_interrupt has signature \(i64\) -> \(i32\), expected \(i32\) -> \(i32\)"):
        fast_runtime.load(wat_module("(i32.const 0)", imports=imports.replace(f"(call $check_interrupt (i32.const {JOB_ID}))", "")))


def test_job_export_with_wrong_signature_is_rejected(fast_runtime: Runtime) -> None:
    with pytest.raises(ModuleError, match=r"execute_main has signature \(i32\) -> \(i32\)"):
        fast_runtime.load(wat_module("(i32.const 0)", signature="(param i32) (result i32)"))


def test_register_job_naming_a_missing_export_is_rejected(fast_runtime: Runtime) -> None:
    with pytest.raises(ModuleError, match="names export 'execute_main', which the module does not export"):
        fast_runtime.load(wat_module("(i32.const 0)", export_name="execute_other"))


def test_trap_in_plugin_init_is_rejected(fast_runtime: Runtime) -> None:
    with pytest.raises(ModuleError, match="plugin_init failed: trap: unreachable"):
        fast_runtime.load(wat_module("(i32.const 0)", init="(unreachable)"))


def test_plugin_init_returning_nonzero_is_rejected(fast_runtime: Runtime) -> None:
    with pytest.raises(ModuleError, match="plugin_init returned 3"):
        fast_runtime.load(wat_module("(i32.const 0)", init="(i32.const 3)"))


def test_module_without_plugin_init_uses_its_execute_exports(fast_runtime: Runtime) -> None:
    ext = fast_runtime.load(wat_module("(i32.const 0)", init=None))
    assert list(ext.jobs) == ["main"]


def test_runaway_plugin_init_is_stopped(tmp_path: Path) -> None:
    rt = Runtime(RuntimeConfig(cache_dir=tmp_path, init_timeout_seconds=0.3))
    with pytest.raises(ModuleError, match="plugin_init failed: timed out"):
        rt.load(wat_module("(i32.const 0)", init="(loop $l (br $l)) (i32.const 0)"))
    rt.close()


def test_the_worker_runs_the_next_job_after_each_failure(fast_runtime: Runtime, store: LocalStore) -> None:
    bad_pointer = f"(drop (call $checkpoint (i32.const {JOB_ID}) (i32.const -5) (i32.const 9))) (i32.const 0)"
    for body, failures in ((SPIN, ("timeout", "fuel")), ("(unreachable)", ("trap",)), (bad_pointer, ("bad_pointer",))):
        out = run_job(fast_runtime, store, wat_module(body), limits=Limits(timeout_seconds=0.2, fuel=10**9))
        assert out.status is Status.FAILED and out.failure in failures, out.reason
    ok = run_job(fast_runtime, store, wat_module("(i32.const 0)"))
    assert ok.status is Status.COMPLETED


def test_start_function_calling_a_host_import_fails_cleanly(fast_runtime: Runtime, store: LocalStore) -> None:
    extra = "(func $start (call $log (i32.const 1) (i32.const 64) (i32.const 5))) (start $start)"
    with pytest.raises(ModuleError, match="host function called before the instance's memory exists"):
        fast_runtime.load(wat_module("(i32.const 0)", extra=extra))


def test_wasmtime_trap_is_not_a_wasmtime_error() -> None:
    assert not issubclass(wasmtime.Trap, wasmtime.WasmtimeError)


def test_wasi_granted_by_the_manifest_sees_no_environment(fast_runtime: Runtime, store: LocalStore) -> None:
    from wasmjob.manifest import Manifest

    imports = IMPORTS + '(import "wasi_snapshot_preview1" "environ_sizes_get" (func $env_sizes (param i32 i32) (result i32)))'
    body = f"""(drop (call $env_sizes (i32.const 3000) (i32.const 3004)))
      (drop (call $checkpoint (i32.const {JOB_ID}) (i32.const 3000) (i32.const 1)))
      (i32.const 0)"""
    wasm = wat_module(body, imports=imports, data={3000: "\\ff"})
    manifest = Manifest.from_dict({"id": "w", "name": "w", "version": "1", "wasmjob": {"wasi": True}})
    out = run_job(fast_runtime, store, wasm, manifest=manifest)
    assert out.status is Status.COMPLETED, out.reason
    assert out.state == b"\x00"
