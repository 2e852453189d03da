"""Components run by the same runtime and host as core modules: the scaffold's job and hostile Python."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from wasmjob.component import is_component
from wasmjob.job import InterruptFlag, InterruptReason, JobSpec, Limits, Status
from wasmjob.manifest import Manifest
from wasmjob.runtime import Runtime, RuntimeConfig
from wasmjob.store import LocalStore

from .conftest import StopAfter
from .wat import counting_module


@pytest.fixture(scope="module")
def rt(module_cache_dir: Path) -> Iterator[Runtime]:
    runtime = Runtime(RuntimeConfig(cache_dir=module_cache_dir))
    yield runtime
    runtime.close()


@pytest.fixture(scope="module")
def scaffold(rt: Runtime, py_scaffold: Path) -> object:
    return rt.load((py_scaffold / "pyscaffold.wasm").read_bytes(), Manifest.from_file(py_scaffold / "manifest.json"))


def _run(rt: Runtime, ext: object, store: LocalStore | None, job: str, params: object = None, **kw: object):
    spec = JobSpec(job_name=job, params=params)
    token = store.acquire(spec.job_id, "test", 60) if store is not None else 0
    return rt.run(ext, spec, store, token, **kw), spec


def test_the_runtime_tells_components_from_core_modules_by_their_header(py_scaffold: Path) -> None:
    assert is_component((py_scaffold / "pyscaffold.wasm").read_bytes())
    assert not is_component(counting_module(10))
    assert not is_component(b"\0asm\x0d\x00")
    assert not is_component(b"not wasm at all")


def test_a_component_lists_its_jobs_and_describes_itself(scaffold: object) -> None:
    info = scaffold.describe()
    assert info["kind"] == "component"
    assert {j["name"] for j in info["jobs"]} >= {"count", "spin", "membomb", "kv"}
    assert "wasmjob:job/host@1.0.0" in info["imports"]


def test_count_completes_with_the_scaffold_result(rt: Runtime, scaffold: object, store: LocalStore) -> None:
    out, _ = _run(rt, scaffold, store, "count", {"target": 25_000})
    assert out.status is Status.COMPLETED, out.reason
    assert out.result == {"target": 25_000, "current": 25_000, "sum": 25_000 * 25_001 // 2}
    assert out.items == 25_000 and out.checkpoints == 3
    assert any("sum of 1..=25000 is" in line.message for line in out.logs)


def test_count_pauses_at_a_check_and_resumes_from_its_checkpoint(rt: Runtime, scaffold: object, store: LocalStore) -> None:
    spec = JobSpec(job_name="count", params={"target": 30_000})
    token = store.acquire(spec.job_id, "test", 60)
    first = rt.run(scaffold, spec, store, token, StopAfter(12_344))
    assert first.status is Status.INTERRUPTED and first.interrupt is InterruptReason.PAUSE
    assert first.result["current"] == 12_344
    second = rt.run(scaffold, spec, store, token)
    assert second.status is Status.COMPLETED
    assert second.result == {"target": 30_000, "current": 30_000, "sum": 30_000 * 30_001 // 2}
    assert second.items == 30_000 - 12_344


def test_an_exception_fails_the_job_with_its_message_and_the_traceback_in_the_log(rt: Runtime, scaffold: object) -> None:
    out, _ = _run(rt, scaffold, None, "crash", {"where": "line 3"})
    assert out.status is Status.FAILED and out.failure == "guest"
    assert out.reason == "ValueError: boom at line 3"
    text = "\n".join(line.message for line in out.logs)
    assert "Traceback (most recent call last)" in text and "in crash" in text
    assert "about to fail" in text and "on stderr" in text  # WASI stdout and stderr land in the log


def test_a_job_that_never_checks_is_stopped_by_the_wall_clock_limit(rt: Runtime, scaffold: object) -> None:
    out, _ = _run(rt, scaffold, None, "spin", {}, limits=Limits(timeout_seconds=1.0))
    assert out.status is Status.FAILED and out.failure == "timeout", out.reason
    assert "wall-clock limit of 1 s" in out.reason


def test_a_fuel_budget_stops_a_python_loop(rt: Runtime, scaffold: object) -> None:
    out, _ = _run(rt, scaffold, None, "burn", {}, limits=Limits(fuel=50_000_000))
    assert out.status is Status.FAILED and out.failure == "fuel", out.reason
    assert out.usage.fuel == 50_000_000


def test_a_memory_bomb_fails_the_job_at_the_memory_cap(rt: Runtime, scaffold: object) -> None:
    out, _ = _run(rt, scaffold, None, "membomb", {}, limits=Limits(max_memory_mb=96))
    assert out.status is Status.FAILED, out.reason
    assert "MemoryError" in out.reason or "memory" in out.reason


@pytest.mark.parametrize("job", ["recurse", "deep"])
def test_runaway_recursion_fails_the_job_with_a_reason(rt: Runtime, scaffold: object, job: str) -> None:
    out, _ = _run(rt, scaffold, None, job, {})
    assert out.status is Status.FAILED
    assert "RecursionError" in out.reason or "stack overflow" in out.reason, out.reason


def test_a_checkpoint_over_the_limit_is_refused_and_fails_the_job(rt: Runtime, scaffold: object, store: LocalStore) -> None:
    out, _ = _run(rt, scaffold, store, "bigcheckpoint", {"mb": 2})
    assert out.status is Status.FAILED
    assert "checkpoint of 2097163 bytes was not saved" in out.reason
    assert any("refused: the limit is 1048576 bytes" in w for w in out.warnings)


def test_the_sandbox_grants_no_environment_files_or_network(rt: Runtime, scaffold: object) -> None:
    out, _ = _run(rt, scaffold, None, "ambient", {})
    assert out.status is Status.COMPLETED, out.reason
    seen = out.result
    assert seen["env"] == {}
    for probe in ("read_etc", "list_root", "write_tmp", "socket"):
        assert seen[probe].startswith("denied"), (probe, seen[probe])


def test_host_calls_pass_the_manifest_permissions_and_the_kv_store(rt: Runtime, scaffold: object, store: LocalStore) -> None:
    out, _ = _run(rt, scaffold, store, "kv", {"value": "hé"})
    assert out.status is Status.COMPLETED, out.reason
    assert out.result == {"read": "hé", "missing": None}
    denied, _ = _run(rt, scaffold, store, "forbidden", {})
    assert denied.status is Status.FAILED
    assert "action:admin.wipe.v1 is not permitted by the manifest" in denied.reason


def test_the_worker_runs_the_next_job_after_hostile_ones(rt: Runtime, scaffold: object, store: LocalStore) -> None:
    for job in ("membomb", "spin", "deep"):
        _run(rt, scaffold, None, job, {}, limits=Limits(timeout_seconds=1.0, max_memory_mb=96))
    out, _ = _run(rt, scaffold, store, "count", {"target": 10})
    assert out.status is Status.COMPLETED and out.result["sum"] == 55


def test_a_compiled_component_comes_back_from_the_signed_disk_cache(py_scaffold: Path, module_cache_dir: Path) -> None:
    wasm = (py_scaffold / "pyscaffold.wasm").read_bytes()
    fresh = Runtime(RuntimeConfig(cache_dir=module_cache_dir))
    try:
        ext = fresh.load(wasm, Manifest.from_file(py_scaffold / "manifest.json"))
        assert fresh.cache.stats.disk_hits == 1 and fresh.cache.stats.compiles == 0
        out, _ = _run(fresh, ext, None, "count", {"target": 5})
        assert out.result == {"target": 5, "current": 5, "sum": 15}
    finally:
        fresh.close()


def test_scaffold_tests_pass_natively_through_wasmjob_test(tmp_path: Path) -> None:
    import subprocess
    import sys

    from wasmjob.scaffold import scaffold

    project = scaffold("natively", "python", tmp_path / "natively")
    proc = subprocess.run([sys.executable, "-m", "wasmjob", "test", str(project)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 passed" in proc.stdout
    assert json.loads((project / "manifest.json").read_text())["wasm_file"] == "natively.wasm"


def test_a_listed_pure_python_dependency_is_bundled_into_the_component(rt: Runtime, scaffold: object) -> None:
    out, _ = _run(rt, scaffold, None, "dependency", {"text": "bundled"})
    assert out.status is Status.COMPLETED, out.reason
    assert out.result == {"shout": "BUNDLED!"}


def test_a_dependency_with_compiled_code_is_refused_by_the_build(tmp_path: Path) -> None:
    from wasmjob.builder import build_extension
    from wasmjob.errors import BuildError
    from wasmjob.scaffold import scaffold as new_project

    lib = tmp_path / "nativelib"
    (lib / "nativelib").mkdir(parents=True)
    (lib / "nativelib" / "__init__.py").write_text("")
    (lib / "nativelib" / "_speedups.so").write_bytes(b"\x7fELF not really")
    (lib / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "nativelib"\nversion = "1.0"\n'
        '[tool.setuptools]\npackages = ["nativelib"]\n[tool.setuptools.package-data]\nnativelib = ["*.so"]\n'
    )
    project = new_project("withnative", "python", tmp_path / "withnative")
    text = (project / "pyproject.toml").read_text().replace("dependencies = []", f'dependencies = ["{lib.as_posix()}"]')
    (project / "pyproject.toml").write_text(text)
    with pytest.raises(BuildError, match=r"compiled code cannot run in the sandbox.*_speedups\.so"):
        build_extension(project)
    assert not (project / "withnative.wasm").exists()
