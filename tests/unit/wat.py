"""Small WAT modules for runtime tests: a standard prelude plus the body under test."""

from __future__ import annotations

import wasmtime

IMPORTS = """
  (import "spacedrive" "spacedrive_log" (func $log (param i32 i32 i32)))
  (import "spacedrive" "register_job" (func $register_job (param i32 i32 i32 i32 i32) (result i32)))
  (import "spacedrive" "job_report_progress" (func $progress (param i32 f32 i32 i32)))
  (import "spacedrive" "job_checkpoint" (func $checkpoint (param i32 i32 i32) (result i32)))
  (import "spacedrive" "job_check_interrupt" (func $check_interrupt (param i32) (result i32)))
  (import "spacedrive" "job_add_warning" (func $warn (param i32 i32 i32)))
  (import "spacedrive" "job_increment_bytes" (func $inc_bytes (param i32 i64)))
  (import "spacedrive" "job_increment_items" (func $inc_items (param i32 i64)))
  (import "spacedrive" "spacedrive_call" (func $call (param i32 i32 i32 i32 i32) (result i32)))
"""

REGISTER_MAIN = "(drop (call $register_job (i32.const 0) (i32.const 4) (i32.const 16) (i32.const 12) (i32.const 1))) (i32.const 0)"

JOB_ID = 128
SCRATCH = 1024


def wat_module(
    body: str,
    *,
    init: str | None = REGISTER_MAIN,
    data: dict[int, str] | None = None,
    extra: str = "",
    imports: str = IMPORTS,
    memory: str = "(memory (export \"memory\") 1)",
    export_name: str = "execute_main",
    signature: str = "(param $ctx i32) (param $ctx_len i32) (param $st i32) (param $st_len i32) (result i32)",
) -> bytes:
    """A module with job ``main``; ``body`` is the job export's body (locals $i, $r, $p)."""
    segments = {0: "main", 16: "execute_main", 64: "hello"}
    segments.update(data or {})
    data_wat = "\n".join(f'  (data (i32.const {k}) "{v}")' for k, v in segments.items())
    init_wat = f'(func (export "plugin_init") (result i32) {init})' if init is not None else ""
    text = f"""
(module
{imports}
  {memory}
  (global $heap (mut i32) (i32.const 65536))
{data_wat}
  (func $alloc (export "wasm_alloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (if (i32.gt_u (i32.add (local.get $p) (local.get $n)) (i32.mul (memory.size) (i32.const 65536)))
      (then (if (i32.lt_s (memory.grow (i32.add (i32.shr_u (local.get $n) (i32.const 16)) (i32.const 1))) (i32.const 0))
        (then (return (i32.const 0))))))
    (global.set $heap (i32.add (local.get $p) (i32.and (i32.add (local.get $n) (i32.const 15)) (i32.const -16))))
    (local.get $p))
  (func (export "wasm_free") (param i32 i32))
  {init_wat}
  (func (export "{export_name}") {signature} (local $i i32) (local $r i32) (local $p i32)
    {body})
  {extra}
)
"""
    return bytes(wasmtime.wat2wasm(text))


def counting_module(target: int, every: int = 50_000) -> bytes:
    """Job ``main`` counts to ``target``, polling for interrupts each step and checkpointing
    every ``every`` steps; its state is the count as a msgpack uint32 (0xce + 4 bytes BE)."""
    save = f"""(i32.store8 (i32.const 2048) (i32.const 0xce))
      (i32.store8 (i32.const 2049) (i32.shr_u (local.get $i) (i32.const 24)))
      (i32.store8 (i32.const 2050) (i32.shr_u (local.get $i) (i32.const 16)))
      (i32.store8 (i32.const 2051) (i32.shr_u (local.get $i) (i32.const 8)))
      (i32.store8 (i32.const 2052) (local.get $i))
      (local.set $r (call $checkpoint (i32.const {JOB_ID}) (i32.const 2048) (i32.const 5)))"""
    body = f"""(if (i32.eq (local.get $st_len) (i32.const 5)) (then
        (local.set $i (i32.or (i32.or
          (i32.shl (i32.load8_u offset=1 (local.get $st)) (i32.const 24))
          (i32.shl (i32.load8_u offset=2 (local.get $st)) (i32.const 16)))
          (i32.or (i32.shl (i32.load8_u offset=3 (local.get $st)) (i32.const 8))
          (i32.load8_u offset=4 (local.get $st)))))))
      (block $done (loop $l
        (br_if $done (i32.ge_u (local.get $i) (i32.const {target})))
        (if (call $check_interrupt (i32.const {JOB_ID})) (then {save} (return (i32.const 1))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (if (i32.eqz (i32.rem_u (local.get $i) (i32.const {every}))) (then
          {save}
          (call $progress (i32.const {JOB_ID})
            (f32.div (f32.convert_i32_u (local.get $i)) (f32.const {target})) (i32.const 64) (i32.const 5))))
        (br $l)))
      {save}
      (i32.const 0)"""
    return wat_module(body)


COUNTING_MANIFEST = {
    "id": "counting",
    "name": "Counting",
    "version": "1.0.0",
    "wasm_file": "counting.wasm",
    "wasmjob": {"state_encoding": "msgpack"},
}
