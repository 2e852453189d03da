"""Runs without a fuel budget go to an engine without fuel metering; the sandbox's other walls stay."""

from __future__ import annotations

from pathlib import Path

import pytest

from wasmjob.engine import EngineSettings
from wasmjob.job import JobSpec, Limits, Status, needs_fuel
from wasmjob.manifest import Manifest
from wasmjob.runtime import Runtime, RuntimeConfig

from .wat import wat_module

SPIN = "(loop $l (br $l)) (i32.const 0)"
COUNT = (
    "(loop $l (local.set $i (i32.add (local.get $i) (i32.const 1)))"
    " (br_if $l (i32.lt_u (local.get $i) (i32.const 3000000)))) (i32.const 0)"
)
MANIFEST = Manifest.default("engines")


def _run(rt: Runtime, wasm: bytes, metered: bool, limits: Limits) -> object:
    ext = rt.load(wasm, MANIFEST, metered=metered)
    return rt.run(ext, JobSpec(job_name="main"), None, 0, None, limits)


def test_fuel_setting_is_part_of_the_cache_fingerprint() -> None:
    assert EngineSettings(fuel=True).fingerprint() != EngineSettings(fuel=False).fingerprint()


def test_only_a_fuel_budget_or_fuel_billing_needs_the_metered_engine() -> None:
    assert not needs_fuel(Limits())
    assert needs_fuel(Limits(fuel=10))
    assert needs_fuel(Limits(), billing=True)


def test_unmetered_run_bills_cpu_time_and_no_fuel(fast_runtime: Runtime) -> None:
    out = _run(fast_runtime, wat_module(COUNT), False, Limits(timeout_seconds=30))
    assert out.status is Status.COMPLETED, out.reason
    assert out.usage.fuel == 0 and out.usage.cpu_seconds > 0
    metered = _run(fast_runtime, wat_module(COUNT), True, Limits(timeout_seconds=30))
    assert metered.usage.fuel > 3_000_000 and metered.usage.cpu_seconds > 0


def test_unmetered_run_still_has_its_wall_clock_deadline(fast_runtime: Runtime) -> None:
    out = _run(fast_runtime, wat_module(SPIN), False, Limits(timeout_seconds=0.3))
    assert out.status is Status.FAILED and out.failure == "timeout", out.reason


def test_unmetered_run_still_has_its_memory_cap(fast_runtime: Runtime) -> None:
    body = "(loop $l (if (i32.lt_s (memory.grow (i32.const 16)) (i32.const 0)) (then (unreachable))) (br $l)) (i32.const 0)"
    out = _run(fast_runtime, wat_module(body), False, Limits(max_memory_mb=8, timeout_seconds=10))
    assert out.failure == "memory", out.reason


def test_a_fuel_budget_is_refused_on_the_unmetered_engine(fast_runtime: Runtime) -> None:
    ext = fast_runtime.load(wat_module(SPIN), MANIFEST, metered=False)
    with pytest.raises(ValueError, match="fuel budget"):
        fast_runtime.run(ext, JobSpec(job_name="main"), None, 0, None, Limits(fuel=1000))


def test_both_engines_keep_their_own_artifacts_in_one_cache_dir(tmp_path: Path) -> None:
    wasm = wat_module(COUNT)
    first = Runtime(RuntimeConfig(cache_dir=tmp_path))
    try:
        assert first.load(wasm, MANIFEST, metered=True).metered
        assert not first.load(wasm, MANIFEST, metered=False).metered
        assert first.sandbox(True).cache.stats.compiles == 1 and first.sandbox(False).cache.stats.compiles == 1
    finally:
        first.close()
    assert len(list(tmp_path.glob("*.cwasm"))) == 2
    second = Runtime(RuntimeConfig(cache_dir=tmp_path))
    try:
        for metered in (False, True):
            out = _run(second, wasm, metered, Limits(timeout_seconds=30, fuel=10**9 if metered else None))
            assert out.status is Status.COMPLETED and (out.usage.fuel > 0) == metered
        assert second.sandbox(True).cache.stats.disk_hits == 1 and second.sandbox(False).cache.stats.disk_hits == 1
        assert second.sandbox(True).cache.stats.rejected_artifacts == 0
    finally:
        second.close()
