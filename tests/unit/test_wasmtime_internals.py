"""The one door to wasmtime's internals: a version check, one warning, and nothing private elsewhere."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from wasmjob import wasmtime_internals as internals
from wasmjob import linking
from wasmjob.job import Status
from wasmjob.linking import define_plain
from wasmjob.runtime import Runtime, RuntimeConfig
from wasmjob.store import LocalStore

from .conftest import run_job
from .wat import JOB_ID, wat_module

ROOT = Path(__file__).resolve().parents[2]
PRIVATE = re.compile(r"wasmtime\._|_ffi\b|\._context\(\)|\._func\b(?!\()|\._memory\._memory|_from_ptr|\._consume\(")


def test_this_wasmtime_is_one_the_fast_paths_were_written_for() -> None:
    assert internals.select() and internals.fast(), internals.wasmtime_version()


def test_another_major_version_falls_back_to_the_public_api_and_warns_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(internals, "_warned", False)
    try:
        with caplog.at_level(logging.WARNING, logger=internals.__name__):
            assert not internals.select("51.0.0")
            assert not internals.select("51.0.0")
        warnings = [r.getMessage() for r in caplog.records if r.name == internals.__name__]
        assert len(warnings) == 1 and "51.0.0" in warnings[0] and "public API" in warnings[0]
    finally:
        internals.select()


def test_the_fallback_runs_jobs_through_the_public_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plain_linkers = []
    monkeypatch.setattr(linking, "define_plain", lambda linker: plain_linkers.append(define_plain(linker)))
    rt = Runtime(RuntimeConfig(cache_dir=None))  # asks for the fast path
    store = LocalStore(tmp_path / "state")
    internals.select("51.0.0")
    try:
        body = (
            f"(call $progress (i32.const {JOB_ID}) (f32.const 0.5) (i32.const 64) (i32.const 5))"
            f"(drop (call $checkpoint (i32.const {JOB_ID}) (i32.const 64) (i32.const 5))) (i32.const 0)"
        )
        out = run_job(rt, store, wat_module(body))
        assert out.status is Status.COMPLETED and out.state == b"hello" and out.message == "hello"
        assert len(plain_linkers) == 1, "the fast path was taken on a wasmtime it was not written for"
    finally:
        internals.select()
        store.close()
        rt.close()


def test_a_component_job_pauses_and_resumes_through_the_public_api(
    py_scaffold: Path, module_cache_dir: Path, tmp_path: Path
) -> None:
    from wasmjob.job import InterruptReason, JobSpec
    from wasmjob.manifest import Manifest

    from .conftest import StopAfter

    internals.select("51.0.0")
    rt = Runtime(RuntimeConfig(cache_dir=module_cache_dir))
    store = LocalStore(tmp_path / "state")
    try:
        ext = rt.load((py_scaffold / "pyscaffold.wasm").read_bytes(), Manifest.from_file(py_scaffold / "manifest.json"))
        spec = JobSpec(job_name="count", params={"target": 3_000})
        token = store.acquire(spec.job_id, "test", 60)
        first = rt.run(ext, spec, store, token, StopAfter(1_234))
        assert first.status is Status.INTERRUPTED and first.interrupt is InterruptReason.PAUSE, first.reason
        assert store.load_checkpoint(spec.job_id) is not None  # the checkpoint went through wasmtime-py's list<u8>
        second = rt.run(ext, spec, store, token)
        assert second.status is Status.COMPLETED, second.reason
        assert second.result == {"target": 3_000, "current": 3_000, "sum": 3_000 * 3_001 // 2}
    finally:
        internals.select()
        store.close()
        rt.close()


def test_nothing_outside_the_door_touches_wasmtimes_private_names() -> None:
    door = ROOT / "worker" / "wasmtime_internals.py"
    offenders = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in sorted((ROOT / "worker").rglob("*.py"))
        if path != door
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if PRIVATE.search(line)
    ]
    assert offenders == []
