"""The WebAssembly modules the runtime rows measure, written as WAT here.

They reuse the test suite's prelude (``tests/unit/wat.py``): the full
``spacedrive`` import table, a bump allocator and a job named ``main``.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.unit.wat import JOB_ID, wat_module
from wasmjob.manifest import Manifest

ROOT = Path(__file__).resolve().parent.parent
PRIMES_DIR = ROOT / "extensions" / "primes"


def manifest(ext_id: str) -> Manifest:
    return Manifest.default(ext_id)


def trivial_module() -> bytes:
    """Job ``main`` returns 0 at once: what is left is the cost of a run itself."""
    return wat_module("(i32.const 0)")


def large_module(functions: int = 1000, statements: int = 100) -> bytes:
    """A module of about 2 MB of *code* (1000 functions of integer arithmetic and branches).

    Data segments would make the file big without making compilation slow, so
    the size here is all function bodies; the job calls a few of them.
    """
    funcs = []
    for f in range(functions):
        body = []
        for s in range(statements):
            k = (f * 7919 + s * 104729) % 1000003
            body.append(
                f"(local.set $a (i32.xor (i32.add (i32.mul (local.get $a) (i32.const {k})) (local.get $b))"
                f" (i32.shr_u (local.get $a) (i32.const {s % 31 + 1}))))"
            )
            if s % 8 == 0:
                body.append(
                    f"(if (i32.eq (local.get $a) (i32.const {k}))"
                    " (then (local.set $b (i32.add (local.get $b) (i32.const 1)))))"
                )
        funcs.append(f"(func $f{f} (param $a i32) (param $b i32) (result i32) {' '.join(body)} (local.get $a))")
    calls = " ".join(f"(local.set $r (call $f{f} (local.get $r) (i32.const {f})))" for f in (0, functions // 2, functions - 1))
    return wat_module(f"{calls} (i32.const 0)", extra="\n".join(funcs))


def loop_module(iterations: int, step: str) -> bytes:
    """Job ``main`` runs ``step`` ``iterations`` times in a tight loop ($i counts, $r accumulates)."""
    body = f"""(block $done (loop $l
        (br_if $done (i32.ge_u (local.get $i) (i32.const {iterations})))
        {step}
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l)))
      (i32.const 0)"""
    return wat_module(body)


# One loop step per host function, and the same step with the host call taken out.
# The baseline keeps the guest-side work (the argument computation), so the
# difference is the call alone.
_FRACTION = "(f32.div (f32.convert_i32_u (local.get $i)) (f32.const 1000000))"
STEPS: dict[str, tuple[str, str]] = {
    "job_check_interrupt": (
        f"(local.set $r (i32.add (local.get $r) (call $check_interrupt (i32.const {JOB_ID}))))",
        "(local.set $r (i32.add (local.get $r) (local.get $i)))",
    ),
    "job_report_progress": (
        f"(call $progress (i32.const {JOB_ID}) {_FRACTION} (i32.const 64) (i32.const 5))",
        f"(local.set $r (i32.add (local.get $r) (i32.trunc_f32_u {_FRACTION})))",
    ),
}


def primes_module() -> tuple[bytes, Manifest] | None:
    """The primes extension's committed module and manifest, or None if it is not built yet."""
    wasm = PRIMES_DIR / "primes.wasm"
    if not wasm.exists():
        return None
    man_path = PRIMES_DIR / "manifest.json"
    man = Manifest.from_file(man_path) if man_path.exists() else Manifest.default("primes")
    return wasm.read_bytes(), man


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


STATE_AT = 1 << 20


def checkpoint_module(state_bytes: int, checkpoints: int) -> bytes:
    """Job ``main`` checkpoints a ``state_bytes`` buffer ``checkpoints`` times in a row."""
    pages = (STATE_AT + state_bytes) // 65536 + 2
    body = f"""(block $done (loop $l
        (br_if $done (i32.ge_u (local.get $i) (i32.const {checkpoints})))
        (i32.store (i32.const {STATE_AT}) (local.get $i))
        (if (call $checkpoint (i32.const {JOB_ID}) (i32.const {STATE_AT}) (i32.const {state_bytes}))
          (then (return (i32.const 2))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l)))
      (i32.const 0)"""
    return wat_module(body, memory=f'(memory (export "memory") {pages})')
