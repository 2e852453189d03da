"""Every host function, on both host-call paths, including pointers outside guest memory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wasmjob.job import InterruptFlag, InterruptReason, Limits, Status
from wasmjob.manifest import Manifest
from wasmjob.runtime import Runtime
from wasmjob.store import LocalStore

from .conftest import run_job
from .wat import JOB_ID, wat_module

OOB = "(i32.const 0x7fff0000)"


def test_log_lines_are_kept_with_level_and_text(runtime: Runtime, store: LocalStore) -> None:
    wasm = wat_module("(call $log (i32.const 2) (i32.const 64) (i32.const 5)) (i32.const 0)")
    out = run_job(runtime, store, wasm)
    assert out.status is Status.COMPLETED
    assert [(line.level, line.message) for line in out.logs] == [(2, "hello")]
    assert [line.message for line in store.job(out.job_id)["logs"]] == ["hello"]


def test_log_with_out_of_bounds_pointer_fails_the_job_not_the_worker(runtime: Runtime, store: LocalStore) -> None:
    wasm = wat_module(f"(call $log (i32.const 1) {OOB} (i32.const 5)) (i32.const 0)")
    out = run_job(runtime, store, wasm)
    assert out.status is Status.FAILED
    assert out.failure == "bad_pointer"
    assert "bad pointer passed to spacedrive_log" in out.reason
    again = run_job(runtime, store, wat_module("(i32.const 0)"))
    assert again.status is Status.COMPLETED


def test_log_range_straddling_the_end_of_memory_is_refused(runtime: Runtime, store: LocalStore) -> None:
    wasm = wat_module("(call $log (i32.const 1) (i32.const 100) (i32.const 0x10000000)) (i32.const 0)")
    out = run_job(runtime, store, wasm)
    assert out.failure == "bad_pointer"


def test_progress_is_clamped_and_flushed_to_the_store(runtime: Runtime, store: LocalStore) -> None:
    wasm = wat_module(
        f"(call $progress (i32.const {JOB_ID}) (f32.const 0.25) (i32.const 64) (i32.const 5))"
        f"(call $progress (i32.const {JOB_ID}) (f32.const 7.0) (i32.const 64) (i32.const 5))"
        "(i32.const 2)"
    )
    out = run_job(runtime, store, wasm)
    assert out.progress == 1.0 and out.message == "hello"
    record = store.job(out.job_id)
    assert record["progress"] == 1.0 and record["message"] == "hello"


def test_progress_with_bad_message_pointer_fails(runtime: Runtime, store: LocalStore) -> None:
    wasm = wat_module(f"(call $progress (i32.const {JOB_ID}) (f32.const 0.5) {OOB} (i32.const 3)) (i32.const 0)")
    out = run_job(runtime, store, wasm)
    assert out.failure == "bad_pointer" and "job_report_progress" in out.reason


def test_progress_with_bad_job_id_pointer_fails(runtime: Runtime, store: LocalStore) -> None:
    wasm = wat_module(f"(call $progress {OOB} (f32.const 0.5) (i32.const 64) (i32.const 3)) (i32.const 0)")
    out = run_job(runtime, store, wasm)
    assert out.failure == "bad_pointer"


def test_checkpoint_saves_exact_bytes_and_becomes_the_result(runtime: Runtime, store: LocalStore) -> None:
    wasm = wat_module(
        f"(local.set $r (call $checkpoint (i32.const {JOB_ID}) (i32.const 256) (i32.const 11))) (local.get $r)",
        data={256: '{\\"n\\": 42}  '},
    )
    out = run_job(runtime, store, wasm)
    assert out.status is Status.COMPLETED
    assert out.state == b'{"n": 42}  '
    assert out.result == {"n": 42}
    assert store.load_checkpoint(out.job_id) == b'{"n": 42}  '


GROWN = 200 * 65536  # the first byte of the last of 200 pages grown at run time


def test_memory_grown_at_run_time_is_readable_by_every_host_call(runtime: Runtime, store: LocalStore) -> None:
    wasm = wat_module(
        f"""(drop (memory.grow (i32.const 200)))
        (memory.copy (i32.const {GROWN}) (i32.const 64) (i32.const 5))
        (memory.copy (i32.const {GROWN + 16}) (i32.const 256) (i32.const 9))
        (call $log (i32.const 2) (i32.const {GROWN}) (i32.const 5))
        (call $progress (i32.const {GROWN + 32}) (f32.const 0.5) (i32.const {GROWN}) (i32.const 5))
        (drop (call $check_interrupt (i32.const {GROWN + 32})))
        (local.set $r (call $checkpoint (i32.const {GROWN + 32}) (i32.const {GROWN + 16}) (i32.const 9)))
        (local.get $r)""",
        data={256: '{\\"n\\": 42}'},
    )
    out = run_job(runtime, store, wasm)
    assert out.status is Status.COMPLETED
    assert [line.message for line in out.logs] == ["hello"]
    assert out.message == "hello"
    assert store.load_checkpoint(out.job_id) == b'{"n": 42}'
    assert out.usage.peak_memory_bytes >= 201 * 65536


def test_pointer_past_the_end_of_grown_memory_is_still_refused(runtime: Runtime, store: LocalStore) -> None:
    last_two_bytes = "(i32.sub (i32.mul (memory.size) (i32.const 65536)) (i32.const 2))"
    wasm = wat_module(
        f"""(drop (memory.grow (i32.const 200)))
        (call $log (i32.const 2) (i32.const {GROWN}) (i32.const 5))
        (call $progress (i32.const {JOB_ID}) (f32.const 0.5) {last_two_bytes} (i32.const 5))
        (i32.const 0)"""
    )
    out = run_job(runtime, store, wasm)
    assert out.failure == "bad_pointer" and "job_report_progress" in out.reason


def test_checkpoint_with_bad_state_pointer_fails(runtime: Runtime, store: LocalStore) -> None:
    wasm = wat_module(f"(drop (call $checkpoint (i32.const {JOB_ID}) {OOB} (i32.const 8))) (i32.const 0)")
    out = run_job(runtime, store, wasm)
    assert out.failure == "bad_pointer" and "job_checkpoint" in out.reason
    assert store.load_checkpoint(out.job_id) is None


def test_checkpoint_with_negative_length_fails(runtime: Runtime, store: LocalStore) -> None:
    wasm = wat_module(f"(drop (call $checkpoint (i32.const {JOB_ID}) (i32.const 0) (i32.const -1))) (i32.const 0)")
    out = run_job(runtime, store, wasm)
    assert out.failure == "bad_pointer"


def test_oversized_checkpoint_returns_nonzero_and_keeps_the_previous_one(runtime: Runtime, store: LocalStore) -> None:
    wasm = wat_module(
        f"(drop (call $checkpoint (i32.const {JOB_ID}) (i32.const 64) (i32.const 5)))"
        f"(local.set $r (call $checkpoint (i32.const {JOB_ID}) (i32.const 0) (i32.const 60000)))"
        f"(if (i32.eqz (local.get $r)) (then (unreachable)))"
        "(i32.const 0)"
    )
    out = run_job(runtime, store, wasm, limits=Limits(max_checkpoint_bytes=1024))
    assert out.status is Status.FAILED
    assert "exceeds the limit of 1024" in out.reason
    assert out.infrastructure is False
    assert store.load_checkpoint(out.job_id) == b"hello"
    assert any("refused" in w for w in out.warnings)


def test_check_interrupt_returns_zero_until_requested(runtime: Runtime, store: LocalStore) -> None:
    body = f"(if (call $check_interrupt (i32.const {JOB_ID})) (then (return (i32.const 1)))) (i32.const 0)"
    out = run_job(runtime, store, wat_module(body))
    assert out.status is Status.COMPLETED
    flag = InterruptFlag()
    flag.request(InterruptReason.PAUSE)
    out = run_job(runtime, store, wat_module(body), interrupts=flag)
    assert out.status is Status.INTERRUPTED and out.interrupt is InterruptReason.PAUSE


def test_cancel_overrides_an_earlier_pause_but_nothing_overrides_a_cancel(runtime: Runtime, store: LocalStore) -> None:
    body = f"(if (call $check_interrupt (i32.const {JOB_ID})) (then (return (i32.const 1)))) (i32.const 0)"
    flag = InterruptFlag()
    flag.request(InterruptReason.PAUSE)
    flag.request(InterruptReason.CANCEL)
    out = run_job(runtime, store, wat_module(body), interrupts=flag)
    assert out.interrupt is InterruptReason.CANCEL, "a cancel must win over a pause asked for before it"
    flag.request(InterruptReason.PAUSE)
    assert flag.reason is InterruptReason.CANCEL
    first = InterruptFlag()
    first.request(InterruptReason.SLICE)
    first.request(InterruptReason.PAUSE)
    assert first.reason is InterruptReason.SLICE  # otherwise the first reason wins


def test_a_checkpoint_exactly_at_the_limit_is_kept_and_one_byte_more_is_refused(runtime: Runtime, store: LocalStore) -> None:
    wasm = wat_module(
        f"(if (call $checkpoint (i32.const {JOB_ID}) (i32.const 0) (i32.const 1024)) (then (return (i32.const 3))))"
        f"(if (i32.eqz (call $checkpoint (i32.const {JOB_ID}) (i32.const 0) (i32.const 1025))) (then (return (i32.const 4))))"
        "(i32.const 0)"
    )
    out = run_job(runtime, store, wasm, limits=Limits(max_checkpoint_bytes=1024))
    assert out.checkpoints == 1, out.reason  # 1024 bytes went through (the job did not return 3)
    assert out.status is Status.FAILED and "1025 bytes exceeds the limit of 1024" in out.reason
    assert len(store.load_checkpoint(out.job_id) or b"") == 1024


def test_check_interrupt_with_bad_pointer_fails(runtime: Runtime, store: LocalStore) -> None:
    out = run_job(runtime, store, wat_module(f"(drop (call $check_interrupt {OOB})) (i32.const 0)"))
    assert out.failure == "bad_pointer" and "job_check_interrupt" in out.reason


def test_time_slice_asks_the_job_to_stop(runtime: Runtime, store: LocalStore) -> None:
    body = f"""(loop $l
      (if (call $check_interrupt (i32.const {JOB_ID})) (then (return (i32.const 1))))
      (br $l)) (i32.const 0)"""
    out = run_job(runtime, store, wat_module(body), limits=Limits(slice_seconds=0.2, timeout_seconds=10))
    assert out.status is Status.INTERRUPTED and out.interrupt is InterruptReason.SLICE
    assert 0.15 < out.usage.wall_seconds < 5


def test_warnings_are_kept_and_capped(runtime: Runtime, store: LocalStore) -> None:
    body = f"""(loop $l
      (call $warn (i32.const {JOB_ID}) (i32.const 64) (i32.const 5))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 50)))) (i32.const 0)"""
    out = run_job(runtime, store, wat_module(body), limits=Limits(max_warnings=10))
    assert out.warnings == ["hello"] * 10
    assert store.job(out.job_id)["warnings"] == ["hello"] * 10


def test_warning_with_bad_pointer_fails(runtime: Runtime, store: LocalStore) -> None:
    out = run_job(runtime, store, wat_module(f"(call $warn (i32.const {JOB_ID}) {OOB} (i32.const 5)) (i32.const 0)"))
    assert out.failure == "bad_pointer"


def test_metrics_accumulate_and_ignore_negative_counts(runtime: Runtime, store: LocalStore) -> None:
    body = f"""(call $inc_items (i32.const {JOB_ID}) (i64.const 3))
      (call $inc_items (i32.const {JOB_ID}) (i64.const 4))
      (call $inc_items (i32.const {JOB_ID}) (i64.const -100))
      (call $inc_bytes (i32.const {JOB_ID}) (i64.const 5000000000)) (i32.const 0)"""
    out = run_job(runtime, store, wat_module(body))
    assert (out.items, out.bytes) == (7, 5_000_000_000)
    record = store.job(out.job_id)
    assert (record["items"], record["bytes"]) == (7, 5_000_000_000)


def test_metrics_with_bad_job_pointer_fail(runtime: Runtime, store: LocalStore) -> None:
    out = run_job(runtime, store, wat_module(f"(call $inc_items {OOB} (i64.const 1)) (i32.const 0)"))
    assert out.failure == "bad_pointer"


def test_register_job_defines_the_jobs(runtime: Runtime) -> None:
    init = (
        "(drop (call $register_job (i32.const 0) (i32.const 4) (i32.const 16) (i32.const 12) (i32.const 1)))"
        "(drop (call $register_job (i32.const 300) (i32.const 5) (i32.const 320) (i32.const 13) (i32.const 0)))"
        "(i32.const 0)"
    )
    extra = '(func (export "execute_other") (param i32 i32 i32 i32) (result i32) (i32.const 0))'
    ext = runtime.load(wat_module("(i32.const 0)", init=init, data={300: "other", 320: "execute_other"}, extra=extra))
    assert {name: (j.export, j.resumable) for name, j in ext.jobs.items()} == {
        "main": ("execute_main", True),
        "other": ("execute_other", False),
    }


def _call_body(method_at: int, method_len: int, payload_at: int, payload_len: int) -> str:
    return f"""(local.set $p (call $call (i32.const {method_at}) (i32.const {method_len}) (i32.const {JOB_ID})
                 (i32.const {payload_at}) (i32.const {payload_len})))
      (if (i32.eqz (local.get $p)) (then (return (i32.const 2))))
      (drop (call $checkpoint (i32.const {JOB_ID}) (i32.add (local.get $p) (i32.const 4)) (i32.load (local.get $p))))
      (i32.const 0)"""


KV_SET = '{\\"key\\":\\"k\\",\\"value\\":\\"v1\\"}'
KV_GET = '{\\"key\\":\\"k\\"}'


def _kv_manifest(methods: list[str], rpm: int = 600) -> Manifest:
    return Manifest.from_dict(
        {"id": "kvtest", "name": "kv", "version": "1.0.0",
         "permissions": {"methods": methods, "rate_limits": {"requests_per_minute": rpm}}}
    )


def test_kv_set_then_get_through_spacedrive_call(runtime: Runtime, store: LocalStore) -> None:
    manifest = _kv_manifest(["query:", "action:kv."])
    set_wasm = wat_module(_call_body(512, 16, 600, 24), data={512: "action:kv.set.v1", 600: KV_SET})
    out = run_job(runtime, store, set_wasm, manifest=manifest)
    assert out.status is Status.COMPLETED and out.result == {"ok": True}
    get_wasm = wat_module(_call_body(512, 15, 600, 11), data={512: "query:kv.get.v1", 600: KV_GET})
    out = run_job(runtime, store, get_wasm, manifest=manifest)
    assert out.result == {"value": "v1"}
    assert store.kv_get("00000000-0000-0000-0000-000000000000:kvtest", "k") == "v1"


def test_job_info_query_describes_the_running_job(runtime: Runtime, store: LocalStore) -> None:
    wasm = wat_module(_call_body(512, 17, 600, 2), data={512: "query:job.info.v1", 600: "{}"})
    out = run_job(runtime, store, wasm, manifest=_kv_manifest(["query:"]))
    assert out.result["job_id"] == out.job_id and out.result["job"] == "main"
    assert out.result["extension"]["id"] == "kvtest"


def test_call_outside_permitted_prefixes_is_denied_and_logged(runtime: Runtime, store: LocalStore) -> None:
    wasm = wat_module(_call_body(512, 16, 600, 24), data={512: "action:kv.set.v1", 600: KV_SET})
    out = run_job(runtime, store, wasm, manifest=_kv_manifest(["query:"]))
    assert out.status is Status.FAILED and out.failure == "guest"
    assert "not permitted" in out.reason


def test_a_method_prefix_permits_only_the_methods_under_it(runtime: Runtime, store: LocalStore) -> None:
    manifest = _kv_manifest(["query:kv.", "action:kv."])
    info = wat_module(_call_body(512, 17, 600, 2), data={512: "query:job.info.v1", 600: "{}"})
    out = run_job(runtime, store, info, manifest=manifest)
    assert out.status is Status.FAILED and "method query:job.info.v1 is not permitted" in out.reason
    get = wat_module(_call_body(512, 15, 600, 11), data={512: "query:kv.get.v1", 600: KV_GET})
    assert run_job(runtime, store, get, manifest=manifest).status is Status.COMPLETED


def test_unknown_method_and_bad_payload_return_zero(runtime: Runtime, store: LocalStore) -> None:
    wasm = wat_module(_call_body(512, 14, 600, 2), data={512: "query:nope.v1x", 600: "{}"})
    out = run_job(runtime, store, wasm, manifest=_kv_manifest(["query:"]))
    assert "no host operation" in out.reason
    wasm = wat_module(_call_body(512, 15, 600, 3), data={512: "query:kv.get.v1", 600: "{{{"})
    out = run_job(runtime, store, wasm, manifest=_kv_manifest(["query:"]))
    assert "not JSON" in out.reason


def test_rate_limit_refuses_calls_over_requests_per_minute(runtime: Runtime, store: LocalStore) -> None:
    body = f"""(loop $l
      (if (i32.eqz (call $call (i32.const 512) (i32.const 15) (i32.const {JOB_ID}) (i32.const 600) (i32.const 11)))
        (then (return (i32.const 2))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)) (i32.const 0)"""
    manifest = Manifest.from_dict({"id": "ratelimited", "name": "r", "version": "1",
                                   "permissions": {"methods": ["query:"], "rate_limits": {"requests_per_minute": 5}}})
    out = run_job(runtime, store, wat_module(body, data={512: "query:kv.get.v1", 600: KV_GET}), manifest=manifest)
    assert "rate limit of 5 calls per minute" in out.reason


def test_call_with_bad_payload_pointer_fails(runtime: Runtime, store: LocalStore) -> None:
    body = f"(drop (call $call (i32.const 512) (i32.const 15) (i32.const {JOB_ID}) {OOB} (i32.const 9))) (i32.const 0)"
    out = run_job(runtime, store, wat_module(body, data={512: "query:kv.get.v1"}), manifest=_kv_manifest(["query:"]))
    assert out.failure == "bad_pointer" and "spacedrive_call" in out.reason


def test_call_for_another_tenants_library_is_denied(runtime: Runtime, store: LocalStore) -> None:
    body = _call_body(512, 15, 600, 11).replace(f"(i32.const {JOB_ID})\n", "(i32.const 700)\n", 1)
    wasm = wat_module(body, data={512: "query:kv.get.v1", 600: KV_GET, 700: "\\01" * 16})
    out = run_job(runtime, store, wasm, manifest=_kv_manifest(["query:"]))
    assert out.status is Status.FAILED and "not accessible" in out.reason


def test_ctx_carries_string_ids(runtime: Runtime, store: LocalStore) -> None:
    body = f"(drop (call $checkpoint (i32.const {JOB_ID}) (local.get $ctx) (local.get $ctx_len))) (i32.const 0)"
    out = run_job(runtime, store, wat_module(body))
    assert out.result == {"job_id": out.job_id, "library_id": "00000000-0000-0000-0000-000000000000", "resumed": False}


def test_state_is_the_encoded_params_then_the_checkpoint(runtime: Runtime, store: LocalStore) -> None:
    body = f"(drop (call $checkpoint (i32.const {JOB_ID}) (local.get $st) (local.get $st_len))) (i32.const 0)"
    out = run_job(runtime, store, wat_module(body), params={"a": [1, 2]})
    assert json.loads(out.state) == {"a": [1, 2]}


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
def test_state_encodings_round_trip(runtime: Runtime, store: LocalStore, encoding: str) -> None:
    import msgpack

    manifest = Manifest.from_dict({"id": "enc", "name": "e", "version": "1", "wasmjob": {"state_encoding": encoding}})
    body = f"(drop (call $checkpoint (i32.const {JOB_ID}) (local.get $st) (local.get $st_len))) (i32.const 0)"
    params = {"n": 3, "xs": ["a", "b"], "nested": {"ok": True}}
    out = run_job(runtime, store, wat_module(body), params=params, manifest=manifest)
    assert out.result == params
    raw = msgpack.unpackb(out.state) if encoding == "msgpack" else json.loads(out.state)
    assert raw == params


def test_operators_can_register_their_own_operations(tmp_path: Path, store: LocalStore) -> None:
    import sys

    from wasmjob.ops import default_operations, load_plugins
    from wasmjob.runtime import RuntimeConfig

    (tmp_path / "my_ops.py").write_text(
        "def register(ops):\n    ops.register('query:weather.v1', lambda ctx, payload: {'city': payload['city'], 'temp': 21})\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        ops = load_plugins(["my_ops:register"], default_operations())
    finally:
        sys.path.remove(str(tmp_path))
    rt = Runtime(RuntimeConfig(cache_dir=tmp_path / "cache"), operations=ops)
    payload = '{\\"city\\":\\"Oslo\\"}'
    wasm = wat_module(_call_body(512, 16, 600, 15), data={512: "query:weather.v1", 600: payload})
    out = run_job(rt, store, wasm, manifest=_kv_manifest(["query:"]))
    assert out.result == {"city": "Oslo", "temp": 21}
    rt.close()
