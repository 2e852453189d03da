"""Bounded compilation: a child process with a deadline and an address-space limit."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import wasmtime

from wasmjob.cache import ModuleCache
from wasmjob.compiler import CompileLimits, compile_serialized
from wasmjob.engine import EngineSettings, make_engine
from wasmjob.errors import ModuleError, ModuleRefused

from .wat import wat_module

MANY = wasmtime.wat2wasm("(module " + "(func (result i32) (i32.const 7))" * 20_000 + ")")


def test_code_compiled_in_a_child_loads_into_the_parents_engine_and_is_cached_signed(tmp_path: Path) -> None:
    settings = EngineSettings()
    engine = make_engine(settings)
    cache = ModuleCache(
        engine, settings.fingerprint(), tmp_path, compiler=lambda w: compile_serialized(w, settings, CompileLimits())
    )
    module = cache.get(wat_module("(i32.const 0)"))
    assert any(e.name == "execute_main" for e in module.exports)
    assert cache.stats.compiles == 1 and len(list(tmp_path.glob("*.cwasm"))) == 1
    fresh = ModuleCache(engine, settings.fingerprint(), tmp_path)  # a new process: only the disk artifact
    fresh.get(wat_module("(i32.const 0)"))
    assert (fresh.stats.disk_hits, fresh.stats.compiles) == (1, 0)


def test_a_compile_over_its_deadline_is_killed_and_refused() -> None:
    started = time.monotonic()
    with pytest.raises(ModuleRefused, match="took longer than 0.05s"):
        compile_serialized(MANY, EngineSettings(), CompileLimits(timeout_seconds=0.05))
    assert time.monotonic() - started < 30


def test_a_compile_over_its_memory_is_refused() -> None:
    with pytest.raises(ModuleRefused, match="operator's limit"):
        compile_serialized(MANY, EngineSettings(), CompileLimits(memory_mb=48))


def test_an_invalid_module_gets_wasmtimes_reason_not_a_limit() -> None:
    bad = wasmtime.wat2wasm("(module (func (result i32) (i32.const 1)))")[:-3] + b"\x00\x00\x00"
    with pytest.raises(ModuleError, match="invalid WebAssembly module") as info:
        compile_serialized(bad, EngineSettings(), CompileLimits())
    assert not isinstance(info.value, ModuleRefused)


def test_cache_paths_come_only_from_well_formed_digests(tmp_path: Path) -> None:
    settings = EngineSettings()
    cache = ModuleCache(make_engine(settings), settings.fingerprint(), tmp_path / "c")
    cache.get(wat_module("(i32.const 0)"), "sha256:../../travout/x:" + "a" * 40)
    assert not (tmp_path / "travout").exists()
    assert list((tmp_path / "c").glob("*.cwasm")) == []
