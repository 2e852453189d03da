"""The compiled-module cache: cold, warm, on disk, and every kind of bad artifact."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from wasmjob.cache import MAGIC, ModuleCache
from wasmjob.engine import EngineSettings, make_engine
from wasmjob.errors import ModuleError
from wasmjob.runtime import Runtime, RuntimeConfig

from .wat import wat_module

WASM = wat_module("(i32.const 0)")


def _cache(directory: Path | None, fingerprint: str = "fp") -> ModuleCache:
    return ModuleCache(make_engine(EngineSettings()), fingerprint, directory)


def _artifact(directory: Path) -> Path:
    (path,) = directory.glob("*.cwasm")
    return path


def test_cold_then_warm_compiles_once(tmp_path: Path) -> None:
    cache = _cache(tmp_path)
    first = cache.get(WASM)
    second = cache.get(WASM)
    assert first is second
    assert (cache.stats.compiles, cache.stats.memory_hits) == (1, 1)


def test_directory_is_private(tmp_path: Path) -> None:
    _cache(tmp_path / "c")
    assert stat.S_IMODE(os.stat(tmp_path / "c").st_mode) == 0o700


def test_new_process_loads_its_own_artifact_from_disk(tmp_path: Path) -> None:
    _cache(tmp_path).get(WASM)
    fresh = _cache(tmp_path)
    fresh.get(WASM)
    assert (fresh.stats.compiles, fresh.stats.disk_hits) == (0, 1)


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[: len(b) // 2],
        lambda b: b[:3],
        lambda b: b[:-1] + bytes([b[-1] ^ 0xFF]),
        lambda b: MAGIC + b"\0" * 32 + b[len(MAGIC) + 32 :],
        lambda b: b"not an artifact at all",
    ],
    ids=["truncated", "tiny", "corrupt", "forged-tag", "foreign"],
)
def test_bad_artifact_is_ignored_and_recompiled(tmp_path: Path, damage: object) -> None:
    _cache(tmp_path).get(WASM)
    path = _artifact(tmp_path)
    path.write_bytes(damage(path.read_bytes()))  # type: ignore[operator]
    fresh = _cache(tmp_path)
    fresh.get(WASM)
    assert (fresh.stats.compiles, fresh.stats.rejected_artifacts) == (1, 1)
    after = _cache(tmp_path)  # the recompiled artifact replaced the bad one on disk
    after.get(WASM)
    assert (after.stats.compiles, after.stats.disk_hits, after.stats.rejected_artifacts) == (0, 1, 0)


def test_artifact_written_by_another_host_key_is_not_deserialized(tmp_path: Path) -> None:
    _cache(tmp_path).get(WASM)
    (tmp_path / "host.key").write_bytes(os.urandom(32))
    fresh = _cache(tmp_path)
    fresh.get(WASM)
    assert (fresh.stats.compiles, fresh.stats.rejected_artifacts) == (1, 1)


def test_other_engine_settings_use_other_artifacts(tmp_path: Path) -> None:
    _cache(tmp_path, "one").get(WASM)
    other = _cache(tmp_path, "two")
    other.get(WASM)
    assert other.stats.compiles == 1
    assert len(list(tmp_path.glob("*.cwasm"))) == 2


def test_fingerprint_covers_wasmtime_version_and_settings() -> None:
    assert EngineSettings().fingerprint() != EngineSettings(opt_level="none").fingerprint()


def test_memory_cache_is_bounded(tmp_path: Path) -> None:
    cache = ModuleCache(make_engine(EngineSettings()), "fp", None, max_entries=2)
    modules = [wat_module(f"(i32.const {n})") for n in range(3)]
    for m in modules:
        cache.get(m)
    cache.get(modules[0])
    assert cache.stats.compiles == 4


def test_unwritable_cache_dir_degrades_to_memory_only(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cache = _cache(blocker / "sub")
    assert cache.get(WASM) is not None and cache.directory is None


def test_invalid_module_is_not_cached(tmp_path: Path) -> None:
    cache = _cache(tmp_path)
    with pytest.raises(ModuleError):
        cache.get(b"\0asm\x01\0\0\0garbage")
    assert not list(tmp_path.glob("*.cwasm"))


def test_runtime_reuses_loaded_extensions(tmp_path: Path) -> None:
    rt = Runtime(RuntimeConfig(cache_dir=tmp_path))
    assert rt.load(WASM) is rt.load(WASM)
    assert rt.cache.stats.compiles == 1
    rt.close()


def test_the_disk_cache_drops_least_recently_used_artifacts_beyond_its_byte_bound(tmp_path: Path) -> None:
    modules = [wat_module(f"(i32.const {i})") for i in range(4)]
    cache = _cache(tmp_path)
    cache.get(modules[0])
    one = _artifact(tmp_path).stat().st_size
    cache.max_disk_bytes = int(2.5 * one)  # room for two artifacts
    cache.get(modules[1])
    for path in tmp_path.glob("*.cwasm"):
        os.utime(path, (1, 1))  # both old
    later = _cache(tmp_path)  # a new process: its first get of modules[0] is a disk hit
    later.max_disk_bytes = cache.max_disk_bytes
    later.get(modules[0])  # a disk hit makes its artifact the most recently used
    assert later.stats.disk_hits == 1
    later.get(modules[2])  # evicts modules[1], the least recently used
    assert len(list(tmp_path.glob("*.cwasm"))) == 2
    again = _cache(tmp_path)
    again.max_disk_bytes = cache.max_disk_bytes
    again.get(modules[0])
    again.get(modules[2])
    assert (again.stats.disk_hits, again.stats.compiles) == (2, 0)
    again.get(modules[1])
    assert again.stats.compiles == 1
    assert sum(p.stat().st_size for p in tmp_path.glob("*.cwasm")) <= cache.max_disk_bytes
