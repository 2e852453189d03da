"""WAT extensions for the fleet tests: a slow, checkpointing ``ticker`` and some misbehaving ones.

``ticker`` job ``tick``: state is the JSON array ``[current, target, spin, every, checksum]``.
Each step burns ``spin`` loop iterations, advances ``current``, folds it into
``checksum``, reports progress, checkpoints every ``every`` steps and checks for
an interrupt. The final checksum proves every step ran exactly once, in order:
a run resumed any number of times ends with the same state as an uninterrupted one.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import wasmtime

from wasmjob.manifest import Manifest

_IMPORTS = """
  (import "spacedrive" "register_job" (func $register_job (param i32 i32 i32 i32 i32) (result i32)))
  (import "spacedrive" "job_report_progress" (func $progress (param i32 f32 i32 i32)))
  (import "spacedrive" "job_checkpoint" (func $checkpoint (param i32 i32 i32) (result i32)))
  (import "spacedrive" "job_check_interrupt" (func $check (param i32) (result i32)))
"""

_COMMON = """
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 8192))
  (data (i32.const 16) "tick")
  (data (i32.const 32) "execute_tick")
  (data (i32.const 64) "ticking")
  (func (export "wasm_alloc") (param $n i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.and (i32.add (i32.add (global.get $heap) (local.get $n)) (i32.const 7)) (i32.const -8)))
    (local.get $p))
  (func (export "plugin_init") (result i32)
    (drop (call $register_job (i32.const 16) (i32.const 4) (i32.const 32) (i32.const 12) (i32.const 1)))
    (i32.const 0))
"""

TICKER_WAT = f"""
(module
{_IMPORTS}
{_COMMON}
  ;; parse up to five unsigned integers from the state bytes into 1024..1044
  (func $parse (param $p i32) (param $len i32)
    (local $end i32) (local $k i32) (local $v i32) (local $in i32) (local $c i32)
    (local.set $end (i32.add (local.get $p) (local.get $len)))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $p) (local.get $end)))
      (br_if $done (i32.ge_u (local.get $k) (i32.const 5)))
      (local.set $c (i32.load8_u (local.get $p)))
      (if (i32.and (i32.ge_u (local.get $c) (i32.const 48)) (i32.le_u (local.get $c) (i32.const 57)))
        (then
          (local.set $v (i32.add (i32.mul (local.get $v) (i32.const 10)) (i32.sub (local.get $c) (i32.const 48))))
          (local.set $in (i32.const 1)))
        (else
          (if (local.get $in) (then
            (i32.store (i32.add (i32.const 1024) (i32.shl (local.get $k) (i32.const 2))) (local.get $v))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (local.set $v (i32.const 0))
            (local.set $in (i32.const 0))))))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (br $l)))
    (if (i32.and (local.get $in) (i32.lt_u (local.get $k) (i32.const 5)))
      (then (i32.store (i32.add (i32.const 1024) (i32.shl (local.get $k) (i32.const 2))) (local.get $v)))))

  (func $write_int (param $p i32) (param $v i32) (result i32)
    (local $n i32)
    (if (i32.eqz (local.get $v)) (then
      (i32.store8 (local.get $p) (i32.const 48))
      (return (i32.add (local.get $p) (i32.const 1)))))
    (block $d (loop $l
      (br_if $d (i32.eqz (local.get $v)))
      (i32.store8 (i32.add (i32.const 3000) (local.get $n)) (i32.add (i32.const 48) (i32.rem_u (local.get $v) (i32.const 10))))
      (local.set $v (i32.div_u (local.get $v) (i32.const 10)))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $l)))
    (block $d2 (loop $l2
      (br_if $d2 (i32.eqz (local.get $n)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (i32.store8 (local.get $p) (i32.load8_u (i32.add (i32.const 3000) (local.get $n))))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (br $l2)))
    (local.get $p))

  ;; serialize 1024..1044 as "[a,b,c,d,e]" at 2048 and checkpoint it
  (func $save (result i32)
    (local $p i32) (local $k i32)
    (i32.store8 (i32.const 2048) (i32.const 91))
    (local.set $p (i32.const 2049))
    (block $d (loop $l
      (local.set $p (call $write_int (local.get $p) (i32.load (i32.add (i32.const 1024) (i32.shl (local.get $k) (i32.const 2))))))
      (local.set $k (i32.add (local.get $k) (i32.const 1)))
      (br_if $d (i32.ge_u (local.get $k) (i32.const 5)))
      (i32.store8 (local.get $p) (i32.const 44))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (br $l)))
    (i32.store8 (local.get $p) (i32.const 93))
    (local.set $p (i32.add (local.get $p) (i32.const 1)))
    (call $checkpoint (i32.const 0) (i32.const 2048) (i32.sub (local.get $p) (i32.const 2048))))

  (func $store_state (param $cur i32) (param $sum i32)
    (i32.store (i32.const 1024) (local.get $cur))
    (i32.store (i32.const 1040) (local.get $sum)))

  (func (export "execute_tick") (param $ctx i32) (param $ctx_len i32) (param $st i32) (param $st_len i32) (result i32)
    (local $cur i32) (local $target i32) (local $spin i32) (local $every i32) (local $sum i32) (local $i i32)
    (call $parse (local.get $st) (local.get $st_len))
    (local.set $cur (i32.load (i32.const 1024)))
    (local.set $target (i32.load (i32.const 1028)))
    (local.set $spin (i32.load (i32.const 1032)))
    (local.set $every (i32.load (i32.const 1036)))
    (local.set $sum (i32.load (i32.const 1040)))
    (if (i32.eqz (local.get $every)) (then (local.set $every (i32.const 10)) (i32.store (i32.const 1036) (i32.const 10))))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $cur) (local.get $target)))
      (local.set $i (local.get $spin))
      (block $s (loop $sl
        (br_if $s (i32.eqz (local.get $i)))
        (local.set $i (i32.sub (local.get $i) (i32.const 1)))
        (br $sl)))
      (local.set $cur (i32.add (local.get $cur) (i32.const 1)))
      (local.set $sum (i32.and (i32.add (i32.mul (local.get $sum) (i32.const 31)) (local.get $cur)) (i32.const 0x7fffffff)))
      (call $progress (i32.const 0)
        (f32.div (f32.convert_i32_u (local.get $cur)) (f32.convert_i32_u (local.get $target)))
        (i32.const 64) (i32.const 7))
      (if (i32.eqz (i32.rem_u (local.get $cur) (local.get $every))) (then
        (call $store_state (local.get $cur) (local.get $sum))
        (drop (call $save))))
      (if (call $check (i32.const 0)) (then
        (call $store_state (local.get $cur) (local.get $sum))
        (drop (call $save))
        (return (i32.const 1))))
      (br $l)))
    (call $store_state (local.get $cur) (local.get $sum))
    (drop (call $save))
    (i32.const 0))
)
"""


# the ticker without its interrupt checks: only the run's deadline stops it, after some checkpoints
NOCHECK_WAT = TICKER_WAT.replace("(if (call $check (i32.const 0)) (then", "(if (i32.const 0) (then")


def _job(body: str) -> str:
    return f"""
(module
{_IMPORTS}
{_COMMON}
  (func (export "execute_tick") (param $ctx i32) (param $ctx_len i32) (param $st i32) (param $st_len i32) (result i32)
    {body})
)
"""


# traps at once: a guest bug
TRAP_WAT = _job("(unreachable)")
# spins forever and never checks for interrupts: only the run's deadline stops it
SPIN_WAT = _job("(loop $l (br $l)) (i32.const 0)")
# grows memory until refused, then aborts
BOMB_WAT = _job(
    "(block $d (loop $l (br_if $d (i32.eq (memory.grow (i32.const 16)) (i32.const -1))) (br $l))) (unreachable)"
)


def unique(wat: str, tag: str) -> str:
    """``wat`` with a data segment holding ``tag``: the same behaviour under a new digest."""
    return wat.rstrip().removesuffix(")") + f'  (data (i32.const 512) "{tag}"))\n'


def wasm(wat: str) -> bytes:
    return wasmtime.wat2wasm(wat)


def manifest(ext_id: str, version: str = "1.0.0", **rate_limits: int) -> Manifest:
    data = {
        "id": ext_id,
        "name": ext_id,
        "version": version,
        "wasm_file": f"{ext_id}.wasm",
        "permissions": {"methods": [], "max_memory_mb": 16, "rate_limits": rate_limits},
    }
    return Manifest.from_dict(data)


def signed(wasm_bytes: bytes, man: Manifest, key: Any = None) -> Any:
    """The signature a publisher (``key``, default: the tests' key) makes for that release."""
    from wasmjob.publishers import Signature, load_or_create
    from wasmjob.wasmbin import digest_of

    key = key or load_or_create()
    return Signature.make(key, man.id, man.version, digest_of(wasm_bytes), man.to_dict())


def publish(registry: Any, wasm_bytes: bytes, man: Manifest, jobs: list[str], key: Any = None) -> Any:
    """Register a release signed by ``key`` (default: the tests' publisher key)."""
    return registry.add(wasm_bytes, man, jobs, signature=signed(wasm_bytes, man, key))


def write_extension(directory: Path, ext_id: str, wat: str, version: str = "1.0.0", **rate_limits: int) -> Path:
    """A module directory (``<id>.wasm`` + manifest.json) as ``wasmjob extensions add`` takes it."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{ext_id}.wasm").write_bytes(wasm(wat))
    (directory / "manifest.json").write_text(json.dumps(manifest(ext_id, version, **rate_limits).to_dict()))
    return directory


_SPIN_LOOP_WAT = """(module (func (export "spin") (param $i i32)
  (block $s (loop $sl (br_if $s (i32.eqz (local.get $i))) (local.set $i (i32.sub (local.get $i) (i32.const 1))) (br $sl)))))"""


def spin_for(ms: float) -> int:
    """Iterations of the ticker's spin loop that take about ``ms`` milliseconds on one idle core here.

    Fleet tests reason in steps of a known length (a job must outlast two slices, a backlog
    must form behind it); a fixed iteration count made those steps 2.5 times shorter on a
    faster CPU and the tests flaky. The best of a few short timings on the fleet's own
    (unmetered) engine filters out load; never fewer than a million iterations per ms,
    the pace the tests were first written at.
    """
    from wasmjob.engine import EngineSettings, make_engine

    engine = make_engine(EngineSettings(fuel=False))
    store = wasmtime.Store(engine)
    store.set_epoch_deadline(1 << 40)
    spin = wasmtime.Instance(store, wasmtime.Module(engine, _SPIN_LOOP_WAT), []).exports(store)["spin"]
    probe = 1_000_000
    best = float("inf")
    for _ in range(7):
        started = time.perf_counter()
        spin(store, probe)  # type: ignore[operator]
        best = min(best, time.perf_counter() - started)
    per_ms = max(probe / (best * 1000), 1_000_000)
    return min(int(per_ms * ms), 2**31 - 1)


SPIN = spin_for(2.0)  # iterations per ticker step: about 2 ms of one idle core
ENDLESS = 100_000  # ticker steps for a job a test pauses or cancels: minutes, never waited out


def ticker_params(target: int, spin: int = 20000, every: int = 10) -> list[int]:
    return [0, target, spin, every, 0]


def ticker_result(target: int, spin: int = 20000, every: int = 10) -> list[int]:
    """The state an uninterrupted run ends with."""
    total = 0
    for cur in range(1, target + 1):
        total = (total * 31 + cur) & 0x7FFFFFFF
    return [target, target, spin, every, total]
